"""Clock skew over real HTTP: tokens dated on the academy's clock, a skewed 401 resent once."""

from __future__ import annotations

import asyncio
import logging
import re
import time

import pytest
from _support import serving
from conftest import make_client

from coursepath_async import AuthenticationError
from coursepath_async.testing import SandboxAcademy


def _statuses(academy: SandboxAcademy) -> list[int | None]:
    return [r.status for r in academy.recorder.requests]


@pytest.mark.parametrize(("offset", "side"), [(300.0, "ahead of"), (-300.0, "behind")])
async def test_a_fresh_client_gets_in_after_one_401_and_later_calls_need_none(
    offset: float, side: str, caplog: pytest.LogCaptureFixture
) -> None:
    """An academy 5 minutes off: one 401, resent re-signed; then every token is accepted."""
    caplog.set_level(logging.WARNING, logger="coursepath_async")
    async with serving(clock_offset=offset) as (academy, client):
        assert client.clock_skew == 0.0
        me = await client.members.me()
        assert me.email == academy.admin_email
        assert _statuses(academy) == [401, 200]
        assert abs(client.clock_skew - offset) < 2
        for member in academy.state.members()[:5]:
            await client.members.get(member.id)
        page = await client.members.list(page_size=5).first_page()
        records = list(academy.recorder.requests)
    assert len(page) == 5
    assert [r.status for r in records] == [401] + [200] * 7
    expected = "expired" if offset > 0 else "future"
    assert academy.recorder.rejected_tokens == {expected: 1}
    server_now = time.time() + offset
    assert all(r.iat is not None and abs(r.iat - server_now) < 30 for r in records[1:])
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert re.search(rf"academy clock is (299|300|301) s {side} ours", warnings[0])


async def test_concurrent_first_calls_each_resend_once_and_warn_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Eight calls out at once on a skewed academy: at most one 401 each, one WARNING."""
    caplog.set_level(logging.WARNING, logger="coursepath_async")
    async with serving(dialect="clock_ahead") as (academy, client):
        members = academy.state.members()[:8]
        got = await asyncio.gather(*(client.members.get(m.id) for m in members))
        rejected = academy.recorder.rejected_tokens
    assert [m.id for m in got] == [m.id for m in members]
    assert 1 <= rejected.get("expired", 0) <= 8
    assert len([r for r in caplog.records if r.levelno == logging.WARNING]) == 1


async def test_a_bad_key_on_a_skewed_academy_is_resent_once_then_raised() -> None:
    """Wrong key, clock 300 s ahead: the skew resend happens once, then AuthenticationError."""
    async with SandboxAcademy(members=2, seed=1, clock_offset=300.0) as academy:
        async with make_client(academy, api_key="not-the-academys-key-0123456789abcdefghij") as c:
            with pytest.raises(AuthenticationError):
                await c.members.me()
        assert _statuses(academy) == [401, 401]


async def test_a_bad_key_on_an_academy_on_our_clock_is_not_resent() -> None:
    """Wrong key, no skew: the 401 is raised after one request."""
    async with SandboxAcademy(members=2, seed=1) as academy:
        async with make_client(academy, api_key="not-the-academys-key-0123456789abcdefghij") as c:
            with pytest.raises(AuthenticationError):
                await c.members.me()
        assert _statuses(academy) == [401]


async def test_a_skew_inside_the_token_window_is_learnt_without_any_401() -> None:
    """An academy 100 s ahead accepts our first token; the next ones carry its clock."""
    async with serving(clock_offset=100.0) as (academy, client):
        for _ in range(3):
            await client.members.me()
        records = list(academy.recorder.requests)
    assert [r.status for r in records] == [200, 200, 200]
    ours = time.time()
    assert records[0].iat is not None
    assert records[0].iat <= ours + 1
    assert all(r.iat is not None and r.iat >= ours + 90 for r in records[1:])

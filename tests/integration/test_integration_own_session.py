"""A session of the caller's: used for every call, never closed, its settings overridden."""

from __future__ import annotations

from types import SimpleNamespace

import aiohttp
import pytest
from _support import serving
from conftest import API_KEY, FAST_RETRY, make_client

from coursepath_async import ConfigurationError, CoursepathClient, NotFoundError


async def test_a_session_of_yours_carries_every_call_and_stays_open() -> None:
    """Calls go through it despite its raise_for_status and tiny timeout; aclose leaves it open."""
    sent: list[str] = []

    async def on_request_start(
        _session: aiohttp.ClientSession,
        _ctx: SimpleNamespace,
        params: aiohttp.TraceRequestStartParams,
    ) -> None:
        sent.append(f"{params.method} {params.url.path}")

    trace = aiohttp.TraceConfig()
    trace.on_request_start.append(on_request_start)
    async with (
        serving() as (academy, _),
        aiohttp.ClientSession(
            raise_for_status=True,
            timeout=aiohttp.ClientTimeout(total=1e-6),  # would fail any call left to it
            trace_configs=[trace],
        ) as session,
    ):
        async with make_client(
            academy,
            retry=FAST_RETRY,
            session=session,
        ) as client:
            assert (await client.members.me()).email == academy.admin_email
            with pytest.raises(NotFoundError):  # typed, not aiohttp's ClientResponseError
                await client.members.get(987_654)
        assert not session.closed
        assert session._retry_connection is False  # no hidden resend of a single-use token
        assert sent == ["GET /api/v1/members/me", "GET /api/v1/members/987654"]
        assert academy.recorder.total == 2


async def test_a_closed_or_foreign_session_is_refused() -> None:
    """Only an open ``aiohttp.ClientSession`` is accepted, said at construction."""
    session = aiohttp.ClientSession()
    await session.close()
    for bad in (session, object()):
        with pytest.raises(ConfigurationError, match="session must be an open"):
            CoursepathClient(
                "https://acme.example.com",
                api_key=API_KEY,
                user="a@b.example",
                session=bad,  # type: ignore[arg-type]
            )

"""Rate limits over real HTTP: the sandbox's limiter in each style against the SDK's governor."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest
from _support import serving

from coursepath_async import Priority
from coursepath_async.bulk import (
    ImportOptions,
    MappingRows,
    PlanOptions,
    import_members,
    open_journal,
)


async def test_429_without_retry_after_is_paced_never_failed() -> None:
    """Eighty reads at once against 50/s (bursts of 10) all succeed; the client learns a rate."""
    async with serving(rate_limit=50.0, rate_limit_burst=10.0) as (academy, client):
        got = await asyncio.gather(*(client.members.get(2) for _ in range(80)))
        stats = client.scheduler_stats()
        limiter = academy.limiter
    assert [m.id for m in got] == [2] * 80
    assert limiter is not None
    assert limiter.refused > 0
    assert stats.refusals == limiter.refused
    assert stats.rate is not None
    assert stats.rate < 80


@pytest.mark.parametrize("style", ["429-date", "503-retry-after"])
async def test_invitations_refused_with_retry_after_are_sent_once(style: str) -> None:
    """Thirty invites through a 20/s limiter that names a wait: each email goes out once."""
    async with serving(rate_limit=20.0, rate_limit_burst=5.0, rate_limit_style=style) as (
        academy,
        client,
    ):
        ids = [r.id for r in academy.state.members()][1:]
        await asyncio.gather(*(client.members.invite(i) for i in ids))
        limiter = academy.limiter
    assert limiter is not None
    assert limiter.refused > 0
    assert dict(academy.recorder.invitations) == dict.fromkeys(ids, 1)


async def test_a_dated_retry_after_from_a_server_90s_ahead_waits_seconds_not_minutes() -> None:
    """The date is read against the answer's Date: a refused call waits about a second."""
    async with serving(
        rate_limit=2.0, rate_limit_burst=1.0, rate_limit_style="429-date", clock_offset=90.0
    ) as (academy, client):
        await client.members.me()
        started = time.monotonic()
        await client.members.get(2)  # refused (the bucket is empty), then waits and retries
        elapsed = time.monotonic() - started
        statuses = [r.status for r in academy.recorder.requests]
    assert statuses == [200, 429, 200]
    assert elapsed < 3.0


async def test_interactive_calls_keep_their_priority_under_a_governed_import(
    tmp_path: Path,
) -> None:
    """While an import is held to the limiter's pace, interactive reads still answer promptly."""
    rows = MappingRows([{"email": f"p{i}@shared.test", "name": f"P {i}"} for i in range(200)])
    plan = PlanOptions(invite="new")
    latencies: list[float] = []
    async with serving(rate_limit=100.0, rate_limit_burst=20.0) as (academy, client):
        interactive = client.with_options(priority=Priority.INTERACTIVE)
        with open_journal(str(tmp_path / "j.sqlite"), rows, kind="import", options=plan) as journal:
            job = asyncio.create_task(
                import_members(client, rows, journal=journal, options=ImportOptions(plan=plan))
            )
            while not client.scheduler_stats().pending["bulk"]:  # noqa: ASYNC110
                await asyncio.sleep(0.01)
            for _ in range(10):
                began = time.monotonic()
                await interactive.members.me()
                latencies.append(time.monotonic() - began)
                # Still behind a backlog: its rows wait for a request slot or for the
                # journal's group commit, which runs off the loop while requests go on.
                assert not job.done()
            report = await job
    totals = report.totals
    assert (totals.failed, totals.invitations_sent) == (0, 200)
    assert set(academy.recorder.invitations.values()) == {1}
    assert max(latencies) < 0.5, latencies

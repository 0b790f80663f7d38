"""Cancelled callers give back their slots: mid-request, mid-backoff, mid-pagination, mid-queue."""

from __future__ import annotations

import asyncio
import gc

import pytest
from _support import serving, until, until_released, watching_retries

from coursepath_async import CoursepathClient
from coursepath_async.testing import Faults, SandboxAcademy, ScriptedFault


def assert_clean_shutdown(caplog: pytest.LogCaptureFixture) -> None:
    """Nothing was left running or reported by asyncio/aiohttp (unclosed, destroyed tasks)."""
    gc.collect()
    current = asyncio.current_task()
    stray = [t for t in asyncio.all_tasks() if t is not current]
    assert stray == []
    noisy = [r for r in caplog.records if r.name in ("asyncio", "aiohttp.client")]
    assert noisy == []
    assert "Unclosed" not in caplog.text
    assert "Task was destroyed" not in caplog.text


async def assert_full_budget_works(academy: SandboxAcademy, client: CoursepathClient) -> None:
    """The client still answers, and its whole budget is usable again."""
    stats = client.scheduler_stats()
    assert stats.active == 0
    assert sum(stats.pending.values()) == 0
    assert (await asyncio.wait_for(client.members.me(), 5)).email == academy.admin_email
    await until(academy.recorder, lambda r: r.in_flight == 0)
    academy.recorder.reset()
    academy.set_faults(latency=0.05)
    limit = stats.limit
    await asyncio.wait_for(asyncio.gather(*(client.members.get(2) for _ in range(4 * limit))), 5)
    assert academy.recorder.peak_in_flight == limit
    assert client.scheduler_stats().active == 0


async def test_cancel_mid_request_and_in_the_queue(caplog: pytest.LogCaptureFixture) -> None:
    """Callers cancelled while their request hangs, or while queued for a slot, free everything."""
    async with serving(client={"max_concurrency": 3}) as (academy, client):
        academy.script("GET", "/members/me", "hang", "hang", "hang")
        callers = [asyncio.create_task(client.members.me()) for _ in range(7)]
        await until(academy.recorder, lambda r: r.in_flight == 3)
        stats = client.scheduler_stats()
        assert (stats.active, stats.pending["normal"]) == (3, 4)

        for task in callers:
            task.cancel()
        results = await asyncio.gather(*callers, return_exceptions=True)
        assert all(isinstance(r, asyncio.CancelledError) for r in results)
        assert client.scheduler_stats().active == 0

        # The academy sees the three hung requests end without an answer.
        await until(academy.recorder, lambda r: r.in_flight == 0)
        assert [r.status for r in academy.recorder.requests] == [None, None, None]
        await assert_full_budget_works(academy, client)
    assert_clean_shutdown(caplog)


async def test_cancel_mid_backoff(caplog: pytest.LogCaptureFixture) -> None:
    """A caller cancelled while sleeping before a retry holds no slot and leaves nothing behind."""
    async with (
        serving(client={"max_concurrency": 2}) as (academy, client),
        watching_retries() as watcher,
    ):
        # A 500 asking for 30 s: the caller sleeps 30 s before retrying (no client-wide pause).
        academy.script("GET", "/members/me", ScriptedFault.status(500, retry_after=30))
        caller = asyncio.create_task(client.members.me())
        await asyncio.wait_for(watcher.retrying.wait(), 5)
        stats = client.scheduler_stats()
        assert stats.active == 0  # backing off does not hold a slot
        assert stats.paused_for == 0.0

        caller.cancel()
        with pytest.raises(asyncio.CancelledError):
            await caller
        assert academy.recorder.count("GET", "/members/me") == 1
        await assert_full_budget_works(academy, client)
    assert_clean_shutdown(caplog)


async def test_cancel_mid_pagination(caplog: pytest.LogCaptureFixture) -> None:
    """Cancelling a consumer while a window of pages is in flight cancels them and frees slots."""
    async with serving(members=80, client={"max_concurrency": 4}) as (academy, client):
        academy.script("GET", "/members", "ok", "hang", "hang", "hang")
        first_page = asyncio.Event()
        received: list[int] = []

        async def consume() -> None:
            async for member in client.members.list(page_size=10, window=3):
                received.append(member.id)
                first_page.set()

        consumer = asyncio.create_task(consume())
        await asyncio.wait_for(first_page.wait(), 5)
        await until(academy.recorder, lambda r: r.in_flight == 3)
        assert client.scheduler_stats().active == 3

        consumer.cancel()
        with pytest.raises(asyncio.CancelledError):
            await consumer
        assert received == list(range(1, 11))
        assert client.scheduler_stats().active == 0
        await until(academy.recorder, lambda r: r.in_flight == 0)
        await assert_full_budget_works(academy, client)
    assert_clean_shutdown(caplog)


async def test_breaking_out_of_a_listing_cancels_its_prefetched_pages(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Leaving ``async for`` early (break) closes the listing: no page request is left running."""
    async with serving(members=200, faults=Faults(latency=0.05)) as (academy, client):
        listing = client.members.list(page_size=10, window=4)
        async for member in listing:
            if member.id == 15:
                break
        # The abandoned generator is closed by asyncio's finalizer hook on the next loop
        # turns, which cancels its prefetched pages.
        await until(academy.recorder, lambda r: r.in_flight == 0)
        await until_released(client)
        assert academy.recorder.count("GET", "/members") <= 5
        await assert_full_budget_works(academy, client)
    assert_clean_shutdown(caplog)


async def test_call_made_while_holder_and_waiter_are_cancelled_gets_the_slot(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A call arriving in the same loop turn as a holder's and a waiter's cancellation is served."""
    async with serving(client={"max_concurrency": 1}) as (academy, client):
        academy.script("GET", "/members/me", "hang")
        holder = asyncio.create_task(client.members.me())
        await until(academy.recorder, lambda r: r.in_flight == 1)
        waiter = asyncio.create_task(client.members.get(2))
        await asyncio.sleep(0)  # let the waiter queue for the slot
        assert client.scheduler_stats().pending["normal"] == 1

        holder.cancel()
        newcomer = asyncio.create_task(client.members.get(3))
        waiter.cancel()
        member = await asyncio.wait_for(newcomer, 5)
        assert member.id == 3
        await asyncio.gather(holder, waiter, return_exceptions=True)
        assert client.scheduler_stats().active == 0
        await until(academy.recorder, lambda r: r.in_flight == 0)
    assert_clean_shutdown(caplog)


async def test_cancelled_views_do_not_starve_the_parent(caplog: pytest.LogCaptureFixture) -> None:
    """Cancelling every call of an ``as_user`` view leaves the shared budget whole."""
    async with serving(client={"max_concurrency": 2}) as (academy, client):
        learner = academy.state.members()[1]
        view = client.as_user(learner.email)
        academy.script("GET", "/members/me", "hang", "hang")
        hung = [asyncio.create_task(view.members.me()) for _ in range(5)]
        await until(academy.recorder, lambda r: r.in_flight == 2)
        for task in hung:
            task.cancel()
        await asyncio.gather(*hung, return_exceptions=True)
        await until(academy.recorder, lambda r: r.in_flight == 0)
        await assert_full_budget_works(academy, client)
    assert_clean_shutdown(caplog)

"""Retries under 5xx/429/resets, 4xx never retried, adaptive back-off, timeouts, deadlines."""

from __future__ import annotations

import asyncio
import time

import pytest
from _support import serving, until, watching_retries

from coursepath_async import (
    APIStatusError,
    APITimeoutError,
    AuthenticationError,
    BadRequestError,
    ClientStateError,
    ConflictError,
    NotFoundError,
    PermissionDeniedError,
    RateLimitError,
    RetryPolicy,
    ServerError,
    UnprocessableEntityError,
)
from coursepath_async.testing import Faults, ScriptedFault

# -- retried failures ---------------------------------------------------------------------


async def test_5xx_answers_are_retried_until_success() -> None:
    """500, 502 and 503 (HTML pages from a proxy) are retried; the fourth attempt succeeds."""
    async with serving() as (academy, client):
        academy.script("GET", "/members/me", 500, 502, 503)
        me = await client.members.me()
        assert me.email == academy.admin_email
        recorder = academy.recorder
        assert recorder.count("GET", "/members/me") == 4
        assert [r.status for r in recorder.requests] == [500, 502, 503, 200]
        assert academy.pending_script() == {}


async def test_retries_stop_at_max_attempts_with_a_typed_server_error() -> None:
    """Five 502s against max_attempts=4: a ``ServerError`` after exactly four requests."""
    async with serving() as (academy, client):
        academy.script("GET", "/members/me", *[502] * 5)
        with pytest.raises(ServerError) as caught:
            await client.members.me()
        assert caught.value.status_code == 502
        assert "HTML page" in str(caught.value)
        assert academy.recorder.count("GET", "/members/me") == 4


async def test_429_with_retry_after_ms_is_retried() -> None:
    """A 429 burst asking for 40 ms is waited out and retried; the call succeeds."""
    async with serving() as (academy, client):
        academy.script("GET", "/members/{id}", *[ScriptedFault.rate_limit(0.04)] * 2)
        started = time.monotonic()
        member = await client.members.get(3)
        assert member.id == 3
        assert time.monotonic() - started >= 0.08  # the server's wait was honoured, twice
        assert [r.status for r in academy.recorder.requests] == [429, 429, 200]


async def test_connection_reset_mid_body_is_retried() -> None:
    """A response cut off mid-body (after the request was handled) is retried for a read."""
    async with serving() as (academy, client):
        academy.script("GET", "/members", "reset", "reset")
        members = await client.members.list()
        assert [m.id for m in members] == [r.id for r in academy.state.members()]
        assert academy.recorder.fault_counts["reset"] == 2
        assert academy.recorder.count("GET", "/members") == 3


async def test_slow_body_is_read_completely() -> None:
    """A body dribbled out in chunks is read whole, without a retry."""
    async with serving() as (academy, client):
        academy.script("GET", "/members", ScriptedFault.slow_body(chunks=5, delay=0.02))
        members = await client.members.list()
        assert len(members) == academy.state.member_count
        assert academy.recorder.count("GET", "/members") == 1


@pytest.mark.parametrize(
    ("status", "error"),
    [
        (400, BadRequestError),
        (401, AuthenticationError),
        (403, PermissionDeniedError),
        (404, NotFoundError),
        (409, ConflictError),
        (422, UnprocessableEntityError),
        (418, APIStatusError),
    ],
)
async def test_4xx_is_never_retried(status: int, error: type[APIStatusError]) -> None:
    """Each 4xx becomes its typed error after exactly one request, reads and writes alike."""
    async with serving() as (academy, client):
        academy.script("GET", "/members/{id}", status)
        academy.script("POST", "/members/{id}", status)
        with pytest.raises(error) as caught:
            await client.members.get(2)
        assert caught.value.status_code == status
        with pytest.raises(error):
            await client.members.update(2, company="Nope")
        assert academy.recorder.count("GET", "/members/{id}") == 1
        assert academy.recorder.count("POST", "/members/{id}") == 1
        assert academy.state.member(2).company != "Nope"


async def test_a_seeded_fault_storm_of_reads_and_writes_all_succeed() -> None:
    """With 5xx, 429, resets, slow bodies and applied-then-502 all on, every call completes."""
    faults = Faults(
        seed=99,
        error_rate=0.15,
        rate_limit_rate=0.04,
        rate_limit_burst=2,
        retry_after=0.01,
        reset_rate=0.08,
        slow_body_rate=0.05,
        applied_then_fail_rate=0.1,
    )
    retry = RetryPolicy(max_attempts=12, base_delay=0.0, max_delay=0.0)
    async with serving(members=30, faults=faults, client={"retry": retry}) as (academy, client):
        state = academy.state
        ids = [r.id for r in state.members()]
        course_id = state.courses()[1].id
        got = await asyncio.gather(*(client.members.get(i) for i in ids))
        assert [m.id for m in got] == ids
        listed = await client.members.list(page_size=7)
        assert [m.id for m in listed] == ids
        await asyncio.gather(*(client.members.update(i, country="ZZ") for i in ids[1:]))
        assert all(state.member(i).country == "ZZ" for i in ids[1:])
        await asyncio.gather(*(client.courses.enroll(course_id, i) for i in ids[1:]))
        assert all(state.enrolment(course_id, i) is not None for i in ids[1:])
        assert academy.recorder.total > 2 * len(ids) + 5
        assert academy.recorder.duplicate_jtis == {}


# -- adaptive back-off ----------------------------------------------------------------------


async def test_429_retry_after_pauses_the_whole_client() -> None:
    """After a 429 asking for 0.6 s, a different call made meanwhile waits out the pause too."""
    async with serving() as (academy, client), watching_retries() as watcher:
        academy.script("GET", "/members/me", ScriptedFault.rate_limit(0.6))
        first = asyncio.create_task(client.members.me())
        await asyncio.wait_for(watcher.retrying.wait(), 5)
        paused_at = time.monotonic()
        paused_for = client.scheduler_stats().paused_for
        assert 0.3 < paused_for <= 0.6
        other = await client.members.get(2)  # made during the pause, on another route
        await first
        assert other.id == 2
        [record] = [r for r in academy.recorder.requests if r.route == "/api/v1/members/{memberId}"]
        assert record.started >= paused_at + paused_for - 0.02
        assert client.scheduler_stats().paused_for == 0.0


async def test_429_retry_after_also_holds_back_calls_already_queued() -> None:
    """A call already queued for a slot when the 429 arrives is not dispatched during the pause."""
    async with serving(faults=Faults(latency=0.1), client={"max_concurrency": 1}) as (
        academy,
        client,
    ):
        academy.script("GET", "/members/me", ScriptedFault.rate_limit(0.8))
        first = asyncio.create_task(client.members.me())
        await until(academy.recorder, lambda r: r.in_flight == 1)
        queued = asyncio.create_task(client.members.get(2))  # waits for the only slot
        await asyncio.gather(first, queued)
        records = academy.recorder.requests
        [limited] = [r for r in records if r.status == 429]
        [other] = [r for r in records if r.route == "/api/v1/members/{memberId}"]
        # The pause starts when the client reads the 429, a little after the academy's
        # record of it ends; the queued call must not reach the academy before it is over.
        assert other.started >= limited.ended + 0.8 - 0.05, (
            f"dispatched {other.started - limited.ended:.3f}s after a 429 asking for 0.8s"
        )


async def test_overload_lowers_the_effective_limit_which_recovers_after_successes() -> None:
    """A run of 503s (no Retry-After) halves the usable budget; successes then regrow it."""
    async with serving(client={"max_concurrency": 8}) as (academy, client):
        academy.script("GET", "/members/me", 503, 503, 503)
        await client.members.me()
        stats = client.scheduler_stats()
        assert stats.limit == 8
        assert stats.effective_limit == 4

        # While throttled, concurrent calls are held to the lowered budget.
        academy.recorder.reset()
        academy.set_faults(latency=0.1)
        await asyncio.gather(*(client.members.get(2) for _ in range(8)))
        assert academy.recorder.peak_in_flight <= 5
        assert client.scheduler_stats().effective_limit > 4

        # Enough successes restore the whole budget, which is then used again.
        academy.set_faults(latency=0.0)
        for _ in range(25):
            await client.members.get(2)
        assert client.scheduler_stats().effective_limit == 8
        academy.recorder.reset()
        academy.set_faults(latency=0.05)
        await asyncio.gather(*(client.members.get(2) for _ in range(24)))
        assert academy.recorder.peak_in_flight == 8


# -- timeouts and deadlines -------------------------------------------------------------------


async def test_hung_server_gives_api_timeout_error_not_a_hang() -> None:
    """A route that never answers ends in ``APITimeoutError`` after the per-attempt timeouts."""
    retry = RetryPolicy(max_attempts=2, base_delay=0.0, max_delay=0.0)
    async with serving(client={"timeout": 0.5, "retry": retry}) as (academy, client):
        academy.script("GET", "/members/me", "hang", "hang")
        started = time.monotonic()
        with pytest.raises(APITimeoutError):
            await client.members.me()
        elapsed = time.monotonic() - started
        assert 0.9 <= elapsed < 2.5
        await until(academy.recorder, lambda r: r.in_flight == 0)
        assert academy.recorder.count("GET", "/members/me") == 2
        assert (await client.members.me()).email == academy.admin_email  # still works


async def test_total_deadline_covers_every_attempt() -> None:
    """Hung attempts of 0.4 s each are cut by a 1 s call deadline, however many are allowed."""
    retry = RetryPolicy(max_attempts=20, base_delay=0.0, max_delay=0.0)
    async with serving(client={"timeout": 0.4, "retry": retry}) as (academy, client):
        academy.script("GET", "/members/me", *["hang"] * 20)
        view = client.with_options(deadline=1.0)
        started = time.monotonic()
        with pytest.raises(APITimeoutError) as caught:
            await view.members.me()
        elapsed = time.monotonic() - started
        assert "deadline" in str(caught.value)
        assert 0.95 <= elapsed < 1.5
        await until(academy.recorder, lambda r: r.in_flight == 0)
        assert academy.recorder.count("GET", "/members/me") == 3


async def test_total_deadline_covers_backoff() -> None:
    """Backoff sleeps count against the deadline: the call ends by its deadline, not after."""
    retry = RetryPolicy(max_attempts=50, base_delay=0.25, max_delay=0.25)
    async with serving(client={"retry": retry, "deadline": 0.8}) as (academy, client):
        academy.script("GET", "/members/me", *[502] * 50)
        started = time.monotonic()
        with pytest.raises((ServerError, APITimeoutError)):
            await client.members.me()
        assert time.monotonic() - started < 0.8 + 0.3
        assert 2 <= academy.recorder.count("GET", "/members/me") < 50


async def test_retry_after_beyond_the_deadline_fails_fast() -> None:
    """A 429 asking for 30 s with 2 s of deadline left ends at once in ``RateLimitError``."""
    async with serving(client={"deadline": 2.0}) as (academy, client):
        academy.script("GET", "/members/me", ScriptedFault.rate_limit(30.0))
        started = time.monotonic()
        with pytest.raises(RateLimitError) as caught:
            await client.members.me()
        assert time.monotonic() - started < 0.5
        assert caught.value.retry_after == 30.0
        assert academy.recorder.count("GET", "/members/me") == 1


async def test_closing_the_client_ends_a_long_pause_and_its_backoff_at_once() -> None:
    """Calls backing off or queued behind a 30 s Retry-After fail as soon as the client closes."""
    async with serving(client={"max_concurrency": 1}) as (academy, client):
        academy.script("GET", "/members/me", ScriptedFault.rate_limit(30.0))
        backing_off = asyncio.create_task(client.members.me())
        await until(academy.recorder, lambda r: r.total == 1 and r.in_flight == 0)
        queued = asyncio.create_task(client.members.get(2))
        async with asyncio.timeout(5):
            while client.scheduler_stats().paused_for == 0 or not any(  # noqa: ASYNC110
                client.scheduler_stats().pending.values()
            ):
                await asyncio.sleep(0.01)
        started = time.monotonic()
        await client.aclose()
        results = await asyncio.wait_for(
            asyncio.gather(backing_off, queued, return_exceptions=True), 5
        )
        assert time.monotonic() - started < 5
    assert [type(r) for r in results] == [ClientStateError, ClientStateError]
    assert all("closed" in str(r) for r in results)
    assert academy.recorder.total == 1

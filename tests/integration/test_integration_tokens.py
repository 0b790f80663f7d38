"""Tokens signed at dispatch, single-use jtis under faults, one shared concurrency budget."""

from __future__ import annotations

import asyncio
import time

from _support import clock_offset, serving, until, wall_clock

from coursepath_async import Priority, RetryPolicy
from coursepath_async.testing import Faults, ScriptedFault

# -- token freshness ------------------------------------------------------------------------


async def test_calls_queued_behind_a_full_scheduler_carry_dispatch_time_iat() -> None:
    """A call made at t0 that waited seconds for a slot presents iat ≈ its dispatch, not t0."""
    calls, delay = 8, 0.8  # 2 slots → 4 waves: the last call waits ~2.4 s before it is sent
    async with serving(client={"max_concurrency": 2}) as (academy, client):
        academy.script("GET", "/members/me", *[ScriptedFault.delay(delay)] * calls)
        offset = clock_offset()
        t0 = time.time()
        results = await asyncio.gather(*(client.members.me() for _ in range(calls)))
        assert {m.email for m in results} == {academy.admin_email}

        records = sorted(academy.recorder.requests, key=lambda r: r.started)
        assert [r.status for r in records] == [200] * calls
        assert academy.recorder.peak_in_flight == 2
        waited = [wall_clock(r, offset) - t0 for r in records]
        assert waited[-1] >= 3 * delay - 0.2, "the last calls did not queue"
        for record, queued_for in zip(records, waited, strict=True):
            assert record.iat is not None
            dispatched = t0 + queued_for
            # iat is whole seconds, so it may trail the dispatch by up to one second...
            assert record.iat >= dispatched - 1.05, (record, queued_for)
            # ...and it is never from the future.
            assert record.iat <= dispatched + 0.05
        # A token signed when the call was made would say int(t0) <= t0.
        late = [r for r, q in zip(records, waited, strict=True) if q >= 2 * delay]
        assert late
        assert all(r.iat is not None and r.iat > t0 + 0.5 for r in late)
        assert academy.recorder.rejected_tokens == {}


async def test_every_attempt_has_its_own_token_and_the_acting_email() -> None:
    """Retries sign again: each attempt of one call shows a new jti, all for the view's email."""
    async with serving() as (academy, client):
        learner = academy.state.members()[2]
        view = client.as_user(learner.email)
        academy.script("GET", "/members/me", 503, "reset", 500)
        me = await view.members.me()
        assert me.email == learner.email
        records = list(academy.recorder.requests)
        assert len(records) == 4
        assert [r.email for r in records] == [learner.email] * 4
        assert len({r.jti for r in records}) == 4
        assert None not in {r.jti for r in records}


# -- single-use jtis --------------------------------------------------------------------------


async def test_no_jti_is_ever_reused_under_random_faults() -> None:
    """A concurrent batch under 5xx, resets, 429 bursts and applied-then-502 reuses no jti."""
    faults = Faults(
        seed=20240601,
        error_rate=0.12,
        reset_rate=0.1,
        rate_limit_rate=0.03,
        rate_limit_burst=2,
        retry_after=0.01,
        applied_then_fail_rate=0.08,
    )
    retry = RetryPolicy(max_attempts=12, base_delay=0.0, max_delay=0.0)
    async with serving(
        members=40, faults=faults, client={"max_concurrency": 6, "retry": retry}
    ) as (academy, client):
        state = academy.state
        ids = [r.id for r in state.members()]
        course_id = state.courses()[0].id
        reads = [client.members.get(i) for i in ids] + [client.members.me() for _ in range(20)]
        writes = [client.members.update(i, department=f"D{i}") for i in ids[1:15]]
        enrols = [client.courses.enroll(course_id, i) for i in ids[15:30]]
        creates = [client.members.create(f"jti{i}@example.org") for i in range(10)]
        # 204 answers: a reset there drops the connection before any byte of the answer,
        # the case in which aiohttp itself would silently resend the same token.
        deletes = [client.members.remove_from_all_groups(i) for i in ids[30:]]
        await asyncio.gather(*reads, *writes, *enrols, *creates, *deletes)

        recorder = academy.recorder
        calls = len(reads) + len(writes) + len(enrols) + len(creates) + len(deletes)
        assert recorder.total > calls
        assert recorder.fault_counts["reset"] > 0
        assert any(label.startswith("status:") for label in recorder.fault_counts)
        assert any(label.startswith("applied_then") for label in recorder.fault_counts)
        assert recorder.duplicate_jtis == {}
        assert recorder.rejected_tokens == {}
        assert recorder.status_counts[401] == 0
        assert len(recorder.jtis) == recorder.total
        # The faulted writes still took effect exactly once.
        assert all(state.member(i).department == f"D{i}" for i in ids[1:15])
        assert all(state.enrolment(course_id, i) is not None for i in ids[15:30])
        assert all(state.member_by_email(f"jti{i}@example.org") for i in range(10))
        assert all(state.member_group_ids(i) == [] for i in ids[30:])


# -- the concurrency budget -------------------------------------------------------------------


async def test_peak_in_flight_reaches_and_never_exceeds_max_concurrency() -> None:
    """100 calls at max_concurrency=8 against a 50 ms server: exactly 8 in flight at the peak."""
    async with serving(faults=Faults(latency=0.05), client={"max_concurrency": 8}) as (
        academy,
        client,
    ):
        ids = [r.id for r in academy.state.members()]
        await asyncio.gather(*(client.members.get(ids[i % len(ids)]) for i in range(100)))
        assert academy.recorder.total == 100
        assert academy.recorder.peak_in_flight == 8
        stats = client.scheduler_stats()
        assert stats.peak_active == 8
        assert stats.active == 0
        assert dict(stats.pending) == {"interactive": 0, "normal": 0, "bulk": 0}


async def test_as_user_views_share_the_parents_budget() -> None:
    """Calls through several ``as_user`` views and the parent together stay within one budget."""
    async with serving(faults=Faults(latency=0.05), client={"max_concurrency": 3}) as (
        academy,
        client,
    ):
        learners = academy.state.members()[1:5]
        views = [client.as_user(m.email) for m in learners]
        calls = [v.members.me() for v in views for _ in range(5)]
        calls += [client.members.me() for _ in range(5)]
        results = await asyncio.gather(*calls)
        assert sorted(m.email for m in results) == sorted(
            [m.email for m in learners for _ in range(5)] + [academy.admin_email] * 5
        )
        assert academy.recorder.peak_in_flight == 3


async def test_interactive_call_overtakes_a_bulk_backlog() -> None:
    """An interactive call made behind 30 queued bulk calls is sent as soon as a slot frees."""
    async with serving(faults=Faults(latency=0.05), client={"max_concurrency": 2}) as (
        academy,
        client,
    ):
        bulk = client.with_options(priority=Priority.BULK)
        interactive = client.with_options(priority=Priority.INTERACTIVE)
        backlog = [asyncio.create_task(bulk.members.get(2)) for _ in range(30)]
        await until(academy.recorder, lambda r: r.in_flight == 2)
        assert client.scheduler_stats().pending["bulk"] == 28
        me = await interactive.members.me()
        assert me.email == academy.admin_email
        await asyncio.gather(*backlog)
        order = [r.route for r in sorted(academy.recorder.requests, key=lambda r: r.started)]
        # Two bulk calls were in flight; the interactive one took the next free slot.
        assert order.index("/api/v1/members/me") <= 3

"""The scheduler: one bounded budget, priority lanes, no leaked or lost slots."""

from __future__ import annotations

import asyncio
import itertools
import time

import pytest
from fake_clock import FakeClock

from coursepath_async import Priority, SchedulerStats
from coursepath_async._adaptive import AdaptiveLimit
from coursepath_async._governor import RateGovernor
from coursepath_async._scheduler import Scheduler


async def _settle(rounds: int = 5) -> None:
    """Let every ready task run up to its next real wait."""
    for _ in range(rounds):
        await asyncio.sleep(0)


async def _hold(scheduler: Scheduler, priority: Priority, gate: asyncio.Event) -> None:
    async with scheduler.slot(priority):
        await gate.wait()


# --- the budget ---------------------------------------------------------------


async def test_limit_is_never_exceeded_and_is_reached() -> None:
    """With 50 tasks and a limit of 5, at most 5 hold a slot at once, and 5 do."""
    scheduler = Scheduler(5)
    observed: list[int] = []
    inside = 0

    async def work() -> None:
        nonlocal inside
        async with scheduler.slot(Priority.NORMAL):
            inside += 1
            observed.append(inside)
            await _settle(3)
            inside -= 1

    await asyncio.gather(*(work() for _ in range(50)))
    assert len(observed) == 50
    assert max(observed) == 5
    assert scheduler.stats().peak_active == 5
    assert scheduler.active_count == 0
    assert scheduler.pending_count() == 0


async def test_free_slot_is_taken_without_waiting() -> None:
    """Below the limit, acquiring does not queue."""
    scheduler = Scheduler(2)
    await scheduler.acquire(Priority.BULK)
    assert scheduler.active_count == 1
    assert scheduler.pending_count() == 0
    scheduler.release()
    assert scheduler.active_count == 0


async def test_interactive_waiter_overtakes_bulk_backlog() -> None:
    """With the only slot held, queued INTERACTIVE waiters are served before earlier BULK ones."""
    scheduler = Scheduler(1)
    order: list[str] = []

    async def call(name: str, priority: Priority) -> None:
        async with scheduler.slot(priority):
            order.append(name)

    await scheduler.acquire(Priority.NORMAL)
    tasks = [asyncio.create_task(call(f"bulk{i}", Priority.BULK)) for i in range(3)]
    await _settle()
    tasks.append(asyncio.create_task(call("normal", Priority.NORMAL)))
    tasks.append(asyncio.create_task(call("interactive", Priority.INTERACTIVE)))
    await _settle()
    assert scheduler.pending_count(Priority.BULK) == 3
    assert scheduler.pending_count(Priority.NORMAL) == 1
    assert scheduler.pending_count(Priority.INTERACTIVE) == 1
    scheduler.release()
    await asyncio.gather(*tasks)
    assert order == ["interactive", "normal", "bulk0", "bulk1", "bulk2"]
    assert scheduler.active_count == 0


async def test_reserve_is_for_interactive_calls_only() -> None:
    """Beyond the limit only INTERACTIVE calls get a slot, and a freed reserve slot too."""
    scheduler = Scheduler(1, interactive_reserve=1)
    await scheduler.acquire(Priority.BULK)
    bulk = asyncio.create_task(scheduler.acquire(Priority.BULK))
    normal = asyncio.create_task(scheduler.acquire(Priority.NORMAL))
    await _settle()
    assert scheduler.try_acquire(Priority.INTERACTIVE)
    assert not scheduler.try_acquire(Priority.INTERACTIVE)  # the reserve is used up
    assert scheduler.active_count == 2
    late = asyncio.create_task(scheduler.acquire(Priority.INTERACTIVE))
    await _settle()
    scheduler.release()  # the regular slot frees: the queued interactive call gets it
    await _settle()
    assert late.done()
    assert not normal.done()
    assert not bulk.done()
    scheduler.release()  # a reserve slot frees: no room for NORMAL or BULK, retired
    await _settle()
    assert (scheduler.active_count, normal.done(), bulk.done()) == (1, False, False)
    scheduler.release()
    await _settle()
    assert normal.done()
    assert not bulk.done()
    scheduler.release()
    await asyncio.wait_for(bulk, 1)
    scheduler.release()
    assert scheduler.active_count == 0
    assert scheduler.stats().peak_active == 2


async def test_try_acquire_never_jumps_its_own_lane() -> None:
    """A free slot is not taken by a newcomer while an equal or more urgent caller queues."""
    scheduler = Scheduler(1, interactive_reserve=1)
    await scheduler.acquire(Priority.NORMAL)
    waiter = asyncio.create_task(scheduler.acquire(Priority.NORMAL))
    await _settle()
    assert not scheduler.try_acquire(Priority.NORMAL)
    assert not scheduler.try_acquire(Priority.BULK)
    assert scheduler.try_acquire(Priority.INTERACTIVE)  # more urgent: overtakes
    scheduler.release()
    scheduler.release()
    await asyncio.wait_for(waiter, 1)
    scheduler.release()
    assert scheduler.active_count == 0


async def test_lanes_are_fifo() -> None:
    """Within one lane, waiters are served in arrival order."""
    scheduler = Scheduler(1)
    order: list[int] = []

    async def call(i: int) -> None:
        async with scheduler.slot(Priority.NORMAL):
            order.append(i)

    await scheduler.acquire(Priority.NORMAL)
    tasks = []
    for i in range(5):
        tasks.append(asyncio.create_task(call(i)))
        await _settle(1)
    scheduler.release()
    await asyncio.gather(*tasks)
    assert order == [0, 1, 2, 3, 4]


# --- release on every outcome -------------------------------------------------


async def test_slot_released_on_success() -> None:
    """Leaving the block normally frees the slot."""
    scheduler = Scheduler(1)
    async with scheduler.slot(Priority.NORMAL):
        assert scheduler.active_count == 1
    assert scheduler.active_count == 0


async def test_slot_released_on_exception() -> None:
    """An exception inside the block frees the slot and propagates."""
    scheduler = Scheduler(1)
    with pytest.raises(KeyError):
        async with scheduler.slot(Priority.NORMAL):
            raise KeyError("boom")
    assert scheduler.active_count == 0
    await asyncio.wait_for(scheduler.acquire(Priority.NORMAL), 1)


async def test_cancelled_holder_releases_its_slot() -> None:
    """Cancelling a task that holds a slot frees the slot for the next waiter."""
    scheduler = Scheduler(1)
    gate = asyncio.Event()
    holder = asyncio.create_task(_hold(scheduler, Priority.NORMAL, gate))
    await _settle()
    waiter = asyncio.create_task(scheduler.acquire(Priority.NORMAL))
    await _settle()
    assert scheduler.active_count == 1
    assert scheduler.pending_count() == 1
    holder.cancel()
    await asyncio.wait_for(waiter, 1)
    assert holder.cancelled()
    assert scheduler.active_count == 1
    scheduler.release()
    assert scheduler.active_count == 0


async def test_cancelled_waiter_leaves_the_queue_without_a_slot() -> None:
    """A waiter cancelled while queued takes nothing and the budget stays whole."""
    scheduler = Scheduler(1)
    await scheduler.acquire(Priority.NORMAL)
    waiter = asyncio.create_task(scheduler.acquire(Priority.BULK))
    await _settle()
    assert scheduler.pending_count(Priority.BULK) == 1
    waiter.cancel()
    await asyncio.gather(waiter, return_exceptions=True)
    assert waiter.cancelled()
    assert scheduler.pending_count() == 0
    assert scheduler.pending_count(Priority.BULK) == 0
    scheduler.release()
    assert scheduler.active_count == 0
    await asyncio.wait_for(scheduler.acquire(Priority.NORMAL), 1)
    assert scheduler.active_count == 1


async def test_waiter_cancelled_as_the_slot_is_handed_over_passes_it_on() -> None:
    """A slot handed to a waiter that is cancelled before it runs goes to the next waiter."""
    scheduler = Scheduler(1)
    await scheduler.acquire(Priority.NORMAL)
    first = asyncio.create_task(scheduler.acquire(Priority.NORMAL))
    await _settle()
    second = asyncio.create_task(scheduler.acquire(Priority.NORMAL))
    await _settle()
    scheduler.release()  # hands the slot to `first`...
    first.cancel()  # ...which is cancelled before it gets to run
    await asyncio.gather(first, return_exceptions=True)
    assert first.cancelled()
    await asyncio.wait_for(second, 1)
    assert scheduler.active_count == 1
    assert scheduler.pending_count() == 0
    scheduler.release()
    assert scheduler.active_count == 0


async def test_slot_handed_to_a_cancelled_lone_waiter_is_returned() -> None:
    """With nobody else waiting, the passed-on slot returns to the pool (no leak)."""
    scheduler = Scheduler(1)
    await scheduler.acquire(Priority.NORMAL)
    waiter = asyncio.create_task(scheduler.acquire(Priority.NORMAL))
    await _settle()
    scheduler.release()
    waiter.cancel()
    await asyncio.gather(waiter, return_exceptions=True)
    assert scheduler.active_count == 0
    await asyncio.wait_for(scheduler.acquire(Priority.NORMAL), 1)


async def test_newcomer_is_not_stranded_behind_a_cancelled_waiter() -> None:
    """A caller arriving while a cancelled waiter is being cleaned up still gets the free slot.

    Order within one loop iteration: a queued waiter is cancelled, the holder releases
    (skipping the cancelled waiter: the slot is now free), and a new caller asks for a
    slot before the cancelled waiter's task has run its clean-up.
    """
    scheduler = Scheduler(1)
    await scheduler.acquire(Priority.NORMAL)
    cancelled = asyncio.create_task(scheduler.acquire(Priority.BULK))
    await _settle()
    newcomer = asyncio.create_task(scheduler.acquire(Priority.NORMAL))
    cancelled.cancel()
    scheduler.release()
    await asyncio.gather(cancelled, return_exceptions=True)
    done, _ = await asyncio.wait({newcomer}, timeout=0.5)
    state = repr(scheduler)
    newcomer.cancel()
    await asyncio.gather(newcomer, return_exceptions=True)
    assert newcomer in done, f"deadlock: {state} with a free slot and a queued caller"


async def test_many_cancellations_lose_no_slots() -> None:
    """After a storm of cancelled holders and waiters, the whole budget is available again."""
    scheduler = Scheduler(3)
    gate = asyncio.Event()
    tasks = [asyncio.create_task(_hold(scheduler, Priority(i % 3), gate)) for i in range(30)]
    await _settle()
    for task in tasks[::2]:
        task.cancel()
    await _settle()
    gate.set()
    await asyncio.gather(*tasks, return_exceptions=True)
    assert scheduler.active_count == 0
    assert scheduler.pending_count() == 0
    for _ in range(3):
        await asyncio.wait_for(scheduler.acquire(Priority.NORMAL), 1)
    assert scheduler.active_count == 3


# --- pause and adaptive budget --------------------------------------------------


async def test_pause_delays_new_acquisitions() -> None:
    """After ``pause(s)``, a new caller waits about s before getting a free slot."""
    scheduler = Scheduler(4)
    scheduler.pause(0.05)
    assert 0 < scheduler.stats().paused_for <= 0.05
    started = time.monotonic()
    await scheduler.acquire(Priority.INTERACTIVE)
    assert time.monotonic() - started >= 0.045
    assert scheduler.stats().paused_for == 0.0


async def test_callers_during_a_pause_queue_by_priority() -> None:
    """A slot freed during a pause waits for its end, then goes to the most urgent caller."""
    scheduler = Scheduler(1)
    assert scheduler.try_acquire(Priority.BULK)
    order: list[Priority] = []

    async def call(priority: Priority) -> None:
        await scheduler.acquire(priority)
        order.append(priority)
        scheduler.release()

    bulk = asyncio.create_task(call(Priority.BULK))
    await _settle()
    scheduler.pause(0.05)
    interactive = asyncio.create_task(call(Priority.INTERACTIVE))
    await _settle()
    assert scheduler.stats().pending == {"interactive": 1, "normal": 0, "bulk": 1}
    scheduler.release()
    await _settle()
    assert order == []
    await asyncio.wait_for(asyncio.gather(bulk, interactive), 5)
    assert order == [Priority.INTERACTIVE, Priority.BULK]


async def test_close_lets_every_waiter_go_at_once() -> None:
    """After close, callers queued (even behind a long pause) get through to see it closed."""
    scheduler = Scheduler(1)
    assert scheduler.try_acquire(Priority.NORMAL)
    scheduler.pause(60)
    waiters = [asyncio.create_task(scheduler.acquire(p)) for p in (Priority.BULK, Priority.NORMAL)]
    await _settle()
    assert not any(waiter.done() for waiter in waiters)
    scheduler.close()
    await asyncio.wait_for(asyncio.gather(*waiters), 1)
    await asyncio.wait_for(scheduler.acquire(Priority.BULK), 1)  # a late caller too
    assert scheduler.stats().paused_for == 0.0


async def test_pause_is_extended_never_shortened() -> None:
    """A shorter pause does not cut a longer one short."""
    scheduler = Scheduler(1)
    scheduler.pause(60)
    scheduler.pause(0.01)
    assert scheduler.stats().paused_for > 59


def _overload_run(adaptive: AdaptiveLimit, now: float = 0.0) -> None:
    """A run of overload answers with no success between them."""
    for _ in range(3):
        adaptive.overloaded(now)


def test_a_stray_overload_answer_does_not_cut_the_budget() -> None:
    """A lone 429/503 between successes leaves the budget alone; a run of three cuts it."""
    adaptive = AdaptiveLimit(16)
    for _ in range(5):
        adaptive.overloaded(0.0)
        adaptive.overloaded(0.0)
        adaptive.succeeded()
    assert adaptive.effective == 16
    adaptive.overloaded(0.0)
    assert adaptive.effective == 16
    adaptive.overloaded(0.0)
    adaptive.overloaded(0.0)
    assert adaptive.effective == 8


def test_overload_halves_the_budget_once_per_burst() -> None:
    """A run of overload answers halves the usable budget, at most once a second, never below 1."""
    adaptive = AdaptiveLimit(16)
    _overload_run(adaptive)
    assert adaptive.effective == 8
    adaptive.overloaded(0.5)
    assert adaptive.effective == 8
    for second, expected in zip((1.0, 2.0, 3.0, 4.0), (4, 2, 1, 1), strict=True):
        adaptive.overloaded(second)
        assert adaptive.effective == expected
    assert adaptive.limit == 16


def test_budget_grows_back_by_one_per_budget_of_successes() -> None:
    """After a cut, each ``effective`` successes add one slot, up to the limit."""
    adaptive = AdaptiveLimit(4)
    _overload_run(adaptive)
    assert adaptive.effective == 2
    assert adaptive.succeeded() is False
    assert adaptive.succeeded() is True
    assert adaptive.effective == 3
    for _ in range(3):
        adaptive.succeeded()
    assert adaptive.effective == 4
    assert not any(adaptive.succeeded() for _ in range(10))
    assert adaptive.effective == 4


async def test_shrunk_budget_retires_slots_on_release() -> None:
    """After a cut below the slots in use, releases retire slots before waking waiters."""
    scheduler = Scheduler(4, clock=FakeClock())
    for _ in range(4):
        await scheduler.acquire(Priority.NORMAL)
    for _ in range(3):
        scheduler.overloaded()
    assert scheduler.effective_limit == 2
    waiter = asyncio.create_task(scheduler.acquire(Priority.NORMAL))
    await _settle()
    assert scheduler.pending_count() == 1
    scheduler.release()
    scheduler.release()
    await _settle()
    assert not waiter.done()
    assert scheduler.active_count == 2
    scheduler.release()
    await asyncio.wait_for(waiter, 1)
    assert scheduler.active_count == 2


async def test_regrowth_wakes_a_waiter() -> None:
    """When the budget grows back, a queued caller gets the new slot at once."""
    scheduler = Scheduler(2, clock=FakeClock())
    for _ in range(3):
        scheduler.overloaded()
    assert scheduler.effective_limit == 1
    await scheduler.acquire(Priority.NORMAL)
    waiter = asyncio.create_task(scheduler.acquire(Priority.NORMAL))
    await _settle()
    assert not waiter.done()
    scheduler.succeeded()
    await asyncio.wait_for(waiter, 1)
    assert scheduler.active_count == 2
    assert scheduler.effective_limit == 2


# --- the rate governor, on a fake clock ------------------------------------------------


async def test_a_pause_on_the_fake_clock_ends_exactly_when_due() -> None:
    """A 5 s pause holds a caller until the clock reaches it, by the scheduler's one timer."""
    clock = FakeClock()
    scheduler = Scheduler(4, clock=clock)
    scheduler.pause(5.0)
    waiter = asyncio.create_task(scheduler.acquire(Priority.NORMAL))
    await _settle()
    assert clock.pending == [1005.0]
    assert scheduler.stats().paused_for == 5.0
    clock.advance(4.999)
    await _settle()
    assert not waiter.done()
    clock.advance(0.001)
    await asyncio.wait_for(waiter, 1)
    assert scheduler.stats().paused_for == 0.0


async def test_a_slot_handed_over_just_before_a_pause_waits_it_out() -> None:
    """A waiter given a slot in the very turn a pause begins holds it until the pause ends."""
    clock = FakeClock()
    scheduler = Scheduler(1, clock=clock)
    await scheduler.acquire(Priority.NORMAL)
    waiter = asyncio.create_task(scheduler.acquire(Priority.NORMAL))
    await _settle()
    scheduler.release()  # hands the slot over...
    scheduler.pause(5.0)  # ...and a 429 pauses the client before the waiter has run
    await _settle()
    assert not waiter.done()
    assert scheduler.active_count == 1
    clock.advance(5.0)
    await asyncio.wait_for(waiter, 1)
    assert clock.pending == []


async def test_dispatches_are_paced_at_the_governors_rate() -> None:
    """At 10 requests a second, 20 queued callers are let go one per 100 ms."""
    clock = FakeClock()
    scheduler = Scheduler(50, clock=clock, governor=RateGovernor(max_rate=10.0))
    started: list[float] = []

    async def call() -> None:
        await scheduler.acquire(Priority.BULK)
        started.append(clock.now)
        scheduler.release()

    tasks = [asyncio.create_task(call()) for _ in range(20)]
    await _settle()
    while len(started) < 20:
        clock.run_next()
        await _settle()
    await asyncio.gather(*tasks)
    assert started[0] == 1000.0
    gaps = [round(b - a, 6) for a, b in itertools.pairwise(started)]
    assert set(gaps) == {0.1}
    assert clock.pending == []  # nobody waiting: no timer left behind


async def test_interactive_calls_overtake_a_governed_bulk_backlog() -> None:
    """With bulk held to 10/s, an interactive call made meanwhile goes at once, on its reserve."""
    clock = FakeClock()
    governor = RateGovernor(max_rate=10.0, reserve=2)
    scheduler = Scheduler(50, interactive_reserve=2, clock=clock, governor=governor)
    bulk = [asyncio.create_task(scheduler.acquire(Priority.BULK)) for _ in range(10)]
    await _settle()
    assert scheduler.pending_count(Priority.BULK) == 9
    assert scheduler.try_acquire(Priority.INTERACTIVE)
    assert scheduler.try_acquire(Priority.INTERACTIVE)
    late = asyncio.create_task(scheduler.acquire(Priority.INTERACTIVE))
    await _settle()
    assert not late.done()
    clock.advance(0.1)  # the next token goes to the interactive caller, not the backlog
    await _settle()
    assert late.done()
    assert scheduler.pending_count(Priority.BULK) == 9
    for task in bulk:
        task.cancel()
    await asyncio.gather(*bulk, return_exceptions=True)
    assert scheduler.pending_count() == 0


async def test_a_cancelled_waiter_leaves_its_lane() -> None:
    """The counts are the lanes: a cancelled caller is gone from them as soon as it has run."""
    clock = FakeClock()
    scheduler = Scheduler(1, clock=clock)
    await scheduler.acquire(Priority.NORMAL)
    waiters = [asyncio.create_task(scheduler.acquire(Priority.BULK)) for _ in range(5)]
    await _settle()
    assert scheduler.pending_count(Priority.BULK) == 5
    for task in waiters[::2]:
        task.cancel()
    await _settle()
    assert scheduler.pending_count(Priority.BULK) == 2
    assert scheduler.stats().pending == {"interactive": 0, "normal": 0, "bulk": 2}
    scheduler.release()
    await asyncio.wait_for(waiters[1], 1)
    assert scheduler.pending_count() == 1


# --- visibility -----------------------------------------------------------------


async def test_stats_and_repr() -> None:
    """Stats and repr show slots in use, the limit and waiters per lane."""
    scheduler = Scheduler(2)
    await scheduler.acquire(Priority.NORMAL)
    await scheduler.acquire(Priority.NORMAL)
    waiters = [
        asyncio.create_task(scheduler.acquire(Priority.BULK)),
        asyncio.create_task(scheduler.acquire(Priority.BULK)),
        asyncio.create_task(scheduler.acquire(Priority.INTERACTIVE)),
    ]
    await _settle()
    stats = scheduler.stats()
    assert stats == SchedulerStats(
        limit=2,
        interactive_reserve=0,
        effective_limit=2,
        active=2,
        peak_active=2,
        pending={"interactive": 1, "normal": 0, "bulk": 2},
        paused_for=0.0,
    )
    assert scheduler.pending_count() == 3
    assert repr(scheduler) == (
        "<Scheduler active=2/2 (limit 2) pending: interactive=1, normal=0, bulk=2>"
    )
    for task in waiters:
        task.cancel()
    await asyncio.gather(*waiters, return_exceptions=True)
    assert scheduler.pending_count() == 0
    assert scheduler.stats().pending == {"interactive": 0, "normal": 0, "bulk": 0}

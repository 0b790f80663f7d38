"""Coarse attempt timeouts: fire on time, never swallow a real cancellation, leave nothing."""

from __future__ import annotations

import asyncio

import pytest
from fake_clock import FakeClock

from coursepath_async._timeouts import AttemptTimeouts

# A unit test of the private attempt timeouts; the fake clock moves only when told, so
# deadlines are crossed exactly, without sleeping.


async def _attempt(timeouts: AttemptTimeouts, work: asyncio.Future[None]) -> str:
    """What the transport does around one attempt, reporting how it ended."""
    watch = timeouts.start()
    try:
        await work
    except BaseException as exc:
        if timeouts.stop(watch, exc):
            return "timed out"
        raise
    timeouts.stop(watch, None)
    return "done"


async def _settle() -> None:
    """Let the attempt tasks run up to their first await."""
    for _ in range(3):
        await asyncio.sleep(0)


async def test_a_stuck_attempt_times_out_within_one_slice() -> None:
    """An attempt that never finishes ends between ``timeout`` and ``timeout`` + a slice."""
    loop = asyncio.get_running_loop()
    clock = FakeClock()
    timeouts = AttemptTimeouts(0.2, clock=clock)
    started = clock.now
    task = asyncio.create_task(_attempt(timeouts, loop.create_future()))
    await _settle()
    clock.advance(0.2 - 0.001)
    await _settle()
    assert not task.done()  # not before its timeout
    clock.run_next()
    assert 0.2 <= clock.now - started <= 0.2 + 0.02 + 1e-9  # a slice is 0.02 s
    assert await task == "timed out"
    assert task.cancelling() == 0
    assert clock.pending == []


async def test_a_finished_attempt_is_not_touched() -> None:
    """An attempt that finishes in time returns normally and leaves its slice empty."""
    loop = asyncio.get_running_loop()
    clock = FakeClock()
    timeouts = AttemptTimeouts(0.1, clock=clock)
    work = loop.create_future()
    loop.call_soon(work.set_result, None)
    assert await _attempt(timeouts, work) == "done"
    assert len(clock.pending) == 1
    clock.advance(0.15)  # past the deadline: the slice timer fires on an empty slice
    await asyncio.sleep(0)  # a stray cancellation of this task would be raised here
    current = asyncio.current_task()
    assert current is not None
    assert current.cancelling() == 0
    assert clock.pending == []
    assert timeouts._slices == {}
    assert timeouts._handles == {}


async def test_an_outside_cancellation_stays_a_cancellation() -> None:
    """Cancelling the caller propagates CancelledError; it is not turned into a timeout."""
    loop = asyncio.get_running_loop()
    timeouts = AttemptTimeouts(30.0)
    task = asyncio.create_task(_attempt(timeouts, loop.create_future()))
    await asyncio.sleep(0)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    timeouts.close()


async def test_a_cancellation_racing_the_timeout_wins() -> None:
    """If the caller is cancelled as the timeout fires, the caller's cancellation wins."""
    loop = asyncio.get_running_loop()
    clock = FakeClock()
    timeouts = AttemptTimeouts(0.05, clock=clock)
    task = asyncio.create_task(_attempt(timeouts, loop.create_future()))
    await _settle()
    clock.run_next()  # the slice timer fires ...
    task.cancel()  # ... and the caller is cancelled in the same loop iteration
    with pytest.raises(asyncio.CancelledError):
        await task
    timeouts.close()


async def test_many_attempts_share_a_few_timers() -> None:
    """A thousand concurrent attempts arm one timer per slice, not one each."""
    loop = asyncio.get_running_loop()
    clock = FakeClock()
    timeouts = AttemptTimeouts(30.0, clock=clock)
    gate = loop.create_future()
    tasks = [asyncio.create_task(_attempt(timeouts, gate)) for _ in range(1000)]
    await asyncio.sleep(0)
    assert sum(len(s) for s in timeouts._slices.values()) == 1000
    assert len(clock.pending) == len(timeouts._handles) == 1  # the clock stands still
    gate.set_result(None)
    assert set(await asyncio.gather(*tasks)) == {"done"}
    assert sum(len(s) for s in timeouts._slices.values()) == 0
    timeouts.close()
    assert timeouts._handles == {}
    assert clock.pending == []


async def test_close_cancels_pending_slice_timers() -> None:
    """Closing drops every pending timer, so nothing fires after the client is gone."""
    loop = asyncio.get_running_loop()
    clock = FakeClock()
    timeouts = AttemptTimeouts(30.0, clock=clock)
    work = loop.create_future()
    loop.call_soon(work.set_result, None)
    await _attempt(timeouts, work)
    assert clock.pending
    timeouts.close()
    assert clock.pending == []  # every timer cancelled
    clock.advance(60.0)  # and none fires later
    assert timeouts._handles == {}


def test_starting_outside_a_task_is_refused() -> None:
    """Outside an asyncio task there is nothing to cancel: a clear error, not a hang."""
    with pytest.raises(RuntimeError):
        AttemptTimeouts(1.0).start()

"""The one place that bounds concurrency: a slot budget with priority lanes.

Every request of a client and of all its ``as_user`` views takes a slot for each
attempt. A freed slot is handed straight to the first waiter of the most urgent
lane, so interactive calls overtake a bulk backlog instead of queueing behind it;
a few reserved slots beyond the limit, usable only by INTERACTIVE calls, mean they
do not even wait for a bulk call to finish.
The server can also ask the whole client to hold off (``pause``), e.g. on a 429,
and a run of overload answers halves the budget, which then grows back by one slot
per budget's worth of successes (additive increase, multiplicative decrease).
"""

from __future__ import annotations

import asyncio
import sys
import time
from collections import deque
from collections.abc import Mapping
from types import TracebackType

from attrs import frozen

from ._config import Priority


@frozen(kw_only=True)
class SchedulerStats:
    """A snapshot of the scheduler: slots in use, waiters per lane, the high-water mark."""

    limit: int
    interactive_reserve: int
    effective_limit: int
    active: int
    peak_active: int
    pending: Mapping[str, int]
    paused_for: float


class Scheduler:
    """Bounded concurrency with strict-priority lanes and slot hand-over on release."""

    __slots__ = (
        "_active",
        "_closed",
        "_effective",
        "_lane_waiting",
        "_lanes",
        "_last_cut",
        "_limit",
        "_paused_until",
        "_peak",
        "_reserve",
        "_resume",
        "_strikes",
        "_successes",
    )

    # One overload burst should cut the budget once, not once per failed request.
    _CUT_INTERVAL = 1.0
    # A run of overload answers with no success between them, not a stray 503.
    _STRIKES = 3

    def __init__(self, limit: int, *, interactive_reserve: int = 0) -> None:
        self._limit = limit
        self._reserve = interactive_reserve
        self._effective = limit
        self._successes = 0
        self._strikes = 0
        self._last_cut = -self._CUT_INTERVAL
        self._active = 0
        self._peak = 0
        self._lanes: tuple[deque[asyncio.Future[None]], ...] = tuple(deque() for _ in Priority)
        self._lane_waiting = [0 for _ in Priority]
        self._paused_until = 0.0
        #: Set while a pause holds: the timer that ends it (no slot is handed out before).
        self._resume: asyncio.TimerHandle | None = None
        self._closed = False

    @property
    def limit(self) -> int:
        """Slots in total, not counting the interactive reserve."""
        return self._limit

    @property
    def interactive_reserve(self) -> int:
        """Slots beyond the limit that only INTERACTIVE calls may take."""
        return self._reserve

    @property
    def effective_limit(self) -> int:
        """Slots usable now: the limit, lowered while the server signals overload."""
        return self._effective

    @property
    def active_count(self) -> int:
        """Slots held right now."""
        return self._active

    def pending_count(self, priority: Priority | None = None) -> int:
        """Callers waiting for a slot, in one lane or in all."""
        return sum(self._lane_waiting) if priority is None else self._lane_waiting[priority]

    def stats(self) -> SchedulerStats:
        """A consistent snapshot for logs, dashboards and tests."""
        return SchedulerStats(
            limit=self._limit,
            interactive_reserve=self._reserve,
            effective_limit=self._effective,
            active=self._active,
            peak_active=self._peak,
            pending={p.name.lower(): self._lane_waiting[p] for p in Priority},
            paused_for=max(self._paused_until - time.monotonic(), 0.0),
        )

    def pause(self, seconds: float) -> None:
        """Hold back new dispatches for ``seconds`` (extends, never shortens, a pause).

        Callers meanwhile queue in their lanes, so when it ends the most urgent go first.
        """
        until = time.monotonic() + seconds
        if until <= self._paused_until:
            return
        self._paused_until = until
        if self._resume is None:  # one timer per pause; it re-arms itself if extended
            self._resume = asyncio.get_running_loop().call_later(seconds, self._end_pause)

    def close(self) -> None:
        """The client closed: end any pause and let every waiter go now, whatever the budget.

        Each then sees the client closed at once instead of after a long pause.
        """
        self._closed = True
        self._paused_until = 0.0
        if self._resume is not None:
            self._resume.cancel()
            self._resume = None
        self._fill()

    def _end_pause(self) -> None:
        left = self._paused_until - time.monotonic()
        if left > 0:  # extended meanwhile, or the loop's clock ran a hair ahead of ours
            self._resume = asyncio.get_running_loop().call_later(left, self._end_pause)
            return
        self._resume = None
        self._fill()

    def overloaded(self) -> None:
        """The server answered 429/503: after a run of them, halve the usable budget.

        Cuts at most once a second, so one burst costs one halving.
        """
        self._strikes += 1
        if self._strikes < self._STRIKES:
            return
        now = time.monotonic()
        if now - self._last_cut >= self._CUT_INTERVAL:
            self._last_cut = now
            self._effective = max(1, self._effective // 2)
            self._successes = 0

    def succeeded(self) -> None:
        """A call went through: while throttled, grow the budget back gradually."""
        self._strikes = 0
        if self._effective < self._limit:
            self._successes += 1
            if self._successes >= self._effective:
                self._successes = 0
                self._effective += 1
                self._fill()

    def slot(self, priority: Priority) -> _Slot:
        """``async with scheduler.slot(priority):`` holds one slot for the block."""
        return _Slot(self, priority)

    def _room(self, priority: Priority) -> int:
        """How many slots may be in use for a call of ``priority`` to take one.

        Unbounded once closed: every caller goes through at once to see it closed.
        """
        if self._closed:
            return sys.maxsize
        return (
            self._effective + self._reserve if priority is Priority.INTERACTIVE else self._effective
        )

    def try_acquire(self, priority: Priority) -> bool:
        """Take a slot now if one is free for ``priority`` and no pause holds; else False.

        Never jumps a waiter of the same or a more urgent lane.
        """
        if (
            self._active < self._room(priority)
            and not any(self._lane_waiting[: priority + 1])
            and self._resume is None
        ):
            self._take()
            return True
        return False

    async def acquire(self, priority: Priority) -> None:
        """Wait for a slot; a cancelled waiter never keeps or loses one."""
        if self.try_acquire(priority):
            return
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._lanes[priority].append(future)
        self._lane_waiting[priority] += 1
        try:
            await future
            # Handed a slot just before a pause began: wait it out holding the slot.
            while (wait := self._paused_until - time.monotonic()) > 0:  # noqa: ASYNC110
                await asyncio.sleep(wait)
        except BaseException:
            if future.done() and not future.cancelled():
                # The slot was handed over just as we were cancelled: pass it on.
                self.release()
            else:
                future.cancel()
                self._lane_waiting[priority] -= 1
                # A release may have skipped us while our cancellation was pending, leaving
                # a slot free that a newcomer queued behind us for: hand it over now.
                self._fill()
            raise

    def release(self) -> None:
        """Return a slot, handing it to the most urgent waiter that may take it."""
        self._active -= 1
        if any(self._lane_waiting):
            self._fill()

    def _fill(self) -> None:
        """Give free slots to waiters, most urgent lane first, each within its room.

        A lane's room is never larger than a more urgent lane's, so when an urgent waiter
        finds no room, nothing behind it does either: strict priority is kept. A slot
        over the (possibly just lowered) budget is simply retired. Nothing is handed out
        during a pause; its end calls this.
        """
        if self._resume is not None:
            return
        for priority, lane in zip(Priority, self._lanes, strict=True):
            room = self._room(priority)
            while lane and self._active < room:
                future = lane.popleft()
                if future.done():  # a cancelled waiter; its counts are already undone
                    continue
                self._lane_waiting[priority] -= 1
                self._take()
                future.set_result(None)
            if self._lane_waiting[priority]:
                return

    def _take(self) -> None:
        self._active += 1
        if self._active > self._peak:
            self._peak = self._active

    def __repr__(self) -> str:
        pending = ", ".join(f"{p.name.lower()}={self._lane_waiting[p]}" for p in Priority)
        reserve = f" + {self._reserve} interactive" if self._reserve else ""
        return (
            f"<Scheduler active={self._active}/{self._effective} (limit {self._limit}{reserve}) "
            f"pending: {pending}>"
        )


class _Slot:
    __slots__ = ("_priority", "_scheduler")

    def __init__(self, scheduler: Scheduler, priority: Priority) -> None:
        self._scheduler = scheduler
        self._priority = priority

    async def __aenter__(self) -> None:
        await self._scheduler.acquire(self._priority)

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._scheduler.release()

"""The one place that bounds concurrency: a slot budget with priority lanes, paced by the governor.

Every request of a client and of all its ``as_user`` views takes a slot for each
attempt. A freed slot is handed straight to the first waiter of the most urgent
lane, so interactive calls overtake a bulk backlog instead of queueing behind it;
a few reserved slots beyond the limit, usable only by INTERACTIVE calls, mean they
do not even wait for a bulk call to finish.
A slot is handed out only when the client's rate governor (``_governor``) has a token
for that lane and no pause holds; else one timer on the loop's clock (``call_at``)
wakes the scheduler when it will. A run of overload answers halves the budget, which
then grows back (``_adaptive``). Waiters live in their lanes and nowhere else, so every
count is read off the lanes: a cancelled waiter simply leaves its lane.
"""

from __future__ import annotations

import asyncio
import math
import sys
from collections import deque
from collections.abc import Mapping
from types import TracebackType
from typing import Final

from attrs import frozen

from ._adaptive import AdaptiveLimit
from ._clock import Clock, Timer, sleep_until
from ._config import Priority
from ._governor import RateGovernor

#: The lanes, most urgent first (an Enum's own iteration is slow on this hot path).
_PRIORITIES: Final = tuple(Priority)


@frozen(kw_only=True)
class SchedulerStats:
    """A snapshot: slots in use, waiters per lane, the high-water mark, the governor's state."""

    limit: int
    interactive_reserve: int
    effective_limit: int
    active: int
    peak_active: int
    pending: Mapping[str, int]
    paused_for: float
    #: Requests per second the rate governor allows now; None while nothing limits them.
    rate: float | None = None
    max_rate: float | None = None
    #: Refusals (429, 503 with Retry-After) the client has seen.
    refusals: int = 0


class Scheduler:
    """Bounded concurrency with strict-priority lanes and slot hand-over on release."""

    __slots__ = (
        "_active",
        "_adaptive",
        "_clock",
        "_closed",
        "_governor",
        "_lanes",
        "_peak",
        "_reserve",
        "_timer",
        "_timer_at",
    )

    def __init__(
        self,
        limit: int,
        *,
        interactive_reserve: int = 0,
        governor: RateGovernor | None = None,
        clock: Clock | None = None,
    ) -> None:
        self._adaptive = AdaptiveLimit(limit)
        self._reserve = interactive_reserve
        self._governor = governor or RateGovernor(reserve=interactive_reserve)
        #: None: the running loop's (the client may be built before its loop runs).
        self._clock = clock
        self._active = 0
        self._peak = 0
        self._lanes: tuple[deque[asyncio.Future[None]], ...] = tuple(deque() for _ in Priority)
        #: The one timer that wakes waiters held back by the governor, and when it fires.
        self._timer: Timer | None = None
        self._timer_at = math.inf
        self._closed = False

    @property
    def limit(self) -> int:
        """Slots in total, not counting the interactive reserve."""
        return self._adaptive.limit

    @property
    def interactive_reserve(self) -> int:
        """Slots beyond the limit that only INTERACTIVE calls may take."""
        return self._reserve

    @property
    def effective_limit(self) -> int:
        """Slots usable now: the limit, lowered while the server signals overload."""
        return self._adaptive.effective

    @property
    def active_count(self) -> int:
        """Slots held right now."""
        return self._active

    @property
    def governor(self) -> RateGovernor:
        """The rate governor every dispatch waits for."""
        return self._governor

    def pending_count(self, priority: Priority | None = None) -> int:
        """Callers waiting for a slot, in one lane or in all."""
        if priority is not None:
            return len(self._lanes[priority])
        return sum(len(lane) for lane in self._lanes)

    def now(self) -> float:
        """The scheduler's (the loop's) clock, which the governor's times are in."""
        clock = self._clock
        return (clock if clock is not None else asyncio.get_running_loop()).time()

    def stats(self) -> SchedulerStats:
        """A consistent snapshot for logs, dashboards, progress lines and tests."""
        governor = self._governor
        try:
            paused_for = max(governor.paused_until - self.now(), 0.0)
        except RuntimeError:  # no loop running: nothing can be waiting either
            paused_for = 0.0
        return SchedulerStats(
            limit=self.limit,
            interactive_reserve=self._reserve,
            effective_limit=self.effective_limit,
            active=self._active,
            peak_active=self._peak,
            pending={p.name.lower(): len(self._lanes[p]) for p in Priority},
            paused_for=paused_for,
            rate=governor.rate,
            max_rate=governor.max_rate,
            refusals=governor.refusals,
        )

    def pause(self, seconds: float) -> None:
        """Hold back new dispatches for ``seconds`` (extends, never shortens, a pause).

        Callers meanwhile queue in their lanes, so when it ends the most urgent go first.
        """
        self._governor.pause(self.now() + seconds)
        self._fill()  # a timer set for earlier waits for the pause's end instead

    def close(self) -> None:
        """The client closed: end any pause and let every waiter go now, whatever the budget.

        Each then sees the client closed at once instead of after a long pause.
        """
        self._closed = True
        self._governor.end_pause()
        if self._timer is not None:
            self._timer.cancel()
            self._timer, self._timer_at = None, math.inf
        self._fill()

    def overloaded(self) -> None:
        """The server said it is overloaded: after a run of that, halve the usable budget."""
        self._adaptive.overloaded(self.now())

    def succeeded(self) -> None:
        """A call went through: while throttled, grow the budget back gradually."""
        if self._adaptive.succeeded():
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
        effective = self._adaptive.effective
        return effective + self._reserve if priority is Priority.INTERACTIVE else effective

    def try_acquire(self, priority: Priority) -> bool:
        """Take a slot now if one is free for ``priority`` and the governor lets it go.

        Never jumps a waiter of the same or a more urgent lane.
        """
        if self._active >= self._room(priority) or any(self._lanes[: priority + 1]):
            return False
        governor = self._governor
        if not (self._closed or governor.open or governor.take(priority, self.now())):
            return False
        self._active = active = self._active + 1  # _take, inlined on the hot path
        if active > self._peak:
            self._peak = active
        return True

    async def acquire(self, priority: Priority) -> None:
        """Wait for a slot; a cancelled waiter never keeps or loses one."""
        if self.try_acquire(priority):
            return
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        lane = self._lanes[priority]
        lane.append(future)
        self._fill()  # sets the timer when it is the governor that holds this lane back
        try:
            await future
            await self._hold_through_pause()
        except BaseException:
            if future.done() and not future.cancelled():
                # The slot was handed over just as we were cancelled: pass it on.
                self.release()
            else:
                future.cancel()
                if future in lane:  # else a hand-over already skipped and dropped it
                    lane.remove(future)
                # A release may have skipped us while our cancellation was pending, leaving
                # a slot free that a newcomer queued behind us for: hand it over now.
                self._fill()
            raise

    async def _hold_through_pause(self) -> None:
        """Handed a slot just before a pause began: wait it out holding the slot."""
        while not self._closed and (until := self._governor.paused_until) > self.now():
            await sleep_until(self._clock_now(), until)

    def release(self) -> None:
        """Return a slot, handing it to the most urgent waiter that may take it."""
        self._active -= 1
        if any(self._lanes):
            self._fill()

    def _fill(self) -> None:
        """Give free slots to waiters, most urgent lane first, each within its room.

        A lane's room is never larger, nor its need of tokens smaller, than a more urgent
        lane's, so when an urgent waiter cannot go, nothing behind it can either: strict
        priority is kept. A slot over the (possibly just lowered) budget is simply
        retired. When the governor holds the head of a lane back, the timer is set for
        when it will let it go.
        """
        now: float | None = None
        for priority, lane in zip(_PRIORITIES, self._lanes, strict=True):
            if not lane:
                continue
            room = self._room(priority)
            while lane and self._active < room:
                if lane[0].done():  # cancelled; its task has not removed it yet
                    lane.popleft()
                    continue
                if not (self._closed or self._governor.open):
                    now = self.now() if now is None else now
                    if not self._governor.take(priority, now):
                        self._wake_at(self._governor.ready_at(priority, now))
                        return
                self._take()
                lane.popleft().set_result(None)
            if lane:
                return

    def _wake_at(self, when: float) -> None:
        """Have the timer run ``_fill`` at ``when`` (an earlier timer already will)."""
        if self._timer is not None:
            if self._timer_at <= when:
                return
            self._timer.cancel()
        self._timer_at = when
        self._timer = self._clock_now().call_at(when, self._on_timer)

    def _on_timer(self) -> None:
        self._timer, self._timer_at = None, math.inf
        self._fill()

    def _clock_now(self) -> Clock:
        return self._clock if self._clock is not None else asyncio.get_running_loop()

    def _take(self) -> None:
        self._active += 1
        if self._active > self._peak:
            self._peak = self._active

    def __repr__(self) -> str:
        pending = ", ".join(f"{p.name.lower()}={len(self._lanes[p])}" for p in Priority)
        reserve = f" + {self._reserve} interactive" if self._reserve else ""
        rate = self._governor.rate
        paced = "" if rate is None else f" rate={rate:.1f}/s"
        return (
            f"<Scheduler active={self._active}/{self.effective_limit} "
            f"(limit {self.limit}{reserve}){paced} pending: {pending}>"
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

"""A clock for tests that moves only when told, running due timers in order.

It serves as an asyncio loop's clock (``time``/``call_at``) and as the plain ``clock()``
callable that the hooks' guard, the sandbox limiter and the webhook dedupe take.
"""

from __future__ import annotations

import heapq
import itertools
from collections.abc import Callable


class FakeTimer:
    """A pending callback of the fake clock; ``cancel`` stops it."""

    def __init__(self, when: float, callback: Callable[[], object]) -> None:
        self.when = when
        self.callback = callback
        self.cancelled = False

    def cancel(self) -> None:
        self.cancelled = True


class FakeClock:
    """``time()`` and ``call_at()`` as an asyncio loop has them; ``advance`` moves time."""

    def __init__(self, now: float = 1000.0) -> None:
        self.now = now
        self._timers: list[tuple[float, int, FakeTimer]] = []
        self._order = itertools.count()

    def time(self) -> float:
        return self.now

    def __call__(self) -> float:
        """The current time, for units that take a ``clock`` callable."""
        return self.now

    def call_at(self, when: float, callback: Callable[[], object]) -> FakeTimer:
        timer = FakeTimer(when, callback)
        heapq.heappush(self._timers, (when, next(self._order), timer))
        return timer

    @property
    def pending(self) -> list[float]:
        """When the timers not cancelled yet will run."""
        return sorted(t.when for _, _, t in self._timers if not t.cancelled)

    def run_next(self) -> None:
        """Move time on to the next timer not cancelled, and run it (and any due with it)."""
        self.advance(max(self.pending[0] - self.now, 0.0))

    def advance(self, seconds: float) -> None:
        """Move time on by ``seconds``, running each timer due on the way at its own time."""
        target = self.now + seconds
        while self._timers and self._timers[0][0] <= target:
            when, _, timer = heapq.heappop(self._timers)
            if not timer.cancelled:
                self.now = max(self.now, when)
                timer.callback()
        self.now = target

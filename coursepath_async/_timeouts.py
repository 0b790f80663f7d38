"""Attempt timeouts without a loop timer per request.

Every attempt of a client has the same timeout, so attempts are filed by deadline into
slices of ``resolution`` seconds, and one loop timer per slice cancels whatever is still
running when it fires. Starting and finishing an attempt costs a set insertion and
removal instead of a timer-heap push plus a cancelled handle that lingers in the heap
for the whole timeout (``asyncio.timeout`` per request cost ~4 µs at bulk rates). A
timeout fires between ``timeout`` and ``timeout + resolution`` after the attempt began.
"""

from __future__ import annotations

import asyncio
import functools
import math

from ._clock import Clock, Timer
from ._exceptions import ClientStateError

#: Slices are a tenth of the timeout, and never coarser than a second.
_MAX_RESOLUTION = 1.0


class Watch:
    """One running attempt: its task, and whether the timeout cancelled it."""

    __slots__ = ("_cancelling", "_expired", "_task", "slice")

    def __init__(self, task: asyncio.Task[object], slice_: int) -> None:
        self._task = task
        self._cancelling = task.cancelling()
        self._expired = False
        self.slice = slice_

    def expire(self) -> None:
        """The slice's timer fired with the attempt still running: cancel its task."""
        self._expired = True
        self._task.cancel()

    def ended(self, exc: BaseException | None) -> bool:
        """Undo our cancellation, if any; True if ``exc`` is it and no one else's.

        Called once, as the attempt ends, like ``asyncio.timeout``'s exit.
        """
        if not self._expired:
            return False
        return self._task.uncancel() <= self._cancelling and isinstance(exc, asyncio.CancelledError)


class AttemptTimeouts:
    """Cancels attempts that outlive ``timeout``, with one timer per time slice."""

    __slots__ = ("_clock", "_handles", "_resolution", "_slices", "timeout")

    def __init__(self, timeout: float, *, clock: Clock | None = None) -> None:
        self.timeout = timeout
        self._clock = clock  # None: the running loop's (tests pass a fake)
        self._resolution = min(_MAX_RESOLUTION, timeout / 10)
        self._slices: dict[int, set[Watch]] = {}
        self._handles: dict[int, Timer] = {}

    def start(self) -> Watch:
        """Watch the current task's attempt until :meth:`stop`."""
        task = asyncio.current_task()
        if task is None:
            raise ClientStateError("a Coursepath call must run inside an asyncio task")
        clock = self._clock if self._clock is not None else asyncio.get_running_loop()
        key = math.ceil((clock.time() + self.timeout) / self._resolution)
        watch = Watch(task, key)
        watches = self._slices.get(key)
        if watches is None:
            watches = self._slices[key] = set()
            expire = functools.partial(self._expire, key)
            self._handles[key] = clock.call_at(key * self._resolution, expire)
        watches.add(watch)
        return watch

    def stop(self, watch: Watch, exc: BaseException | None) -> bool:
        """The attempt ended, with ``exc`` or without: True if it is our timeout."""
        watches = self._slices.get(watch.slice)
        if watches is not None:
            watches.discard(watch)
        return watch.ended(exc)

    def _expire(self, key: int) -> None:
        """A slice's deadline passed: every attempt still in it has timed out."""
        del self._handles[key]
        for watch in self._slices.pop(key, ()):
            watch.expire()

    def close(self) -> None:
        """Drop the pending slice timers (nothing is running any more)."""
        for handle in self._handles.values():
            handle.cancel()
        self._handles.clear()
        self._slices.clear()

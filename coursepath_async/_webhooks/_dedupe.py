"""Bounded memory of recent webhook events, so a repeated delivery is processed once.

An event is *pending* from the moment it is queued until it has been processed; a
verified event is then *remembered* for ``ttl`` seconds. Both count as "seen". An
event that could not be confirmed is forgotten at once: otherwise a forged post could
shadow the genuine delivery that follows it (Coursepath never retries). A copy that
arrives while its key is pending is not queued, but marks the key *repeated*, so that
a pending event that fails is checked once more instead of taking the copy down with
it. Pending keys are bounded by the queue and the workers; remembered ones by
``max_entries``, the oldest dropped first, so a flood of distinct events never grows
memory.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

__all__ = ["RecentEvents"]

K = TypeVar("K", bound=Hashable)


class RecentEvents(Generic[K]):
    """A TTL- and size-bounded "seen" set with a pending state (not thread-safe: one loop)."""

    def __init__(
        self,
        *,
        ttl: float,
        max_entries: int,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if not ttl >= 0:  # also refuses NaN
            raise ValueError(f"ttl must be >= 0 seconds, got {ttl!r}")
        if max_entries < 1:
            raise ValueError(f"max_entries must be >= 1, got {max_entries!r}")
        self._ttl = ttl
        self._max = max_entries
        self._clock = clock
        self._pending: set[K] = set()
        self._repeated: set[K] = set()  # pending keys a copy arrived for meanwhile
        # key -> expiry; insertion order is expiry order (constant ttl, monotonic clock).
        self._done: OrderedDict[K, float] = OrderedDict()

    def __repr__(self) -> str:
        return f"<RecentEvents pending={len(self._pending)} remembered={len(self._done)}>"

    def __len__(self) -> int:
        return len(self._pending) + len(self._done)

    @property
    def pending(self) -> int:
        """Events queued or being processed."""
        return len(self._pending)

    def claim(self, key: K) -> bool:
        """Mark ``key`` pending and return True, or return False if it was seen recently.

        A copy of a pending key marks it repeated (see :meth:`take_repeat`).
        """
        self._expire()
        if key in self._pending:
            self._repeated.add(key)
            return False
        if key in self._done:
            return False
        self._pending.add(key)
        return True

    def take_repeat(self, key: K) -> bool:
        """True, once, if a copy of pending ``key`` arrived since it was claimed or last taken.

        The caller then checks the event again rather than forgetting it: the copy may be
        the genuine delivery behind a forged or premature one.
        """
        if key not in self._repeated:
            return False
        self._repeated.discard(key)
        return True

    def finish(self, key: K, *, remember: bool) -> None:
        """End ``key``'s pending state; ``remember`` it for the TTL (verified) or forget it."""
        self._pending.discard(key)
        self._repeated.discard(key)
        if not remember or self._ttl == 0:
            return
        self._done[key] = self._clock() + self._ttl
        self._done.move_to_end(key)
        while len(self._done) > self._max:
            self._done.popitem(last=False)

    def _expire(self) -> None:
        now = self._clock()
        while self._done:
            key, expiry = next(iter(self._done.items()))
            if expiry > now:
                return
            del self._done[key]

"""Adaptive concurrency: a run of overload answers halves the usable slots, successes regrow them.

Additive increase, multiplicative decrease on the *number of slots*; the rate governor
(``_governor``) does the same for the *request rate*. Pure: the time is passed in.
"""

from __future__ import annotations


class AdaptiveLimit:
    """The slots usable now: ``limit``, halved on overload, grown back one slot at a time."""

    __slots__ = ("_last_cut", "_strikes", "_successes", "effective", "limit")

    # One overload burst should cut the budget once, not once per failed request.
    CUT_INTERVAL = 1.0
    # A run of overload answers with no success between them, not a stray 503.
    STRIKES = 3

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.effective = limit
        self._strikes = 0
        self._successes = 0
        self._last_cut = -self.CUT_INTERVAL

    def overloaded(self, now: float) -> None:
        """The server answered it is overloaded: after a run of such answers, halve.

        Cuts at most once per ``CUT_INTERVAL``, so one burst costs one halving.
        """
        self._strikes += 1
        if self._strikes < self.STRIKES:
            return
        if now - self._last_cut >= self.CUT_INTERVAL:
            self._last_cut = now
            self.effective = max(1, self.effective // 2)
            self._successes = 0

    def succeeded(self) -> bool:
        """A call went through; True when that gave back a slot (waiters may now go)."""
        self._strikes = 0
        if self.effective >= self.limit:
            return False
        self._successes += 1
        if self._successes < self.effective:
            return False
        self._successes = 0
        self.effective += 1
        return True

    def __repr__(self) -> str:
        return f"<AdaptiveLimit {self.effective}/{self.limit}>"

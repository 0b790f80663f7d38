"""The client-wide rate governor: a token bucket whose rate is learnt from the server's refusals.

Pure (sans-I/O): every method takes the time, so tests drive it with a fake clock and
the scheduler with the loop's. Nothing is limited until the server refuses a request
or states a policy in its headers; ``max_rate`` caps the rate from the start.

* A refusal (429, 503 with Retry-After) cuts the rate to 85% of what was getting
  through, once per burst: refusals of requests sent before the last cut are already
  paid for. After that cut, refusals cut again only while they are a fifth of the
  answers, or their pauses a quarter of the time, or once a quiet spell has passed, so
  stray 429s (a flaky proxy, another client's burst) cannot spiral the rate down.
  Each answer accepted while the rate is in use grows it by 0.01 (about 1% a second).
  A first cut made from too few answers to measure starts the rate at 10 a second, to
  double each second of use (a slow start) until the next refusal says where it ends.
* ``Retry-After`` pauses every call, as does a rate-limit header saying nothing is left
  before its reset; a ``RateLimit-Policy`` caps the rate at its quota per window.
* INTERACTIVE calls keep ``reserve`` tokens the other lanes may not spend, so a web
  request never waits behind a governed bulk job for more than a pause.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Mapping

from ._config import Priority
from ._ratelimit import QuotaHint, quota_hint

#: Seconds of accepted answers that measure the rate the server is letting through.
_WINDOW = 1.0
#: A measurement spans at least this long, so a handful of answers cannot claim 1000/s.
_MIN_SPAN = 0.05
#: Fewer answers than this in the window cannot say where the limit is: slow start.
_MIN_SAMPLES = 10
#: The multiplicative decrease on a refusal.
_CUT = 0.85
#: Refusals this share of the answers (or pauses of the time) since a cut are the limit.
_DENSE = 0.2
#: Fewer refusals than this are never dense: a stray burst of 429s is three or so.
_DENSE_MIN = 5
#: Seconds after a cut before refusals are judged dense, so a stray few cannot look so.
_JUDGED = 0.5
#: Pauses this share of the time, judged after this many seconds, cost more than a cut.
_PAUSED = 0.25
_JUDGED_PAUSES = 2.0
#: Seconds after a cut beyond which even a lone refusal cuts again (1.01**20 * 0.85 > 1),
_QUIET = 20.0
#: ... if the rate has grown this much since: past the limit, not a stray refusal.
_REGROWN = 1.1
#: The additive increase per accepted answer while the rate is in use (~1% a second).
_GROWTH = 0.01
#: The rate is in use when answers arrive at this share of it (else growing is untested).
_IN_USE = 0.7
#: Seconds of tokens the bucket holds beyond the reserve (absorbs late timers); >= 1.
_BURST = 0.05
#: The rate never falls below one request every two seconds.
MIN_RATE = 0.5
#: Where a cut made from too few answers to measure anything starts its slow start.
_BLIND_RATE = 10.0


class RateGovernor:
    """Requests per second for a whole client: learnt (AIMD), capped, paused on demand."""

    __slots__ = (
        "_accepted",
        "_answers_since_cut",
        "_last_cut",
        "_max_pause",
        "_max_rate",
        "_paused_since_cut",
        "_paused_until",
        "_policy_rate",
        "_rate",
        "_refusals",
        "_refused_since_cut",
        "_reserve",
        "_stamp",
        "_threshold",
        "_tokens",
    )

    def __init__(
        self, *, max_rate: float | None = None, reserve: int = 0, max_pause: float = 120.0
    ) -> None:
        self._max_rate = max_rate
        self._policy_rate: float | None = None
        self._rate = max_rate  # None: not limited
        self._threshold = math.inf  # below it the rate grows fast (slow start)
        self._reserve = reserve
        self._max_pause = max_pause
        self._tokens = 0.0
        self._stamp: float | None = None  # when the bucket was last filled
        self._accepted: deque[float] = deque()
        self._last_cut = -math.inf
        self._answers_since_cut = 0
        self._refused_since_cut = 0
        self._paused_since_cut = 0.0
        self._paused_until = -math.inf
        self._refusals = 0

    @property
    def rate(self) -> float | None:
        """Requests per second allowed now; None while nothing limits them."""
        return self._rate

    @property
    def max_rate(self) -> float | None:
        """The configured cap, if any."""
        return self._max_rate

    @property
    def refusals(self) -> int:
        """Refusals seen so far."""
        return self._refusals

    @property
    def paused_until(self) -> float:
        """When the current pause ends (in the caller's clock); in the past if none holds."""
        return self._paused_until

    # -- dispatch ----------------------------------------------------------------------

    @property
    def open(self) -> bool:
        """Nothing limits calls (no rate, no pause): the scheduler need not ask (fast path)."""
        return self._rate is None and self._paused_until == -math.inf

    def ready_at(self, priority: Priority, now: float) -> float:
        """When a call of ``priority`` may be sent: ``now``, or the end of a pause or a wait."""
        if self._paused_until <= now:
            self._paused_until = -math.inf  # over: the fast path is open again
        at = max(now, self._paused_until)
        rate = self._rate
        if rate is None:
            return at
        self._fill(now, rate)
        short = self._need(priority) - self._tokens
        return at if short <= 1e-9 else max(at, now + short / rate)

    def take(self, priority: Priority, now: float) -> bool:
        """Spend a token for a call of ``priority`` if it may go now; else False."""
        if self.ready_at(priority, now) > now:
            return False
        if self._rate is not None:
            self._tokens -= 1.0
        return True

    def pause(self, until: float) -> None:
        """Send nothing before ``until`` (extends, never shortens, a pause)."""
        self._paused_until = max(self._paused_until, until)

    def end_pause(self) -> None:
        """Drop any pause now (the client is closing: nothing will be sent anyway)."""
        self._paused_until = -math.inf

    # -- learning ----------------------------------------------------------------------

    def accepted(self, now: float) -> None:
        """An answer that was not a refusal: measure what gets through, and grow into it."""
        self._answers_since_cut += 1
        window = self._accepted
        window.append(now)
        while window[0] <= now - _WINDOW:
            window.popleft()
        rate = self._rate
        if rate is None:
            return
        starting = rate < self._threshold
        # A rate doubling each second is in use at 72% of it (what the last second sent).
        if len(window) >= (_IN_USE / 2 if starting else _IN_USE) * rate * _WINDOW:
            # +1 per answer doubles the rate each second; +0.01 adds about 1% a second.
            self._set_rate(rate + (1.0 if starting else _GROWTH))

    def refused(self, *, sent_at: float, now: float, retry_after: float | None) -> None:
        """A refusal of a request sent at ``sent_at``: pause as asked, cut once per burst."""
        self._refusals += 1
        if retry_after is not None and retry_after <= self._max_pause:
            self._pause_from(now, now + retry_after)
        if sent_at < self._last_cut:
            return  # sent before the last cut: this burst is paid for
        self._refused_since_cut += 1
        if not self._limit_reached(now):
            return
        self._last_cut = now
        self._answers_since_cut, self._refused_since_cut, self._paused_since_cut = 0, 0, 0.0
        got, samples = self._measured(now)
        rate = self._rate
        base = got if rate is None else min(rate, max(got, rate / 2))
        if samples < _MIN_SAMPLES and rate is None:
            # The first cut, with too few answers to measure: start modestly, find the
            # limit fast (the next refusal cuts from what it has measured by then).
            self._set_rate(max(_BLIND_RATE, base * _CUT))
            self._threshold = math.inf
        else:
            self._threshold = self._set_rate(max(MIN_RATE, base * _CUT))
        self._tokens, self._stamp = 0.0, now  # no burst into a server that just said no

    def _limit_reached(self, now: float) -> bool:
        """Whether refusals since the last cut say the rate is above the limit, not noise.

        They do when, half a second on, they are a fifth of the answers, or, two seconds
        on, their pauses a quarter of the time; and once the last cut is a quiet spell
        ago and the rate has grown a tenth since (else a lone refusal is noise).
        """
        rate = self._rate
        since = now - self._last_cut
        if rate is None or since == math.inf:  # the first refusal: nothing is known yet
            return True
        if since >= _QUIET and rate >= _REGROWN * self._threshold:
            return True
        if since < _JUDGED:
            return False
        refused = self._refused_since_cut
        dense = refused >= _DENSE_MIN and refused >= _DENSE * (refused + self._answers_since_cut)
        paused = since >= _JUDGED_PAUSES and self._paused_since_cut >= _PAUSED * since
        return dense or paused

    def _pause_from(self, now: float, until: float) -> None:
        """Pause until ``until``, counting the time it adds (a cost of refusals)."""
        self._paused_since_cut += max(until - max(now, self._paused_until), 0.0)
        self.pause(until)

    def observe(self, headers: Mapping[str, str], *, now: float, wall: float) -> None:
        """Heed an answer's rate-limit headers, if it has any (``wall``: our wall clock)."""
        hint = quota_hint(headers, now=wall)
        if hint is not None:
            self.heed(hint, now=now)

    def heed(self, hint: QuotaHint, *, now: float) -> None:
        """What rate-limit headers said: a policy caps the rate, an empty quota pauses."""
        if hint.rate is not None and hint.rate != self._policy_rate:
            self._policy_rate = hint.rate
            self._set_rate(hint.rate if self._rate is None else self._rate)
        wait = hint.exhausted_for
        if wait is not None and wait <= self._max_pause:
            self._pause_from(now, now + wait)

    # -- the bucket --------------------------------------------------------------------

    def _need(self, priority: Priority) -> float:
        """Tokens that must be in the bucket for ``priority`` to take one."""
        return 1.0 if priority is Priority.INTERACTIVE else 1.0 + self._reserve

    def _capacity(self, rate: float) -> float:
        return max(1.0, rate * _BURST) + self._reserve

    def _fill(self, now: float, rate: float) -> None:
        if self._stamp is None:  # the first use of a limited rate: a full bucket
            self._tokens = self._capacity(rate)
        elif now > self._stamp:
            self._tokens = min(self._capacity(rate), self._tokens + (now - self._stamp) * rate)
        self._stamp = now

    def _set_rate(self, rate: float) -> float:
        """Set the rate within the caps; returns what it became."""
        caps = [cap for cap in (self._max_rate, self._policy_rate) if cap is not None]
        capped = min([rate, *caps])
        self._tokens = min(self._tokens, self._capacity(capped))
        self._rate = capped
        return capped

    def _measured(self, now: float) -> tuple[float, int]:
        """Requests per second that got through lately, and how many answers say so."""
        window = self._accepted
        while window and window[0] <= now - _WINDOW:
            window.popleft()
        if not window:
            return 0.0, 0
        return len(window) / max(now - window[0], _MIN_SPAN), len(window)

    def __repr__(self) -> str:
        rate = "unlimited" if self._rate is None else f"{self._rate:.1f}/s"
        return f"<RateGovernor {rate} refusals={self._refusals}>"

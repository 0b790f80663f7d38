"""How far the server's clock is from ours, estimated from its answers' ``Date`` headers.

Coursepath refuses a token whose ``iat`` is more than a couple of minutes old (or ahead)
*on its own clock*, so a server minutes away from us refuses every token with a 401 that
looks like a bad key. Each answer's ``Date`` bounds the server's clock: it was written
while our request was out, and it is cut to the whole second, so the server's time then
lay in ``[Date, Date + 1)`` while ours lay in ``[sent, received]``. The midpoints of the
last few such samples give the offset (their median: one stray proxy date cannot move
it). An offset under a few seconds is noise against the token window and ignored, so
tokens carry our own clock unless the server's is clearly elsewhere.
"""

from __future__ import annotations

import logging
import statistics
from collections import deque

from ._retry import http_date

logger = logging.getLogger("coursepath_async")

#: Samples kept; the estimate is their median.
WINDOW = 9
#: Offsets below this many seconds are not applied (Date's resolution, round trips).
NEGLIGIBLE = 5.0
#: A 401 on a token this far off the server's clock is retried once, re-signed.
TOKEN_SKEW_LIMIT = 60.0
#: A date further off than this (a day) is a broken header, not a clock: ignored.
ABSURD = 86_400.0


def measure(date: str | None, *, sent: float, received: float) -> float | None:
    """The server clock minus ours that one answer's ``Date`` shows; None if it shows none.

    ``sent`` and ``received`` are our wall clock around the exchange. A malformed,
    zone-less or absurd date (further off than a day) is no measurement.
    """
    server = http_date(date)
    if server is None:
        return None
    offset = server + 0.5 - (sent + received) / 2
    return offset if abs(offset) <= ABSURD else None


def describe(offset: float) -> str:
    """``academy clock is 312 s ahead of ours`` (or behind)."""
    side = "ahead of" if offset >= 0 else "behind"
    return f"academy clock is {abs(offset):.0f} s {side} ours"


class ClockSkew:
    """The offset tokens are signed with: the median of recent ``Date`` measurements."""

    __slots__ = ("_announced", "_samples", "last_date", "offset")

    def __init__(self) -> None:
        #: Seconds to add to our clock for the server's; 0 while the skew is negligible.
        self.offset = 0.0
        self._samples: deque[float] = deque(maxlen=WINDOW)
        #: The last ``Date`` observed: an equal one adds nothing (callers may skip it).
        self.last_date: str | None = None
        self._announced = 0.0  # the skew the last WARNING named (none: ours)

    def __repr__(self) -> str:
        return f"<ClockSkew offset={self.offset:+.1f}s samples={len(self._samples)}>"

    def observe(self, date: str | None, *, sent: float, received: float) -> float | None:
        """Take one answer's ``Date`` into the estimate; returns its measurement (or None).

        A ``Date`` equal to the previous one adds no sample (it changes once a second,
        and the hot path need not parse it again); its measurement is then None too.
        """
        if date is None or date == self.last_date:
            return None
        self.last_date = date
        sample = measure(date, sent=sent, received=received)
        if sample is not None:
            self._samples.append(sample)
            before = self.offset
            self.offset = _applied(statistics.median(self._samples))
            if before == 0.0 and self.offset != 0.0:
                logger.info("%s: signing tokens on its clock", describe(self.offset))
        return sample

    def misdated(self, sample: float | None, *, signed_with: float) -> bool:
        """Whether a 401 whose ``Date`` measured ``sample`` refused a token for its clock.

        True when the token (signed ``signed_with`` seconds off ours) was dated over
        :data:`TOKEN_SKEW_LIMIT` from the server's clock: the estimate then adopts the
        measurement, so the one resend is signed on the server's clock.
        """
        if sample is None or abs(sample - signed_with) <= TOKEN_SKEW_LIMIT:
            return False
        self.adopt(sample)
        return True

    def adopt(self, sample: float) -> None:
        """Trust one measurement alone: a 401 showed the tokens were dated on a wrong clock.

        Warns once per skew: calls refused together, each resent, say it once.
        """
        if abs(sample - self._announced) > TOKEN_SKEW_LIMIT:
            self._announced = sample
            logger.warning(
                "%s: a token was refused (401) as dated on our clock; retrying it once "
                "signed on the academy's clock, as every later token will be",
                describe(sample),
            )
        self._samples.clear()
        self._samples.append(sample)
        self.offset = _applied(sample)


def _applied(estimate: float) -> float:
    return estimate if abs(estimate) >= NEGLIGIBLE else 0.0

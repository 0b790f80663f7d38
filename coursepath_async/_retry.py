"""The retry policy: which failures to retry, how long to wait, and Retry-After parsing."""

from __future__ import annotations

import email.utils
import math
import random
from collections.abc import Callable, Mapping

import attrs
from attrs import field, frozen

from ._config import is_finite_number

# Beyond 2**62 the delay is capped anyway; bounding the exponent keeps the float finite.
_MAX_EXPONENT = 62


def _non_negative(instance: object, attribute: attrs.Attribute[float], value: float) -> None:
    if not is_finite_number(value) or value < 0:
        raise ValueError(
            f"RetryPolicy.{attribute.name} must be a finite number >= 0, got {value!r}"
        )


def _positive_int(name: str, value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"RetryPolicy.{name} must be an integer >= 1, got {value!r}")


@frozen(kw_only=True)
class RetryPolicy:
    """How a call is retried: capped exponential backoff with full jitter.

    Retried: 5xx, 429, connection errors and timeouts. Never: other 4xx, cancellation,
    or a write whose repetition is unsafe once it may have reached the server.
    ``max_retry_after`` bounds how long a server's ``Retry-After`` may make one call
    wait; a longer demand ends the retries instead of sleeping for an hour.
    """

    max_attempts: int = field(default=4, validator=lambda _, a, v: _positive_int(a.name, v))
    base_delay: float = field(default=0.5, validator=_non_negative)
    max_delay: float = field(default=30.0, validator=_non_negative)
    max_retry_after: float = field(default=120.0, validator=_non_negative)

    def backoff(self, attempt: int, *, rng: Callable[[], float] = random.random) -> float:
        """The wait after failed attempt number ``attempt`` (1-based), without a server hint."""
        exponent = min(max(attempt - 1, 0), _MAX_EXPONENT)
        cap = min(self.max_delay, self.base_delay * (2.0**exponent))
        return rng() * cap

    def wait_before_retry(
        self, attempt: int, retry_after: float | None, *, rng: Callable[[], float] = random.random
    ) -> float:
        """The wait before the next attempt: the server's ``Retry-After`` wins when given."""
        if retry_after is not None:
            return retry_after
        return self.backoff(attempt, rng=rng)


def is_retryable_status(status: int) -> bool:
    """429 and every 5xx are worth another attempt; other statuses are final."""
    return status == 429 or status >= 500


def parse_retry_after(headers: Mapping[str, str], *, now: float) -> float | None:
    """The server's requested wait in seconds, from ``retry-after-ms`` or ``Retry-After``.

    ``Retry-After`` may be delta-seconds or an HTTP date. A date is measured from the
    answer's own ``Date`` header when it has one, so a server whose clock runs ahead of
    ours asks for the wait it means; ``now`` (our wall clock) is the fallback.
    Unparseable values are ignored (``None``).
    """
    raw_ms = headers.get("retry-after-ms")
    if raw_ms is not None:
        try:
            ms = float(raw_ms)
        except ValueError:
            ms = math.nan
        if math.isfinite(ms):
            return max(ms / 1000.0, 0.0)
    raw = headers.get("retry-after")
    if raw is None:
        return None
    raw = raw.strip()
    try:
        seconds = float(raw)
    except ValueError:
        when = http_date(raw)
        if when is None:
            return None
        return max(when - (http_date(headers.get("date")) or now), 0.0)
    return max(seconds, 0.0) if math.isfinite(seconds) else None


def http_date(value: str | None) -> float | None:
    """An HTTP date (``Wed, 21 Oct 2015 07:28:00 GMT``) as Unix time; None if not one."""
    if not value:
        return None
    try:
        when = email.utils.parsedate_to_datetime(value.strip())
    except (TypeError, ValueError, IndexError):
        return None
    return None if when.tzinfo is None else when.timestamp()

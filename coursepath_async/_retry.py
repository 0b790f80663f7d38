"""The retry decision, sans I/O: classify one attempt's failure, then decide to retry or not.

Failures fall in three kinds. A *refusal* (429, or 503 with ``Retry-After``) means the
server did no work: it is retried within a time allowance and never makes a call
uncertain. A *fault* (another 5xx, a reset, a timeout) may come after the work: it
spends the small attempt budget, and ends an at-most-once call as uncertain once it
may have been applied. A *rejection* (any other status) is final.
"""

from __future__ import annotations

import email.utils
import math
import random
from collections.abc import Callable, Mapping

import attrs
from attrs import field, frozen

from ._config import is_finite_number
from ._exceptions import (
    APIConnectionError,
    APIStatusError,
    CoursepathError,
    InvalidInputError,
    UncertainOutcomeError,
)
from ._redact import REDACT, Redactor
from ._sansio import ApiRequest, RawResponse, RequestKind, status_error
from ._validation import short_repr

# Beyond 2**62 the delay is capped anyway; bounding the exponent keeps the float finite.
_MAX_EXPONENT = 62


def _non_negative(instance: object, attribute: attrs.Attribute[float], value: float) -> None:
    if not is_finite_number(value) or value < 0:
        raise InvalidInputError(
            f"RetryPolicy.{attribute.name} must be a finite number >= 0, got {short_repr(value)}",
            argument=attribute.name,
        )


def _positive_int(name: str, value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise InvalidInputError(
            f"RetryPolicy.{name} must be an integer >= 1, got {short_repr(value)}", argument=name
        )


@frozen(kw_only=True)
class RetryPolicy:
    """How a call is retried: capped exponential backoff with full jitter.

    Retried: 5xx, 429, connection errors and timeouts. Never: other 4xx, cancellation,
    or a write whose repetition is unsafe once it may have reached the server.
    ``max_attempts`` counts faults only; refusals (429, 503 with ``Retry-After``) are
    retried for up to ``max_refusal_wait`` seconds of the call instead, paced by the
    client's rate governor. ``max_retry_after`` bounds how long one ``Retry-After`` may
    make a call wait; a longer demand ends the retries instead of sleeping for an hour.
    """

    max_attempts: int = field(default=4, validator=lambda _, a, v: _positive_int(a.name, v))
    base_delay: float = field(default=0.5, validator=_non_negative)
    max_delay: float = field(default=30.0, validator=_non_negative)
    max_retry_after: float = field(default=120.0, validator=_non_negative)
    max_refusal_wait: float = field(default=300.0, validator=_non_negative)

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


@frozen
class Refusal:
    """429, or 503 with ``Retry-After``: turned away before any work was done."""

    error: APIStatusError
    retry_after: float | None


@frozen
class Fault:
    """Another 5xx, a reset or a timeout: ``maybe_applied`` unless nothing was sent."""

    error: APIStatusError | APIConnectionError
    maybe_applied: bool
    retry_after: float | None = None


@frozen
class Rejection:
    """Any other error status (a 4xx, an unfollowed 3xx): the request itself was refused."""

    error: APIStatusError


Outcome = Refusal | Fault | Rejection


@frozen
class Attempt:
    """How far a call has got: attempts ended, how many were faults, whether any applied."""

    number: int = 0
    faults: int = 0
    maybe_applied: bool = False

    def after(self, outcome: Outcome) -> Attempt:
        """The tally once ``outcome`` has ended one more attempt."""
        if not isinstance(outcome, Fault):
            return Attempt(self.number + 1, self.faults, self.maybe_applied)
        applied = self.maybe_applied or outcome.maybe_applied
        return Attempt(self.number + 1, self.faults + 1, applied)


@frozen
class Retry:
    """Try again after ``wait`` seconds."""

    wait: float


@frozen
class GiveUp:
    """Stop and raise ``error``."""

    error: CoursepathError


def classify(
    request: ApiRequest,
    url: str,
    answer: RawResponse | APIConnectionError,
    *,
    earlier: Attempt,
    now: float,
    redact: Redactor = REDACT,
) -> Outcome:
    """What an unsuccessful attempt was: a refusal, a fault or a rejection.

    ``earlier`` is the tally before this attempt (its errors say whether an earlier
    attempt may have been applied); ``now`` is our wall clock, for a dated Retry-After.
    """
    if isinstance(answer, APIConnectionError):
        return Fault(answer, maybe_applied=answer.sent)
    retry_after = parse_retry_after(answer.headers, now=now)
    error = status_error(
        request,
        url,
        answer,
        retry_after=retry_after,
        after_unknown_outcome=earlier.maybe_applied,
        redact=redact,
    )
    status = answer.status
    if status == 429 or (status == 503 and retry_after is not None):
        return Refusal(error, retry_after)
    if status >= 500:
        return Fault(error, maybe_applied=True, retry_after=retry_after)
    return Rejection(error)


def decide(
    outcome: Outcome,
    attempt: Attempt,
    kind: RequestKind,
    elapsed: float,
    deadline: float | None,
    *,
    policy: RetryPolicy,
    rng: Callable[[], float] = random.random,
) -> Retry | GiveUp:
    """Retry or give up after ``attempt`` (its tally, ``outcome`` included) ended so.

    ``elapsed`` is how long the call has run and ``deadline`` its total limit (None:
    none). A refusal waits its ``Retry-After`` (else nothing: the governor paces the
    retry) while the call is within ``max_refusal_wait``; a fault backs off, or waits
    its ``Retry-After``, within ``max_attempts``; no wait may outlive the deadline.
    """
    if isinstance(outcome, Rejection):
        return GiveUp(outcome.error)
    failure = outcome.error
    if isinstance(outcome, Fault):
        if attempt.maybe_applied and kind is RequestKind.AT_MOST_ONCE:
            return GiveUp(uncertain(failure))
        if attempt.faults >= policy.max_attempts:
            return GiveUp(failure)
    hint = outcome.retry_after
    if hint is not None and hint > policy.max_retry_after:
        return GiveUp(failure)  # a server asking for an hour: fail fast, not freeze
    if isinstance(outcome, Fault):
        wait = policy.wait_before_retry(attempt.faults, hint, rng=rng)
    else:
        wait = 0.0 if hint is None else hint
        if elapsed + wait > policy.max_refusal_wait:
            return GiveUp(failure)
    if deadline is not None and elapsed + wait >= deadline:
        return GiveUp(failure)  # waiting would outlive the call's deadline
    return Retry(wait)


def uncertain(failure: APIStatusError | APIConnectionError) -> UncertainOutcomeError:
    """The error for an at-most-once call that may have been applied, caused by ``failure``."""
    error = UncertainOutcomeError(
        f"may or may not have been applied ({failure}); not retried because repeating it is unsafe",
        method=failure.method,
        url=failure.url,
    )
    error.__cause__ = failure
    return error


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

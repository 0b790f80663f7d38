"""Retry policy: backoff bounds, Retry-After parsing and validation."""

from __future__ import annotations

import math
import random
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from typing import Any

import attrs
import pytest
from hypothesis import given
from hypothesis import strategies as st
from multidict import CIMultiDict, CIMultiDictProxy

from coursepath_async import RetryPolicy
from coursepath_async._retry import is_retryable_status, parse_retry_after

NOW = 1_700_000_000.0


def _one() -> float:
    return 1.0


def _zero() -> float:
    return 0.0


# --- backoff ----------------------------------------------------------------


def test_defaults() -> None:
    """Defaults: 4 attempts, 0.5 s base, 30 s cap, 120 s max Retry-After, 300 s of refusals."""
    policy = RetryPolicy()
    assert (policy.max_attempts, policy.base_delay, policy.max_delay) == (4, 0.5, 30.0)
    assert policy.max_retry_after == 120.0
    assert policy.max_refusal_wait == 300.0


@pytest.mark.parametrize(("attempt", "cap"), [(1, 0.5), (2, 1.0), (3, 2.0), (4, 4.0), (5, 8.0)])
def test_backoff_grows_exponentially(attempt: int, cap: float) -> None:
    """The jitter cap doubles with every failed attempt, starting at base_delay."""
    policy = RetryPolicy(base_delay=0.5, max_delay=100.0)
    assert policy.backoff(attempt, rng=_one) == cap
    assert policy.backoff(attempt, rng=_zero) == 0.0


def test_backoff_is_capped_at_max_delay() -> None:
    """The wait never exceeds max_delay, however many attempts failed."""
    policy = RetryPolicy(base_delay=1.0, max_delay=5.0)
    assert policy.backoff(4, rng=_one) == 5.0
    assert policy.backoff(60, rng=_one) == 5.0


@pytest.mark.parametrize("attempt", [10_000, 10**9, 2**70])
def test_backoff_does_not_overflow(attempt: int) -> None:
    """A huge attempt number gives the capped wait, not OverflowError or inf."""
    policy = RetryPolicy(base_delay=0.5, max_delay=30.0)
    wait = policy.backoff(attempt, rng=_one)
    assert math.isfinite(wait)
    assert wait == 30.0


@pytest.mark.parametrize("attempt", [0, -5])
def test_backoff_before_first_attempt_uses_base(attempt: int) -> None:
    """Out-of-range attempt numbers are clamped to the first step."""
    assert RetryPolicy(base_delay=0.25).backoff(attempt, rng=_one) == 0.25


def test_backoff_full_jitter_covers_zero_to_cap() -> None:
    """Full jitter: waits spread over the whole [0, cap] range, never outside."""
    policy = RetryPolicy(base_delay=1.0, max_delay=8.0)
    rng = random.Random(1234)
    waits = [policy.backoff(4, rng=rng.random) for _ in range(2000)]
    assert all(0.0 <= w <= 8.0 for w in waits)
    assert min(waits) < 0.5
    assert max(waits) > 7.5


@given(
    attempt=st.integers(min_value=-10, max_value=10**12),
    base=st.floats(min_value=0, max_value=1e6, allow_nan=False),
    cap=st.floats(min_value=0, max_value=1e6, allow_nan=False),
    draw=st.floats(min_value=0, max_value=1, exclude_max=True),
)
def test_backoff_is_always_within_bounds(
    attempt: int, base: float, cap: float, draw: float
) -> None:
    """For any attempt and settings, 0 <= backoff <= max_delay and it is finite."""
    policy = RetryPolicy(base_delay=base, max_delay=cap)
    wait = policy.backoff(attempt, rng=lambda: draw)
    assert math.isfinite(wait)
    assert 0.0 <= wait <= cap


def test_zero_delays_mean_no_wait() -> None:
    """base_delay=0 (testing mode) turns computed waits off."""
    policy = RetryPolicy(base_delay=0, max_delay=0)
    assert all(policy.backoff(a, rng=_one) == 0.0 for a in range(1, 50))


def test_retry_after_wins_over_backoff() -> None:
    """The server's Retry-After is the wait, even beyond max_delay or below the backoff."""
    policy = RetryPolicy(base_delay=10.0, max_delay=20.0)
    assert policy.wait_before_retry(3, 45.0, rng=_one) == 45.0
    assert policy.wait_before_retry(3, 0.0, rng=_one) == 0.0
    assert policy.wait_before_retry(3, None, rng=_one) == 20.0


@pytest.mark.parametrize(
    ("status", "retryable"),
    [
        (429, True),
        (500, True),
        (502, True),
        (503, True),
        (504, True),
        (599, True),
        (400, False),
        (401, False),
        (403, False),
        (404, False),
        (409, False),
        (418, False),
        (422, False),
    ],
)
def test_retryable_statuses(status: int, retryable: bool) -> None:
    """429 and 5xx are retried; every other 4xx is final."""
    assert is_retryable_status(status) is retryable


# --- validation -------------------------------------------------------------


@pytest.mark.parametrize(
    "kwargs",
    [
        {"max_attempts": 0},
        {"max_attempts": -1},
        {"max_attempts": 1.5},
        {"max_attempts": "3"},
        {"base_delay": -0.1},
        {"base_delay": math.nan},
        {"base_delay": math.inf},
        {"base_delay": "1"},
        {"max_delay": -1},
        {"max_delay": math.inf},
        {"max_retry_after": -1},
        {"max_retry_after": math.nan},
        {"max_refusal_wait": -1},
        {"max_refusal_wait": math.inf},
        {"max_refusal_wait": "60"},
    ],
)
def test_policy_validation(kwargs: dict[str, Any]) -> None:
    """Nonsensical policy values are refused when the policy is built."""
    with pytest.raises((TypeError, ValueError)):
        RetryPolicy(**kwargs)


@pytest.mark.parametrize("kwargs", [{"max_attempts": True}, {"base_delay": True}])
def test_policy_rejects_booleans(kwargs: dict[str, Any]) -> None:
    """A bool is not a count or a duration (as everywhere else in the SDK's config)."""
    with pytest.raises((TypeError, ValueError)):
        RetryPolicy(**kwargs)


def test_policy_validation_names_the_field() -> None:
    """The error says which setting is wrong."""
    with pytest.raises(ValueError, match="base_delay"):
        RetryPolicy(base_delay=-1)


def test_policy_is_frozen_and_keyword_only() -> None:
    """A policy is an immutable value built from keywords."""
    policy = RetryPolicy(max_attempts=2)
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        policy.max_attempts = 3  # type: ignore[misc]
    with pytest.raises(TypeError):
        RetryPolicy(2)  # type: ignore[call-arg]
    assert policy == RetryPolicy(max_attempts=2)


# --- Retry-After ------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "seconds"),
    [("5", 5.0), ("0", 0.0), ("1.5", 1.5), (" 12 ", 12.0), ("-3", 0.0)],
)
def test_retry_after_seconds(value: str, seconds: float) -> None:
    """Retry-After in delta-seconds; negative waits become zero."""
    assert parse_retry_after({"retry-after": value}, now=NOW) == seconds


def test_retry_after_http_date() -> None:
    """Retry-After as an HTTP date is measured from ``now``."""
    when = datetime.fromtimestamp(NOW, tz=UTC) + timedelta(seconds=90)
    header = format_datetime(when, usegmt=True)
    assert header.endswith("GMT")
    assert parse_retry_after({"retry-after": header}, now=NOW) == pytest.approx(90.0)


def test_retry_after_http_date_in_the_past_is_zero() -> None:
    """A date already gone means retry now, not a negative wait."""
    header = format_datetime(datetime.fromtimestamp(NOW - 600, tz=UTC), usegmt=True)
    assert parse_retry_after({"retry-after": header}, now=NOW) == 0.0


def test_retry_after_ms_takes_precedence() -> None:
    """``retry-after-ms`` wins over ``Retry-After`` when both are present."""
    headers = {"retry-after-ms": "1500", "retry-after": "30"}
    assert parse_retry_after(headers, now=NOW) == 1.5


def test_retry_after_ms_alone_and_negative() -> None:
    """``retry-after-ms`` alone is milliseconds; a negative value is zero."""
    assert parse_retry_after({"retry-after-ms": "250"}, now=NOW) == 0.25
    assert parse_retry_after({"retry-after-ms": "-5"}, now=NOW) == 0.0


@pytest.mark.parametrize("bad_ms", ["soon", "nan", "inf", ""])
def test_retry_after_ms_garbage_falls_back(bad_ms: str) -> None:
    """An unparseable ``retry-after-ms`` is ignored in favour of ``Retry-After``."""
    headers = {"retry-after-ms": bad_ms, "retry-after": "7"}
    assert parse_retry_after(headers, now=NOW) == 7.0


@pytest.mark.parametrize(
    "value",
    [
        "soon",
        "",
        "nan",
        "inf",
        "-inf",
        "Wed, 99 Foo 2015 07:28:00 GMT",
        "Wed, 21 Oct 2015 07:28:00 -0000",
    ],
)
def test_retry_after_garbage_is_ignored(value: str) -> None:
    """Unparseable (or zone-less) Retry-After values mean "no hint", not an error."""
    assert parse_retry_after({"retry-after": value}, now=NOW) is None


def test_retry_after_absent() -> None:
    """No header, no hint."""
    assert parse_retry_after({}, now=NOW) is None


def test_retry_after_headers_are_case_insensitive() -> None:
    """Real response headers are matched case-insensitively."""
    headers = CIMultiDictProxy(CIMultiDict({"Retry-After": "4", "X-Other": "1"}))
    assert parse_retry_after(headers, now=NOW) == 4.0
    headers = CIMultiDictProxy(CIMultiDict({"Retry-After-Ms": "20", "Retry-After": "4"}))
    assert parse_retry_after(headers, now=NOW) == 0.02


def _http_date(at: float) -> str:
    return format_datetime(datetime.fromtimestamp(at, tz=UTC), usegmt=True)


def test_retry_after_http_date_is_measured_against_the_answers_date() -> None:
    """A server 90 s ahead asking for 2 s means 2 s, not 92: the date is read on its clock."""
    headers = {"retry-after": _http_date(NOW + 92), "date": _http_date(NOW + 90)}
    assert parse_retry_after(headers, now=NOW) == pytest.approx(2.0)
    behind = {"retry-after": _http_date(NOW - 58), "date": _http_date(NOW - 60)}
    assert parse_retry_after(behind, now=NOW) == pytest.approx(2.0)


@pytest.mark.parametrize("date", ["yesterday", "", "Wed, 21 Oct 2015 07:28:00 -0000"])
def test_retry_after_http_date_with_a_bad_date_header_uses_our_clock(date: str) -> None:
    """An unreadable (or zone-less) ``Date`` falls back to ``now``."""
    headers = {"retry-after": _http_date(NOW + 5), "date": date}
    assert parse_retry_after(headers, now=NOW) == pytest.approx(5.0)


def test_retry_after_seconds_ignore_the_date_header() -> None:
    """Delta-seconds are a duration: the answer's ``Date`` plays no part."""
    headers = {"retry-after": "3", "date": _http_date(NOW + 90)}
    assert parse_retry_after(headers, now=NOW) == 3.0

"""The rate governor, driven by a fake clock: AIMD from refusals, pauses, caps and the reserve."""

from __future__ import annotations

import math
from datetime import UTC, datetime
from email.utils import format_datetime

import pytest

from coursepath_async import Priority
from coursepath_async._governor import MIN_RATE, RateGovernor

BULK, INTERACTIVE = Priority.BULK, Priority.INTERACTIVE


def _serve(governor: RateGovernor, *, start: float, seconds: float, rate: float) -> float:
    """Answers accepted at ``rate`` per second from ``start``; returns the time after."""
    n = round(seconds * rate)
    for i in range(n):
        governor.accepted(start + i / rate)
    return start + n / rate


def _governed(governor: RateGovernor, *, start: float, seconds: float) -> float:
    """Answers arriving at whatever rate the governor allows (it is the bottleneck)."""
    now = start
    while now < start + seconds:
        governor.accepted(now)
        now += 1 / (governor.rate or 1.0)
    return now


def _sent(governor: RateGovernor, priority: Priority, *, start: float, seconds: float) -> int:
    """How many calls the governor lets go in ``seconds``, asked every millisecond."""
    sent = 0
    for ms in range(round(seconds * 1000)):
        if governor.take(priority, start + ms / 1000):
            sent += 1
    return sent


def test_nothing_is_limited_until_a_refusal() -> None:
    """A fresh governor lets every call go at once and reports no rate."""
    governor = RateGovernor()
    assert governor.rate is None
    assert all(governor.take(BULK, 5.0) for _ in range(10_000))
    assert governor.ready_at(BULK, 5.0) == 5.0


def test_the_first_refusal_sets_the_rate_from_what_got_through() -> None:
    """At 120 answers a second, a refusal sets the rate to 85% of that."""
    governor = RateGovernor()
    now = _serve(governor, start=0.0, seconds=2.0, rate=120.0)
    governor.refused(sent_at=now, now=now, retry_after=None)
    assert governor.rate == pytest.approx(0.85 * 120, rel=0.02)
    assert governor.refusals == 1


def test_one_burst_of_refusals_cuts_once() -> None:
    """Refusals of requests sent before the cut are the same burst: the rate is cut once."""
    governor = RateGovernor(max_rate=100.0)
    _serve(governor, start=0.0, seconds=1.0, rate=100.0)
    governor.refused(sent_at=0.99, now=1.0, retry_after=None)
    assert governor.rate == pytest.approx(85.0)
    for k in range(15):  # the rest of what was in flight
        governor.refused(sent_at=0.995, now=1.0 + k / 1000, retry_after=None)
    assert governor.rate == pytest.approx(85.0)
    assert governor.refusals == 16


def test_dense_refusals_after_a_cut_cut_again() -> None:
    """Still refused at a third of the answers half a second on: the rate is still too high."""
    governor = RateGovernor(max_rate=100.0)
    _serve(governor, start=0.0, seconds=1.0, rate=100.0)
    governor.refused(sent_at=1.0, now=1.0, retry_after=None)
    now = _serve(governor, start=1.0, seconds=0.6, rate=40.0)
    for k in range(12):
        governor.refused(sent_at=now, now=now + k / 1000, retry_after=None)
    assert (governor.rate or 0.0) <= 0.85 * 85.0


def test_stray_refusals_do_not_spiral_the_rate_down() -> None:
    """One refusal in fifty answers (a flaky proxy) costs one cut per quiet spell, no more."""
    governor = RateGovernor(max_rate=100.0)
    now = 0.0
    for _ in range(60 * 2):  # a minute: fifty answers, then a refusal, twice a second
        now = _serve(governor, start=now, seconds=0.5, rate=governor.rate or 100.0)
        governor.refused(sent_at=now, now=now, retry_after=None)
    assert (governor.rate or 0.0) > 80.0


def test_long_pauses_after_a_cut_cut_again() -> None:
    """Refusals keeping the client paused a quarter of the time cut the rate, however few."""
    governor = RateGovernor(max_rate=100.0)
    _serve(governor, start=0.0, seconds=1.0, rate=100.0)
    governor.refused(sent_at=1.0, now=1.0, retry_after=1.0)
    now = _serve(governor, start=2.0, seconds=0.2, rate=85.0)
    governor.refused(sent_at=now, now=now, retry_after=1.0)
    assert governor.rate == pytest.approx(85.0)  # one pause in 1.2 s: not judged yet
    now = _serve(governor, start=now + 1.0, seconds=0.2, rate=85.0)
    governor.refused(sent_at=now, now=now, retry_after=1.0)
    assert (governor.rate or 0.0) < 85.0


def test_a_lone_refusal_after_a_quiet_spell_cuts() -> None:
    """Twenty seconds after the last cut, even one refusal means the rate has grown too far."""
    governor = RateGovernor(max_rate=200.0)
    _serve(governor, start=0.0, seconds=1.0, rate=100.0)
    governor.refused(sent_at=1.0, now=1.0, retry_after=None)
    now = _governed(governor, start=1.0, seconds=20.0)
    grown = governor.rate or 0.0
    governor.refused(sent_at=now, now=now, retry_after=None)
    assert (governor.rate or 0.0) == pytest.approx(0.85 * grown, rel=0.05)


def test_the_rate_is_paced_as_a_token_bucket() -> None:
    """At 50 requests a second, ten seconds let about 500 calls go, evenly."""
    governor = RateGovernor(max_rate=50.0)
    sent = _sent(governor, BULK, start=0.0, seconds=10.0)
    assert 500 <= sent <= 500 + math.ceil(50 * 0.05)  # plus the small initial bucket
    assert governor.ready_at(BULK, 10.0) > 10.0


def test_the_rate_grows_slowly_while_in_use() -> None:
    """Ten seconds of answers at the rate grow it about 1% a second, never past max_rate."""
    governor = RateGovernor(max_rate=100.0)
    _serve(governor, start=0.0, seconds=1.0, rate=100.0)
    governor.refused(sent_at=1.0, now=1.0, retry_after=None)
    assert governor.rate == pytest.approx(85.0)
    now = _governed(governor, start=1.0, seconds=10.0)
    assert governor.rate == pytest.approx(85.0 * 1.01**10, rel=0.02)
    _governed(governor, start=now, seconds=20.0)
    assert governor.rate == 100.0


def test_an_unused_rate_does_not_grow() -> None:
    """Answers at half the rate (the client is slower than its allowance) leave it alone."""
    governor = RateGovernor(max_rate=100.0)
    _serve(governor, start=0.0, seconds=10.0, rate=40.0)
    assert governor.rate == 100.0
    governor.refused(sent_at=10.0, now=10.0, retry_after=None)
    assert governor.rate == pytest.approx(0.85 * 50.0)  # cut from what was used, at most halved


def test_a_cut_from_too_few_answers_starts_slowly_and_doubles() -> None:
    """Refused from the very start, the rate starts at 10/s, then doubles each second."""
    governor = RateGovernor()
    governor.refused(sent_at=0.0, now=0.0, retry_after=None)
    assert governor.rate == 10.0
    _governed(governor, start=0.0, seconds=5.0)
    assert (governor.rate or 0.0) > 100.0


def test_a_slow_server_is_followed_below_the_blind_start() -> None:
    """A server letting 4 a second through: blind at first, then down to about that."""
    governor = RateGovernor()
    now = _serve(governor, start=0.0, seconds=3.0, rate=4.0)
    governor.refused(sent_at=now, now=now, retry_after=None)
    assert governor.rate == 10.0
    now = _serve(governor, start=now, seconds=2.0, rate=4.0)
    for k in range(6):  # refused more often than answered: dense
        governor.refused(sent_at=now, now=now + k / 100, retry_after=None)
    assert governor.rate is not None
    assert MIN_RATE <= governor.rate < 6.0


def test_retry_after_pauses_everyone() -> None:
    """A refusal asking for 2 s holds every lane, interactive included, for 2 s."""
    governor = RateGovernor()
    governor.refused(sent_at=10.0, now=10.0, retry_after=2.0)
    assert governor.paused_until == 12.0
    for priority in Priority:
        assert not governor.take(priority, 11.9)
        assert governor.ready_at(priority, 11.0) >= 12.0
    assert governor.take(INTERACTIVE, 12.0)


def test_a_pause_is_extended_never_shortened() -> None:
    """A shorter Retry-After does not end a longer pause early."""
    governor = RateGovernor()
    governor.pause(60.0)
    governor.refused(sent_at=1.0, now=1.0, retry_after=0.5)
    assert governor.paused_until == 60.0


def test_a_retry_after_beyond_max_pause_does_not_freeze_the_client() -> None:
    """An hour-long Retry-After fails that call; the client is not paused for an hour."""
    governor = RateGovernor(max_pause=120.0)
    governor.refused(sent_at=0.0, now=0.0, retry_after=3600.0)
    assert governor.paused_until < 0


def test_interactive_calls_keep_their_reserve_of_tokens() -> None:
    """With the bucket drained by bulk, interactive calls still go at once."""
    governor = RateGovernor(max_rate=10.0, reserve=2)
    while governor.take(BULK, 0.0):
        pass
    assert not governor.take(BULK, 0.0)
    assert governor.take(INTERACTIVE, 0.0)
    assert governor.take(INTERACTIVE, 0.0)
    assert not governor.take(INTERACTIVE, 0.0)
    # Bulk waits until the reserve is whole again and one token more.
    assert governor.ready_at(BULK, 0.0) == pytest.approx(0.3)
    assert governor.ready_at(INTERACTIVE, 0.0) == pytest.approx(0.1)


def test_bulk_and_interactive_together_never_exceed_the_rate() -> None:
    """Alternating lanes share one rate: 30 s at 10/s lets about 300 calls go in all."""
    governor = RateGovernor(max_rate=10.0, reserve=2)
    sent = 0
    for ms in range(30_000):
        priority = INTERACTIVE if ms % 7 == 0 else BULK
        sent += governor.take(priority, ms / 1000)
    assert 300 <= sent <= 304


def _date(at: float) -> str:
    return format_datetime(datetime.fromtimestamp(at, tz=UTC), usegmt=True)


@pytest.mark.parametrize(
    "headers",
    [
        {"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": "3"},
        {"RateLimit-Remaining": "0", "RateLimit-Reset": "3"},
        {"RateLimit": '"default";r=0;t=3'},
        {"RateLimit": "limit=100, remaining=0, reset=3"},
        {
            "X-RateLimit-Remaining": "0",
            "X-RateLimit-Reset": "1700000093",
            "Date": _date(1.7e9 + 90),
        },
    ],
    ids=["x-ratelimit", "ietf-fields", "ietf-structured", "ietf-draft-05", "x-reset-epoch"],
)
def test_an_exhausted_quota_pauses_until_its_reset(headers: dict[str, str]) -> None:
    """Headers saying nothing is left for 3 s pause the client 3 s, before any refusal."""
    governor = RateGovernor()
    lower = {k.lower(): v for k, v in headers.items()}
    governor.observe(lower, now=100.0, wall=1.7e9)
    assert governor.paused_until == pytest.approx(103.0)
    assert governor.refusals == 0


def test_a_quota_left_does_not_pause() -> None:
    """Remaining requests mean carry on."""
    governor = RateGovernor()
    governor.observe({"x-ratelimit-remaining": "5", "x-ratelimit-reset": "3"}, now=0.0, wall=0.0)
    assert governor.paused_until < 0


@pytest.mark.parametrize(
    ("policy", "rate"),
    [("100;w=1", 100.0), ('"default";q=600;w=60', 10.0), ("50;w=1, 1000;w=3600", 1000 / 3600)],
)
def test_a_rate_limit_policy_caps_the_rate(policy: str, rate: float) -> None:
    """A stated quota per window is the most the governor will send, the strictest one."""
    governor = RateGovernor(max_rate=500.0)
    governor.observe({"ratelimit-policy": policy}, now=0.0, wall=0.0)
    assert governor.rate == pytest.approx(rate)


@pytest.mark.parametrize(
    "headers",
    [
        {"x-ratelimit-remaining": "lots"},
        {"ratelimit": "garbage"},
        {"ratelimit-policy": "w=0"},
        {"x-ratelimit-remaining": "0"},
        {"x-ratelimit-reset": "-4", "x-ratelimit-remaining": "0"},
    ],
)
def test_unreadable_rate_limit_headers_are_ignored(headers: dict[str, str]) -> None:
    """Nonsense, or a remaining count without a reset, changes nothing."""
    governor = RateGovernor()
    governor.observe(headers, now=0.0, wall=0.0)
    assert governor.rate is None
    assert governor.paused_until < 0

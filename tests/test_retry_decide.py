"""The pure retry decision: recorded answers classified, then ``decide()`` called synchronously."""

from __future__ import annotations

from datetime import UTC, datetime
from email.utils import format_datetime

import pytest
from multidict import CIMultiDict, CIMultiDictProxy

from coursepath_async import (
    APIConnectionError,
    APITimeoutError,
    NotFoundError,
    RateLimitError,
    RetryPolicy,
    ServerError,
    UncertainOutcomeError,
)
from coursepath_async._retry import (
    Attempt,
    Fault,
    GiveUp,
    Outcome,
    Refusal,
    Rejection,
    Retry,
    classify,
    decide,
)
from coursepath_async._sansio import ApiRequest, RawResponse, RequestKind

URL = "https://acme.example.com/api/v1/members/7/invite"
INVITE = ApiRequest(method="POST", path="/members/7/invite", kind=RequestKind.AT_MOST_ONCE)
READ = ApiRequest(method="GET", path="/members/7")
NOW = 1_700_000_000.0
POLICY = RetryPolicy(max_attempts=4, base_delay=0.5, max_delay=30.0)
HTML = b"<html><body><h1>503 Service Unavailable</h1></body></html>"


def _date(at: float) -> str:
    return format_datetime(datetime.fromtimestamp(at, tz=UTC), usegmt=True)


def _answer(status: int, body: bytes = b"", **headers: str) -> RawResponse:
    """A recorded answer, headers as aiohttp hands them over (case-insensitive)."""
    names = {k.replace("_", "-"): v for k, v in headers.items()}
    return RawResponse(status, CIMultiDictProxy(CIMultiDict(names)), body)


# Answers as Coursepath, its proxies and rate limiters send them.
LIMITED = _answer(429, b'{"error":"rate_limited","message":"Too Many Requests"}')
LIMITED_FOR_2S = _answer(429, b'{"error":"rate_limited"}', retry_after="2")
LIMITED_MS = _answer(429, b"{}", retry_after_ms="250", retry_after="1")
LIMITED_UNTIL = _answer(
    429, b"{}", retry_after=_date(NOW + 93), date=_date(NOW + 90)
)  # the server's clock is 90 s ahead of ours
BUSY_FOR_1S = _answer(503, HTML, retry_after="1")
BUSY = _answer(503, HTML)
BAD_GATEWAY = _answer(502, b"<html><body><h1>502 Bad Gateway</h1></body></html>")
SERVER_ERROR_WAIT = _answer(500, b"{}", retry_after="7")
NOT_FOUND = _answer(404, b'{"error":"not_found","message":"no such member"}')
REDIRECT = _answer(302, b"", location="https://acme.example.com/login")


def _outcome(
    answer: RawResponse | APIConnectionError,
    request: ApiRequest = READ,
    earlier: Attempt | None = None,
) -> Outcome:
    return classify(request, URL, answer, earlier=earlier or Attempt(), now=NOW)


def _decide(
    outcome: Outcome,
    attempt: Attempt,
    kind: RequestKind = RequestKind.READ,
    *,
    elapsed: float = 0.0,
    deadline: float | None = None,
    policy: RetryPolicy = POLICY,
) -> Retry | GiveUp:
    return decide(outcome, attempt, kind, elapsed, deadline, policy=policy, rng=lambda: 1.0)


def _reset(*, sent: bool) -> APIConnectionError:
    return APIConnectionError("connection failed mid-request", method="POST", url=URL, sent=sent)


# --- classify --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("answer", "retry_after"),
    [(LIMITED, None), (LIMITED_FOR_2S, 2.0), (LIMITED_MS, 0.25), (BUSY_FOR_1S, 1.0)],
    ids=["429", "429-seconds", "429-ms", "503-retry-after"],
)
def test_429_and_503_with_retry_after_are_refusals(
    answer: RawResponse, retry_after: float | None
) -> None:
    """A 429 (with or without a wait) and a 503 naming a wait mean: nothing was done."""
    outcome = _outcome(answer)
    assert isinstance(outcome, Refusal)
    assert outcome.retry_after == retry_after
    assert outcome.error.retry_after == retry_after


def test_a_dated_retry_after_is_read_on_the_servers_clock() -> None:
    """A server 90 s ahead asking to come back at its +93 s means a 3 s wait, not 93."""
    outcome = _outcome(LIMITED_UNTIL)
    assert isinstance(outcome, Refusal)
    assert outcome.retry_after == pytest.approx(3.0)


@pytest.mark.parametrize(
    ("answer", "retry_after"), [(BUSY, None), (BAD_GATEWAY, None), (SERVER_ERROR_WAIT, 7.0)]
)
def test_other_5xx_are_faults_that_may_have_been_applied(
    answer: RawResponse, retry_after: float | None
) -> None:
    """A 503 without a wait, a 502 page or a 500 (even with Retry-After) may follow the work."""
    outcome = _outcome(answer)
    assert isinstance(outcome, Fault)
    assert isinstance(outcome.error, ServerError)
    assert outcome.maybe_applied is True
    assert outcome.retry_after == retry_after


@pytest.mark.parametrize("sent", [True, False])
def test_connection_errors_are_faults_applied_only_if_sent(sent: bool) -> None:
    """A reset after sending may have been applied; a refused connect was not."""
    outcome = _outcome(_reset(sent=sent))
    assert outcome == Fault(outcome.error, maybe_applied=sent)


@pytest.mark.parametrize("answer", [NOT_FOUND, REDIRECT])
def test_other_statuses_are_rejections(answer: RawResponse) -> None:
    """A 4xx other than 429, or a 3xx that is not followed, is final."""
    assert isinstance(_outcome(answer), Rejection)


def test_an_error_after_a_maybe_applied_attempt_says_so() -> None:
    """A 404 after a 502 carries ``after_unknown_outcome`` (the first attempt may have worked)."""
    earlier = Attempt().after(_outcome(BAD_GATEWAY))
    outcome = _outcome(NOT_FOUND, earlier=earlier)
    assert isinstance(outcome.error, NotFoundError)
    assert outcome.error.after_unknown_outcome is True
    assert _outcome(NOT_FOUND).error.after_unknown_outcome is False  # type: ignore[union-attr]


def test_the_tally_counts_faults_and_remembers_doubt() -> None:
    """Refusals advance the attempt number only; a maybe-applied fault is remembered."""
    attempt = Attempt()
    for answer in (LIMITED, BUSY_FOR_1S, LIMITED):
        attempt = attempt.after(_outcome(answer))
    assert attempt == Attempt(number=3, faults=0, maybe_applied=False)
    attempt = attempt.after(_outcome(_reset(sent=False)))
    assert attempt == Attempt(number=4, faults=1, maybe_applied=False)
    attempt = attempt.after(_outcome(BAD_GATEWAY)).after(_outcome(LIMITED))
    assert attempt == Attempt(number=6, faults=2, maybe_applied=True)


# --- decide: refusals ---------------------------------------------------------------------


def _after(*answers: RawResponse | APIConnectionError) -> tuple[Outcome, Attempt]:
    """The last answer's outcome and the tally once every answer has ended an attempt."""
    attempt = Attempt()
    outcome: Outcome | None = None
    for answer in answers:
        outcome = _outcome(answer, earlier=attempt)
        attempt = attempt.after(outcome)
    assert outcome is not None
    return outcome, attempt


@pytest.mark.parametrize("answer", [LIMITED, BUSY_FOR_1S])
def test_a_refused_invitation_is_retried_never_uncertain(answer: RawResponse) -> None:
    """An invite turned away before any work is simply tried again."""
    outcome, attempt = _after(answer)
    assert isinstance(_decide(outcome, attempt, RequestKind.AT_MOST_ONCE), Retry)


def test_refusals_do_not_spend_the_attempt_budget() -> None:
    """Fifty refusals in a row are still retried under max_attempts=4."""
    outcome, attempt = _after(*[LIMITED] * 50)
    assert _decide(outcome, attempt, elapsed=40.0) == Retry(0.0)


def test_a_refusal_waits_its_retry_after_else_nothing() -> None:
    """Retry-After is the wait; without one the governor paces the retry, so no backoff."""
    assert _decide(*_after(LIMITED_FOR_2S)) == Retry(2.0)
    assert _decide(*_after(LIMITED_MS)) == Retry(0.25)
    assert _decide(*_after(LIMITED)) == Retry(0.0)


def test_refusals_are_retried_within_their_time_allowance() -> None:
    """Past ``max_refusal_wait`` seconds of the call, the refusal is the answer."""
    policy = RetryPolicy(max_refusal_wait=60.0)
    outcome, attempt = _after(LIMITED_FOR_2S)
    assert _decide(outcome, attempt, elapsed=57.9, policy=policy) == Retry(2.0)
    decision = _decide(outcome, attempt, elapsed=58.1, policy=policy)
    assert isinstance(decision, GiveUp)
    assert isinstance(decision.error, RateLimitError)


def test_a_refusal_asking_too_long_fails_fast() -> None:
    """A Retry-After beyond ``max_retry_after`` ends the call instead of sleeping."""
    huge = _answer(429, b"{}", retry_after="3600")
    decision = _decide(*_after(huge))
    assert isinstance(decision, GiveUp)
    assert decision.error.retry_after == 3600  # type: ignore[attr-defined]


def test_a_refusal_whose_wait_outlives_the_deadline_fails_fast() -> None:
    """With 1.5 s of a 3 s deadline left, a 2 s Retry-After gives up now."""
    outcome, attempt = _after(LIMITED_FOR_2S)
    assert _decide(outcome, attempt, elapsed=0.5, deadline=3.0) == Retry(2.0)
    decision = _decide(outcome, attempt, elapsed=1.5, deadline=3.0)
    assert isinstance(decision, GiveUp)
    assert isinstance(decision.error, RateLimitError)


# --- decide: faults ----------------------------------------------------------------------------


def test_faults_back_off_exponentially_within_the_attempt_budget() -> None:
    """Each fault doubles the (jitter-capped) backoff; the fourth ends the call."""
    waits = [_decide(*_after(*[BAD_GATEWAY] * n)) for n in (1, 2, 3)]
    assert waits == [Retry(0.5), Retry(1.0), Retry(2.0)]
    decision = _decide(*_after(*[BAD_GATEWAY] * 4))
    assert isinstance(decision, GiveUp)
    assert isinstance(decision.error, ServerError)


def test_refusals_between_faults_do_not_count() -> None:
    """Three faults among many refusals leave one attempt of the budget."""
    outcome, attempt = _after(LIMITED, BUSY, LIMITED, LIMITED, BAD_GATEWAY, LIMITED, BUSY)
    assert attempt.faults == 3
    assert _decide(outcome, attempt) == Retry(2.0)


def test_a_fault_naming_a_wait_waits_it() -> None:
    """A 500 with Retry-After is waited out, beyond the computed backoff."""
    assert _decide(*_after(SERVER_ERROR_WAIT)) == Retry(7.0)


@pytest.mark.parametrize("answer", [BUSY, BAD_GATEWAY, _reset(sent=True)])
def test_an_invitation_that_may_have_been_applied_is_uncertain(
    answer: RawResponse | APIConnectionError,
) -> None:
    """A fault after sending ends an invite at once, as uncertain, caused by the fault."""
    outcome, attempt = _after(answer)
    decision = _decide(outcome, attempt, RequestKind.AT_MOST_ONCE)
    assert isinstance(decision, GiveUp)
    assert isinstance(decision.error, UncertainOutcomeError)
    assert decision.error.__cause__ is outcome.error
    assert decision.error.url == URL


def test_an_invitation_never_sent_is_retried() -> None:
    """A refused connection sent nothing: the invite is tried again."""
    outcome, attempt = _after(_reset(sent=False))
    assert _decide(outcome, attempt, RequestKind.AT_MOST_ONCE) == Retry(0.5)


@pytest.mark.parametrize("kind", [RequestKind.READ, RequestKind.IDEMPOTENT, RequestKind.CREATE])
def test_repeatable_calls_are_retried_after_maybe_applied_faults(kind: RequestKind) -> None:
    """Reads, idempotent writes and creates are safe to repeat after a 502."""
    assert isinstance(_decide(*_after(BAD_GATEWAY), kind), Retry)


def test_a_timeout_backoff_that_outlives_the_deadline_gives_up() -> None:
    """A backoff that would end past the deadline raises the fault now."""
    timeout = APITimeoutError("no complete answer within 30s", method="GET", url=URL)
    outcome, attempt = _after(timeout)
    assert _decide(outcome, attempt, elapsed=0.2, deadline=1.0) == Retry(0.5)
    assert _decide(outcome, attempt, elapsed=0.5, deadline=1.0) == GiveUp(timeout)


# --- decide: rejections ----------------------------------------------------------------------


@pytest.mark.parametrize("answer", [NOT_FOUND, REDIRECT])
def test_rejections_give_up_at_once(answer: RawResponse) -> None:
    """A 4xx or 3xx is raised as it is, for every kind of call."""
    outcome, attempt = _after(answer)
    for kind in RequestKind:
        assert _decide(outcome, attempt, kind) == GiveUp(outcome.error)

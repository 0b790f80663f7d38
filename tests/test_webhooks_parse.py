"""The pure parts of the webhook receiver: parsing, de-duplication, verdicts and stats."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import cast

import pytest
from fake_clock import FakeClock

from coursepath_async import CourseMember, CoursepathClient, NotFoundError
from coursepath_async._webhooks._command import event_record
from coursepath_async._webhooks._dedupe import RecentEvents
from coursepath_async._webhooks._pool import Job, VerifyPool
from coursepath_async._webhooks._stats import Counters
from coursepath_async.webhooks import (
    MAX_BODY,
    EventKind,
    InvalidWebhookError,
    Unconfirmed,
    VerifiedEvent,
    WebhookEvent,
    parse_webhook,
    verify_event,
)

FORM = "application/x-www-form-urlencoded"
VALID = b"courseId=12&memberId=7&event=COURSEMEMBER_COMPLETED"

# -- parse_webhook ---------------------------------------------------------------------


def test_parses_the_form_coursepath_sends() -> None:
    """A delivery becomes a frozen event with int ids and an EventKind."""
    event = parse_webhook(VALID, content_type=FORM)
    assert event == WebhookEvent(course_id=12, member_id=7, event=EventKind.COURSEMEMBER_COMPLETED)
    assert event.key == (EventKind.COURSEMEMBER_COMPLETED, 12, 7)
    with pytest.raises(AttributeError):
        event.course_id = 3  # type: ignore[misc]


@pytest.mark.parametrize(
    "content_type",
    [
        FORM,
        f"{FORM}; charset=UTF-8",
        f'{FORM};charset="utf-8"',
        "Application/X-WWW-Form-Urlencoded",
    ],
)
def test_accepts_utf8_form_content_types(content_type: str) -> None:
    """Case, spacing and a UTF-8 (or ASCII) charset parameter do not matter."""
    assert parse_webhook(VALID, content_type=content_type).member_id == 7


def test_ignores_unknown_fields_and_field_order() -> None:
    """A field Coursepath may add later does not make a delivery fail."""
    body = b"academyId=3&event=COURSEMEMBER_DELETED&memberId=2&courseId=1&note="
    assert parse_webhook(body) == WebhookEvent(
        course_id=1, member_id=2, event=EventKind.COURSEMEMBER_DELETED
    )


def test_accepts_the_largest_id() -> None:
    """Ids up to 2**63 - 1 are valid; one more is not."""
    top = 2**63 - 1
    body = f"courseId={top}&memberId=1&event=COURSEMEMBER_CREATED".encode()
    assert parse_webhook(body).course_id == top
    with pytest.raises(InvalidWebhookError, match="courseId must be a positive integer"):
        parse_webhook(body.replace(str(top).encode(), str(top + 1).encode()))


@pytest.mark.parametrize(
    ("body", "content_type", "status", "reason"),
    [
        (VALID, "text/plain", 415, "unsupported_content_type"),
        (VALID, None, 415, "unsupported_content_type"),
        (VALID, "multipart/form-data; boundary=x", 415, "unsupported_content_type"),
        (VALID, f"{FORM}; charset=utf-16", 415, "unsupported_content_type"),
        (VALID + b"&x=" + b"y" * MAX_BODY, FORM, 413, "body_too_large"),
        (VALID + b"&x=\xc3", FORM, 400, "invalid_encoding"),
        (VALID + b"&x=%C3", FORM, 400, "invalid_encoding"),
        (VALID + b"&&", FORM, 400, "malformed_form"),
        (b"&".join([VALID] + [b"f=1"] * 40), FORM, 400, "malformed_form"),
        (b"courseId=12&event=COURSEMEMBER_COMPLETED", FORM, 400, "missing_field"),
        (VALID + b"&event=COURSEMEMBER_CREATED", FORM, 400, "repeated_field"),
        (VALID.replace(b"COMPLETED", b"UPDATED"), FORM, 400, "unknown_event"),
        (VALID.replace(b"COMPLETED", b"COMPLETED "), FORM, 400, "unknown_event"),
        (VALID.replace(b"=12&", b"=&"), FORM, 400, "invalid_id"),
        (VALID.replace(b"=12&", b"=012&"), FORM, 400, "invalid_id"),
        (VALID.replace(b"=12&", b"=%2012%20&"), FORM, 400, "invalid_id"),
        (VALID.replace(b"=12&", b"=0x1&"), FORM, 400, "invalid_id"),
        (VALID.replace(b"=12&", "=١٢&".encode()), FORM, 400, "invalid_id"),
        (VALID.replace(b"=12&", b"=12%0A&"), FORM, 400, "invalid_id"),
        (VALID.replace(b"=12&", b"=1_000&"), FORM, 400, "invalid_id"),
    ],
)
def test_refuses_with_status_and_reason(
    body: bytes, content_type: str | None, status: int, reason: str
) -> None:
    """Each problem maps to its HTTP status and a stable reason, with a readable message."""
    with pytest.raises(InvalidWebhookError) as caught:
        parse_webhook(body, content_type=content_type)
    assert (caught.value.status, caught.value.reason) == (status, reason)
    assert isinstance(caught.value, ValueError)
    assert caught.value.message in str(caught.value)


def test_error_messages_quote_only_a_short_excerpt() -> None:
    """A huge or hostile value is quoted escaped and cut, so it cannot flood a log line."""
    body = b"courseId=" + b"\x1b[31m" + b"9" * 2000 + b"&memberId=1&event=COURSEMEMBER_CREATED"
    with pytest.raises(InvalidWebhookError) as caught:
        parse_webhook(body)
    assert len(caught.value.message) < 120
    assert "\x1b" not in caught.value.message


def test_malformed_form_message_quotes_only_a_short_excerpt() -> None:
    """A huge field without ``=`` is refused as malformed_form without echoing all of it."""
    with pytest.raises(InvalidWebhookError) as caught:
        parse_webhook(b"courseId=1&" + b"A" * 3000)
    assert caught.value.reason == "malformed_form"
    assert len(caught.value.message) < 120
    assert "AAAA" in caught.value.message


def test_event_construction_validates() -> None:
    """Building an event by hand checks the ids and the event name too."""
    with pytest.raises(ValueError, match="course_id must be a positive integer"):
        WebhookEvent(course_id=0, member_id=1, event=EventKind.COURSEMEMBER_CREATED)
    with pytest.raises(ValueError, match="member_id"):
        WebhookEvent(course_id=1, member_id=True, event=EventKind.COURSEMEMBER_CREATED)
    with pytest.raises(ValueError, match=r"event must be one of 'COURSEMEMBER_CREATED'"):
        WebhookEvent(course_id=1, member_id=1, event="COURSEMEMBER_EXPLODED")


# -- RecentEvents ----------------------------------------------------------------------


def test_recent_events_dedupes_pending_and_remembered_keys() -> None:
    """A pending key and a remembered one are both seen; a forgotten one is not."""
    clock = FakeClock(100.0)
    recent: RecentEvents[str] = RecentEvents(ttl=10.0, max_entries=100, clock=clock)
    assert recent.claim("a")
    assert not recent.claim("a")  # pending
    recent.finish("a", remember=True)
    assert not recent.claim("a")  # remembered
    assert recent.claim("b")
    recent.finish("b", remember=False)
    assert recent.claim("b")  # forgotten: unconfirmed events do not shadow real ones
    clock.now += 10.0
    assert recent.claim("a")  # expired
    assert recent.pending == 2


def test_recent_events_marks_a_copy_of_a_pending_key_for_a_recheck() -> None:
    """A copy arriving while a key is pending is refused but marked, once, for a re-check."""
    recent: RecentEvents[str] = RecentEvents(ttl=10.0, max_entries=100, clock=FakeClock(100.0))
    assert recent.claim("a")
    assert not recent.take_repeat("a")  # no copy yet
    assert not recent.claim("a")
    assert not recent.claim("a")
    assert recent.take_repeat("a")  # copies coalesce into one re-check
    assert not recent.take_repeat("a")
    assert recent.pending == 1  # still pending while re-checked
    assert not recent.claim("a")
    recent.finish("a", remember=False)  # finishing clears the mark
    assert recent.claim("a")
    assert not recent.take_repeat("a")


def test_recent_events_is_bounded() -> None:
    """Past ``max_entries`` the oldest remembered keys go first; memory stays flat."""
    recent: RecentEvents[int] = RecentEvents(ttl=3600.0, max_entries=3, clock=FakeClock(100.0))
    for key in range(10):
        assert recent.claim(key)
        recent.finish(key, remember=True)
    assert len(recent) == 3
    assert not recent.claim(9)
    assert recent.claim(0)
    assert "pending=1 remembered=3" in repr(recent)


def test_recent_events_with_zero_ttl_only_dedupes_pending() -> None:
    """``ttl=0`` de-duplicates concurrent copies only."""
    recent: RecentEvents[str] = RecentEvents(ttl=0, max_entries=1)
    assert recent.claim("a")
    assert not recent.claim("a")
    recent.finish("a", remember=True)
    assert recent.claim("a")


def test_recent_events_checks_its_bounds() -> None:
    """A negative or NaN ttl and a zero size are refused."""
    for ttl, size in ((-1.0, 1), (float("nan"), 1), (1.0, 0)):
        with pytest.raises(ValueError, match="must be"):
            RecentEvents(ttl=ttl, max_entries=size)


# -- verify_event against a stand-in client --------------------------------------------


class FakeCourses:
    def __init__(self, answer: CourseMember | None) -> None:
        self.answer = answer
        self.calls: list[tuple[int, int]] = []

    async def result(self, course_id: int, member_id: int) -> CourseMember:
        self.calls.append((course_id, member_id))
        if self.answer is None:
            raise NotFoundError("not found", status_code=404, method="GET", url="/x", body=b"")
        return self.answer


class FakeClient:
    def __init__(self, answer: CourseMember | None) -> None:
        self.courses = FakeCourses(answer)


DONE = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)


@pytest.mark.parametrize(
    ("kind", "answer", "reason"),
    [
        ("COURSEMEMBER_COMPLETED", CourseMember(course_id=12, member_id=7), "not_completed"),
        ("COURSEMEMBER_COMPLETED", None, "not_enrolled"),
        ("COURSEMEMBER_COMPLETED", CourseMember(course_id=13, member_id=7), "mismatch"),
        ("COURSEMEMBER_CREATED", CourseMember(course_id=12, member_id=8), "mismatch"),
        ("COURSEMEMBER_CREATED", None, "not_enrolled"),
        ("COURSEMEMBER_DELETED", CourseMember(course_id=12, member_id=7), "still_enrolled"),
        ("COURSEMEMBER_COMPLETED", CourseMember(completed_date=DONE), None),
        ("COURSEMEMBER_CREATED", CourseMember(course_id=12, member_id=7), None),
        ("COURSEMEMBER_DELETED", None, None),
    ],
)
async def test_verdicts(kind: str, answer: CourseMember | None, reason: str | None) -> None:
    """One API call per event; the answer confirms the claim or names the contradiction."""
    fake = FakeClient(answer)
    event = WebhookEvent(course_id=12, member_id=7, event=EventKind(kind))
    outcome = await verify_event(cast(CoursepathClient, fake), event)
    assert fake.courses.calls == [(12, 7)]
    if reason is None:
        assert isinstance(outcome, VerifiedEvent)
        assert outcome.result == answer
        assert outcome.event == event
    else:
        assert outcome == Unconfirmed(event=event, reason=reason, result=answer)  # type: ignore[arg-type]


# -- the worker pool -------------------------------------------------------------------


async def test_a_stopped_pool_refuses_new_jobs() -> None:
    """After ``stop()`` no worker would take a job, so ``submit`` refuses it."""

    async def ignore(_: VerifiedEvent) -> None:
        return None

    counters = Counters()
    pool = VerifyPool(
        cast(CoursepathClient, FakeClient(None)),
        ignore,
        workers=1,
        queue_size=2,
        recent=RecentEvents(ttl=1.0, max_entries=10),
        counters=counters,
    )
    pool.start()
    await pool.stop(grace=0.0)
    event = WebhookEvent(course_id=12, member_id=7, event=EventKind.COURSEMEMBER_CREATED)
    assert not pool.submit(Job(event, DONE))
    assert (pool.queued, counters.dropped_shutdown) == (0, 0)


# -- stats and the JSON line -----------------------------------------------------------


def test_stats_snapshot_is_frozen_and_adds_up() -> None:
    """A snapshot copies the counters; totals sum the per-reason tallies."""
    counters = Counters(received=5, accepted=2)
    counters.rejected["invalid_id"] += 2
    counters.rejected["wrong_secret"] += 1
    counters.unconfirmed["not_completed"] += 1
    stats = counters.snapshot(
        queued=1,
        in_flight=0,
        connections_open=2,
        connections_refused=0,
        connections_evicted=0,
        header_timeouts=0,
    )
    counters.rejected["invalid_id"] += 10
    assert (stats.rejected_total, stats.unconfirmed_total, stats.queued) == (3, 1, 1)
    with pytest.raises(AttributeError):
        stats.received = 0  # type: ignore[misc]


def test_event_record_of_a_completion_and_a_deletion() -> None:
    """Completed events carry the API's result; deleted ones have null result fields."""
    at = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)
    result = CourseMember(
        course_id=12, member_id=7, score=91.0, success=True, completed_date=DONE, certificate="u"
    )
    completed = VerifiedEvent(
        event=WebhookEvent(course_id=12, member_id=7, event=EventKind.COURSEMEMBER_COMPLETED),
        result=result,
        received_at=at,
        verified_at=at,
    )
    assert event_record(completed) == {
        "event": "COURSEMEMBER_COMPLETED",
        "course_id": 12,
        "member_id": 7,
        "verified_at": "2026-05-01T12:00:00+00:00",
        "score": 91.0,
        "success": True,
        "completed_date": "2026-01-02T03:04:05+00:00",
        "certificate": "u",
    }
    deleted = VerifiedEvent(
        event=WebhookEvent(course_id=12, member_id=7, event=EventKind.COURSEMEMBER_DELETED),
        result=None,
        received_at=at,
        verified_at=at,
    )
    record = event_record(deleted)
    assert record["event"] == "COURSEMEMBER_DELETED"
    assert [record[k] for k in ("score", "success", "completed_date", "certificate")] == [None] * 4


# -- the public names ------------------------------------------------------------------


def test_public_names_are_pinned_and_sorted() -> None:
    """``coursepath_async.webhooks.__all__`` is exactly the agreed names, sorted."""
    import coursepath_async.webhooks as webhooks

    assert webhooks.__all__ == sorted(webhooks.__all__)
    assert set(webhooks.__all__) == {
        "MAX_BODY",
        "RECEIVER_KEY",
        "EventKind",
        "InvalidWebhookError",
        "OnEvent",
        "ReceiverOptions",
        "RejectReason",
        "Unconfirmed",
        "UnconfirmedReason",
        "VerifiedEvent",
        "WebhookEvent",
        "WebhookReceiver",
        "WebhookStats",
        "parse_webhook",
        "verify_event",
        "webhook_app",
    }
    for name in webhooks.__all__:
        assert getattr(webhooks, name) is not None, name

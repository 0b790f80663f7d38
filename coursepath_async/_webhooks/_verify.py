"""Confirm a claimed webhook event against the API: the payload is never trusted.

Deliveries are unsigned, so anyone who finds the URL can post one. What the API says
*now* is the truth: a COMPLETED event is confirmed when the learner's result has a
completed date, a CREATED one when the enrolment exists, a DELETED one when it does
not (404). Anything else is :class:`Unconfirmed`, with a reason: forged, or stale
(e.g. a CREATED processed after the learner was already removed).

A verified DELETED means only "not enrolled now": the API answers 404 alike for a
removed enrolment and for a course or member that never existed, so a forged DELETED
for made-up ids is confirmed too. Act on it idempotently (remove if present), and keep
the receiver's secret path secret.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Literal

from attrs import frozen

from .._client import CoursepathAPI
from .._exceptions import NotFoundError
from .._models import CourseMember
from ._events import EventKind, WebhookEvent

__all__ = ["Unconfirmed", "UnconfirmedReason", "VerifiedEvent", "verify_event"]

UnconfirmedReason = Literal["not_enrolled", "not_completed", "still_enrolled", "mismatch"]


@frozen(kw_only=True)
class VerifiedEvent:
    """An event the API confirmed, with the result it returned (``None`` for DELETED).

    For DELETED that confirmation is only "not enrolled now" (see the module docstring).
    """

    event: WebhookEvent
    result: CourseMember | None
    received_at: datetime
    verified_at: datetime

    @property
    def kind(self) -> EventKind:
        """What happened: created, completed or deleted."""
        return self.event.event

    @property
    def course_id(self) -> int:
        """The course of the enrolment."""
        return self.event.course_id

    @property
    def member_id(self) -> int:
        """The learner."""
        return self.event.member_id


@frozen(kw_only=True)
class Unconfirmed:
    """An event the API contradicts; ``result`` is what it returned, if anything."""

    event: WebhookEvent
    reason: UnconfirmedReason
    result: CourseMember | None


async def verify_event(
    client: CoursepathAPI,
    event: WebhookEvent,
    *,
    received_at: datetime | None = None,
) -> VerifiedEvent | Unconfirmed:
    """Re-fetch the enrolment through ``client`` and confirm or contradict ``event``.

    Makes exactly one (retried) API call. API failures other than 404 propagate as
    :class:`~coursepath_async.CoursepathError`: the event is then neither confirmed
    nor contradicted. A 404 confirms a DELETED even for ids that never existed: a
    verified DELETED means "not enrolled now", not "was enrolled until now".
    """
    received = received_at or datetime.now(UTC)
    result: CourseMember | None
    try:
        result = await client.courses.result(event.course_id, event.member_id)
    except NotFoundError:
        result = None
    reason = _contradiction(event, result)
    if reason is not None:
        return Unconfirmed(event=event, reason=reason, result=result)
    return VerifiedEvent(
        event=event, result=result, received_at=received, verified_at=datetime.now(UTC)
    )


def _contradiction(event: WebhookEvent, result: CourseMember | None) -> UnconfirmedReason | None:
    if event.event is EventKind.COURSEMEMBER_DELETED:
        return None if result is None else "still_enrolled"
    if result is None:
        return "not_enrolled"
    if result.course_id not in (None, event.course_id) or result.member_id not in (
        None,
        event.member_id,
    ):
        return "mismatch"  # the API answered about another enrolment: trust neither
    if event.event is EventKind.COURSEMEMBER_COMPLETED and result.completed_date is None:
        return "not_completed"
    return None

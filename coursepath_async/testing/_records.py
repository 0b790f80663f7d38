"""Value types for what the sandbox academy stores, and their Coursepath JSON shapes.

Records are frozen so tests can hold on to one without it changing underneath them;
the state replaces a record when it is updated.  The ``*_json`` functions produce the
camelCase wire shapes of ``coursepath-api.md`` Part B, shared by the HTTP handlers and
the fixture dump so both always agree.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta, timezone
from typing import Final, Literal

from attrs import frozen

from .._fields import MEMBER_TEXT_FIELDS

Role = Literal["admin", "learner"]
EventName = Literal["COURSEMEMBER_CREATED", "COURSEMEMBER_COMPLETED", "COURSEMEMBER_DELETED"]
JsonDict = dict[str, object]

#: Member attributes that can be set through the API, as (JSON name, attribute name).
#: ``email`` and ``name`` are handled separately because they have their own rules.
MEMBER_OPTIONAL_FIELDS: tuple[tuple[str, str], ...] = tuple(
    (field.api, field.name) for field in MEMBER_TEXT_FIELDS if field.name != "name"
)

_NAME_SPLIT = re.compile(r"[._\-]+")


@frozen(kw_only=True)
class MemberRecord:
    """One member of the academy; ``role`` decides what their tokens may do."""

    id: int
    email: str
    name: str
    company: str | None = None
    department: str | None = None
    country: str | None = None
    external_id: str | None = None
    association: str | None = None
    identification: str | None = None
    registration: str | None = None
    created: datetime
    role: Role = "learner"


@frozen(kw_only=True)
class CourseRecord:
    """One course of the academy."""

    id: int
    name: str
    description: str = ""
    created: datetime


@frozen(kw_only=True)
class ProgramRecord:
    """One program (a track of courses) of the academy."""

    id: int
    name: str
    description: str = ""
    created: datetime


@frozen(kw_only=True)
class GroupRecord:
    """One named group of members."""

    id: int
    name: str


@frozen(kw_only=True)
class Enrolment:
    """A member's enrolment in a course and its result (``None`` until completed)."""

    course_id: int
    member_id: int
    created: datetime
    score: float | None = None
    success: bool | None = None
    completed: datetime | None = None
    certificate: str | None = None


@frozen(kw_only=True)
class ProgramEnrolment:
    """A member's enrolment in a program."""

    program_id: int
    member_id: int
    created: datetime


@frozen(kw_only=True)
class CourseEvent:
    """A change to a course enrolment, as delivered to the academy's webhook."""

    event: EventName
    course_id: int
    member_id: int


def format_date(value: datetime) -> str:
    """Format an aware datetime as ISO 8601 UTC with a ``Z``, to the second."""
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


#: The zone of ``offset``-style dates: an academy an hour east of UTC.
_EAST: Final = timezone(timedelta(hours=1))
#: How a dialect writes ``createdDate``: ISO with Z, naive UTC, with an offset, or not at all.
DateStyle = Literal["iso", "naive", "offset", "absent"]


def styled_date(value: datetime, style: DateStyle) -> str | None:
    """``value`` as a dialect writes it; None for ``absent`` (the key is then left out)."""
    if style == "naive":
        return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S")
    if style == "offset":
        return value.astimezone(_EAST).isoformat(timespec="seconds")
    if style == "absent":
        return None
    return format_date(value)


def _created(record: JsonDict, value: datetime, style: DateStyle) -> JsonDict:
    """``record`` with its ``createdDate`` in ``style`` (none at all when ``absent``)."""
    text = styled_date(value, style)
    if text is not None:
        record["createdDate"] = text
    return record


def parse_date(value: str) -> datetime:
    """Parse an ISO 8601 date as written by :func:`format_date` (naive means UTC)."""
    parsed = datetime.fromisoformat(value)
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


def name_from_email(email: str) -> str:
    """Derive a display name the way Coursepath does: ``john.smith@x`` → ``John Smith``."""
    local = email.split("@", 1)[0].split("+", 1)[0]
    words = [word for word in _NAME_SPLIT.split(local) if word]
    return " ".join(word.capitalize() for word in words) or email


def member_json(member: MemberRecord, dates: DateStyle = "iso") -> JsonDict:
    """Return the public JSON shape of a member (the role is sandbox-internal)."""
    record: JsonDict = {
        "id": member.id,
        "email": member.email,
        **{field.api: getattr(member, field.name) for field in MEMBER_TEXT_FIELDS},
    }
    return _created(record, member.created, dates)


def course_json(course: CourseRecord, dates: DateStyle = "iso") -> JsonDict:
    """Return the public JSON shape of a course."""
    record: JsonDict = {"id": course.id, "name": course.name, "description": course.description}
    return _created(record, course.created, dates)


def program_json(program: ProgramRecord) -> JsonDict:
    """Return the JSON shape of a program (used by fixtures; no API endpoint lists them)."""
    return {
        "id": program.id,
        "name": program.name,
        "description": program.description,
        "createdDate": format_date(program.created),
    }


def group_json(group: GroupRecord) -> JsonDict:
    """Return the public JSON shape of a group."""
    return {"id": group.id, "name": group.name}


def enrolment_json(enrolment: Enrolment, dates: DateStyle = "iso") -> JsonDict:
    """Return the public ``coursemember`` JSON shape of a course enrolment.

    ``completedDate`` carries the result, so it follows ``dates`` but is never left out.
    """
    completed = enrolment.completed
    record: JsonDict = {
        "courseId": enrolment.course_id,
        "memberId": enrolment.member_id,
        "score": enrolment.score,
        "success": enrolment.success,
        "completedDate": (
            None if completed is None else styled_date(completed, dates) or format_date(completed)
        ),
        "certificate": enrolment.certificate,
    }
    return _created(record, enrolment.created, dates)


def program_enrolment_json(enrolment: ProgramEnrolment, dates: DateStyle = "iso") -> JsonDict:
    """Return the public ``programmember`` JSON shape of a program enrolment."""
    record: JsonDict = {"programId": enrolment.program_id, "memberId": enrolment.member_id}
    return _created(record, enrolment.created, dates)

"""The Coursepath endpoints: one synchronous method per route over :class:`AcademyState`.

Handlers get an authenticated, permitted :class:`Call` and return a :class:`Reply` or
raise :class:`ApiError`.  They never await, so each write is applied atomically with
respect to other requests; authentication, faults and recording live in ``_app``.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from typing import Any, Final, Literal, TypeVar

import orjson
from attrs import frozen

from .._fields import MEMBER_TEXT_FIELDS
from ._dialect import DEFAULT_DIALECT, EMAIL_IN_USE, Dialect
from ._recorder import Invitation, InviteScope, Recorder
from ._records import (
    CourseRecord,
    GroupRecord,
    MemberRecord,
    course_json,
    enrolment_json,
    group_json,
    program_enrolment_json,
)
from ._state import AcademyState, DuplicateEmailError
from ._wire import (
    ApiError,
    Reply,
    array_reply,
    json_reply,
    mail_overrides,
    member_fields,
    member_filters,
    optional_text,
    parse_page,
)

R = TypeVar("R")

#: A limit no listing reaches: a wrapped page's total counts the whole listing.
_EVERYTHING: Final = 2**62

#: Who may call a route: admins always; learners ``never``, only about themselves
#: (``self``: the route's ``memberId`` is theirs), or ``always``.
LearnerAccess = Literal["never", "self", "always"]


@frozen(kw_only=True)
class ApiOptions:
    """Behaviour switches of the API that Part B of the spec leaves open."""

    #: How this academy answers the open points (statuses, shapes, caps, dates).
    dialect: Dialect = DEFAULT_DIALECT
    newest_first: bool = False


@frozen(kw_only=True)
class Call:
    """An authenticated request as a handler sees it."""

    ids: Mapping[str, int]
    query: Mapping[str, str]
    body: Mapping[str, object]
    actor: MemberRecord
    request_id: str


class Endpoints:
    """The route handlers of one academy."""

    def __init__(self, state: AcademyState, recorder: Recorder, options: ApiOptions) -> None:
        self._state = state
        self._recorder = recorder
        self._options = options
        self._dialect = dialect = options.dialect
        self._dates = dialect.created_date
        self._honour = dialect.limit_above_cap == "honoured"
        self._wrapped = dialect.list_shape == "wrapped"

    def __repr__(self) -> str:
        return f"<Endpoints {self._options!r}>"

    # -- lookups that 404 -------------------------------------------------------------

    def _member(self, call: Call) -> MemberRecord:
        member = self._state.find_member(call.ids["memberId"])
        if member is None:
            raise ApiError(404, "not_found", f"member {call.ids['memberId']} not found")
        return member

    def _course(self, call: Call) -> CourseRecord:
        course = self._state.find_course(call.ids["courseId"])
        if course is None:
            raise ApiError(404, "not_found", f"course {call.ids['courseId']} not found")
        return course

    def _program_id(self, call: Call) -> int:
        program_id = call.ids["programId"]
        if self._state.find_program(program_id) is None:
            raise ApiError(404, "not_found", f"program {program_id} not found")
        return program_id

    def _group(self, call: Call) -> GroupRecord:
        group = self._state.find_group(call.ids["groupId"])
        if group is None:
            raise ApiError(404, "not_found", f"group {call.ids['groupId']} not found")
        return group

    # -- replies --------------------------------------------------------------------

    def _member_reply(self, status: int, member: MemberRecord) -> Reply:
        return Reply(status, self._encode_member(member))

    def _created(self, member: MemberRecord) -> Reply:
        """The answer to a create: the member, with the dialect's 201 or 200."""
        return self._member_reply(self._dialect.create_status, member)

    def _removed(self) -> Reply:
        """The answer to a DELETE: 204, or 200 with a JSON body in some dialects."""
        if self._dialect.delete_reply == "json":
            return json_reply(200, {"deleted": True})
        return Reply(204, b"", None)

    def _listing(
        self,
        call: Call,
        kind: Literal["member", "course", "group"],
        page: Callable[..., list[R]],
        encode: Callable[[R], bytes],
    ) -> Reply:
        """One page of a listing, capped and shaped as the dialect says.

        ``page(offset, limit, newest_first=...)`` reads the state; a wrapped answer's
        ``total`` counts the whole listing.
        """
        cap = self._dialect.page_cap(kind)
        offset, limit = parse_page(call.query, cap, honour=self._honour)
        order = self._options.newest_first
        items = [encode(record) for record in page(offset, limit, newest_first=order)]
        total = len(page(0, _EVERYTHING, newest_first=order)) if self._wrapped else None
        return array_reply(items, total=total)

    def _encode_member(self, member: MemberRecord) -> bytes:
        return self._state.encode_member(member, self._dates)

    def _encode_course(self, course: CourseRecord) -> bytes:
        return orjson.dumps(course_json(course, self._dates))

    def _member_list(
        self, call: Call, *, course_id: int | None = None, group_id: int | None = None
    ) -> Reply:
        page = functools.partial(
            self._state.page_members,
            filters=member_filters(call.query),
            course_id=course_id,
            group_id=group_id,
        )
        return self._listing(call, "member", page, self._encode_member)

    def _create_member(self, call: Call) -> MemberRecord:
        fields = member_fields(call.body, creating=True)
        text: dict[str, Any] = {f.name: fields.get(f.name) for f in MEMBER_TEXT_FIELDS}
        try:
            return self._state.add_member(str(fields["email"]), **text)
        except DuplicateEmailError as exc:
            raise self._duplicate(exc) from None

    def _duplicate(self, exc: DuplicateEmailError) -> ApiError:
        """The dialect's answer to an email in use: 409/422 ``conflict`` or a 400 message."""
        status = self._dialect.duplicate_status
        if status == 400:
            return ApiError(400, "bad_request", EMAIL_IN_USE)
        return ApiError(status, "conflict", str(exc))

    # -- members --------------------------------------------------------------------

    def get_me(self, call: Call) -> Reply:
        """GET /members/me — the calling member."""
        return self._member_reply(200, call.actor)

    def get_member(self, call: Call) -> Reply:
        """GET /members/{memberId}."""
        return self._member_reply(200, self._member(call))

    def list_members(self, call: Call) -> Reply:
        """GET /members — filtered, paginated."""
        return self._member_list(call)

    def create_member(self, call: Call) -> Reply:
        """POST /members — 201 (or 200), or 400/409/422 when the email exists."""
        return self._created(self._create_member(call))

    def update_member(self, call: Call) -> Reply:
        """POST /members/{memberId} — 200 with the updated member."""
        member = self._member(call)
        fields = member_fields(call.body, creating=False)
        try:
            updated = self._state.update_member(member.id, **fields)
        except DuplicateEmailError as exc:
            raise self._duplicate(exc) from None
        return self._member_reply(200, updated)

    # -- courses --------------------------------------------------------------------

    def list_courses(self, call: Call) -> Reply:
        """GET /courses — paginated."""
        return self._course_list(call, member_id=None)

    def get_course(self, call: Call) -> Reply:
        """GET /courses/{courseId}."""
        return json_reply(200, course_json(self._course(call), self._dates))

    def member_courses(self, call: Call) -> Reply:
        """GET /members/{memberId}/courses — paginated."""
        return self._course_list(call, member_id=self._member(call).id)

    def _course_list(self, call: Call, *, member_id: int | None) -> Reply:
        page = functools.partial(self._state.page_courses, member_id=member_id)
        return self._listing(call, "course", page, self._encode_course)

    def course_members(self, call: Call) -> Reply:
        """GET /courses/{courseId}/members — filtered, paginated."""
        return self._member_list(call, course_id=self._course(call).id)

    def create_course_member(self, call: Call) -> Reply:
        """POST /courses/{courseId}/members — create a member and enrol them."""
        course = self._course(call)
        member = self._create_member(call)
        self._state.enrol(course.id, member.id)
        return self._created(member)

    def get_coursemember(self, call: Call) -> Reply:
        """GET .../coursemember — the result, 404 when not enrolled."""
        course, member = self._course(call), self._member(call)
        enrolment = self._state.enrolment(course.id, member.id)
        if enrolment is None:
            raise ApiError(404, "not_found", f"member {member.id} is not in course {course.id}")
        return json_reply(200, enrolment_json(enrolment, self._dates))

    def enrol(self, call: Call) -> Reply:
        """POST .../coursemember — 201 when new, 200 with the existing enrolment."""
        course, member = self._course(call), self._member(call)
        enrolment, created = self._state.enrol(course.id, member.id)
        return json_reply(201 if created else 200, enrolment_json(enrolment, self._dates))

    def unenrol(self, call: Call) -> Reply:
        """DELETE .../coursemember — 204, deleting the result; 404 when not enrolled."""
        course, member = self._course(call), self._member(call)
        if not self._state.unenrol(course.id, member.id):
            raise ApiError(404, "not_found", f"member {member.id} is not in course {course.id}")
        return self._removed()

    # -- programs -------------------------------------------------------------------

    def create_program_member(self, call: Call) -> Reply:
        """POST /programs/{programId}/members — create a member and enrol them."""
        program_id = self._program_id(call)
        member = self._create_member(call)
        self._state.enrol_program(program_id, member.id)
        return self._created(member)

    def enrol_program(self, call: Call) -> Reply:
        """POST .../programmember — 201 when new, 200 when already enrolled."""
        program_id, member = self._program_id(call), self._member(call)
        enrolment, created = self._state.enrol_program(program_id, member.id)
        record = program_enrolment_json(enrolment, self._dates)
        return json_reply(201 if created else 200, record)

    def unenrol_program(self, call: Call) -> Reply:
        """DELETE .../programmember — 204; 404 when not enrolled."""
        program_id, member = self._program_id(call), self._member(call)
        if not self._state.unenrol_program(program_id, member.id):
            raise ApiError(404, "not_found", f"member {member.id} is not in program {program_id}")
        return self._removed()

    # -- invitations ----------------------------------------------------------------

    def invite_member(self, call: Call) -> Reply:
        """POST /members/{memberId}/invite."""
        return self._invite(call, self._member(call), "member", None)

    def invite_course_member(self, call: Call) -> Reply:
        """POST /courses/{courseId}/members/{memberId}/invite — member must be enrolled."""
        course, member = self._course(call), self._member(call)
        if self._state.enrolment(course.id, member.id) is None:
            raise ApiError(404, "not_found", f"member {member.id} is not in course {course.id}")
        return self._invite(call, member, "course", course.id)

    def invite_program_member(self, call: Call) -> Reply:
        """POST /programs/{programId}/members/{memberId}/invite — member must be enrolled."""
        program_id, member = self._program_id(call), self._member(call)
        if self._state.program_enrolment(program_id, member.id) is None:
            raise ApiError(404, "not_found", f"member {member.id} is not in program {program_id}")
        return self._invite(call, member, "program", program_id)

    def _invite(
        self, call: Call, member: MemberRecord, scope: InviteScope, scope_id: int | None
    ) -> Reply:
        mail = mail_overrides(call.body)
        self._recorder.invited(
            Invitation(
                member_id=member.id,
                email=member.email,
                scope=scope,
                scope_id=scope_id,
                subject=mail["subject"],
                body=mail["body"],
                action=mail["action"],
                request_id=call.request_id,
            )
        )
        reply = self._dialect.invite_reply
        if reply == "no_content":
            return Reply(204, b"", None)
        if reply == "empty":
            return Reply(200, b"", None)
        return json_reply(200, {"invited": True})

    # -- groups ---------------------------------------------------------------------

    def list_groups(self, call: Call) -> Reply:
        """GET /groups — paginated."""
        return self._group_list(call, member_id=None)

    def group_members(self, call: Call) -> Reply:
        """GET /groups/{groupId}/members — filtered, paginated."""
        return self._member_list(call, group_id=self._group(call).id)

    def member_groups(self, call: Call) -> Reply:
        """GET /members/{memberId}/groups — paginated."""
        return self._group_list(call, member_id=self._member(call).id)

    def _group_list(self, call: Call, *, member_id: int | None) -> Reply:
        page = functools.partial(self._state.page_groups, member_id=member_id)
        return self._listing(call, "group", page, _encode_group)

    def join_group(self, call: Call) -> Reply:
        """POST /members/{memberId}/groups — 201 when added, 200 when already in it."""
        member = self._member(call)
        name = (optional_text(call.body, "name") or "").strip()
        if not name:
            raise ApiError(400, "missing_parameter", "name is required")
        group, added = self._state.join_group(member.id, name)
        return json_reply(201 if added else 200, group_json(group))

    def leave_groups(self, call: Call) -> Reply:
        """DELETE /members/{memberId}/groups — one named group (404 if not in it), or all."""
        member = self._member(call)
        name = (optional_text(call.body, "name") or "").strip()
        if not name:
            self._state.leave_all_groups(member.id)
        elif not self._state.leave_group(member.id, name):
            raise ApiError(404, "not_found", f"member {member.id} is not in group {name!r}")
        return self._removed()


def _encode_group(group: GroupRecord) -> bytes:
    return orjson.dumps(group_json(group))


Handler = Callable[[Endpoints, Call], Reply]


@frozen
class Endpoint:
    """A route: its handler and whether learners may call it."""

    handler: Handler
    learner: LearnerAccess = "never"


_M = "/api/v1/members/{memberId}"
_C = "/api/v1/courses/{courseId}"
_P = "/api/v1/programs/{programId}"
_CM = _C + "/members/{memberId}"
_PM = _P + "/members/{memberId}"

#: Every Coursepath endpoint of ``coursepath-api.md`` Part A.
ROUTES: Final[tuple[tuple[str, str, Endpoint], ...]] = (
    ("GET", "/api/v1/members/me", Endpoint(Endpoints.get_me, "always")),
    ("GET", "/api/v1/members", Endpoint(Endpoints.list_members)),
    ("POST", "/api/v1/members", Endpoint(Endpoints.create_member)),
    ("GET", _M, Endpoint(Endpoints.get_member, "self")),
    ("POST", _M, Endpoint(Endpoints.update_member)),
    ("GET", f"{_M}/courses", Endpoint(Endpoints.member_courses, "self")),
    ("GET", f"{_M}/groups", Endpoint(Endpoints.member_groups, "self")),
    ("POST", f"{_M}/groups", Endpoint(Endpoints.join_group)),
    ("DELETE", f"{_M}/groups", Endpoint(Endpoints.leave_groups)),
    ("POST", f"{_M}/invite", Endpoint(Endpoints.invite_member)),
    ("GET", "/api/v1/courses", Endpoint(Endpoints.list_courses)),
    ("GET", _C, Endpoint(Endpoints.get_course)),
    ("GET", f"{_C}/members", Endpoint(Endpoints.course_members)),
    ("POST", f"{_C}/members", Endpoint(Endpoints.create_course_member)),
    ("GET", f"{_CM}/coursemember", Endpoint(Endpoints.get_coursemember, "self")),
    ("POST", f"{_CM}/coursemember", Endpoint(Endpoints.enrol)),
    ("DELETE", f"{_CM}/coursemember", Endpoint(Endpoints.unenrol)),
    ("POST", f"{_CM}/invite", Endpoint(Endpoints.invite_course_member)),
    ("POST", f"{_P}/members", Endpoint(Endpoints.create_program_member)),
    ("POST", f"{_PM}/programmember", Endpoint(Endpoints.enrol_program)),
    ("DELETE", f"{_PM}/programmember", Endpoint(Endpoints.unenrol_program)),
    ("POST", f"{_PM}/invite", Endpoint(Endpoints.invite_program_member)),
    ("GET", "/api/v1/groups", Endpoint(Endpoints.list_groups)),
    ("GET", "/api/v1/groups/{groupId}/members", Endpoint(Endpoints.group_members)),
)

"""``client.courses``: courses, their learners, enrolments, results and invitations."""

from __future__ import annotations

from typing import Unpack

from .._models import Course, CourseMember, Member
from .._pagination import Paginator
from .._sansio import RequestKind
from ._base import (
    COURSE_PAGE_CAP,
    MEMBER_PAGE_CAP,
    MemberFields,
    MemberFilters,
    Resource,
    ident,
    invite_body,
    member_filters,
    new_member_body,
)
from ._members import create_member_at


class Courses(Resource):
    """Courses and course enrolment."""

    __slots__ = ()

    async def get(self, course_id: int) -> Course:
        """One course by id."""
        return await self._one("GET", f"/courses/{ident(course_id, 'course_id')}", Course)

    def list(self, *, page_size: int | None = None, window: int | None = None) -> Paginator[Course]:
        """All courses of the academy."""
        return self._list(
            "/courses", Course, cap=COURSE_PAGE_CAP, page_size=page_size, window=window
        )

    def members(
        self,
        course_id: int,
        *,
        page_size: int | None = None,
        window: int | None = None,
        **filters: Unpack[MemberFilters],
    ) -> Paginator[Member]:
        """The members of a course, optionally filtered like ``members.list``."""
        params = member_filters(filters)
        path = f"/courses/{ident(course_id, 'course_id')}/members"
        return self._list(
            path, Member, cap=MEMBER_PAGE_CAP, page_size=page_size, window=window, params=params
        )

    async def create_member(
        self,
        course_id: int,
        email: str,
        **fields: Unpack[MemberFields],
    ) -> Member:
        """Create a member and enrol them in the course as a learner.

        Safe to retry: if a retry answers "already exists" after an attempt that may
        have worked, the member is looked up by email and (idempotently) enrolled.
        """
        path = f"/courses/{ident(course_id, 'course_id')}/members"
        body = new_member_body(email, fields)
        member, _ = await create_member_at(self, path, body, lambda m: self.enroll(course_id, m.id))
        return member

    async def enroll(self, course_id: int, member_id: int) -> CourseMember:
        """Enrol a member in the course; enrolling twice is harmless."""
        return await self._one(
            "POST", _coursemember(course_id, member_id), CourseMember, kind=RequestKind.IDEMPOTENT
        )

    async def result(self, course_id: int, member_id: int) -> CourseMember:
        """The learner's result: score, success, completed date and certificate."""
        return await self._one("GET", _coursemember(course_id, member_id), CourseMember)

    async def unenroll(self, course_id: int, member_id: int) -> None:
        """Remove a member from the course. This DELETES their learning results in it."""
        await self._call(
            "DELETE",
            _coursemember(course_id, member_id),
            kind=RequestKind.IDEMPOTENT,
            missing_ok_after_retry=True,
        )

    async def invite(
        self,
        course_id: int,
        member_id: int,
        *,
        subject: str | None = None,
        body: str | None = None,
        action: str | None = None,
    ) -> None:
        """Send the course invitation email. Never retried once it may have been sent."""
        path = (
            f"/courses/{ident(course_id, 'course_id')}"
            f"/members/{ident(member_id, 'member_id')}/invite"
        )
        await self._call(
            "POST", path, body=invite_body(subject, body, action), kind=RequestKind.AT_MOST_ONCE
        )


def _coursemember(course_id: int, member_id: int) -> str:
    return (
        f"/courses/{ident(course_id, 'course_id')}"
        f"/members/{ident(member_id, 'member_id')}/coursemember"
    )

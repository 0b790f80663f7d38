"""``client.courses``: courses, their learners, enrolments, results and invitations."""

from __future__ import annotations

from typing import Unpack

from .._models import Course, CourseMember, Member
from .._pagination import Paginator
from ._base import (
    COURSE_PAGE_CAP,
    MEMBER_PAGE_CAP,
    MemberFields,
    MemberFilters,
    ident,
    member_filters,
)
from ._enrolment import Enrolments


class Courses(Enrolments[CourseMember]):
    """Courses and course enrolment."""

    __slots__ = ()
    _collection = "courses"
    _membership = CourseMember

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
        self, course_id: int, email: str, **fields: Unpack[MemberFields]
    ) -> Member:
        """Create a member and enrol them in the course as a learner.

        Safe to retry: if a retry answers "already exists" after an attempt that may
        have worked, the member is looked up by email and (idempotently) enrolled.
        """
        return await self._create_member(course_id, email, fields)

    async def enroll(self, course_id: int, member_id: int) -> CourseMember:
        """Enrol a member in the course; enrolling twice is harmless."""
        return await self._enroll(course_id, member_id)

    async def result(self, course_id: int, member_id: int) -> CourseMember:
        """The learner's result: score, success, completed date and certificate."""
        return await self._one("GET", self._member_path(course_id, member_id), CourseMember)

    async def unenroll(self, course_id: int, member_id: int) -> None:
        """Remove a member from the course. This DELETES their learning results in it."""
        await self._unenroll(course_id, member_id)

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
        await self._invite(course_id, member_id, subject, body, action)

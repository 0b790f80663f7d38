"""What courses and programs share: create-and-enrol, enrol, unenrol and invite.

The public methods stay on ``Courses`` and ``Programs`` (their parameters are named
``course_id`` / ``program_id``); this base holds the one implementation behind them.
"""

from __future__ import annotations

from typing import ClassVar, Generic, TypeVar, cast

from .._models import CourseMember, Member, ProgramMember
from .._sansio import RequestKind
from ._base import MemberFields, Resource, ident, invite_body, new_member_body
from ._members import create_member_at

Membership = TypeVar("Membership", CourseMember, ProgramMember)


class Enrolments(Resource, Generic[Membership]):
    """A collection members are enrolled in: ``/{collection}/{id}/members/{memberId}/...``."""

    __slots__ = ()

    _collection: ClassVar[str]  # "courses" / "programs"
    _membership: ClassVar[type[CourseMember] | type[ProgramMember]]

    async def _create_member(self, target_id: int, email: str, fields: MemberFields) -> Member:
        path = f"{self._root(target_id)}/members"
        body = new_member_body(email, fields)
        member, _ = await create_member_at(
            self, path, body, lambda m: self._enroll(target_id, m.id)
        )
        return member

    async def _enroll(self, target_id: int, member_id: int) -> Membership:
        path = self._member_path(target_id, member_id)
        membership = await self._one("POST", path, self._membership, kind=RequestKind.IDEMPOTENT)
        return cast(Membership, membership)

    async def _unenroll(self, target_id: int, member_id: int) -> None:
        await self._call(
            "DELETE",
            self._member_path(target_id, member_id),
            kind=RequestKind.IDEMPOTENT,
            missing_ok_after_retry=True,
        )

    async def _invite(
        self,
        target_id: int,
        member_id: int,
        subject: str | None,
        body: str | None,
        action: str | None,
    ) -> None:
        path = self._member_path(target_id, member_id, "invite")
        await self._call(
            "POST", path, body=invite_body(subject, body, action), kind=RequestKind.AT_MOST_ONCE
        )

    def _root(self, target_id: int) -> str:
        return f"/{self._collection}/{ident(target_id, self._collection[:-1] + '_id')}"

    def _member_path(self, target_id: int, member_id: int, leaf: str = "") -> str:
        leaf = leaf or f"{self._collection[:-1]}member"
        return f"{self._root(target_id)}/members/{ident(member_id, 'member_id')}/{leaf}"

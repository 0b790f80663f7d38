"""``client.programs``: program enrolment and invitations (the API has no program reads)."""

from __future__ import annotations

from typing import Unpack

from .._models import Member, ProgramMember
from .._sansio import RequestKind
from ._base import MemberFields, Resource, ident, invite_body, new_member_body
from ._members import create_member_at


class Programs(Resource):
    """Programs: enrol, unenrol, create-and-enrol, invite."""

    __slots__ = ()

    async def create_member(
        self,
        program_id: int,
        email: str,
        **fields: Unpack[MemberFields],
    ) -> Member:
        """Create a member and enrol them in the program (safe to retry, like courses)."""
        path = f"/programs/{ident(program_id, 'program_id')}/members"
        body = new_member_body(email, fields)
        member, _ = await create_member_at(
            self, path, body, lambda m: self.enroll(program_id, m.id)
        )
        return member

    async def enroll(self, program_id: int, member_id: int) -> ProgramMember:
        """Enrol a member in the program; enrolling twice is harmless."""
        return await self._one(
            "POST",
            _programmember(program_id, member_id),
            ProgramMember,
            kind=RequestKind.IDEMPOTENT,
        )

    async def unenroll(self, program_id: int, member_id: int) -> None:
        """Remove a member from the program."""
        await self._call(
            "DELETE",
            _programmember(program_id, member_id),
            kind=RequestKind.IDEMPOTENT,
            missing_ok_after_retry=True,
        )

    async def invite(
        self,
        program_id: int,
        member_id: int,
        *,
        subject: str | None = None,
        body: str | None = None,
        action: str | None = None,
    ) -> None:
        """Send the program invitation email. Never retried once it may have been sent."""
        path = (
            f"/programs/{ident(program_id, 'program_id')}"
            f"/members/{ident(member_id, 'member_id')}/invite"
        )
        await self._call(
            "POST", path, body=invite_body(subject, body, action), kind=RequestKind.AT_MOST_ONCE
        )


def _programmember(program_id: int, member_id: int) -> str:
    return (
        f"/programs/{ident(program_id, 'program_id')}"
        f"/members/{ident(member_id, 'member_id')}/programmember"
    )

"""``client.programs``: program enrolment and invitations (the API has no program reads)."""

from __future__ import annotations

from typing import Unpack

from .._models import Member, ProgramMember
from ._base import MemberFields
from ._enrolment import Enrolments


class Programs(Enrolments[ProgramMember]):
    """Programs: enrol, unenrol, create-and-enrol, invite."""

    __slots__ = ()
    _collection = "programs"
    _membership = ProgramMember

    async def create_member(
        self, program_id: int, email: str, **fields: Unpack[MemberFields]
    ) -> Member:
        """Create a member and enrol them in the program (safe to retry, like courses)."""
        return await self._create_member(program_id, email, fields)

    async def enroll(self, program_id: int, member_id: int) -> ProgramMember:
        """Enrol a member in the program; enrolling twice is harmless."""
        return await self._enroll(program_id, member_id)

    async def unenroll(self, program_id: int, member_id: int) -> None:
        """Remove a member from the program."""
        await self._unenroll(program_id, member_id)

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
        await self._invite(program_id, member_id, subject, body, action)

"""The academy's members as the planner matches rows against them.

A row is matched by externalId when it has one, else by email (case ignored); a key
two members share, or a match that contradicts itself, is a :class:`MatchConflict`.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Literal

from attrs import field, frozen

from .._models import Member
from ._rows import MemberRow

__all__ = ["AcademyIndex", "CurrentMember", "MatchConflict", "group_key"]


def _names(value: Iterable[str] | None) -> frozenset[str] | None:
    return None if value is None else frozenset(value)


def _ids(value: Iterable[int] | None) -> frozenset[int] | None:
    return None if value is None else frozenset(value)


@frozen(kw_only=True)
class CurrentMember:
    """What the academy has for one member; ``None`` groups/courses mean "not fetched"."""

    member: Member
    groups: frozenset[str] | None = field(default=None, converter=_names)
    courses: frozenset[int] | None = field(default=None, converter=_ids)


_Key = Literal["email", "externalId"]


class MatchConflict(Exception):
    """A row cannot be matched to a member without guessing."""


def group_key(name: str) -> str:
    """What two group names must share to mean one group: trimmed, case ignored."""
    return name.strip().casefold()


class AcademyIndex:
    """The academy's members indexed by lowercase email and by externalId, for matching.

    ``groups`` is the academy's group catalogue: a row naming one of them in another
    case (or with other surrounding spaces) gets the academy's spelling.
    """

    def __init__(self, members: Iterable[CurrentMember], groups: Iterable[str] = ()) -> None:
        self._spellings: dict[str, list[str]] = {}
        for name in groups:
            self._spellings.setdefault(group_key(name), []).append(name)
        self._index: dict[tuple[_Key, str], CurrentMember] = {}
        self._by_id: dict[int, Member] = {}
        # Keys held by more than one member: matching on them would be a guess.
        self._shared: dict[tuple[_Key, str], list[int]] = {}
        for current in members:
            self._by_id[current.member.id] = current.member
            self._add(("email", current.member.email.lower()), current)
            if current.member.external_id is not None:
                self._add(("externalId", current.member.external_id), current)

    def member(self, member_id: int | None) -> Member | None:
        """The indexed member with this id (a plan's ``member_id``), or None."""
        return None if member_id is None else self._by_id.get(member_id)

    def group_names(self) -> list[str]:
        """The academy's group catalogue, every spelling."""
        return [name for names in self._spellings.values() for name in names]

    def group_name(self, name: str) -> str:
        """The academy's spelling of this group (the exact one if it has it), else ``name``."""
        spellings = self._spellings.get(group_key(name))
        if not spellings:
            return name
        return name if name in spellings else spellings[0]

    def _add(self, key: tuple[_Key, str], current: CurrentMember) -> None:
        first = self._index.setdefault(key, current)
        if first.member.id != current.member.id:
            self._shared.setdefault(key, [first.member.id]).append(current.member.id)

    def _get(self, kind: _Key, value: str) -> CurrentMember | None:
        shared = self._shared.get((kind, value))
        if shared is not None:
            ids = ", ".join(map(str, shared))
            raise MatchConflict(f"{kind} {value!r} is shared by members {ids}")
        return self._index.get((kind, value))

    def match(self, row: MemberRow) -> CurrentMember | None:
        """The member this row describes, None for a new member; raises MatchConflict."""
        by_email = self._get("email", row.email_key)
        if row.external_id is None:
            return by_email
        by_id = self._get("externalId", row.external_id)
        if by_id is not None:
            if by_email is not None and by_email.member.id != by_id.member.id:
                raise MatchConflict(
                    f"externalId {row.external_id!r} is member {by_id.member.id} "
                    f"({by_id.member.email}) but {row.email} is member {by_email.member.id}"
                )
            return by_id
        if by_email is not None and by_email.member.external_id is not None:
            raise MatchConflict(
                f"{row.email} is member {by_email.member.id} with externalId "
                f"{by_email.member.external_id!r}, not {row.external_id!r}"
            )
        return by_email

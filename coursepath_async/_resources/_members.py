"""``client.members``: the calling member, lookups, listings, create/update, groups, invites."""

from __future__ import annotations

import builtins
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, Unpack

from .._exceptions import (
    BadRequestError,
    ConflictError,
    InvalidInputError,
    UnprocessableEntityError,
)
from .._models import Course, Group, Member
from .._pagination import Paginator
from .._sansio import RequestKind
from .._validation import check_group_name, short_repr, validate_email, validate_group_name
from ._base import (
    COURSE_PAGE_CAP,
    GROUP_PAGE_CAP,
    MEMBER_PAGE_CAP,
    MemberFields,
    MemberFilters,
    Resource,
    ident,
    invite_body,
    member_body,
    member_filters,
    new_member_body,
)


class Members(Resource):
    """Members of the academy."""

    __slots__ = ()

    async def me(self) -> Member:
        """The member this client (or view) acts as."""
        return await self._one("GET", "/members/me", Member)

    async def get(self, member_id: int) -> Member:
        """One member by id."""
        return await self._one("GET", f"/members/{ident(member_id, 'member_id')}", Member)

    def list(
        self,
        *,
        page_size: int | None = None,
        window: int | None = None,
        **filters: Unpack[MemberFilters],
    ) -> Paginator[Member]:
        """All members matching the filters (``email=``, ``company=``, ...), streamed."""
        return self._list(
            "/members",
            Member,
            cap=MEMBER_PAGE_CAP,
            page_size=page_size,
            window=window,
            params=member_filters(filters),
        )

    async def find_by_email(self, email: str) -> Member | None:
        """The member with this email (case-insensitive), or ``None``.

        One request with the email as given, whatever case the server's filter
        matches in; a second, lower-cased, only when that finds nothing and the two
        differ.
        """
        given = validate_email(email)
        wanted = given.lower()
        for query in dict.fromkeys((given, wanted)):
            params = member_filters({"email": query})
            page = await self._first_page("/members", Member, cap=MEMBER_PAGE_CAP, params=params)
            found = next((m for m in page if m.email.lower() == wanted), None)
            if found is not None:
                return found
        return None

    async def find_by_external_id(self, external_id: str) -> builtins.list[Member]:
        """The members carrying this externalId (normally one); one request."""
        if not isinstance(external_id, str) or not external_id:
            # None would drop the filter and "match" every member without an externalId.
            raise InvalidInputError(
                f"external_id must be a non-empty string, got {short_repr(external_id)}",
                argument="external_id",
            )
        params = member_filters({"external_id": external_id})
        matches = await self._first_page("/members", Member, cap=MEMBER_PAGE_CAP, params=params)
        return [m for m in matches if m.external_id == external_id]

    async def create(self, email: str, **fields: Unpack[MemberFields]) -> Member:
        """Create a member; without ``name`` Coursepath derives one from the email.

        Safe to retry: if an earlier attempt may have worked and a retry answers
        "already exists", the member is looked up by email instead of failing.
        """
        member, _ = await create_member_at(self, "/members", new_member_body(email, fields))
        return member

    async def update(
        self, member_id: int, *, email: str | None = None, **fields: Unpack[MemberFields]
    ) -> Member:
        """Change the given fields of a member; fields left out are not touched."""
        body = member_body(email, fields)
        if not body:
            raise InvalidInputError(
                "update needs at least one of email or the member fields to change",
                argument="email",
            )
        path = f"/members/{ident(member_id, 'member_id')}"
        return await self._one("POST", path, Member, body=body, kind=RequestKind.IDEMPOTENT)

    async def invite(
        self,
        member_id: int,
        *,
        subject: str | None = None,
        body: str | None = None,
        action: str | None = None,
    ) -> None:
        """Send (or re-send) the invitation email. Never retried once it may have been sent."""
        path = f"/members/{ident(member_id, 'member_id')}/invite"
        await self._call(
            "POST", path, body=invite_body(subject, body, action), kind=RequestKind.AT_MOST_ONCE
        )

    def courses(
        self, member_id: int, *, page_size: int | None = None, window: int | None = None
    ) -> Paginator[Course]:
        """The courses of a member."""
        path = f"/members/{ident(member_id, 'member_id')}/courses"
        return self._list(path, Course, cap=COURSE_PAGE_CAP, page_size=page_size, window=window)

    def groups(
        self, member_id: int, *, page_size: int | None = None, window: int | None = None
    ) -> Paginator[Group]:
        """The groups of a member."""
        path = f"/members/{ident(member_id, 'member_id')}/groups"
        return self._list(path, Group, cap=GROUP_PAGE_CAP, page_size=page_size, window=window)

    async def add_to_group(self, member_id: int, name: str) -> None:
        """Add the member to the group with this name (already in it is fine)."""
        path = f"/members/{ident(member_id, 'member_id')}/groups"
        body = {"name": validate_group_name(name)}
        await self._call("POST", path, body=body, kind=RequestKind.IDEMPOTENT)

    async def remove_from_group(self, member_id: int, name: str) -> None:
        """Remove the member from one group (NotFoundError if not in it).

        ``name`` is sent exactly as given (only a blank one is refused), so a group the
        academy spells with stray spaces, as :meth:`groups` lists it, can be targeted.
        """
        path = f"/members/{ident(member_id, 'member_id')}/groups"
        params = {"name": check_group_name(name)}
        await self._call(
            "DELETE", path, params=params, kind=RequestKind.IDEMPOTENT, missing_ok_after_retry=True
        )

    async def remove_from_all_groups(self, member_id: int) -> None:
        """Remove the member from every group: deliberately its own, explicit method."""
        path = f"/members/{ident(member_id, 'member_id')}/groups"
        await self._call("DELETE", path, kind=RequestKind.IDEMPOTENT)


#: Answers a server may give a create whose email exists (a real one may say 400).
_MAYBE_EXISTS = (BadRequestError, ConflictError, UnprocessableEntityError)


async def create_member_at(
    resource: Resource,
    path: str,
    body: Mapping[str, Any],
    enrol: Callable[[Member], Awaitable[object]] | None = None,
    *,
    resolve_existing: bool = False,
) -> tuple[Member, bool | None]:
    """POST a member create; "already exists" after an uncertain attempt becomes a lookup.

    Returns the member and who created it: True this call (answered 2xx); None unknown
    (an attempt may have created it before a retry answered "exists"); False someone
    else, before this call (only with ``resolve_existing``: a first answer of 400, 409
    or 422 is then looked up too, instead of raised). A "maybe exists" answer whose
    email is not found is raised as it came. ``enrol`` re-applies the enrolment a
    create-and-enrol endpoint would have done.
    """
    try:
        created = await resource._one("POST", path, Member, body=body, kind=RequestKind.CREATE)
        return created, True
    except _MAYBE_EXISTS as exc:
        if not (exc.after_unknown_outcome or resolve_existing):
            raise
        found = await Members(resource._core, resource._ctx).find_by_email(body["email"])
        if found is None:
            raise
        if enrol is not None:
            await enrol(found)
        return found, None if exc.after_unknown_outcome else False

"""``client.groups``: the academy's groups and their members."""

from __future__ import annotations

from .._models import Group, Member
from .._pagination import Paginator
from ._base import GROUP_PAGE_CAP, MEMBER_PAGE_CAP, Resource, ident


class Groups(Resource):
    """Groups (membership changes live on ``client.members``)."""

    __slots__ = ()

    def list(self, *, page_size: int | None = None, window: int | None = None) -> Paginator[Group]:
        """All groups of the academy."""
        return self._list("/groups", Group, cap=GROUP_PAGE_CAP, page_size=page_size, window=window)

    def members(
        self, group_id: int, *, page_size: int | None = None, window: int | None = None
    ) -> Paginator[Member]:
        """The members of a group."""
        path = f"/groups/{ident(group_id, 'group_id')}/members"
        return self._list(path, Member, cap=MEMBER_PAGE_CAP, page_size=page_size, window=window)

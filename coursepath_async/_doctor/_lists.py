"""List endpoints, sans I/O: the shape of a page, the effective page cap, what the SDK makes of it.

A page cap is only *confirmed* when records exist beyond a short page (the page after
it is not empty, or a wrapped answer's ``total`` says so); an endpoint holding fewer
records than were asked for shows only that its cap is *at least* that many.
"""

from __future__ import annotations

from typing import Any, Final

from attrs import evolve, frozen

from .._cursor import PageCursor
from .._resources._base import COURSE_PAGE_CAP, GROUP_PAGE_CAP, MEMBER_PAGE_CAP
from .._sansio import LIST_KEYS, list_total
from ._observed import Exchange, ListProbe

#: The page size the SDK asks each list endpoint for.
SDK_PAGE_SIZES: Final = {
    "/members": MEMBER_PAGE_CAP,
    "/courses": COURSE_PAGE_CAP,
    "/groups": GROUP_PAGE_CAP,
    "/members/{id}/courses": COURSE_PAGE_CAP,
    "/members/{id}/groups": GROUP_PAGE_CAP,
    "/courses/{id}/members": MEMBER_PAGE_CAP,
    "/groups/{id}/members": MEMBER_PAGE_CAP,
}


def page_records(data: Any) -> tuple[list[Any] | None, str]:
    """A page's records as the SDK reads them, and its shape: ``bare``, ``wrapped``, ``invalid``."""
    if isinstance(data, list):
        return data, "bare"
    if isinstance(data, dict):
        for key in LIST_KEYS:
            if isinstance(data.get(key), list):
                return data[key], "wrapped"
    return None, "invalid"


def page_count(exchange: Exchange) -> int | None:
    """How many records a successful page holds; None for a failure or an unreadable page."""
    if not exchange.ok:
        return None
    records, _ = page_records(exchange.json())
    return None if records is None else len(records)


def first_ids(exchange: Exchange) -> list[int]:
    """The ids of a page's records, in order (records without an integer id skipped)."""
    if not exchange.ok:
        return []
    records, _ = page_records(exchange.json())
    ids = [r.get("id") if isinstance(r, dict) else None for r in records or ()]
    return [i for i in ids if type(i) is int and i > 0]


@frozen(kw_only=True)
class ListFinding:
    """What one list endpoint showed."""

    path: str
    #: ``bare``, ``wrapped``, ``invalid`` or ``failed`` (no successful answer).
    shape: str
    asked: int
    returned: int | None = None
    #: The effective page cap, when confirmed.
    cap: int | None = None
    #: A lower bound of the cap, when it is not confirmed.
    at_least: int | None = None
    total: int | None = None
    #: Whether a listing through the SDK reaches every record at this cap (None: unknown).
    sdk_lists_all: bool | None = None
    #: Why the endpoint could not be judged, or what is wrong with it.
    problem: str | None = None
    status: int | None = None


def judge_list(probe: ListProbe, *, sdk_page_size: int) -> ListFinding:
    """The finding of one list endpoint from its first page and the page after it."""
    first, asked = probe.first, probe.limit
    if not first.ok:
        what = first.error or f"answered {first.status}"
        return ListFinding(
            path=probe.path, shape="failed", asked=asked, problem=what, status=first.status
        )
    data = first.json()
    records, shape = page_records(data)
    total = list_total(data)
    if records is None:
        return ListFinding(
            path=probe.path,
            shape=shape,
            asked=asked,
            problem=(
                "the answer is neither a JSON array of records nor one wrapped under a key "
                f"the SDK reads ({', '.join(LIST_KEYS)})"
            ),
        )
    found = ListFinding(
        path=probe.path, shape=shape, asked=asked, returned=len(records), total=total
    )
    n = len(records)
    if n > asked:
        problem = f"{n:,} records answered a request for {asked:,}: the SDK refuses such pages"
        return evolve(found, problem=problem)
    if n == asked:
        return evolve(found, at_least=n, sdk_lists_all=True)
    beyond = _records_beyond(probe.following)
    if (total is not None and total > n) or (beyond is not None and beyond > 0 and n > 0):
        if _repeats(first, probe.following):
            problem = "the page after the first repeats it: the server seems to ignore offset"
            return evolve(found, cap=n, problem=problem, sdk_lists_all=False)
        return evolve(found, cap=n, sdk_lists_all=sdk_lists_all(n, sdk_page_size))
    # Everything the endpoint holds fit in one page: the cap is that many or more.
    return evolve(found, at_least=n, sdk_lists_all=True)


def _records_beyond(following: Exchange | None) -> int | None:
    return None if following is None else page_count(following)


def _repeats(first: Exchange, following: Exchange | None) -> bool:
    """Whether the page after ``first`` starts with the same record (offset ignored)."""
    if following is None:
        return False
    a, b = first_ids(first), first_ids(following)
    return bool(a and b and a[0] == b[0])


def sdk_lists_all(cap: int, page_size: int) -> bool:
    """Whether the SDK's page walk, asking ``page_size``, gets a whole listing capped at ``cap``.

    Simulated on the SDK's own :class:`PageCursor`, over listings of a few sizes, so
    the answer follows the cursor's rules rather than restating them.
    """
    size = max(cap, page_size)
    return all(_walk(cap, page_size, total) == total for total in (3 * size + 1, 3 * cap))


def _walk(cap: int, page_size: int, total: int) -> int:
    cursor: PageCursor[int] = PageCursor(page_size=page_size, key=None)
    got = 0
    while not cursor.done:
        request = cursor.next_request()
        if request is None:
            break
        count = max(0, min(request.limit, cap, total - request.offset))
        got += len(cursor.feed(list(range(request.offset, request.offset + count))).records)
    return got


def overall_shape(findings: list[ListFinding]) -> str:
    """``bare`` or ``wrapped`` when every answered list agrees, ``mixed``, or ``unknown``."""
    shapes = {f.shape for f in findings if f.shape in ("bare", "wrapped")}
    if not shapes:
        return "unknown"
    return shapes.pop() if len(shapes) == 1 else "mixed"

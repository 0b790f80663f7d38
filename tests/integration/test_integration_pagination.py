"""Listings over real HTTP: silent caps, inserts mid-listing, page windows, big academies."""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest
from _support import serving

from coursepath_async import CoursepathClient, Member
from coursepath_async.testing import SandboxAcademy


def assert_unique(ids: list[int]) -> None:
    """No record was yielded twice."""
    repeated = sorted(i for i, n in Counter(ids).items() if n > 1)
    assert not repeated, f"yielded more than once: {repeated[:10]}"


async def test_server_capped_pages_are_followed_to_the_end() -> None:
    """With the academy capping member pages at 50 and the client asking 50, all 237 arrive once."""
    async with serving(members=237, member_page_size=50) as (academy, client):
        ids = [m.id async for m in client.members.list(page_size=50, window=1)]
        assert ids == [r.id for r in academy.state.members()]
        assert academy.recorder.count("GET", "/members") == 5  # 4 full pages, 1 short


async def test_page_size_below_the_server_cap_is_followed_to_the_end() -> None:
    """Asking 30 from an academy capping at 50: short-of-the-cap pages of 30 do not end it early."""
    async with serving(members=130, member_page_size=50) as (academy, client):
        ids = [m.id async for m in client.members.list(page_size=30)]
        assert ids == [r.id for r in academy.state.members()]


async def listed_ids(client: CoursepathClient, kind: str) -> list[int]:
    """The ids of a whole listing, with the client's default page size."""
    if kind == "members":
        return [m.id async for m in client.members.list()]
    if kind == "courses":
        return [c.id async for c in client.courses.list()]
    return [g.id async for g in client.groups.list()]


def academy_ids(academy: SandboxAcademy, kind: str) -> list[int]:
    """The ids the academy holds, in listing order."""
    state = academy.state
    if kind == "members":
        return [r.id for r in state.members()]
    if kind == "courses":
        return [r.id for r in state.courses()]
    return [r.id for r in state.groups()]


@pytest.mark.parametrize(
    ("kind", "options"),
    [
        ("members", {"members": 237, "member_page_size": 100}),
        ("courses", {"courses": 260, "course_page_size": 100}),
    ],
)
async def test_default_page_size_above_a_smaller_server_cap_still_lists_everything(
    kind: str, options: dict[str, Any]
) -> None:
    """An endpoint capping at a smaller documented cap than assumed is listed to the end.

    The client asks for its built-in cap (500/250); the academy silently answers 100,
    one of Coursepath's documented caps, so that short page is a cap, not the end.
    """
    async with serving(**options) as (academy, client):
        ids = await listed_ids(client, kind)
        expected = academy_ids(academy, kind)
        assert ids == expected, f"got {len(ids)} of {len(expected)} {kind}"


async def test_inserts_between_pages_of_a_newest_first_listing_yield_no_duplicates() -> None:
    """New members pushed in front of a newest-first listing shift offsets; nothing repeats."""
    async with serving(members=95, list_order="newest_first") as (academy, client):
        original = [r.id for r in academy.state.members()]
        ids: list[int] = []
        pages = client.members.list(page_size=10, window=1).pages()
        async for page in pages:
            ids.extend(m.id for m in page)
            for n in range(3):  # applied before the next page's request is served
                academy.state.add_member(f"late{len(ids)}-{n}@example.org")
        assert_unique(ids)
        assert set(original) <= set(ids)
        assert academy.recorder.count("GET", "/members") >= 10


async def test_a_burst_of_inserts_bigger_than_a_page_yields_no_duplicates() -> None:
    """Even 25 members inserted between two pages of 10 never make a record appear twice."""
    async with serving(members=95, list_order="newest_first") as (academy, client):
        original = [r.id for r in academy.state.members()]
        ids: list[int] = []
        first = True
        async for page in client.members.list(page_size=10, window=1).pages():
            ids.extend(m.id for m in page)
            if first:
                for n in range(25):
                    academy.state.add_member(f"burst{n}@example.org")
                first = False
        assert set(original) <= set(ids)
        assert_unique(ids)


@pytest.mark.parametrize("window", [2, 4, 9])
async def test_windowed_listing_equals_sequential_listing(window: int) -> None:
    """window>1 fetches pages in parallel yet yields the same records in the same order."""
    async with serving(members=1_030, member_page_size=100) as (academy, client):
        sequential = [m.id async for m in client.members.list(page_size=100, window=1)]
        sequential_requests = academy.recorder.count("GET", "/members")
        academy.recorder.reset()
        windowed = [m.id async for m in client.members.list(page_size=100, window=window)]
        assert windowed == sequential == [r.id for r in academy.state.members()]
        assert sequential_requests == 11
        assert academy.recorder.peak_in_flight <= window
        assert academy.recorder.count("GET", "/members") <= 11 + window


async def test_a_2500_member_listing_is_complete_and_duplicate_free() -> None:
    """A 2,500-member academy lists completely with the default page size and window."""
    async with serving(members=2_500, courses=2, groups=2) as (academy, client):
        members: list[Member] = []
        async for page in client.members.list().pages():
            assert 0 < len(page) <= 500
            members.extend(page)
        ids = [m.id for m in members]
        assert_unique(ids)
        assert ids == [r.id for r in academy.state.members()]
        assert len(ids) == 2_500
        assert members[-1].email == academy.state.members()[-1].email


async def test_sub_listings_page_through_course_and_group_members() -> None:
    """Course and group member lists page with silent caps like the main listing."""
    async with serving(members=400, courses=2, groups=2, member_page_size=25) as (academy, client):
        state = academy.state
        course_id = state.courses()[0].id
        group_id = state.groups()[0].id
        course_ids = [m.id async for m in client.courses.members(course_id, page_size=25)]
        group_ids = [m.id async for m in client.groups.members(group_id, page_size=25)]
        assert course_ids == [e.member_id for e in state.enrolments(course_id)]
        assert group_ids == state.group_member_ids(group_id)
        assert len(course_ids) > 25
        assert len(group_ids) > 25

"""The sans-I/O page cursor, fed recorded pages synchronously: no event loop, no server."""

from __future__ import annotations

from collections.abc import Callable, Hashable, Mapping

import pytest

from coursepath_async import APIResponseValidationError
from coursepath_async._cursor import (
    PAGE_BODY_FLOOR,
    RECORD_BYTES,
    STUCK_PAGES,
    Page,
    PageCursor,
    PageRequest,
    Step,
    _SeenKeys,
    page_body_limit,
)

URL = "https://acme.example.com/api/v1/members"

#: Recorded answers of a sandbox academy of 237 members capping member pages at 100,
#: asked for pages of 500: offset -> the ids of the page it answered.
CAPPED_AT_100 = {0: range(1, 101), 100: range(101, 201), 200: range(201, 238), 300: range(0)}


def ident(record: int) -> Hashable:
    """Records in these tests are their own ids."""
    return record


def cursor(
    page_size: int = 500,
    *,
    key: Callable[[int], Hashable] | None = ident,
    max_records: int = 10_000_000,
) -> PageCursor[int]:
    """A cursor over int records, keyed by themselves unless told otherwise."""
    return PageCursor(page_size=page_size, key=key, max_records=max_records, url=URL)


def walk(
    pages: Mapping[int, range | list[int]], cur: PageCursor[int], *, window: int = 1
) -> tuple[list[int], list[PageRequest]]:
    """Drive ``cur`` like the paginator does: refill up to ``window``, feed in order."""
    records: list[int] = []
    requests: list[PageRequest] = []
    outstanding: list[PageRequest] = []
    while not cur.done:
        while len(outstanding) < window and (request := cur.next_request()) is not None:
            outstanding.append(request)
            requests.append(request)
        request = outstanding.pop(0)
        answer = list(pages.get(request.offset, ()))[: request.limit]
        records += cur.feed(answer).records
    return records, requests


def test_the_first_page_goes_alone() -> None:
    """Before any answer, the cursor asks for one page of the page size, then waits."""
    cur = cursor(250)
    assert cur.next_request() == PageRequest(0, 250)
    assert cur.next_request() is None


def test_a_short_page_ends_the_listing() -> None:
    """A page shorter than the page size (not a documented cap) is the last one."""
    cur = cursor(10)
    assert cur.next_request() == PageRequest(0, 10)
    assert cur.feed([1, 2, 3]) == Step([1, 2, 3], done=True)
    assert cur.done
    assert cur.next_request() is None


def test_an_empty_first_page_is_an_empty_listing() -> None:
    """``[]`` as the first answer ends the listing with nothing to hand out."""
    cur = cursor()
    cur.next_request()
    assert cur.feed([]) == Step([], done=True)


def test_a_recorded_listing_under_a_smaller_silent_cap_is_followed_to_the_end() -> None:
    """Asked 500, answered 100 (a documented cap): it goes on from 100, then the window opens."""
    records, requests = walk(CAPPED_AT_100, cursor(), window=4)
    assert records == list(range(1, 238))
    assert requests[:2] == [PageRequest(0, 500), PageRequest(100, 500)]
    assert [r.offset for r in requests[2:]] == [200, 300, 400, 500]


def test_a_smaller_cap_page_keeps_the_walk_one_page_at_a_time() -> None:
    """After a page of exactly a documented cap, only its follower may be in flight."""
    cur = cursor()
    cur.next_request()
    assert cur.feed(list(range(100))) == Step(list(range(100)), done=False)
    assert cur.next_request() == PageRequest(100, 500)
    assert cur.next_request() is None


def test_a_listing_of_exactly_a_documented_cap_costs_one_more_request() -> None:
    """100 records asked as 500: the 100 look like a cap, and the empty follower ends it."""
    records, requests = walk({0: range(100)}, cursor())
    assert records == list(range(100))
    assert requests == [PageRequest(0, 500), PageRequest(100, 500)]


def test_once_a_full_page_confirms_the_size_requests_run_ahead() -> None:
    """After one full page, every call gives the next offset, one page apart."""
    cur = cursor(10)
    cur.next_request()
    cur.feed(list(range(10)))
    assert [cur.next_request() for _ in range(3)] == [
        PageRequest(10, 10),
        PageRequest(20, 10),
        PageRequest(30, 10),
    ]


def test_a_documented_cap_length_after_confirmation_is_the_end() -> None:
    """With the size confirmed at 500, a page of 250 is a short page, not a smaller cap."""
    pages = {0: range(500), 500: range(500, 750), 750: range(750, 1000)}
    records, requests = walk(pages, cursor(), window=2)
    assert records == list(range(750))
    assert [r.offset for r in requests] == [0, 500, 1000]


def test_the_end_drops_the_requests_run_ahead() -> None:
    """Pages requested beyond the end are forgotten: the cursor is done, nothing to feed."""
    cur = cursor(10)
    cur.next_request()
    cur.feed(list(range(10)))
    cur.next_request()
    cur.next_request()
    assert cur.feed([10, 11]).done
    with pytest.raises(RuntimeError, match="outstanding"):
        cur.feed([])


def test_feeding_without_a_request_is_a_programming_error() -> None:
    """A page fed that no request asked for raises RuntimeError, not a wrong walk."""
    with pytest.raises(RuntimeError, match="outstanding"):
        cursor().feed([1])


def test_records_repeated_by_offset_drift_are_handed_out_once() -> None:
    """Inserts mid-listing push records onto the next page; each id comes out once."""
    pages = {0: [0, 1, 2], 3: [2, 3, 4], 6: [4, 5]}
    assert walk(pages, cursor(3))[0] == [0, 1, 2, 3, 4, 5]


def test_a_full_page_of_only_repeats_does_not_end_the_listing() -> None:
    """A full page whose records were all seen gives nothing and the walk goes on."""
    cur = cursor(2)
    cur.next_request()
    cur.feed([0, 1])
    cur.next_request()
    assert cur.feed([0, 1]) == Step([], done=False)
    assert cur.next_request() == PageRequest(4, 2)


def test_without_a_key_records_come_out_as_received() -> None:
    """``key=None`` hands out repeats too, and so never judges a page stale."""
    pages = {0: [0, 1], 2: [0, 1], 4: [0, 1], 6: [0, 1], 8: [0, 1], 10: [1]}
    records, _ = walk(pages, cursor(2, key=None))
    assert records == [0, 1] * 5 + [1]


def test_a_server_ignoring_offset_is_refused_after_stuck_pages() -> None:
    """The same full page at every offset raises after STUCK_PAGES pages of nothing new."""
    cur = cursor(5)
    for _ in range(STUCK_PAGES):  # the first page, then all but the last stale one
        cur.next_request()
        cur.feed([0, 1, 2, 3, 4])
    cur.next_request()
    with pytest.raises(APIResponseValidationError, match="ignore offset") as info:
        cur.feed([0, 1, 2, 3, 4])
    assert (info.value.method, info.value.url) == ("GET", URL)
    assert cur.done
    assert cur.next_request() is None


def test_a_page_of_more_records_than_asked_for_is_refused() -> None:
    """A page longer than its request's limit raises, naming the sizes, and ends the walk."""
    cur = cursor(10)
    cur.next_request()
    with pytest.raises(APIResponseValidationError, match=r"of 11 records .* at most 10") as info:
        cur.feed(list(range(11)))
    assert info.value.url == URL
    assert cur.done


def test_a_page_body_may_hold_a_generous_size_per_record_asked_for() -> None:
    """The body cap of a page grows with its limit, with a floor for tiny pages."""
    assert page_body_limit(1) == PAGE_BODY_FLOOR
    assert page_body_limit(500) == 500 * RECORD_BYTES
    assert page_body_limit(500) < 64 * 1024 * 1024  # well under the transport's cap


def fresh_pages(cur: PageCursor[int], *, total: int | None = None) -> int:
    """Feed ``cur`` full pages of ids never seen, as an endless server would; count them."""
    fed = 0
    while (request := cur.next_request()) is not None:
        ids = list(range(request.offset, request.offset + request.limit))
        cur.feed(Page(ids, total))
        fed += 1
    return fed


def test_fresh_pages_forever_are_refused_past_twice_the_announced_total() -> None:
    """With a total of 1,200 announced, full pages of new ids stop past 2 x 1,200 + 2 pages."""
    cur = cursor(500)
    with pytest.raises(APIResponseValidationError, match="announced a total of 1,200") as info:
        fresh_pages(cur, total=1_200)
    assert "went on past 3,500 records" in str(info.value)
    assert cur.done


def test_the_largest_total_announced_sets_the_bound() -> None:
    """A total announced later and smaller (2 x 10 + 2 pages < 300) does not shrink the bound."""
    cur = cursor(100)
    for offset, total in [(0, 100), (100, 1_000), (200, 10)]:
        cur.next_request()
        step = cur.feed(Page(list(range(offset, offset + 100)), total))
        assert not step.done
    cur.next_request()
    assert cur.feed(Page([300], 10)) == Step([300], done=True)


def test_fresh_pages_forever_are_refused_past_max_records() -> None:
    """Without a total, the listing stops once it passes ``max_records`` records."""
    cur = cursor(500, max_records=2_000)
    with pytest.raises(APIResponseValidationError, match=r"past 2,000 records \(max_records\)"):
        fresh_pages(cur)


def test_a_listing_of_exactly_max_records_ends_normally() -> None:
    """``max_records`` records, then the empty page, is a complete listing, not an error."""
    records, _ = walk({0: range(500), 500: range(500, 1_000)}, cursor(500, max_records=1_000))
    assert records == list(range(1_000))


def test_seen_keys_outside_the_bitmaps_are_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    """Keys the bitmaps cannot hold are kept for the most recent ones only: bounded memory."""
    monkeypatch.setattr(_SeenKeys, "_RECENT_LIMIT", 8)
    seen = _SeenKeys()
    big = [(1 << 40) + i for i in range(100)]
    assert all(seen.add(key) for key in big)
    assert len(seen._other) == len(seen._order) == 8
    assert not any(seen.add(key) for key in big[-8:])  # the recent ones are still known
    assert seen.add(big[0])  # long gone: forgotten


def test_repr_shows_the_walk_state() -> None:
    """The repr says where the walk is: next offset, cap, confirmation, requests out."""
    cur = cursor(10)
    cur.next_request()
    cur.feed(Page(list(range(10)), 25))
    cur.next_request()
    assert repr(cur) == (
        "<PageCursor next_offset=20 cap=10 confirmed outstanding=1 stale=0 total=25>"
    )

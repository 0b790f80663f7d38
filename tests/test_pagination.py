"""Streaming offset/limit pagination against a fake page fetcher."""

from __future__ import annotations

import asyncio
import logging
import re
import sys
from collections.abc import Callable, Hashable
from typing import Any

import pytest

from coursepath_async import APIResponseValidationError, Paginator
from coursepath_async._cursor import STUCK_PAGES, _SeenKeys


class FakeListing:
    """A server-side listing of ints that silently caps page sizes and counts fetches."""

    def __init__(
        self,
        total: int,
        *,
        server_cap: int = 10_000,
        delays: Callable[[int], int] | None = None,
    ) -> None:
        self.records = list(range(total))
        self.server_cap = server_cap
        self.delays = delays
        self.calls: list[tuple[int, int]] = []
        self.in_flight = 0
        self.max_in_flight = 0

    async def fetch(self, offset: int, limit: int) -> list[int]:
        self.calls.append((offset, limit))
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            # Yield to the loop a few times so parallel fetches really overlap.
            for _ in range(self.delays(offset) if self.delays else 2):
                await asyncio.sleep(0)
            return self.records[offset : offset + min(limit, self.server_cap)]
        finally:
            self.in_flight -= 1


def _identity(record: int) -> Hashable:
    return record


def _paginator(
    listing: FakeListing,
    *,
    page_size: int,
    cap: int = 10_000,
    window: int = 1,
    key: Callable[[int], Hashable] | None = _identity,
) -> Paginator[int]:
    return Paginator(listing.fetch, page_size=page_size, cap=cap, window=window, key=key)


async def test_stops_on_a_short_page() -> None:
    """A page shorter than the page size is the last one: no extra request."""
    listing = FakeListing(7)
    records = [r async for r in _paginator(listing, page_size=3)]
    assert records == list(range(7))
    assert listing.calls == [(0, 3), (3, 3), (6, 3)]


async def test_stops_on_an_empty_page() -> None:
    """When the total is a multiple of the page size, an empty page ends the listing."""
    listing = FakeListing(6)
    records = [r async for r in _paginator(listing, page_size=3)]
    assert records == list(range(6))
    assert listing.calls == [(0, 3), (3, 3), (6, 3)]


async def test_empty_listing_costs_one_request() -> None:
    """An empty listing yields nothing after a single request."""
    listing = FakeListing(0)
    assert [r async for r in _paginator(listing, page_size=5, window=4)] == []
    assert listing.calls == [(0, 5)]


async def test_small_listing_costs_one_request_even_with_a_window() -> None:
    """The first page goes alone, so a one-page listing never fans out."""
    listing = FakeListing(3)
    assert await _paginator(listing, page_size=5, window=4).collect() == [0, 1, 2]
    assert listing.calls == [(0, 5)]


async def test_requested_size_above_the_cap_is_capped() -> None:
    """Asking for more than the endpoint's cap requests the cap, and full capped pages continue."""
    listing = FakeListing(1_200, server_cap=500)
    paginator = _paginator(listing, page_size=1_000, cap=500)
    assert paginator.page_size == 500
    records = [r async for r in paginator]
    assert records == list(range(1_200))
    assert listing.calls == [(0, 500), (500, 500), (1_000, 500)]


async def test_requested_size_below_the_cap_is_kept() -> None:
    """A page size under the cap is used as is."""
    listing = FakeListing(25)
    paginator = _paginator(listing, page_size=10, cap=500)
    assert paginator.page_size == 10
    assert len(await paginator.collect()) == 25
    assert [limit for _, limit in listing.calls] == [10, 10, 10]


async def test_window_fetches_in_parallel_and_keeps_order() -> None:
    """With window=4, four pages are in flight at once, yet records come out in order."""
    # Later pages answer faster, so completion order is the reverse of listing order.
    listing = FakeListing(103, delays=lambda offset: 20 - offset // 10)
    paginator = _paginator(listing, page_size=10, window=4)
    pages = [page async for page in paginator.pages()]
    assert [r for page in pages for r in page] == list(range(103))
    assert [len(p) for p in pages] == [10] * 10 + [3]
    assert listing.max_in_flight == 4
    assert sorted(offset for offset, _ in listing.calls) == [
        o * 10 for o in range(len(listing.calls))
    ]


async def test_window_bounds_fetches_ahead() -> None:
    """A slow consumer never has more than ``window`` pages fetched ahead of it."""
    listing = FakeListing(1_000)
    paginator = _paginator(listing, page_size=10, window=3)
    async for page in paginator.pages():
        await asyncio.sleep(0)
        await asyncio.sleep(0)
        consumed_through = page[-1] + 1
        fetched_through = max(offset + limit for offset, limit in listing.calls)
        assert fetched_through - consumed_through <= 3 * 10
    assert listing.max_in_flight <= 3


async def test_the_window_is_refilled_only_when_the_consumer_asks_for_more() -> None:
    """While a page is held, at most window - 1 are in flight; stopping causes no request."""
    listing = FakeListing(1_000)
    pages = _paginator(listing, page_size=10, window=4).pages()
    for expected_calls in (1, 5, 6):
        await anext(pages)
        for _ in range(5):  # let any fetch already started reach the server
            await asyncio.sleep(0)
        assert len(listing.calls) == expected_calls
        assert listing.in_flight <= 3
    await pages.aclose()
    assert len(listing.calls) == 6


async def test_records_repeated_across_pages_are_yielded_once() -> None:
    """Offset drift (a record pushed onto the next page) does not duplicate records."""
    pages = {0: [0, 1, 2], 3: [2, 3, 4], 6: [4, 5]}

    async def fetch(offset: int, limit: int) -> list[int]:
        return pages[offset]

    paginator: Paginator[int] = Paginator(fetch, page_size=3, cap=3, window=1, key=_identity)
    assert await paginator.collect() == [0, 1, 2, 3, 4, 5]


async def test_page_of_only_duplicates_does_not_end_the_listing() -> None:
    """A full page whose records were all seen is skipped, and listing continues."""
    pages = {0: [0, 1], 2: [0, 1], 4: [2]}

    async def fetch(offset: int, limit: int) -> list[int]:
        return pages[offset]

    paginator: Paginator[int] = Paginator(fetch, page_size=2, cap=2, window=1, key=_identity)
    assert [p async for p in paginator.pages()] == [[0, 1], [2]]


async def test_a_server_ignoring_offset_is_an_error_not_an_endless_listing() -> None:
    """Full pages that bring nothing new, again and again, end the listing with an error."""
    calls: list[int] = []

    async def fetch(offset: int, limit: int) -> list[int]:
        calls.append(offset)
        return list(range(limit))  # the same first page, whatever the offset

    paginator: Paginator[int] = Paginator(
        fetch, page_size=5, cap=5, window=2, key=_identity, url="https://x.test/api/v1/members"
    )
    pages: list[list[int]] = []

    async def drain() -> None:
        async for page in paginator.pages():
            pages.append(page)

    with pytest.raises(APIResponseValidationError, match=r"ignore offset \(GET https://x\.test/"):
        await drain()
    assert pages == [[0, 1, 2, 3, 4]]
    assert len(calls) <= 1 + STUCK_PAGES + 2  # the first page, the stale ones, the window


async def test_first_page_costs_one_request() -> None:
    """``first_page`` fetches one page, even a full one and with a window."""
    listing = FakeListing(50)
    page = await _paginator(listing, page_size=10, cap=10, window=4).first_page()
    assert page == list(range(10))
    assert listing.calls == [(0, 10)]


def test_seen_keys_memory_follows_the_ids_seen() -> None:
    """A few large ids cost a chunk each, not a bitmap up to the largest id."""
    seen = _SeenKeys()
    ids = [0, 4095, 4096, 134_217_000, 134_217_001, (1 << 27) - 1, 1 << 27, -1, "x"]
    assert [seen.add(key) for key in ids] == [True] * len(ids)
    assert [seen.add(key) for key in ids] == [False] * len(ids)
    assert sys.getsizeof(seen._chunks) + 512 * len(seen._chunks) < 64 * 1024


async def test_without_a_key_nothing_is_deduplicated() -> None:
    """``key=None`` yields records exactly as received."""
    pages = {0: [0, 1], 2: [1]}

    async def fetch(offset: int, limit: int) -> list[int]:
        return pages[offset]

    paginator: Paginator[int] = Paginator(fetch, page_size=2, cap=2, window=1, key=None)
    assert await paginator.collect() == [0, 1, 1]


async def test_collect_and_await_are_the_same() -> None:
    """``await paginator`` and ``await paginator.collect()`` both return every record."""
    assert await _paginator(FakeListing(11), page_size=4) == list(range(11))
    assert await _paginator(FakeListing(11), page_size=4).collect() == list(range(11))


async def test_repr() -> None:
    """The repr shows the effective page size and the window."""
    paginator = _paginator(FakeListing(1), page_size=900, cap=250, window=3)
    assert repr(paginator) == "<Paginator page_size=250 window=3>"


async def test_errors_propagate_and_cancel_other_fetches(caplog: pytest.LogCaptureFixture) -> None:
    """A failing page fetch raises to the consumer; pages in flight are cancelled cleanly."""
    cancelled: list[int] = []
    never = asyncio.Event()

    async def fetch(offset: int, limit: int) -> list[int]:
        if offset == 0:
            return list(range(limit))
        if offset == 10:
            await asyncio.sleep(0)
            raise RuntimeError("page 2 failed")
        try:
            await never.wait()
        except asyncio.CancelledError:
            cancelled.append(offset)
            raise
        return []

    paginator: Paginator[int] = Paginator(fetch, page_size=10, cap=10, window=4, key=None)
    seen: list[int] = []

    async def consume() -> None:
        async for record in paginator:
            seen.append(record)

    with caplog.at_level(logging.DEBUG), pytest.raises(RuntimeError, match="page 2 failed"):
        await consume()
    assert seen == list(range(10))
    assert sorted(cancelled) == [20, 30, 40]
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]


async def test_early_close_cancels_in_flight_fetches(caplog: pytest.LogCaptureFixture) -> None:
    """Closing ``pages()`` mid-listing cancels every page in flight and leaves no task behind."""
    cancelled: list[int] = []
    never = asyncio.Event()

    async def fetch(offset: int, limit: int) -> list[int]:
        if offset < 10:
            return list(range(offset, offset + limit))
        try:
            await never.wait()
        except asyncio.CancelledError:
            cancelled.append(offset)
            raise
        return []

    paginator: Paginator[int] = Paginator(fetch, page_size=5, cap=5, window=3, key=None)
    before = asyncio.all_tasks()
    with caplog.at_level(logging.DEBUG):
        pages = paginator.pages()
        await anext(pages)
        second = await anext(pages)
        for _ in range(3):  # let the pages in flight start waiting on the server
            await asyncio.sleep(0)
        await pages.aclose()
    assert second == [5, 6, 7, 8, 9]
    assert sorted(cancelled) == [10, 15]
    assert asyncio.all_tasks() <= before
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]


async def test_break_out_of_async_for_cancels_in_flight_fetches(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Breaking out of ``async for`` cancels the fetches in flight once the iterator is dropped."""
    all_cancelled = asyncio.Event()
    cancelled: list[int] = []
    never = asyncio.Event()

    async def fetch(offset: int, limit: int) -> list[int]:
        if offset < 10:
            return list(range(offset, offset + limit))
        try:
            await never.wait()
        except asyncio.CancelledError:
            cancelled.append(offset)
            if len(cancelled) == 2:
                all_cancelled.set()
            raise
        return []

    paginator: Paginator[int] = Paginator(fetch, page_size=5, cap=5, window=3, key=None)
    async for record in paginator:
        if record == 5:
            for _ in range(3):  # let the pages in flight start waiting on the server
                await asyncio.sleep(0)
            break
    with caplog.at_level(logging.DEBUG):
        await asyncio.wait_for(all_cancelled.wait(), 1)
        for _ in range(3):  # let the generator's clean-up finish
            await asyncio.sleep(0)
    assert sorted(cancelled) == [10, 15]
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]


@pytest.mark.parametrize(
    ("option", "value", "message"),
    [
        ("window", 0, "window must be an integer from 1 to 64, got 0"),
        ("window", 1_000_000, "window must be an integer from 1 to 64, got 1000000"),
        ("window", True, "window must be an integer from 1 to 64, got True"),
        ("max_records", 0, "max_records must be a positive integer, got 0"),
        ("max_records", "10", "max_records must be a positive integer, got '10'"),
    ],
)
def test_window_and_max_records_are_validated(option: str, value: object, message: str) -> None:
    """A window beyond MAX_WINDOW (or below 1) or a bad max_records raises naming the option."""
    options: dict[str, Any] = {"page_size": 10, "cap": 10, "window": 1, "key": None, option: value}
    with pytest.raises(ValueError, match=f"^{re.escape(message)}$"):
        Paginator(FakeListing(0).fetch, **options)


async def test_a_listing_beyond_max_records_is_refused() -> None:
    """A listing still full past ``max_records`` raises instead of running forever."""
    listing = FakeListing(10_000)
    paginator = Paginator(listing.fetch, page_size=10, cap=10, window=3, key=None, max_records=50)
    with pytest.raises(APIResponseValidationError, match=r"past 50 records \(max_records\)"):
        await paginator.collect()
    assert len(listing.calls) <= 50 // 10 + 1 + 3

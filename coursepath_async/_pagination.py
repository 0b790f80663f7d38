"""Streaming offset/limit pagination that never trusts the requested ``limit``.

Coursepath caps page sizes silently at 100, 250 or 500 records depending on the
endpoint, and documents which only loosely. A listing asks for the endpoint's assumed
cap; a first page shorter than asked ends the listing, unless its length is itself one
of the documented caps: then the endpoint's real cap is smaller than assumed, and the
listing goes on from where that page stopped (costing one extra request only for a
listing of exactly 100 or 250 records). Once a full page proves the size, a window of
the following pages is fetched in parallel and yielded in order; a page shorter than
that size, or an empty one, ends the listing. Memory is bounded by window x page size.
A record seen again (offset drift from inserts mid-listing) is yielded once: ids seen
are kept in bitmap chunks, about 1 bit per id in the ranges seen. A server that ignores
``offset`` (full pages of nothing new, again and again) is an error, not an endless loop.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import AsyncGenerator, Awaitable, Callable, Generator, Hashable
from typing import Any, Final, Generic, TypeVar

from ._exceptions import APIResponseValidationError

T = TypeVar("T")

FetchPage = Callable[[int, int], Awaitable[list[T]]]

#: The page caps Coursepath documents ("at most 100, 250 or 500 objects per call").
DOCUMENTED_CAPS = frozenset({100, 250, 500})

#: Full pages in a row with no new record: offset drift needs thousands of inserts
#: mid-listing for that, a server or proxy ignoring ``offset`` does it every time.
STUCK_PAGES: Final = 4


class Paginator(Generic[T]):
    """An async-iterable listing: ``async for x in p``, ``p.pages()``, ``await p.collect()``."""

    __slots__ = ("_cap", "_fetch", "_key", "_page_size", "_url", "_window")

    def __init__(
        self,
        fetch: FetchPage[T],
        *,
        page_size: int,
        cap: int,
        window: int,
        key: Callable[[T], Hashable] | None,
        url: str = "",
    ) -> None:
        self._fetch = fetch
        self._url = url  # for error messages only
        self._page_size = min(page_size, cap)
        self._cap = cap
        self._window = window
        self._key = key

    @property
    def page_size(self) -> int:
        """The effective page size: what was asked for, capped by the endpoint."""
        return self._page_size

    async def pages(self) -> AsyncGenerator[list[T], None]:
        """Yield each page's (deduplicated) records in listing order."""
        size = self._page_size
        cap = size  # the effective page size, lowered if the server proves a smaller cap
        confirmed = False  # a full page of `cap` records has been seen
        seen = _SeenKeys()
        pending: deque[tuple[int, asyncio.Task[list[T]]]] = deque()
        next_offset = 0
        stale = 0  # full pages in a row that brought nothing new

        def request() -> None:
            nonlocal next_offset
            pending.append((next_offset, asyncio.ensure_future(self._fetch(next_offset, size))))
            next_offset += cap

        try:
            request()
            while pending:
                offset, task = pending.popleft()
                page = await task
                if not page:
                    return
                records = self._dedupe(page, seen)
                if len(page) < cap:
                    if confirmed or len(page) not in DOCUMENTED_CAPS:  # the end
                        if records:
                            yield records
                        return
                    # Exactly a documented cap, below the one assumed: a smaller silent
                    # cap (or a listing of exactly that size). Go on from where it
                    # stopped; only this page was in flight.
                    cap = len(page)
                    next_offset = offset + cap
                    request()
                else:
                    confirmed = True
                    stale = 0 if records or self._key is None else stale + 1
                    if stale >= STUCK_PAGES:
                        raise APIResponseValidationError(
                            f"{stale} full pages in a row brought no new record: the server "
                            "seems to ignore offset",
                            method="GET",
                            url=self._url,
                            body=b"",
                        )
                    while len(pending) < self._window:
                        request()
                if records:
                    yield records
        finally:
            for _, task in pending:
                task.cancel()
            if pending:
                await asyncio.gather(*(task for _, task in pending), return_exceptions=True)

    def _dedupe(self, page: list[T], seen: _SeenKeys) -> list[T]:
        if self._key is None:
            return page
        key = self._key
        return [record for record in page if seen.add(key(record))]

    async def __aiter__(self) -> AsyncGenerator[T, None]:
        """Stream records across all pages."""
        pages = self.pages()
        try:
            async for page in pages:
                for record in page:
                    yield record
        finally:
            await pages.aclose()

    async def first_page(self) -> list[T]:
        """Only the first page: one request, for filters expected to match few records."""
        return self._dedupe(await self._fetch(0, self._page_size), _SeenKeys())

    async def collect(self) -> list[T]:
        """Every record in one list: for small listings only."""
        return [record async for page in self.pages() for record in page]

    def __await__(self) -> Generator[Any, None, list[T]]:
        """``await paginator`` is ``await paginator.collect()``."""
        return self.collect().__await__()

    def __repr__(self) -> str:
        return f"<Paginator page_size={self._page_size} window={self._window}>"


class _SeenKeys:
    """Keys already yielded: non-negative ints in bitmap chunks, anything else in a set.

    A chunk covers 4,096 consecutive ids in 512 bytes and exists only once one of its
    ids is seen, so memory follows the ids seen, not the largest one.
    """

    __slots__ = ("_chunks", "_other")

    # Ids below this live in the chunks (at most about 20 MiB); anything larger in the set.
    _BITMAP_LIMIT = 1 << 27

    def __init__(self) -> None:
        self._chunks: dict[int, bytearray] = {}
        self._other: set[Hashable] = set()

    def add(self, key: Hashable) -> bool:
        """Record ``key``; True when it had not been seen before."""
        if type(key) is int and 0 <= key < self._BITMAP_LIMIT:
            chunk = self._chunks.get(key >> 12)
            if chunk is None:
                chunk = self._chunks[key >> 12] = bytearray(512)
            index, bit = (key >> 3) & 511, 1 << (key & 7)
            if chunk[index] & bit:
                return False
            chunk[index] |= bit
            return True
        if key in self._other:
            return False
        self._other.add(key)
        return True

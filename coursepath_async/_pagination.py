"""Streaming offset/limit pagination that never trusts the requested ``limit``.

Coursepath caps page sizes silently, so a listing advances by the effective page size
(the smaller of what was asked and the endpoint's cap) and ends on an empty page or
one shorter than that. After a first full page, a window of the following pages is
fetched in parallel and yielded in order; memory is bounded by window x page size.
A record seen again on the next page (offset drift from inserts mid-listing) is
yielded once.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable, Generator, Hashable
from typing import Any, Generic, TypeVar

T = TypeVar("T")

FetchPage = Callable[[int, int], Awaitable[list[T]]]


class Paginator(Generic[T]):
    """An async-iterable listing: ``async for x in p``, ``p.pages()``, ``await p.collect()``."""

    __slots__ = ("_cap", "_fetch", "_key", "_page_size", "_window")

    def __init__(
        self,
        fetch: FetchPage[T],
        *,
        page_size: int,
        cap: int,
        window: int,
        key: Callable[[T], Hashable] | None,
    ) -> None:
        self._fetch = fetch
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
        recent: deque[set[Hashable]] = deque(maxlen=2)
        pending: deque[asyncio.Task[list[T]]] = deque()
        next_offset = 0
        try:
            pending.append(asyncio.ensure_future(self._fetch(next_offset, size)))
            next_offset += size
            while pending:
                page = await pending.popleft()
                full = len(page) >= size
                if full:
                    # Keep `window` pages in flight; the first page went alone so a small
                    # listing costs one request.
                    while len(pending) < self._window:
                        pending.append(asyncio.ensure_future(self._fetch(next_offset, size)))
                        next_offset += size
                records = self._dedupe(page, recent)
                if records:
                    yield records
                if not full:
                    return
        finally:
            for task in pending:
                task.cancel()
            if pending:
                await asyncio.gather(*pending, return_exceptions=True)

    def _dedupe(self, page: list[T], recent: deque[set[Hashable]]) -> list[T]:
        if self._key is None:
            return page
        keys: set[Hashable] = set()
        out: list[T] = []
        for record in page:
            k = self._key(record)
            if k in keys or any(k in seen for seen in recent):
                continue
            keys.add(k)
            out.append(record)
        recent.append(keys)
        return out

    async def __aiter__(self) -> AsyncIterator[T]:
        """Stream records across all pages."""
        pages = self.pages()
        try:
            async for page in pages:
                for record in page:
                    yield record
        finally:
            await pages.aclose()

    async def collect(self) -> list[T]:
        """Every record in one list: for small listings only."""
        return [record async for page in self.pages() for record in page]

    def __await__(self) -> Generator[Any, None, list[T]]:
        """``await paginator`` is ``await paginator.collect()``."""
        return self.collect().__await__()

    def __repr__(self) -> str:
        return f"<Paginator page_size={self._page_size} window={self._window}>"

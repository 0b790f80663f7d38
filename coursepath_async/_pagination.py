"""Streaming offset/limit pagination: the async side of :class:`~._cursor.PageCursor`.

The cursor decides which pages to fetch and what each answer means; the paginator only
schedules its requests, up to a window of pages fetched in parallel, and yields their
records in listing order. The window is refilled after a page is yielded, when the
consumer comes back for more: the pages in flight plus the page the consumer holds
never exceed the window, so memory is bounded by window x page size, and a consumer
that stops (``break``) leaves no request behind that it did not already cause.
"""

from __future__ import annotations

import asyncio
import weakref
from collections import deque
from collections.abc import AsyncGenerator, Awaitable, Callable, Generator, Hashable
from typing import Any, Final, Generic, TypeVar

from ._cursor import MAX_RECORDS, Page, PageCursor, PageRequest
from ._validation import validate_count

T = TypeVar("T")
S = TypeVar("S")

#: ``fetch(offset, limit)``: a page's records, or a :class:`Page` with the server's total.
FetchPage = Callable[[int, int], Awaitable[list[T] | Page[T]]]

#: The most pages one listing may have in flight: beyond this a window only crowds out
#: other calls and holds more memory (a window of a million made a million tasks).
MAX_WINDOW: Final = 64


class Paginator(Generic[T]):
    """An async-iterable listing: ``async for x in p``, ``p.pages()``, ``await p.collect()``.

    ``await p.aclose()`` (or ``contextlib.aclosing(p)``) ends every iteration of it still
    open, cancelling their prefetched pages at once instead of at garbage collection.
    """

    __slots__ = (
        "_cap",
        "_fetch",
        "_in_flight",
        "_iterations",
        "_key",
        "_max_records",
        "_page_size",
        "_url",
        "_window",
    )

    def __init__(
        self,
        fetch: FetchPage[T],
        *,
        page_size: int,
        cap: int,
        window: int,
        key: Callable[[T], Hashable] | None,
        url: str = "",
        max_records: int = MAX_RECORDS,
    ) -> None:
        self._fetch = fetch
        self._url = url  # for error messages only
        self._page_size = min(page_size, cap)
        self._cap = cap
        self._window = validate_count(window, field="window", maximum=MAX_WINDOW)
        self._key = key
        self._max_records = validate_count(max_records, field="max_records")
        #: For aclose(): the iterations started from this paginator (weakly: one that
        #: finished or was dropped is forgotten), and the page fetches in flight, also
        #: those of an iteration a ``break`` dropped, whose own cleanup runs only later,
        #: when the event loop finalizes it.
        self._iterations: weakref.WeakSet[AsyncGenerator[Any, None]] = weakref.WeakSet()
        self._in_flight: set[asyncio.Future[Any]] = set()

    @property
    def page_size(self) -> int:
        """The effective page size: what was asked for, capped by the endpoint."""
        return self._page_size

    def pages(self) -> AsyncGenerator[list[T], None]:
        """Yield each page's (deduplicated) records in listing order."""
        return self._started(self._pages())

    def _started(self, iteration: AsyncGenerator[S, None]) -> AsyncGenerator[S, None]:
        self._iterations.add(iteration)
        return iteration

    async def aclose(self) -> None:
        """End every iteration of this listing and cancel its pages in flight, now.

        Call it when no task is iterating any more. The paginator stays usable: a later
        ``async for`` starts the listing afresh.
        """
        for iteration in list(self._iterations):
            await iteration.aclose()
        await _cancel(deque(self._in_flight))

    async def _pages(self) -> AsyncGenerator[list[T], None]:
        cursor = self._cursor()
        pending: deque[asyncio.Future[list[T] | Page[T]]] = deque()
        try:
            while not cursor.done:
                # Refilled here, after the previous page was yielded and the consumer
                # asked for more: a consumer that stops never causes another request.
                self._refill(cursor, pending)
                step = cursor.feed(await pending.popleft())
                if step.done:
                    await _cancel(pending)  # pages beyond the end: free their slots now
                if step.records:
                    yield step.records
        finally:
            await _cancel(pending)

    def _cursor(self) -> PageCursor[T]:
        return PageCursor(
            page_size=self._page_size, key=self._key, max_records=self._max_records, url=self._url
        )

    def _refill(
        self, cursor: PageCursor[T], pending: deque[asyncio.Future[list[T] | Page[T]]]
    ) -> None:
        """Start the requests the cursor allows, up to the window."""
        while len(pending) < self._window:
            request = cursor.next_request()
            if request is None:
                return
            future = asyncio.ensure_future(self._get(request))
            self._in_flight.add(future)
            future.add_done_callback(self._in_flight.discard)
            pending.append(future)

    def _get(self, request: PageRequest) -> Awaitable[list[T] | Page[T]]:
        return self._fetch(request.offset, request.limit)

    def __aiter__(self) -> AsyncGenerator[T, None]:
        """Stream records across all pages."""
        return self._started(self._records())

    async def _records(self) -> AsyncGenerator[T, None]:
        pages = self._pages()
        try:
            async for page in pages:
                for record in page:
                    yield record
        finally:
            await pages.aclose()

    async def first_page(self) -> list[T]:
        """Only the first page: one request, for filters expected to match few records."""
        cursor = self._cursor()
        request = cursor.next_request()
        assert request is not None  # a fresh cursor always asks for the first page
        return cursor.feed(await self._get(request)).records

    async def collect(self) -> list[T]:
        """Every record in one list: for small listings only."""
        return [record async for page in self._pages() for record in page]

    def __await__(self) -> Generator[Any, None, list[T]]:
        """``await paginator`` is ``await paginator.collect()``."""
        return self.collect().__await__()

    def __repr__(self) -> str:
        return f"<Paginator page_size={self._page_size} window={self._window}>"


async def _cancel(pending: deque[asyncio.Future[Any]]) -> None:
    """Cancel the fetches still in flight and wait until they are gone."""
    for task in pending:
        task.cancel()
    if pending:
        await asyncio.gather(*pending, return_exceptions=True)
    pending.clear()

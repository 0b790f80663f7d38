"""The page walk of one listing, without I/O: which page to ask for next, what a page means.

Coursepath caps page sizes silently at 100, 250 or 500 records depending on the
endpoint, and documents which only loosely, so the requested ``limit`` is never trusted.
The first page is asked for alone. A first page shorter than asked ends the listing,
unless its length is itself one of the documented caps: then the endpoint's real cap is
smaller than assumed, and the walk goes on from where that page stopped, again one page
at a time (costing one extra request only for a listing of exactly 100 or 250 records).
Once a full page confirms the size, requests may run ahead (the caller decides how many)
at offsets one page apart, and must be fed back in the order they were issued; a page
shorter than that size, or an empty one, ends the listing. A record seen again (offset
drift from inserts mid-listing) is handed out once.

Hostile or broken answers never pass as data: a page of more records than asked for is
refused, and so is a listing that never ends, whether it repeats itself (a server
ignoring ``offset``: full pages of nothing new, again and again) or invents fresh ids
forever (past ``max_records``, or far past the ``total`` a wrapped answer announced).

:class:`PageCursor` holds that state; :class:`~._pagination.Paginator` only schedules
the requests it asks for, which is what lets every rule be tested on recorded pages.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Hashable
from typing import Final, Generic, TypeVar

from attrs import frozen

from ._exceptions import APIResponseValidationError

T = TypeVar("T")

#: The page caps Coursepath documents ("at most 100, 250 or 500 objects per call").
DOCUMENTED_CAPS = frozenset({100, 250, 500})

#: Full pages in a row with no new record: offset drift needs thousands of inserts
#: mid-listing for that, a server or proxy ignoring ``offset`` does it every time.
STUCK_PAGES: Final = 4

#: The default ceiling of one listing: far beyond any academy, yet a server answering
#: full pages of fresh ids forever is stopped instead of being listed for days.
MAX_RECORDS: Final = 10_000_000

#: The body a page may take per record asked for: a member is about 500 bytes, so this
#: leaves room for any real record while a page of ``limit`` stays a bounded size.
RECORD_BYTES: Final = 64 * 1024
#: The smallest body cap of a page, for small limits (``limit=1`` still gets 1 MiB).
PAGE_BODY_FLOOR: Final = 1024 * 1024


@frozen
class PageRequest:
    """One page to fetch: ``offset`` and ``limit`` as sent to the server."""

    offset: int
    limit: int


def page_body_limit(limit: int) -> int:
    """The largest body a page of ``limit`` records may have, so window x page is bounded."""
    return max(PAGE_BODY_FLOOR, limit * RECORD_BYTES)


def check_page_length(count: int, request: PageRequest, *, url: str) -> None:
    """Refuse a page carrying more records than its request asked for, before decoding it."""
    if count > request.limit:
        raise APIResponseValidationError(
            f"a page of {count:,} records answered a request for at most {request.limit:,} "
            f"(offset {request.offset:,}): refused",
            method="GET",
            url=url,
            body=b"",
        )


@frozen
class Page(Generic[T]):
    """One answered page: its records, and the listing's total when the server gave one."""

    records: list[T]
    total: int | None = None


@frozen
class Step(Generic[T]):
    """What one fed page gave: the records to hand out now, and whether the listing is over."""

    records: list[T]
    done: bool


class PageCursor(Generic[T]):
    """The state of one listing's walk: offsets, the effective cap, seen ids, stale pages.

    ``next_request()`` says what to fetch (``None``: wait for an answer, or the end);
    ``feed(page)`` takes the answer to the oldest request still unanswered. A listing
    that runs past ``max_records`` records, or past twice the largest ``total`` a page
    announced (plus two pages of slack for inserts mid-listing), is refused: pages full
    of fresh ids forever are a broken server, not an academy.
    """

    __slots__ = (
        "_cap",
        "_confirmed",
        "_done",
        "_key",
        "_limit",
        "_max_records",
        "_next_offset",
        "_outstanding",
        "_seen",
        "_stale",
        "_total",
        "_url",
    )

    def __init__(
        self,
        *,
        page_size: int,
        key: Callable[[T], Hashable] | None,
        max_records: int = MAX_RECORDS,
        url: str = "",
    ) -> None:
        self._limit = page_size  # what every request asks for
        self._cap = page_size  # the effective page size, lowered if the server proves less
        self._confirmed = False  # a full page of `cap` records has been seen
        self._next_offset = 0
        self._outstanding: deque[PageRequest] = deque()
        self._stale = 0  # full pages in a row that brought nothing new
        self._key = key
        self._seen = _SeenKeys()
        self._done = False
        self._max_records = max_records
        self._total: int | None = None  # the largest total a page announced
        self._url = url  # for error messages only

    @property
    def done(self) -> bool:
        """Whether the listing is over (ended, or refused): nothing more to request."""
        return self._done

    def next_request(self) -> PageRequest | None:
        """The next page to fetch, or ``None`` while only the unconfirmed page may be out."""
        if self._done or (self._outstanding and not self._confirmed):
            return None
        request = PageRequest(self._next_offset, self._limit)
        self._next_offset += self._cap
        self._outstanding.append(request)
        return request

    def feed(self, page: list[T] | Page[T]) -> Step[T]:
        """Take the answer to the oldest outstanding request; say what to hand out."""
        if self._done or not self._outstanding:
            raise RuntimeError("feed() needs an outstanding request of a listing not yet over")
        request = self._outstanding.popleft()
        records, total = (page.records, page.total) if isinstance(page, Page) else (page, None)
        try:
            return self._judge(request, records, total)
        except APIResponseValidationError:
            self._finish()  # a refused listing is over: nothing more to request
            raise

    def _judge(self, request: PageRequest, page: list[T], total: int | None) -> Step[T]:
        size = len(page)
        check_page_length(size, request, url=self._url)
        self._check_bounds(request.offset + size, total)
        records = self._new_records(page)
        if size >= self._cap:
            self._full_page(records)
            return Step(records, done=False)
        if self._confirmed or size not in DOCUMENTED_CAPS:  # the end (or empty)
            self._finish()
            return Step(records, done=True)
        # Exactly a documented cap, below the one assumed: a smaller silent cap (or a
        # listing of exactly that size). Go on from where it stopped; it went alone.
        self._cap = size
        self._next_offset = request.offset + size
        return Step(records, done=False)

    def _check_bounds(self, reached: int, total: int | None) -> None:
        """Refuse a listing that reached past ``max_records`` or far past its total."""
        if total is not None:
            self._total = total if self._total is None else max(self._total, total)
        if reached > self._max_records:
            raise self._error(
                f"the listing went on past {self._max_records:,} records (max_records) "
                "without ending; raise max_listing_records if the academy really is that big"
            )
        if self._total is not None and reached > 2 * self._total + 2 * self._cap:
            raise self._error(
                f"the listing went on past {reached:,} records although the server "
                f"announced a total of {self._total:,}: it does not end"
            )

    def _full_page(self, records: list[T]) -> None:
        self._confirmed = True
        self._stale = 0 if records or self._key is None else self._stale + 1
        if self._stale >= STUCK_PAGES:
            raise self._error(
                f"{self._stale} full pages in a row brought no new record: the server "
                "seems to ignore offset"
            )

    def _new_records(self, page: list[T]) -> list[T]:
        """The page's records not handed out before (all of them without a key)."""
        if self._key is None:
            return page
        key, seen = self._key, self._seen
        return [record for record in page if seen.add(key(record))]

    def _finish(self) -> None:
        self._done = True
        self._outstanding.clear()  # requests beyond the end: the caller drops them

    def _error(self, message: str) -> APIResponseValidationError:
        return APIResponseValidationError(message, method="GET", url=self._url, body=b"")

    def __repr__(self) -> str:
        state = "done" if self._done else "confirmed" if self._confirmed else "unconfirmed"
        return (
            f"<PageCursor next_offset={self._next_offset} cap={self._cap} {state} "
            f"outstanding={len(self._outstanding)} stale={self._stale} total={self._total}>"
        )


class _SeenKeys:
    """Keys already yielded, in bounded memory: small ids in bitmaps, the rest most recent.

    Non-negative int ids below ``_BITMAP_LIMIT`` go into bitmap chunks: a chunk covers
    4,096 consecutive ids in 512 bytes and exists only once one of its ids is seen, so
    memory follows the ids seen, not the largest one (at most about 20 MiB). Any other
    key is remembered among the last ``_RECENT_LIMIT`` such keys only: a record repeated
    by offset drift comes back within a few pages, and only as many inserts mid-listing
    as that limit could push one further, while a server inventing fresh keys forever
    must not grow this set forever.
    """

    __slots__ = ("_chunks", "_order", "_other")

    _BITMAP_LIMIT = 1 << 27
    _RECENT_LIMIT = 1 << 18

    def __init__(self) -> None:
        self._chunks: dict[int, bytearray] = {}
        self._other: set[Hashable] = set()
        self._order: deque[Hashable] = deque()  # the keys of `_other`, oldest first

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
        self._order.append(key)
        if len(self._order) > self._RECENT_LIMIT:
            self._other.discard(self._order.popleft())
        return True

"""Bounded fan-out: run a coroutine per item with a fixed number in flight.

Items are pulled lazily, so a producer of 100,000 calls never holds more than
``limit`` tasks: it waits for room instead of growing memory.
"""

from __future__ import annotations

import asyncio
from collections.abc import (
    AsyncGenerator,
    AsyncIterable,
    Awaitable,
    Callable,
    Iterable,
)
from typing import TypeVar

from ._exceptions import InvalidInputError

T = TypeVar("T")
R = TypeVar("R")


async def bounded_map(
    fn: Callable[[T], Awaitable[R]],
    items: Iterable[T] | AsyncIterable[T],
    *,
    limit: int,
    stop: asyncio.Event | None = None,
) -> AsyncGenerator[R, None]:
    """Yield ``fn(item)`` results as they complete, at most ``limit`` running at once.

    Setting ``stop`` drains: no new item is started, those in flight finish and are
    yielded. An exception from ``fn`` cancels the rest and propagates.
    """
    if limit < 1:
        raise InvalidInputError(f"limit must be >= 1, got {limit!r}", argument="limit")
    source = _aiter(items)
    running: set[asyncio.Future[R]] = set()
    # Each finished call queues itself: O(1) per completion, where asyncio.wait would
    # re-register callbacks on every running call each time.
    finished: asyncio.Queue[asyncio.Future[R]] = asyncio.Queue()
    exhausted = False
    try:
        while True:
            while not exhausted and len(running) < limit and not (stop and stop.is_set()):
                try:
                    item = await anext(source)
                except StopAsyncIteration:
                    exhausted = True
                    break
                started: asyncio.Future[R] = asyncio.ensure_future(fn(item))
                started.add_done_callback(finished.put_nowait)
                running.add(started)
            if not running:
                return
            done = await finished.get()
            running.discard(done)
            try:
                result = done.result()  # raises fn's exception; `finally` retrieves the rest
            finally:
                del done  # else its exception's traceback holds this frame in a cycle
            yield result
    finally:
        for future in running:
            future.cancel()
        if running:
            await asyncio.gather(*running, return_exceptions=True)
        await source.aclose()  # now, not whenever the garbage collector gets to it


async def _aiter(items: Iterable[T] | AsyncIterable[T]) -> AsyncGenerator[T, None]:
    """Items as an async generator that closes an async source when it is closed."""
    if not isinstance(items, AsyncIterable):
        for item in items:
            yield item
        return
    iterator = aiter(items)
    try:
        async for item in iterator:
            yield item
    finally:
        aclose = getattr(iterator, "aclose", None)
        if aclose is not None:
            await aclose()

"""Bounded fan-out: run a coroutine per item with a fixed number in flight.

Items are pulled lazily, so a producer of 100,000 calls never holds more than
``limit`` tasks: it waits for room instead of growing memory.
"""

from __future__ import annotations

import asyncio
from collections.abc import (
    AsyncGenerator,
    AsyncIterable,
    AsyncIterator,
    Awaitable,
    Callable,
    Iterable,
)
from typing import TypeVar

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
        raise ValueError(f"limit must be >= 1, got {limit}")
    source = _aiter(items)
    running: set[asyncio.Future[R]] = set()
    exhausted = False
    try:
        while True:
            while not exhausted and len(running) < limit and not (stop and stop.is_set()):
                try:
                    item = await anext(source)
                except StopAsyncIteration:
                    exhausted = True
                    break
                running.add(asyncio.ensure_future(fn(item)))
            if not running:
                return
            done, running = await asyncio.wait(running, return_when=asyncio.FIRST_COMPLETED)
            failures = [exc for future in done if (exc := future.exception()) is not None]
            if failures:  # every exception retrieved; the first one propagates
                raise failures[0]
            for future in done:
                yield future.result()
    finally:
        for future in running:
            future.cancel()
        if running:
            await asyncio.gather(*running, return_exceptions=True)


async def _aiter(items: Iterable[T] | AsyncIterable[T]) -> AsyncIterator[T]:
    if isinstance(items, AsyncIterable):
        async for item in items:
            yield item
    else:
        for item in items:
            yield item

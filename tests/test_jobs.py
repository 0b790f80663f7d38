"""Bounded fan-out: ``bounded_map`` and ``client.map``."""

from __future__ import annotations

import asyncio
import gc
import logging
from collections.abc import AsyncIterator, Iterator

import pytest
from conftest import offline_client

from coursepath_async import ConfigurationError
from coursepath_async._jobs import bounded_map


class Probe:
    """Counts how many calls run at once and how far the source was pulled."""

    def __init__(self) -> None:
        self.running = 0
        self.peak = 0
        self.pulled = 0
        self.started: list[int] = []

    def source(self, n: int) -> Iterator[int]:
        for i in range(n):
            self.pulled += 1
            yield i

    async def work(self, item: int) -> int:
        self.started.append(item)
        self.running += 1
        self.peak = max(self.peak, self.running)
        try:
            for _ in range(item % 3 + 1):
                await asyncio.sleep(0)
            return item * 10
        finally:
            self.running -= 1


async def test_all_results_are_yielded() -> None:
    """Every item's result comes out exactly once."""
    probe = Probe()
    results = [r async for r in bounded_map(probe.work, probe.source(50), limit=7)]
    assert sorted(results) == [i * 10 for i in range(50)]


async def test_limit_bounds_calls_in_flight() -> None:
    """No more than ``limit`` calls run at once, and the limit is used."""
    probe = Probe()
    async for _ in bounded_map(probe.work, probe.source(40), limit=5):
        assert probe.running <= 5
    assert probe.peak == 5


async def test_items_are_pulled_lazily() -> None:
    """The source is consumed only as room frees up, never far ahead of the consumer."""
    probe = Probe()
    results = bounded_map(probe.work, probe.source(100_000), limit=4)
    yielded = 0
    async for _ in results:
        yielded += 1
        assert probe.pulled <= yielded + 4
        if yielded == 10:
            break
    await results.aclose()
    assert probe.pulled < 20


async def test_async_iterable_source() -> None:
    """Items may come from an async iterable."""

    async def items() -> AsyncIterator[int]:
        for i in range(10):
            await asyncio.sleep(0)
            yield i

    probe = Probe()
    assert sorted([r async for r in bounded_map(probe.work, items(), limit=3)]) == [
        i * 10 for i in range(10)
    ]


async def test_stop_drains() -> None:
    """Setting ``stop`` starts nothing new but finishes and yields what is in flight."""
    probe = Probe()
    stop = asyncio.Event()
    results = []
    async for result in bounded_map(probe.work, probe.source(1_000), limit=4, stop=stop):
        results.append(result)
        stop.set()
    assert len(results) == 4
    assert len(probe.started) == 4


async def test_error_cancels_the_rest_and_propagates() -> None:
    """An exception from one call cancels the calls in flight and reaches the consumer."""
    cancelled: list[int] = []

    async def work(item: int) -> int:
        if item == 3:
            raise ValueError("item 3")
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            cancelled.append(item)
            raise
        return item

    with pytest.raises(ValueError, match="item 3"):
        async for _ in bounded_map(work, range(100), limit=5):
            pass
    assert sorted(cancelled) == [0, 1, 2, 4]


async def test_an_error_closes_an_async_source_at_once() -> None:
    """When ``fn`` raises, the async source (a paginator, say) is closed, not left to GC."""
    closed: list[str] = []

    async def source() -> AsyncIterator[int]:
        try:
            for item in range(100):
                yield item
        finally:
            closed.append("source")

    async def work(item: int) -> int:
        if item == 3:
            raise ValueError("item 3")
        await asyncio.sleep(0)
        return item

    gc.disable()  # the garbage collector must not be what closes it
    try:
        with pytest.raises(ValueError, match="item 3"):
            async for _ in bounded_map(work, source(), limit=5):
                pass
        assert closed == ["source"]
    finally:
        gc.enable()


async def test_errors_of_sibling_calls_are_not_left_unretrieved(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """When several calls fail together, the ones not raised are still retrieved (no log noise)."""

    async def work(item: int) -> int:
        await asyncio.sleep(0)
        raise ValueError(f"item {item}")

    with caplog.at_level(logging.ERROR, logger="asyncio"):
        with pytest.raises(ValueError, match="item"):
            async for _ in bounded_map(work, range(5), limit=5):
                pass
        gc.collect()
        await asyncio.sleep(0)
    assert "never retrieved" not in caplog.text


async def test_bad_limit() -> None:
    """A limit below 1 is refused."""
    with pytest.raises(ValueError, match="limit"):
        async for _ in bounded_map(Probe().work, range(3), limit=0):
            pass


async def test_client_map_defaults_to_twice_the_budget() -> None:
    """``client.map`` keeps twice the client's concurrency in flight by default."""
    probe = Probe()
    async with offline_client(max_concurrency=3) as client:
        results = [r async for r in client.map(probe.work, probe.source(30))]
        assert sorted(results) == [i * 10 for i in range(30)]
        assert probe.peak == 6
        probe = Probe()
        view = client.as_user("b@x.co")
        async for _ in view.map(probe.work, probe.source(30), concurrency=2):
            pass
        assert probe.peak == 2


async def test_client_map_refuses_bad_concurrency() -> None:
    """A non-positive concurrency is refused before anything runs."""
    async with offline_client() as client:
        with pytest.raises(ConfigurationError, match="concurrency"):
            client.map(Probe().work, range(3), concurrency=0)

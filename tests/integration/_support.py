"""Shared helpers of the integration suite: a sandbox academy with a real SDK client on it.

The key and the client factory are the suite's own (``tests/conftest.py``).

Imported as a plain module (``from _support import ...``): pytest puts this directory
on ``sys.path`` because it has no ``__init__.py``, exactly as ``tests/testing`` does
for ``sandbox_raw``.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any

from conftest import academy_and_client

from coursepath_async import CoursepathClient
from coursepath_async.testing import Recorder, RequestRecord, SandboxAcademy

#: How long any single "wait until the academy saw X" may take before the test fails.
WAIT_LIMIT = 5.0


def serving(
    *, client: Mapping[str, Any] | None = None, **academy_options: Any
) -> AbstractAsyncContextManager[tuple[SandboxAcademy, CoursepathClient]]:
    """Run a seeded academy (small by default) and a client connected to it; close both."""
    options = {
        "members": 20,
        "courses": 4,
        "programs": 2,
        "groups": 3,
        "seed": 11,
        **academy_options,
    }
    return academy_and_client(client=client, **options)


async def until(recorder: Recorder, predicate: Callable[[Recorder], bool]) -> None:
    """Wait (bounded) until ``predicate(recorder)`` holds; no polling, no sleeping."""
    async with asyncio.timeout(WAIT_LIMIT):
        await recorder.wait_for(predicate)


async def until_released(client: CoursepathClient) -> None:
    """Let the client's tasks run (at most 1,000 loop turns) until it holds no slot.

    A request the academy has finished can still be on its way back to the client, or
    its task not yet have run its cancellation: neither needs anything but loop turns.
    """
    for _ in range(1000):
        if client.scheduler_stats().active == 0:
            return
        await asyncio.sleep(0)
    raise AssertionError(f"slots still held: {client.scheduler_stats()}")


def wall_clock(record: RequestRecord, offset: float) -> float:
    """When the academy started serving ``record``, as Unix time (see :func:`clock_offset`)."""
    return record.started + offset


def clock_offset() -> float:
    """``time.time() - time.monotonic()``: turns the recorder's monotonic stamps into Unix time."""
    return time.time() - time.monotonic()


class RetryWatcher(logging.Handler):
    """Sets an event when the SDK logs that it is about to sleep before a retry.

    The SDK logs "retrying ..." and then awaits its backoff sleep without yielding in
    between, so once the event is set the retrying caller is certainly asleep.
    """

    def __init__(self) -> None:
        super().__init__(level=logging.INFO)
        self.retrying = asyncio.Event()
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        message = record.getMessage()
        self.messages.append(message)
        if message.startswith("retrying"):
            self.retrying.set()


@asynccontextmanager
async def watching_retries() -> AsyncIterator[RetryWatcher]:
    """Attach a :class:`RetryWatcher` to the ``coursepath_async`` logger for the block."""
    logger = logging.getLogger("coursepath_async")
    watcher = RetryWatcher()
    previous = logger.level
    logger.addHandler(watcher)
    if not logger.isEnabledFor(logging.INFO):
        logger.setLevel(logging.INFO)
    try:
        yield watcher
    finally:
        logger.removeHandler(watcher)
        logger.setLevel(previous)

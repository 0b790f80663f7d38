"""The clock the scheduler, governor and attempt timeouts keep: the loop's, or a test's fake."""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable
from typing import Protocol


class Timer(Protocol):
    """What ``call_at`` returns: something that can be cancelled."""

    def cancel(self) -> None:
        """Do not run the callback."""


class Clock(Protocol):
    """The loop's clock and timers (``asyncio`` loops are one); tests pass a fake."""

    def time(self) -> float:
        """Now, in the clock's own seconds."""

    def call_at(self, when: float, callback: Callable[[], object]) -> Timer:
        """Run ``callback`` once ``time()`` reaches ``when``."""


async def sleep_until(clock: Clock, when: float) -> None:
    """Sleep until ``clock`` reaches ``when`` (by its own timer, not ``asyncio.sleep``)."""
    woken: asyncio.Future[None] = asyncio.get_running_loop().create_future()
    timer = clock.call_at(when, functools.partial(_wake, woken))
    try:
        await woken
    finally:
        timer.cancel()


def _wake(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)

"""The background half of the receiver: a bounded queue and a fixed pool of verifying workers.

Each worker takes one event at a time, verifies it through the API and, if confirmed,
awaits the caller's callback, so API calls in flight never exceed the worker count and
events waiting never exceed the queue size. Every outcome is counted; nothing a
callback or the API does can kill a worker.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Final

from attrs import frozen

from .._client import ClientView, CoursepathClient
from .._exceptions import CoursepathError
from ._dedupe import RecentEvents
from ._events import EventKind, WebhookEvent
from ._stats import Counters
from ._verify import Unconfirmed, VerifiedEvent, verify_event

__all__ = ["Job", "OnEvent", "VerifyPool", "describe", "log"]

log: Final = logging.getLogger("coursepath_async.webhooks")

#: The caller's handler for confirmed events; awaited by a worker, one at a time per worker.
OnEvent = Callable[[VerifiedEvent], Awaitable[None]]


@frozen
class Job:
    """An accepted event waiting for a worker."""

    event: WebhookEvent
    received_at: datetime


def describe(event: WebhookEvent) -> str:
    """The event for a log line (ids only: nothing secret)."""
    return f"{event.event.value} course {event.course_id} member {event.member_id}"


class VerifyPool:
    """``workers`` tasks draining a queue of at most ``queue_size`` events."""

    def __init__(
        self,
        client: CoursepathClient | ClientView,
        on_event: OnEvent,
        *,
        workers: int,
        queue_size: int,
        recent: RecentEvents[tuple[EventKind, int, int]],
        counters: Counters,
    ) -> None:
        self._client = client
        self._on_event = on_event
        self._worker_count = workers
        self._recent = recent
        self._counters = counters
        self._queue: asyncio.Queue[Job] = asyncio.Queue(maxsize=queue_size)
        self._workers: list[asyncio.Task[None]] = []
        self.in_flight = 0

    def __repr__(self) -> str:
        return (
            f"workers={self._worker_count} queued={self.queued}/{self._queue.maxsize} "
            f"in_flight={self.in_flight}"
        )

    @property
    def queued(self) -> int:
        """Events waiting for a worker."""
        return self._queue.qsize()

    def submit(self, job: Job) -> bool:
        """Queue ``job``; False (nothing queued) when the queue is full."""
        try:
            self._queue.put_nowait(job)
        except asyncio.QueueFull:
            return False
        return True

    def start(self) -> None:
        """Start the workers (needs a running event loop)."""
        self._workers = [
            asyncio.create_task(self._work(), name=f"coursepath-webhook-worker-{n}")
            for n in range(self._worker_count)
        ]

    async def join(self) -> None:
        """Wait until every queued event has been processed."""
        await self._queue.join()

    async def stop(self, *, grace: float) -> int:
        """Let the queue drain for ``grace`` seconds, cancel the workers; return events left."""
        workers, self._workers = self._workers, []
        if workers:
            try:
                async with asyncio.timeout(grace):
                    await self._queue.join()
            except TimeoutError:
                pass
            for worker in workers:
                worker.cancel()
            await asyncio.gather(*workers, return_exceptions=True)
        left = 0
        while not self._queue.empty():
            job = self._queue.get_nowait()
            self._queue.task_done()
            self._recent.finish(job.event.key, remember=False)
            left += 1
        return left

    async def _work(self) -> None:
        while True:
            job = await self._queue.get()
            self.in_flight += 1
            try:
                await self._process(job)
            finally:
                self.in_flight -= 1
                self._queue.task_done()

    async def _process(self, job: Job) -> None:
        event = job.event
        remember = False
        try:
            outcome = await verify_event(self._client, event, received_at=job.received_at)
            remember = isinstance(outcome, VerifiedEvent)
        except asyncio.CancelledError:
            self._counters.dropped_shutdown += 1
            raise
        except CoursepathError as exc:
            self._counters.verify_errors += 1
            log.warning("could not verify webhook %s: %s", describe(event), exc)
            return
        except Exception:
            self._counters.verify_errors += 1
            log.exception("could not verify webhook %s", describe(event))
            return
        finally:
            # Verified: remembered for the TTL. Otherwise forgotten, so a forgery cannot
            # shadow the genuine delivery that may follow it.
            self._recent.finish(event.key, remember=remember)
        if isinstance(outcome, Unconfirmed):
            self._counters.unconfirmed[outcome.reason] += 1
            log.warning(
                "unconfirmed webhook %s: %s (forged or stale); dropped",
                describe(event),
                outcome.reason,
            )
            return
        self._counters.verified += 1
        try:
            await self._on_event(outcome)
        except Exception:
            self._counters.callback_errors += 1
            log.exception("webhook callback failed for %s", describe(event))

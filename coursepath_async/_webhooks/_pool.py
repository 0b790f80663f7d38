"""The background half of the receiver: a bounded queue and a fixed pool of verifying workers.

Each worker takes one event at a time, verifies it through the API and, if confirmed,
awaits the caller's callback, so API calls in flight never exceed the worker count and
events waiting never exceed the queue size. Every outcome is counted; nothing a
callback or the API does can kill a worker — not even a stray ``CancelledError``: only
cancelling the worker itself (:meth:`VerifyPool.stop`) ends it.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Final

from attrs import frozen

from .._client import CoursepathAPI
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
        client: CoursepathAPI,
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
        self._stopped = False
        self._cancelled_verifying = 0  # events whose verification stop() cut short
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
        """Queue ``job``; False (nothing queued) when the queue is full or the pool stopped.

        After :meth:`stop` no worker would ever take it, so it is refused, not stranded.
        """
        if self._stopped:
            return False
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

    async def stop(self, *, grace: float) -> None:
        """Let the queue drain for ``grace`` seconds, then cancel the workers and count the rest.

        Events still queued and those cut short mid-verification are counted as
        ``dropped_shutdown`` and logged. The workers are cancelled and awaited even if
        this call is itself cancelled, so none outlives the pool.
        """
        self._stopped = True
        workers, self._workers = self._workers, []
        try:
            if workers:
                try:
                    async with asyncio.timeout(grace):
                        await self._queue.join()
                except TimeoutError:
                    pass
        finally:
            for worker in workers:
                worker.cancel()
            await asyncio.gather(*workers, return_exceptions=True)
            self._drop_queued()

    def _drop_queued(self) -> None:
        left = 0
        while not self._queue.empty():
            job = self._queue.get_nowait()
            self._queue.task_done()
            self._recent.finish(job.event.key, remember=False)
            left += 1
        self._counters.dropped_shutdown += left
        if left or self._cancelled_verifying:
            log.error(
                "webhook receiver closed with %d event(s) unprocessed (%d queued, %d cut short "
                "during verification); the nightly sync must catch them",
                left + self._cancelled_verifying,
                left,
                self._cancelled_verifying,
            )

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
        verified = await self._verify(job)
        if verified is None:
            return
        self._counters.verified += 1
        try:
            await self._on_event(verified)
        except (Exception, asyncio.CancelledError) as exc:
            if isinstance(exc, asyncio.CancelledError) and _stopping():
                # Still counted as verified (the callback had it); say it may be unfinished.
                log.warning(
                    "webhook callback for %s was cancelled at shutdown before it returned",
                    describe(job.event),
                )
                raise
            self._counters.callback_errors += 1
            log.exception("webhook callback failed for %s", describe(job.event))

    async def _verify(self, job: Job) -> VerifiedEvent | None:
        """Confirm ``job``'s event through the API; count and log it unless confirmed.

        An event not confirmed is checked once more if a copy arrived meanwhile: the copy
        was answered "duplicate" and may be the genuine delivery behind a forged or early
        one. Only once, so a stream of copies cannot pin a worker; only the final check
        is counted.
        """
        event = job.event
        rechecked = False
        while True:
            outcome: VerifiedEvent | Unconfirmed | BaseException
            try:
                outcome = await verify_event(self._client, event, received_at=job.received_at)
            except (Exception, asyncio.CancelledError) as exc:
                if isinstance(exc, asyncio.CancelledError) and _stopping():
                    self._recent.finish(event.key, remember=False)
                    self._counters.dropped_shutdown += 1
                    self._cancelled_verifying += 1
                    log.warning(
                        "webhook %s was cut short during verification at shutdown; dropped",
                        describe(event),
                    )
                    raise
                outcome = exc  # a stray CancelledError too: the worker was not cancelled
            if (
                isinstance(outcome, VerifiedEvent)
                or rechecked
                or not self._recent.take_repeat(event.key)
            ):
                break
            rechecked = True
            log.info(
                "webhook %s not confirmed, but a copy arrived meanwhile; checking again",
                describe(event),
            )
        # Verified: remembered for the TTL. Otherwise forgotten, so a forgery cannot
        # shadow the genuine delivery that may follow it.
        self._recent.finish(event.key, remember=isinstance(outcome, VerifiedEvent))
        if isinstance(outcome, VerifiedEvent):
            return outcome
        if isinstance(outcome, Unconfirmed):
            self._counters.unconfirmed[outcome.reason] += 1
            log.warning(
                "unconfirmed webhook %s: %s (forged or stale); dropped",
                describe(event),
                outcome.reason,
            )
        elif isinstance(outcome, CoursepathError):
            self._counters.verify_errors += 1
            log.warning("could not verify webhook %s: %s", describe(event), outcome)
        else:
            self._counters.verify_errors += 1
            log.error("could not verify webhook %s", describe(event), exc_info=outcome)
        return None


def _stopping() -> bool:
    """Whether the running worker itself is being cancelled (by :meth:`VerifyPool.stop`).

    A ``CancelledError`` raised while it is not — e.g. a callback awaiting a task that
    someone else cancelled — is an error of that event, not a reason to stop working.
    """
    task = asyncio.current_task()
    return task is not None and task.cancelling() > 0

"""Webhook delivery, as Coursepath does it: one form POST per event, no retry, no signature.

Each event is sent from its own background task so a slow or dead receiver never
delays the API; deliveries therefore run concurrently and may arrive out of order, as
nothing in Coursepath's documentation promises an order either.  Outcomes (status or
error) go to the recorder and are never raised.
Tasks are tracked so tests can wait for delivery (:meth:`WebhookSender.drain`) and the
academy can shut down without leaving any behind.
"""

from __future__ import annotations

import asyncio
import ssl

import aiohttp

from ._recorder import Recorder, WebhookDelivery
from ._records import CourseEvent


class WebhookSender:
    """Posts course-enrolment events to one URL."""

    def __init__(
        self,
        url: str,
        recorder: Recorder,
        *,
        ssl_context: ssl.SSLContext | None = None,
        timeout: float = 5.0,
    ) -> None:
        self._url = url
        self._recorder = recorder
        self._ssl = ssl_context
        self._timeout = timeout
        self._session: aiohttp.ClientSession | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    def __repr__(self) -> str:
        return f"<WebhookSender url={self._url!r} pending={len(self._tasks)}>"

    @property
    def pending(self) -> int:
        """Deliveries still in progress."""
        return len(self._tasks)

    async def start(self) -> None:
        """Open the HTTP session deliveries use."""
        if self._session is None:
            self._session = aiohttp.ClientSession(
                timeout=aiohttp.ClientTimeout(total=self._timeout)
            )

    def send(self, event: CourseEvent) -> None:
        """Schedule one delivery of ``event`` (a state listener: must not block)."""
        if self._session is None:
            self._record(event, None, "sandbox academy is not running")
            return
        task = asyncio.get_running_loop().create_task(self._deliver(self._session, event))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _deliver(self, session: aiohttp.ClientSession, event: CourseEvent) -> None:
        form = {
            "courseId": str(event.course_id),
            "memberId": str(event.member_id),
            "event": event.event,
        }
        try:
            async with session.post(self._url, data=form, ssl=self._ssl or True) as response:
                await response.read()
                self._record(event, response.status, None)
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            self._record(event, None, f"{type(exc).__name__}: {exc}")

    def _record(self, event: CourseEvent, status: int | None, error: str | None) -> None:
        self._recorder.webhook_delivered(
            WebhookDelivery(
                event=event.event,
                course_id=event.course_id,
                member_id=event.member_id,
                status=status,
                error=error,
            )
        )

    async def drain(self) -> None:
        """Wait until every scheduled delivery has finished."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    async def aclose(self, *, grace: float = 1.0) -> None:
        """Give pending deliveries ``grace`` seconds, cancel the rest, close the session."""
        if self._tasks:
            _, still_running = await asyncio.wait(list(self._tasks), timeout=grace)
            for task in still_running:
                task.cancel()
            if still_running:
                await asyncio.gather(*still_running, return_exceptions=True)
        if self._session is not None:
            await self._session.close()
            self._session = None

"""The aiohttp webhook endpoint: answer at once, verify in the background, bounded.

A POST is checked (secret path segment, method, Content-Type, size, form, duplicate)
and handed to the :class:`VerifyPool` without awaiting any I/O but its own body. API
calls in flight never exceed the workers, so a flood — forged or not — costs at most
``queue_size + workers`` calls before the receiver answers 503 to the rest, which it
logs and counts: Coursepath does not retry, and only the nightly sync will pick those
changes up. Malformed or wrong-secret posts never reach the pool, so never the API.
"""

from __future__ import annotations

import asyncio
import hmac
import re
import ssl
import time
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from typing import Any, Final, Literal, TypedDict, Unpack

import orjson
from aiohttp import hdrs, web
from aiohttp.http_exceptions import HttpProcessingError

from .._client import CoursepathAPI
from .._config import Priority
from .._exceptions import InvalidInputError
from .._validation import check_int, check_number, short_repr
from ._dedupe import RecentEvents
from ._events import (
    MAX_BODY,
    EventKind,
    InvalidWebhookError,
    WebhookEvent,
    check_content_encoding,
    check_content_type,
    check_size,
    parse_webhook,
)
from ._guard import ConnectionGuard, GuardedSite
from ._pool import Job, OnEvent, VerifyPool, describe, log
from ._stats import Counters, WebhookStats

__all__ = ["RECEIVER_KEY", "ReceiverOptions", "WebhookReceiver", "webhook_app"]

_SECRET: Final = re.compile(r"[A-Za-z0-9._~-]{16,256}")
_PATH: Final = re.compile(r"(?:/[A-Za-z0-9._~-]+)+")
_DROP_LOG_INTERVAL: Final = 10.0  # seconds between "queue full" errors during a flood
_NOT_FOUND: Final = "404: Not Found"  # what aiohttp says for an unknown path


class ReceiverOptions(TypedDict, total=False):
    """The keyword options of :class:`WebhookReceiver`, for :func:`webhook_app`."""

    path: str
    secret: str | None
    workers: int
    queue_size: int
    dedupe_ttl: float
    dedupe_max: int
    max_body: int
    read_timeout: float
    header_timeout: float
    keepalive_timeout: float
    max_connections: int
    priority: Priority | None
    drain_timeout: float
    clock: Callable[[], float]


class WebhookReceiver:
    """Receives Coursepath webhooks, verifies them through ``client``, calls ``on_event``.

    ``path`` is where Coursepath posts; with ``secret`` (16+ URL-safe characters, e.g.
    ``secrets.token_urlsafe(32)``) the route becomes ``{path}/{secret}`` and any other
    segment gets a plain 404 before anything else happens. The secret is compared in
    constant time and never shown in a repr or log line — but an aiohttp access log
    prints request paths, so run the app with ``access_log=None``. ``workers`` bounds
    API calls in flight, ``queue_size`` the events waiting; the same (event, course,
    member) seen again while pending, or within ``dedupe_ttl`` seconds of being
    verified, is answered 200 and not processed again (keep the window short: a genuine
    repeat inside it, e.g. a re-enrolment, is skipped too). An unconfirmed event is
    forgotten at once — and checked once more if a copy arrived while it was pending —
    so a forgery cannot shadow the genuine delivery that follows or races it. A
    verified DELETED means only "not enrolled now" (the API's 404 is the same for ids
    that never existed), so the secret matters: whoever can post can make ``on_event``
    see DELETEDs for made-up ids. Verification calls run in the ``priority`` lane
    (``None`` keeps ``client``'s). Deliveries are attempted once and unsigned, so pair
    this with the nightly sync, which catches what never arrived.

    Served through :meth:`runner` and :meth:`site`, connections are limited too: a
    request head must arrive within ``header_timeout`` seconds of connecting, an idle
    keep-alive connection is closed after ``keepalive_timeout``, and at most
    ``max_connections`` are open — at the cap the oldest one still sending its head is
    closed to make room, and only if none is a newcomer gets a canned 503. Compressed
    bodies are refused (415) unread, never inflated; ``read_timeout`` bounds the body.
    """

    def __init__(
        self,
        client: CoursepathAPI,
        on_event: OnEvent,
        *,
        path: str = "/webhooks",
        secret: str | None = None,
        workers: int = 4,
        queue_size: int = 100,
        dedupe_ttl: float = 60.0,
        dedupe_max: int = 10_000,
        max_body: int = MAX_BODY,
        read_timeout: float = 10.0,
        header_timeout: float = 10.0,
        keepalive_timeout: float = 15.0,
        max_connections: int = 256,
        priority: Priority | None = Priority.NORMAL,
        drain_timeout: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if not isinstance(path, str) or _PATH.fullmatch(path) is None:
            raise InvalidInputError(
                f"path must look like '/webhooks' (URL-safe segments), got {short_repr(path)}",
                argument="path",
            )
        if secret is not None and (
            not isinstance(secret, str) or _SECRET.fullmatch(secret) is None
        ):
            # Never echo the secret, not even in an error.
            raise InvalidInputError(
                "secret must be 16 to 256 URL-safe characters (A-Z a-z 0-9 . _ ~ -)",
                argument="secret",
            )
        check_int(workers, field="workers")
        check_int(queue_size, field="queue_size")
        check_int(max_connections, field="max_connections")
        check_int(dedupe_max, field="dedupe_max")
        check_int(max_body, field="max_body", minimum=64)
        check_number(dedupe_ttl, field="dedupe_ttl")
        check_number(read_timeout, field="read_timeout", above_minimum=True)
        check_number(header_timeout, field="header_timeout", above_minimum=True)
        check_number(keepalive_timeout, field="keepalive_timeout", above_minimum=True)
        check_number(drain_timeout, field="drain_timeout", above_minimum=True)
        if not callable(on_event):
            raise InvalidInputError(
                f"on_event must be an async callable, got {short_repr(on_event)}",
                argument="on_event",
            )
        self._path = path
        self._secret = secret
        self._max_body = max_body
        self._read_timeout = read_timeout
        self._drain_timeout = drain_timeout
        self._keepalive_timeout = keepalive_timeout
        self._guard = ConnectionGuard(
            header_timeout=header_timeout, max_connections=max_connections
        )
        self._clock = clock
        self._recent = RecentEvents[tuple[EventKind, int, int]](
            ttl=dedupe_ttl, max_entries=dedupe_max, clock=clock
        )
        self._counters = Counters()
        self._pool = VerifyPool(
            client if priority is None else client.with_options(priority=priority),
            on_event,
            workers=workers,
            queue_size=queue_size,
            recent=self._recent,
            counters=self._counters,
        )
        self._state: Literal["new", "running", "closed"] = "new"
        self._last_drop_log: float | None = None
        self._drops_unlogged = 0

    def __repr__(self) -> str:
        shown = f"{self._path}/<secret>" if self._secret is not None else self._path
        return f"<WebhookReceiver {shown} {self._state} {self._pool!r} {self._guard!r}>"

    @property
    def route(self) -> str:
        """The aiohttp route pattern: ``path``, or ``path/{secret}`` with a secret."""
        return self._path if self._secret is None else f"{self._path}/{{secret}}"

    def attach(self, app: web.Application) -> None:
        """Add the route to ``app`` and run the workers for the app's lifetime.

        Every method is routed here so that, behind a secret, even a GET with the wrong
        segment gets the same plain 404 as an unknown path.
        """
        app.router.add_route("*", self.route, self.handle)
        app.cleanup_ctx.append(self._lifespan)

    def runner(self, app: web.Application, *, handle_signals: bool = False) -> web.AppRunner:
        """An ``AppRunner`` for ``app`` (which this receiver is attached to), with its limits.

        No access log (it would print the secret path); request bodies are left
        compressed, so a compressed post is refused unread instead of inflated; idle
        keep-alive connections close after ``keepalive_timeout``. Listen with :meth:`site`.
        """
        return web.AppRunner(
            app,
            access_log=None,
            handle_signals=handle_signals,
            keepalive_timeout=self._keepalive_timeout,
            auto_decompress=False,
        )

    def site(
        self,
        runner: web.BaseRunner,
        *,
        host: str | None = None,
        port: int = 0,
        sock: Any = None,
        ssl_context: ssl.SSLContext | None = None,
    ) -> web.BaseSite:
        """A site listening on ``host``/``port`` (or a bound ``sock``) behind the guard.

        Every connection is counted against ``max_connections`` and closed unless its
        request head arrives within ``header_timeout`` (a TLS handshake too).
        """
        return GuardedSite(
            runner, self._guard, host=host, port=port, sock=sock, ssl_context=ssl_context
        )

    async def _lifespan(self, _app: web.Application) -> AsyncIterator[None]:
        await self.start()
        yield
        await self.aclose()

    # -- lifecycle --------------------------------------------------------------------

    async def start(self) -> None:
        """Start the workers (``attach`` does this on app startup). Idempotent while running."""
        if self._state == "closed":
            raise RuntimeError("a closed WebhookReceiver cannot be restarted")
        if self._state == "running":
            return
        self._pool.start()
        self._state = "running"

    async def join(self) -> None:
        """Wait until every event accepted so far has been processed."""
        await self._pool.join()

    async def aclose(self, *, grace: float | None = None) -> None:
        """Refuse new posts (503), let queued events finish for ``grace`` s, cancel the rest.

        The default ``grace`` is ``drain_timeout``. Events still queued or still being
        verified then are counted as ``dropped_shutdown`` and logged; a callback still
        running is cancelled and logged (its event stays counted as ``verified``). Safe
        to call twice.
        """
        if self._state == "closed":
            return
        self._state = "closed"
        if self._drops_unlogged:  # none can follow: posts are refused from now on
            log.error(
                "%d more webhook(s) were dropped on a full queue; the nightly sync must catch them",
                self._drops_unlogged,
            )
            self._drops_unlogged = 0
        await self._pool.stop(grace=self._drain_timeout if grace is None else grace)

    def stats(self) -> WebhookStats:
        """A snapshot of the counters (see :class:`WebhookStats`)."""
        guard = self._guard
        return self._counters.snapshot(
            queued=self._pool.queued,
            in_flight=self._pool.in_flight,
            connections_open=guard.open,
            connections_refused=guard.refused,
            connections_evicted=guard.evicted,
            header_timeouts=guard.header_timeouts,
        )

    # -- the endpoint -----------------------------------------------------------------

    async def handle(self, request: web.Request) -> web.Response:
        """The handler: 202 queued, 200 duplicate, 4xx refused, 503 queue full or closed."""
        self._counters.received += 1
        if self._secret is not None and not hmac.compare_digest(
            request.match_info.get("secret", "").encode(), self._secret.encode()
        ):
            self._counters.rejected["wrong_secret"] += 1
            return web.Response(status=404, text=_NOT_FOUND)
        if request.method != hdrs.METH_POST:
            self._counters.rejected["method_not_allowed"] += 1
            body = orjson.dumps({"error": "method_not_allowed", "message": "only POST"})
            return web.Response(
                status=405, body=body, content_type="application/json", headers={"Allow": "POST"}
            )
        if self._state != "running":
            return self._unavailable()
        received_at = datetime.now(UTC)
        try:
            async with asyncio.timeout(self._read_timeout):
                event = await self._receive(request)
        except InvalidWebhookError as exc:
            self._counters.rejected[exc.reason] += 1
            log.debug("webhook refused: %s", exc)
            return _json(exc.status, {"error": exc.reason, "message": exc.message})
        except TimeoutError:
            self._counters.rejected["read_timeout"] += 1
            return _json(
                408, {"error": "read_timeout", "message": "the body took too long to arrive"}
            )
        except (web.RequestPayloadError, HttpProcessingError, ConnectionResetError) as exc:
            return await self._refuse_unreadable(
                request, lost=isinstance(exc, ConnectionResetError)
            )
        return self._enqueue(event, received_at)

    async def _receive(self, request: web.Request) -> WebhookEvent:
        # Refuse by headers first, then read no more than one byte past the limit,
        # whatever Content-Length claimed (it may be absent: chunked encoding).
        check_content_encoding(request.headers.get(hdrs.CONTENT_ENCODING))
        content_type = request.headers.get(hdrs.CONTENT_TYPE)
        check_content_type(content_type)
        if request.content_length is not None:
            check_size(request.content_length, max_body=self._max_body)
        body = bytearray()
        while chunk := await request.content.read(self._max_body + 1 - len(body)):
            body += chunk
            check_size(len(body), max_body=self._max_body)
        return parse_webhook(bytes(body), content_type=content_type, max_body=self._max_body)

    async def _refuse_unreadable(self, request: web.Request, *, lost: bool) -> web.Response:
        """400 ``malformed_body``: a body aiohttp cannot decode (e.g. bad gzip) or cut short."""
        self._counters.rejected["malformed_body"] += 1
        message = "the connection closed mid-body" if lost else "the body could not be decoded"
        log.debug("webhook refused: %s", message)
        response = _json(400, {"error": "malformed_body", "message": message})
        if lost:
            return response  # nobody to answer; aiohttp drops the connection quietly
        # Answer now and close: the rest of the body cannot be framed, and aiohttp would
        # otherwise read on after the handler and log the same error as unhandled.
        response.force_close()
        try:
            await response.prepare(request)
            await response.write_eof()
        except ConnectionResetError:
            pass  # the client left meanwhile
        request.protocol.force_close()
        return response

    def _unavailable(self) -> web.Response:
        self._counters.rejected["unavailable"] += 1
        log.warning("webhook refused: the receiver is %s (503)", self._state)
        return _json(503, {"error": "unavailable", "message": "the receiver is not running"})

    def _enqueue(self, event: WebhookEvent, received_at: datetime) -> web.Response:
        if self._state != "running":  # closed while the body was arriving
            return self._unavailable()
        if not self._recent.claim(event.key):
            self._counters.duplicates += 1
            log.debug("duplicate webhook %s", describe(event))
            return _json(200, {"status": "duplicate"})
        if not self._pool.submit(Job(event, received_at)):
            self._recent.finish(event.key, remember=False)
            self._counters.dropped_queue_full += 1
            self._log_drop(event)
            return _json(503, {"error": "queue_full", "message": "too many webhooks queued"})
        self._counters.accepted += 1
        return _json(202, {"status": "accepted"})

    def _log_drop(self, event: WebhookEvent) -> None:
        # Loud, but once per interval: a flood must not also flood the log.
        self._drops_unlogged += 1
        now = self._clock()
        if self._last_drop_log is not None and now - self._last_drop_log < _DROP_LOG_INTERVAL:
            return
        log.error(
            "webhook queue full (%d queued): dropped %s%s; Coursepath will not retry, "
            "the nightly sync must catch it",
            self._pool.queued,
            describe(event),
            f" and {self._drops_unlogged - 1} more" if self._drops_unlogged > 1 else "",
        )
        self._last_drop_log = now
        self._drops_unlogged = 0


def _json(status: int, body: dict[str, str]) -> web.Response:
    return web.Response(status=status, body=orjson.dumps(body), content_type="application/json")


#: Where :func:`webhook_app` keeps its receiver: ``app[RECEIVER_KEY].stats()``.
RECEIVER_KEY: Final = web.AppKey("coursepath_webhook_receiver", WebhookReceiver)


def webhook_app(
    client: CoursepathAPI,
    on_event: OnEvent,
    **options: Unpack[ReceiverOptions],
) -> web.Application:
    """An aiohttp app serving one :class:`WebhookReceiver` (kept at ``app[RECEIVER_KEY]``).

    Serve it with the receiver's :meth:`~WebhookReceiver.runner` and
    :meth:`~WebhookReceiver.site`, which enforce the connection limits, keep the secret
    path out of the access log and never inflate a compressed body. Under a runner of
    your own, pass at least ``access_log=None, auto_decompress=False``.
    """
    receiver = WebhookReceiver(client, on_event, **options)
    app = web.Application()
    app[RECEIVER_KEY] = receiver
    receiver.attach(app)
    return app

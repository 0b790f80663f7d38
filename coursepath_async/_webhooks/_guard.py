"""Connection limits for the receiver: a deadline on request heads and a cap on connections.

aiohttp waits for a request head as long as the client likes, and keeps every
connection a client opens. On the open internet that lets a few hundred idle or
header-dribbling sockets crowd out Coursepath's one-shot deliveries. Each accepted
connection is therefore wrapped in a :class:`_GuardedConnection` that sits between
the transport and aiohttp's protocol: it counts the connection, closes it if its first
request head (up to the empty line) has not arrived within ``header_timeout`` seconds,
and at the cap makes room by closing the oldest connection still waiting for its head —
a genuine delivery sends its head at once, so a flood of slow sockets evicts itself.
Only when every connection has sent its head is a newcomer refused, with a canned 503
written before aiohttp sees it. Idle keep-alive connections are aiohttp's own
``keepalive_timeout``, set by :meth:`WebhookReceiver.runner`.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
from collections.abc import Callable
from typing import Any, Final, cast

from aiohttp import web

__all__ = ["ConnectionGuard", "GuardedSite"]

log: Final = logging.getLogger("coursepath_async.webhooks")

_BUSY: Final = (
    b"HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\n"
    b"Content-Length: 65\r\nConnection: close\r\n\r\n"
    b'{"error":"too_many_connections","message":"too many connections"}'
)
_HEAD_END: Final = (b"\r\n\r\n", b"\n\n")  # aiohttp's parser accepts bare LFs too
_TAIL: Final = 3  # bytes kept to find a head end split across two reads


class ConnectionGuard:
    """Counts a receiver's connections and enforces its head deadline and cap."""

    def __init__(self, *, header_timeout: float, max_connections: int) -> None:
        self.header_timeout = header_timeout
        self.max_connections = max_connections
        self._open: set[_GuardedConnection] = set()
        # Connections still waiting for their first head, oldest first (dicts keep order).
        self._waiting: dict[_GuardedConnection, None] = {}
        self.refused = 0
        self.evicted = 0
        self.header_timeouts = 0

    def __repr__(self) -> str:
        return f"connections={len(self._open)}/{self.max_connections}"

    @property
    def open(self) -> int:
        """Connections open now."""
        return len(self._open)

    def factory(self, make_protocol: Callable[[], asyncio.Protocol]) -> Callable[[], Any]:
        """A protocol factory for ``loop.create_server`` wrapping ``make_protocol``'s."""
        return lambda: _GuardedConnection(self, make_protocol)

    def _admit(self, connection: _GuardedConnection) -> bool:
        if len(self._open) >= self.max_connections:
            if not self._waiting:
                self.refused += 1
                return False
            oldest = next(iter(self._waiting))
            self.evicted += 1
            oldest.abort()
        self._open.add(connection)
        self._waiting[connection] = None
        return True

    def _head_arrived(self, connection: _GuardedConnection) -> None:
        self._waiting.pop(connection, None)

    def _release(self, connection: _GuardedConnection) -> None:
        self._open.discard(connection)
        self._waiting.pop(connection, None)


class _GuardedConnection(asyncio.Protocol):
    """Forwards every transport event to aiohttp's protocol, watching the first head."""

    def __init__(
        self, guard: ConnectionGuard, make_protocol: Callable[[], asyncio.Protocol]
    ) -> None:
        self._guard = guard
        self._make_protocol = make_protocol
        self._inner: asyncio.Protocol | None = None
        self._transport: asyncio.Transport | None = None
        self._deadline: asyncio.TimerHandle | None = None
        self._tail = b""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # A stream transport (uvloop's does not subclass asyncio.Transport: no isinstance).
        self._transport = cast(asyncio.Transport, transport)
        if not self._guard._admit(self):
            # Refused before aiohttp builds anything for it: one write, then gone.
            self._transport.write(_BUSY)
            self._transport.close()
            return
        self._deadline = asyncio.get_running_loop().call_later(
            self._guard.header_timeout, self._expire
        )
        self._inner = self._make_protocol()
        self._inner.connection_made(transport)

    def data_received(self, data: bytes) -> None:
        if self._inner is None:
            return
        if self._deadline is not None:
            seen = self._tail + data
            if any(end in seen for end in _HEAD_END):
                self._head_arrived()
            else:
                self._tail = seen[-_TAIL:]
        self._inner.data_received(data)

    def _head_arrived(self) -> None:
        self._stop_deadline()
        self._tail = b""
        self._guard._head_arrived(self)

    def _expire(self) -> None:
        self._deadline = None
        self._guard.header_timeouts += 1
        self.abort()

    def _stop_deadline(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def eof_received(self) -> bool | None:
        return None if self._inner is None else self._inner.eof_received()

    def pause_writing(self) -> None:
        if self._inner is not None:
            self._inner.pause_writing()

    def resume_writing(self) -> None:
        if self._inner is not None:
            self._inner.resume_writing()

    def connection_lost(self, exc: Exception | None) -> None:
        self._stop_deadline()
        self._guard._release(self)
        if self._inner is not None:
            self._inner.connection_lost(exc)

    def abort(self) -> None:
        """Drop the connection at once (no response: it never sent a complete head)."""
        self._stop_deadline()
        self._guard._release(self)
        if self._transport is not None:
            self._transport.abort()


class GuardedSite(web.BaseSite):
    """A TCP site (host and port, or a bound socket) whose connections pass the guard."""

    __slots__ = ("_guard", "_host", "_port", "_sock")

    def __init__(
        self,
        runner: web.BaseRunner,
        guard: ConnectionGuard,
        *,
        host: str | None = None,
        port: int = 0,
        sock: Any = None,
        ssl_context: ssl.SSLContext | None = None,
        backlog: int = 128,
    ) -> None:
        super().__init__(runner, ssl_context=ssl_context, backlog=backlog)
        self._guard = guard
        self._host = host
        self._port = port
        self._sock = sock

    @property
    def name(self) -> str:
        """The URL base this site listens on."""
        scheme = "https" if self._ssl_context else "http"
        sockets = getattr(self._server, "sockets", None)  # an asyncio.Server once started
        if sockets:
            host, port = sockets[0].getsockname()[:2]
        else:
            host, port = self._host or "0.0.0.0", self._port
        return f"{scheme}://{f'[{host}]' if ':' in host else host}:{port}"

    async def start(self) -> None:
        """Listen; each new connection gets the guard in front of aiohttp's protocol."""
        await super().start()
        server = self._runner.server
        assert server is not None  # the runner was set up
        factory = self._guard.factory(server)
        # A TLS handshake that never finishes is bounded by the same head deadline.
        handshake = self._guard.header_timeout if self._ssl_context is not None else None
        loop = asyncio.get_running_loop()
        if self._sock is not None:
            self._server = await loop.create_server(
                factory,
                sock=self._sock,
                ssl=self._ssl_context,
                backlog=self._backlog,
                ssl_handshake_timeout=handshake,
            )
        else:
            self._server = await loop.create_server(
                factory,
                self._host,
                self._port,
                ssl=self._ssl_context,
                backlog=self._backlog,
                ssl_handshake_timeout=handshake,
            )

"""A small forward proxy on loopback for tests: CONNECT tunnels only, every request recorded.

It answers ``407`` unless the ``Proxy-Authorization`` matches ``credentials`` (when
given), then pipes bytes both ways; it never sees inside a TLS tunnel.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from attrs import define, field


@define
class ConnectProxy:
    """What the proxy saw: each CONNECT target and the Proxy-Authorization sent with it."""

    credentials: tuple[str, str] | None = None
    port: int = 0
    connects: list[str] = field(factory=list)
    authorizations: list[str | None] = field(factory=list)

    @property
    def url(self) -> str:
        """The proxy's URL, without credentials."""
        return f"http://127.0.0.1:{self.port}"

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await reader.readuntil(b"\r\n\r\n")
            request_line, *header_lines = head.decode("latin-1").split("\r\n")
            method, target, _ = request_line.split(" ", 2)
            headers = {
                name.strip().lower(): value.strip()
                for name, _, value in (line.partition(":") for line in header_lines if line)
            }
            self.connects.append(f"{method} {target}")
            authorization = headers.get("proxy-authorization")
            self.authorizations.append(authorization)
            if method != "CONNECT":
                writer.write(b"HTTP/1.1 405 Method Not Allowed\r\nContent-Length: 0\r\n\r\n")
                return
            if self.credentials is not None:
                expected = base64.b64encode(":".join(self.credentials).encode()).decode()
                if authorization != f"Basic {expected}":
                    writer.write(
                        b"HTTP/1.1 407 Proxy Authentication Required\r\nContent-Length: 0\r\n\r\n"
                    )
                    return
            host, _, port = target.rpartition(":")
            upstream_reader, upstream_writer = await asyncio.open_connection(host, int(port))
            writer.write(b"HTTP/1.1 200 Connection established\r\n\r\n")
            await asyncio.gather(_pipe(reader, upstream_writer), _pipe(upstream_reader, writer))
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            with contextlib.suppress(ConnectionError):
                writer.close()


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    except ConnectionError:
        pass
    finally:
        with contextlib.suppress(ConnectionError):
            writer.close()


@asynccontextmanager
async def connect_proxy(credentials: tuple[str, str] | None = None) -> AsyncIterator[ConnectProxy]:
    """Run a :class:`ConnectProxy` on ``127.0.0.1`` for the block."""
    proxy = ConnectProxy(credentials=credentials)
    server = await asyncio.start_server(proxy._handle, "127.0.0.1", 0)
    proxy.port = server.sockets[0].getsockname()[1]
    try:
        yield proxy
    finally:
        server.close()
        await server.wait_closed()

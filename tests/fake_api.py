"""An aioresponses harness for client-level tests: queued answers per route, recorded requests.

Test modules import it by name (``from fake_api import ...``): pytest puts a test file's
directory on ``sys.path``. Nothing here knows the test constants; each test module passes
its own API root and key.
"""

from __future__ import annotations

import asyncio
import re
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

import aiohttp
import jwt
import orjson
from aiohttp.client_reqrep import ConnectionKey
from aioresponses import CallbackResult, aioresponses
from yarl import URL


class Response(aiohttp.ClientResponse):
    """aioresponses 0.7.9 predates aiohttp 3.14's required ``stream_writer`` argument."""

    def __init__(self, method: str, url: URL, **kwargs: Any) -> None:
        kwargs.setdefault("stream_writer", SimpleNamespace(output_size=0))
        super().__init__(method, url, **kwargs)


@dataclass
class Sent:
    """One request as it left the client."""

    method: str
    url: URL
    headers: dict[str, str]
    data: bytes | None
    key: str = field(repr=False)
    """The API key the client signs its tokens with."""
    root: str
    """The path of the API root (``/api/v1``), left out of ``target``."""

    @property
    def token(self) -> str:
        """The bearer token from the ``Authorization`` header."""
        scheme, _, token = self.headers["Authorization"].partition(" ")
        assert scheme == "Bearer"
        return token

    def claims(self) -> dict[str, Any]:
        """The token's claims, its signature checked against the API key."""
        decoded: dict[str, Any] = jwt.decode(
            self.token, self.key, algorithms=["HS256"], options={"verify_iat": False}
        )
        return decoded

    def json(self) -> Any:
        """The decoded JSON body, or None when no body was sent."""
        return None if self.data is None else orjson.loads(self.data)

    @property
    def target(self) -> str:
        """Method, path below the API root and sorted query, e.g. ``GET /members?limit=500``."""
        path = self.url.path.removeprefix(self.root)
        query = "&".join(f"{k}={v}" for k, v in sorted(self.url.query.items()))
        return f"{self.method} {path}" + (f"?{query}" if query else "")


@dataclass
class Answer:
    """One canned answer: a status and body, or an exception; optionally after a wait."""

    status: int = 200
    payload: Any = None
    body: str | bytes = ""
    headers: dict[str, str] | None = None
    exception: BaseException | None = None
    repeat: bool = False
    before: Callable[[], Awaitable[None]] | None = None


class FakeAPI:
    """Serves queued answers per method and path, and records every request sent."""

    def __init__(self, mock: aioresponses, api_root: str, key: str) -> None:
        self.mock = mock
        self.api_root = api_root
        self.key = key
        self.sent: list[Sent] = []
        self.answers: dict[tuple[str, str], deque[Answer]] = {}

    def add(self, method: str, path: str, **answer: Any) -> None:
        """Queue an answer (``Answer`` fields) for ``method`` on ``path`` below the API root."""
        key = (method, path)
        if key not in self.answers:
            self.answers[key] = deque()
            self.mock.add(
                re.compile(re.escape(self.api_root + path) + r"(\?.*)?$"),
                method=method,
                callback=self._responder(method, path),
                repeat=True,
                response_class=Response,
            )
        self.answers[key].append(Answer(**answer))

    def _responder(self, method: str, path: str) -> Callable[..., Awaitable[CallbackResult]]:
        root = URL(self.api_root).path

        async def respond(url: URL, **kwargs: Any) -> CallbackResult:
            headers = dict(kwargs.get("headers") or {})
            self.sent.append(Sent(method, url, headers, kwargs.get("data"), self.key, root))
            queue = self.answers[(method, path)]
            assert queue, f"unexpected request {method} {url}"
            answer = queue[0] if queue[0].repeat else queue.popleft()
            if answer.before is not None:
                await answer.before()
            if answer.exception is not None:
                raise answer.exception
            return CallbackResult(
                status=answer.status,
                payload=answer.payload,
                body=answer.body,
                headers=answer.headers,
                response_class=Response,
            )

        return respond

    @property
    def targets(self) -> list[str]:
        """``Sent.target`` of every request so far, in order."""
        return [s.target for s in self.sent]


def connection_key(base: str) -> ConnectionKey:
    """The aiohttp connection key for ``base``, an ``https://host`` origin."""
    url = URL(base)
    assert url.host is not None
    assert url.port is not None
    return ConnectionKey(url.host, url.port, True, True, None, None, None)


def refused(base: str) -> aiohttp.ClientConnectorError:
    """The error aiohttp raises when ``base`` refuses the connection."""
    return aiohttp.ClientConnectorError(
        connection_key(base), ConnectionRefusedError(111, "Connection refused")
    )


async def settle(rounds: int = 10) -> None:
    """Let ready tasks run for ``rounds`` event loop turns."""
    for _ in range(rounds):
        await asyncio.sleep(0)

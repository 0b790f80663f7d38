"""A loopback aiohttp server (127.0.0.1, port 0) answering whatever a test scripted."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from typing import Any

from aiohttp import web
from conftest import API_KEY

from coursepath_async import CoursepathClient, RetryPolicy

USER = "admin@answers.test"
#: Any single call against the scripted server finishes well within this, or it hung.
CALL_LIMIT = 5.0

Answer = Callable[[web.BaseRequest], Awaitable[web.StreamResponse]]


class AnswerServer:
    """A loopback aiohttp server answering every request with the currently scripted answer."""

    def __init__(self) -> None:
        self.answer: Answer = plain(b"[]")
        self.targets: list[str] = []
        self._runner: web.ServerRunner | None = None
        self._port = 0

    @property
    def url(self) -> str:
        """The base URL a client points at."""
        return f"http://127.0.0.1:{self._port}"

    async def _handle(self, request: web.BaseRequest) -> web.StreamResponse:
        self.targets.append(f"{request.method} {request.path_qs}")
        return await self.answer(request)

    async def __aenter__(self) -> AnswerServer:
        runner = web.ServerRunner(web.Server(self._handle, access_log=None), shutdown_timeout=1.0)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        self._runner = runner
        self._port = int(runner.addresses[0][1])
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        if self._runner is not None:
            await self._runner.cleanup()


def plain(
    body: bytes,
    *,
    status: int = 200,
    content_type: str = "application/json",
    headers: Mapping[str, str] | None = None,
) -> Answer:
    """Answer with ``body`` whole, with a Content-Length."""

    async def answer(_: web.BaseRequest) -> web.StreamResponse:
        return web.Response(
            status=status, body=body, headers={"Content-Type": content_type, **(headers or {})}
        )

    return answer


def chunked(
    body: bytes, *, chunk: int = 16 * 1024, headers: Mapping[str, str] | None = None
) -> Answer:
    """Answer with ``body`` in chunked transfer encoding: no Content-Length."""

    async def answer(request: web.BaseRequest) -> web.StreamResponse:
        response = web.StreamResponse(
            headers={"Content-Type": "application/json", **(headers or {})}
        )
        response.enable_chunked_encoding()
        await response.prepare(request)
        try:
            for start in range(0, len(body), chunk):
                await response.write(body[start : start + chunk])
            await response.write_eof()
        except ConnectionError:
            pass  # the client refused the rest and hung up: expected for oversize answers
        return response

    return answer


def client_for(server: AnswerServer, **options: Any) -> CoursepathClient:
    """A client of ``server`` over loopback http: two attempts, no waits between them."""
    settings: dict[str, Any] = {
        "api_key": API_KEY,
        "user": USER,
        "allow_http": True,
        "retry": RetryPolicy(max_attempts=2, base_delay=0.0, max_delay=0.0),
        "timeout": CALL_LIMIT,
    }
    settings.update(options)
    return CoursepathClient(server.url, **settings)


async def serve_answers() -> AsyncIterator[AnswerServer]:
    """Fixture body (``server = pytest.fixture(serve_answers, name="server")``): a server."""
    async with AnswerServer() as running:
        yield running


async def answering_client(server: AnswerServer) -> AsyncIterator[CoursepathClient]:
    """Fixture body (``client``): a :func:`client_for` the ``server`` fixture, closed after."""
    async with client_for(server) as sdk:
        yield sdk

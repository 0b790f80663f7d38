"""What every request carries on the wire, on the SDK's own session and on a caller's."""

from __future__ import annotations

from collections.abc import AsyncIterator

import aiohttp
import orjson
import pytest
from aiohttp import web
from answer_server import AnswerServer, client_for, serve_answers

from coursepath_async._transport import USER_AGENT

server = pytest.fixture(serve_answers, name="server")

MEMBER = orjson.dumps({"id": 7, "email": "ada@example.com", "name": "Ada"})


class Recorder:
    """Answers every request with a member and keeps each request's headers as received."""

    def __init__(self) -> None:
        self.seen: list[list[tuple[str, str]]] = []

    async def __call__(self, request: web.BaseRequest) -> web.StreamResponse:
        self.seen.append(list(request.headers.items()))
        return web.Response(body=MEMBER, content_type="application/json")


def values(headers: list[tuple[str, str]], name: str) -> list[str]:
    """Every value of header ``name`` (case-insensitive), in order."""
    return [value for key, value in headers if key.lower() == name.lower()]


@pytest.fixture
def recorder(server: AnswerServer) -> Recorder:
    recording = Recorder()
    server.answer = recording
    return recording


@pytest.fixture
async def foreign_session() -> AsyncIterator[aiohttp.ClientSession]:
    """A caller's session with defaults of its own that the SDK's must override."""
    async with aiohttp.ClientSession(
        headers={"User-Agent": "their-app/2.0", "Accept": "text/html"}
    ) as session:
        yield session


async def _get_and_create(server: AnswerServer, **options: object) -> None:
    async with client_for(server, **options) as client:
        await client.members.get(7)
        await client.members.create(email="ada@example.com", name="Ada")


async def test_own_session_sends_accept_and_user_agent_once(
    server: AnswerServer, recorder: Recorder
) -> None:
    """The SDK's session sends JSON Accept and its User-Agent, once each; bodies say JSON."""
    await _get_and_create(server)
    get, post = recorder.seen
    for headers in (get, post):
        assert values(headers, "Accept") == ["application/json"]
        assert values(headers, "User-Agent") == [USER_AGENT]
        assert len(values(headers, "Authorization")) == 1
    assert values(get, "Content-Type") == []
    assert values(post, "Content-Type") == ["application/json"]


async def test_callers_session_gets_the_sdks_headers_over_its_defaults(
    server: AnswerServer, recorder: Recorder, foreign_session: aiohttp.ClientSession
) -> None:
    """On a session of the caller's, each request overrides its Accept and User-Agent."""
    await _get_and_create(server, session=foreign_session)
    assert len(recorder.seen) == 2
    for headers in recorder.seen:
        assert values(headers, "Accept") == ["application/json"]
        assert values(headers, "User-Agent") == [USER_AGENT]

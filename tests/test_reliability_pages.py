"""Hostile or broken listing pages over loopback HTTP: refused, never passed off as data.

A tiny aiohttp server (127.0.0.1, port 0) answers ``GET /members`` page by page with what
the sandbox never does: a 204, an empty body or ``null`` mid-listing, more records than
asked for, a body far bigger than its page can be, pages of fresh ids that never end.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import orjson
import pytest
from aiohttp import web
from answer_server import (
    CALL_LIMIT,
    Answer,
    AnswerServer,
    answering_client,
    chunked,
    client_for,
    plain,
    serve_answers,
)

from coursepath_async import APIResponseValidationError, CoursepathClient, Member
from coursepath_async._cursor import page_body_limit

#: offset, limit -> the answer for that page (``None``: the regular page).
Spoiler = Callable[[int, int], web.StreamResponse | None]


def member(member_id: int) -> dict[str, object]:
    """A valid member record."""
    return {"id": member_id, "email": f"m{member_id}@pages.test"}


def listing(total: int, *, spoil: Spoiler = lambda offset, limit: None) -> Answer:
    """Pages of a listing of ``total`` members (capped at 500), unless ``spoil`` answers."""

    async def answer(request: web.BaseRequest) -> web.StreamResponse:
        offset, limit = int(request.query["offset"]), int(request.query["limit"])
        spoiled = spoil(offset, limit)
        if spoiled is not None:
            return spoiled
        ids = range(offset + 1, min(offset + min(limit, 500), total) + 1)
        return json_answer([member(i) for i in ids])

    return answer


def json_answer(data: object, *, status: int = 200) -> web.Response:
    """``data`` as a JSON body."""
    return web.Response(status=status, body=orjson.dumps(data), content_type="application/json")


server = pytest.fixture(serve_answers, name="server")
client = pytest.fixture(answering_client, name="client")


async def member_ids(client: CoursepathClient, *, window: int | None = None) -> list[int]:
    """Every member id of ``GET /members``, bounded so a hang fails the test."""
    async with asyncio.timeout(CALL_LIMIT * 2):
        return [m.id async for m in client.members.list(window=window)]


@pytest.mark.parametrize(
    "spoiled",
    [
        pytest.param(lambda: web.Response(status=204), id="204"),
        pytest.param(lambda: web.Response(status=200, body=b""), id="empty body"),
        pytest.param(lambda: json_answer(None), id="null"),
    ],
)
async def test_a_page_without_records_mid_listing_is_refused(
    server: AnswerServer, client: CoursepathClient, spoiled: Callable[[], web.Response]
) -> None:
    """A 204, an empty body or null for the second page is an error, not the end at 500."""
    server.answer = listing(1_200)
    assert await member_ids(client) == list(range(1, 1_201))  # unspoilt: read whole
    server.answer = listing(1_200, spoil=lambda offset, _: spoiled() if offset == 500 else None)
    with pytest.raises(APIResponseValidationError, match="got no records at all") as info:
        await member_ids(client)
    assert info.value.url == f"{server.url}/api/v1/members?offset=500&limit=500"


async def test_a_page_of_far_more_records_than_asked_for_is_refused(
    server: AnswerServer, client: CoursepathClient
) -> None:
    """2,000 records for a page of 500 are refused before decoding, naming URL and sizes."""
    server.answer = listing(
        10_000, spoil=lambda offset, _: json_answer([member(offset + i) for i in range(2_000)])
    )
    with pytest.raises(
        APIResponseValidationError, match=r"of 2,000 records .* at most 500"
    ) as info:
        await member_ids(client)
    assert info.value.url == f"{server.url}/api/v1/members?offset=0&limit=500"
    assert server.targets == ["GET /api/v1/members?offset=0&limit=500"]  # not retried


def padded_page(size: int) -> bytes:
    """A valid one-member page of exactly ``size`` bytes (padded with spaces)."""
    head = b"[" + orjson.dumps(member(1))
    return head + b" " * (size - len(head) - 1) + b"]"


def framed(body: bytes, framing: str) -> Answer:
    """Answer ``body`` with a Content-Length, or chunked."""
    return plain(body) if framing == "content-length" else chunked(body)


@pytest.mark.parametrize("framing", ["content-length", "chunked"])
async def test_a_page_body_bigger_than_its_records_can_be_is_refused(
    server: AnswerServer, client: CoursepathClient, framing: str
) -> None:
    """A page of limit=1 may take 1 MiB: one byte more is refused, naming the URL and cap."""
    cap = page_body_limit(1)
    server.answer = framed(padded_page(cap), framing)
    assert [m.id for m in await first_page(client)] == [1]  # exactly the cap is read
    server.answer = framed(padded_page(cap + 1), framing)
    with pytest.raises(APIResponseValidationError, match=r"larger than 1,048,576 bytes") as info:
        await first_page(client)
    assert info.value.url == f"{server.url}/api/v1/members?offset=0&limit=1"


async def first_page(client: CoursepathClient) -> list[Member]:
    """The first page of ``GET /members`` asked with ``page_size=1``, bounded."""
    async with asyncio.timeout(CALL_LIMIT * 2):
        return await client.members.list(page_size=1).first_page()


def endless(*, total: int | None = None) -> Answer:
    """Every page full of ids never seen before, wrapped with ``total`` when given."""

    async def answer(request: web.BaseRequest) -> web.StreamResponse:
        offset, limit = int(request.query["offset"]), int(request.query["limit"])
        records = [member(offset + i + 1) for i in range(min(limit, 500))]
        return json_answer(records if total is None else {"data": records, "total": total})

    return answer


async def test_fresh_pages_forever_stop_past_twice_the_announced_total(
    server: AnswerServer, client: CoursepathClient
) -> None:
    """A wrapped listing announcing 1,200 members but never ending is refused past 3,500."""
    server.answer = endless(total=1_200)
    with pytest.raises(APIResponseValidationError, match="announced a total of 1,200") as info:
        await member_ids(client, window=4)
    assert info.value.url == f"{server.url}/api/v1/members"
    assert len(server.targets) <= 3_500 // 500 + 4  # the pages allowed, plus the window


async def test_fresh_pages_forever_stop_past_max_listing_records(server: AnswerServer) -> None:
    """Without a total, an endless listing stops past the client's ``max_listing_records``."""
    server.answer = endless()
    async with client_for(server, max_listing_records=5_000) as client:
        with pytest.raises(APIResponseValidationError, match=r"past 5,000 records"):
            await member_ids(client, window=4)
    assert len(server.targets) <= 5_000 // 500 + 1 + 4

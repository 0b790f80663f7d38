"""The receiver on the open internet: slow sockets, connection floods, compressed bombs."""

from __future__ import annotations

import asyncio
import logging
import zlib
from collections.abc import Callable
from typing import Any

import pytest
from test_webhooks import (
    FORM,
    SECRET,
    form,
    open_enrolment,
    receiving,
    until,
)
from yarl import URL

from coursepath_async.webhooks import EventKind

SLOW = 300  # sockets held open by the "attacker", above the cap below
CAP = 64
GENEROUS = 60.0  # seconds: only a hang, never slowness, may fail a test


def gzip_bomb(inflated: int) -> bytes:
    """A gzip stream of ``inflated`` zero bytes (a few hundred KB for hundreds of MB)."""
    packer = zlib.compressobj(9, zlib.DEFLATED, 31)
    block = bytes(1 << 20)
    parts = [packer.compress(block) for _ in range(inflated >> 20)]
    return b"".join([*parts, packer.flush()])


BOMB = gzip_bomb(256 << 20)


async def closed_by_server(reader: asyncio.StreamReader) -> bytes:
    """Read until the server closes the connection; what it sent before (b"" if nothing)."""
    try:
        async with asyncio.timeout(GENEROUS):
            return await reader.read()
    except ConnectionResetError:
        return b""


def count_inflaters(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Count every zlib decompressor created in this process from now on (aiohttp's too)."""
    created: list[int] = []
    real: Callable[..., Any] = zlib.decompressobj

    def counting(*args: Any, **kwargs: Any) -> Any:
        created.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(zlib, "decompressobj", counting)
    return created


async def test_slow_sockets_are_closed_and_genuine_deliveries_still_served() -> None:
    """Hundreds of silent or header-dribbling sockets are closed; a real delivery gets through."""
    async with receiving(max_connections=CAP, header_timeout=1.0) as h:
        url = URL(h.url)
        held: list[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = []
        for n in range(SLOW):
            reader, writer = await asyncio.open_connection(url.host, url.port)
            if n % 2:  # half dribble the start of a head, half never send a byte
                writer.write(f"POST {url.path} HTTP/1.1\r\nHost: x\r\n".encode())
            held.append((reader, writer))
        await until(lambda: h.receiver.stats().connections_open == CAP)
        course, member = open_enrolment(h.academy)
        h.academy.complete_course(course, member)  # delivered while the cap is full of slow ones
        async with asyncio.timeout(GENEROUS):
            await h.academy.wait_webhooks()
            await h.receiver.join()
        assert [(e.course_id, e.member_id) for e in h.events] == [(course, member)]
        answers = await asyncio.gather(*(closed_by_server(reader) for reader, _ in held))
        assert answers == [b""] * SLOW  # each closed without a word: none sent a head
        for _, writer in held:
            writer.close()
        stats = h.receiver.stats()
        assert stats.connections_evicted + stats.header_timeouts == SLOW
        assert stats.header_timeouts > 0  # the last ones held were closed by the deadline
        assert (stats.connections_refused, stats.received, stats.verified) == (0, 1, 1)
        assert stats.connections_open <= 1  # at most the academy's, kept alive


async def test_at_the_cap_with_every_head_sent_a_newcomer_gets_a_cheap_503() -> None:
    """When all connections are busy requests, the next is refused at once and counted."""
    async with receiving(max_connections=2, read_timeout=GENEROUS) as h:
        url = URL(h.url)
        busy = []
        for _ in range(2):  # heads sent, bodies stalled: two requests in progress
            reader, writer = await asyncio.open_connection(url.host, url.port)
            writer.write(
                f"POST {url.path} HTTP/1.1\r\nHost: x\r\nContent-Type: {FORM}\r\n"
                "Content-Length: 100\r\n\r\ncourseId=1".encode()
            )
            busy.append((reader, writer))
        await until(lambda: h.receiver.stats().received == 2)
        reader, writer = await asyncio.open_connection(url.host, url.port)
        answer = await closed_by_server(reader)
        writer.close()
        assert answer.startswith(b"HTTP/1.1 503 ")
        assert answer.endswith(b'"error":"too_many_connections","message":"too many connections"}')
        assert h.receiver.stats().connections_refused == 1
        for _, writer in busy:
            writer.close()
        await until(lambda: h.receiver.stats().connections_open == 0)
        course, member = open_enrolment(h.academy)
        h.academy.complete_course(course, member)
        await h.settle()
        assert len(h.events) == 1  # room again once the busy ones left


@pytest.mark.parametrize("right_secret", [True, False], ids=["secret", "wrong-secret"])
async def test_a_gzip_bomb_is_refused_and_never_inflated(
    monkeypatch: pytest.MonkeyPatch, right_secret: bool
) -> None:
    """A gzip post inflating to 256 MiB gets 415 (or 404 without the secret); nothing inflates."""
    assert len(BOMB) < 1 << 20
    async with receiving(secret=SECRET) as h:
        inflaters = count_inflaters(monkeypatch)
        url = h.url if right_secret else h.url.replace(SECRET, "guess-" + SECRET)
        headers = {"Content-Type": FORM, "Content-Encoding": "gzip"}
        for _ in range(4):
            async with h.session.post(url, data=BOMB, headers=headers) as response:
                assert response.status == (415 if right_secret else 404)
                if right_secret:
                    assert (await response.json())["error"] == "unsupported_encoding"
        assert inflaters == []
        reason = "unsupported_encoding" if right_secret else "wrong_secret"
        assert h.receiver.stats().rejected == {reason: 4}
        course, member = open_enrolment(h.academy)
        h.academy.complete_course(course, member)
        await h.settle()
        assert len(h.events) == 1
        assert h.api_calls() == 1


@pytest.mark.parametrize("encoding", ["br", "zstd", "deflate", "x-unknown", "gzip, identity"])
async def test_any_content_encoding_is_a_quiet_415(
    caplog: pytest.LogCaptureFixture, encoding: str
) -> None:
    """Brotli and any other encoding get 415 ``unsupported_encoding``, never an ERROR log."""
    caplog.set_level(logging.DEBUG)
    async with receiving() as h:
        data = form(EventKind.COURSEMEMBER_COMPLETED, *open_enrolment(h.academy))
        async with h.session.post(
            h.url, data=data, headers={"Content-Type": FORM, "Content-Encoding": encoding}
        ) as response:
            assert response.status == 415
            assert (await response.json())["error"] == "unsupported_encoding"
        await h.settle()
        assert h.academy.recorder.total == 0
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR] == []


async def test_identity_encoding_is_a_plain_body() -> None:
    """``Content-Encoding: identity`` means no encoding: the delivery is accepted."""
    async with receiving() as h:
        course, member = open_enrolment(h.academy)
        data = form(EventKind.COURSEMEMBER_CREATED, course, member)
        headers = {"Content-Type": FORM, "Content-Encoding": "identity"}
        async with h.session.post(h.url, data=data, headers=headers) as response:
            assert response.status == 202
        await h.settle()
        assert len(h.events) == 1


async def test_connection_limits_are_checked() -> None:
    """A non-positive or infinite timeout, or a cap below one, is refused at construction."""
    for options in (
        {"max_connections": 0},
        {"max_connections": 1.5},
        {"header_timeout": 0},
        {"keepalive_timeout": float("inf")},
        {"header_timeout": float("nan")},
    ):
        with pytest.raises(ValueError, match="must be"):
            async with receiving(**options):
                pass


def test_the_guard_works_on_uvloop_too() -> None:
    """Under uvloop (the CLI's loop) silent sockets are evicted or timed out, deliveries served."""
    uvloop = pytest.importorskip("uvloop")

    async def scenario() -> None:
        async with receiving(max_connections=2, header_timeout=0.5) as h:
            url = URL(h.url)
            silent = [await asyncio.open_connection(url.host, url.port) for _ in range(3)]
            await until(lambda: h.receiver.stats().connections_evicted == 1)
            course, member = open_enrolment(h.academy)
            h.academy.complete_course(course, member)
            await h.settle()
            assert len(h.events) == 1
            answers = await asyncio.gather(*(closed_by_server(r) for r, _ in silent))
            assert answers == [b""] * 3
            for _, writer in silent:
                writer.close()
            stats = h.receiver.stats()
            assert stats.connections_evicted + stats.header_timeouts == 3

    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        runner.run(scenario())

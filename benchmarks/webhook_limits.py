"""The webhook receiver under hostile load: ``python -m benchmarks.webhook_limits``.

Two figures, each interleaved against aiohttp's default runner (the baseline) in the
same run, median and spread over rounds: the CPU a process spends on one 256 MiB gzip
bomb posted without the secret, and the latency of a genuine delivery's answer while
``SLOW`` silent or header-dribbling sockets are held open. Receiver and attacker share
one process and loop (the CPU figure is the whole process's), on loopback only.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import statistics
import sys
import time
import zlib
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

import aiohttp
from aiohttp import web

from coursepath_async import CoursepathClient
from coursepath_async.webhooks import RECEIVER_KEY, VerifiedEvent, webhook_app

SECRET = "bench-secret-0123456789abcdefghij"
FORM = {"courseId": "1", "memberId": "2", "event": "COURSEMEMBER_CREATED"}
FORM_TYPE = "application/x-www-form-urlencoded"
SLOW = 400


def _bomb(inflated: int) -> bytes:
    packer = zlib.compressobj(9, zlib.DEFLATED, 31)
    block = bytes(1 << 20)
    return b"".join([*(packer.compress(block) for _ in range(inflated >> 20)), packer.flush()])


BOMB = _bomb(256 << 20)


async def _ignore(_: VerifiedEvent) -> None:
    return None


@asynccontextmanager
async def _serving(guarded: bool) -> AsyncIterator[tuple[str, int, Callable[[], int]]]:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(1024)
    port = sock.getsockname()[1]
    async with CoursepathClient(
        "http://127.0.0.1:9", api_key="k" * 40, user="a@b.example", allow_http=True
    ) as client:
        app = webhook_app(client, _ignore, secret=SECRET, max_connections=256)
        receiver = app[RECEIVER_KEY]
        runner = receiver.runner(app) if guarded else web.AppRunner(app, access_log=None)
        await runner.setup()
        site = receiver.site(runner, sock=sock) if guarded else web.SockSite(runner, sock)
        await site.start()

        def accepted() -> int:  # connections the server has taken from the listen queue
            if guarded:
                stats = receiver.stats()
                return stats.connections_open + stats.connections_evicted
            assert runner.server is not None
            return len(runner.server.connections)

        try:
            yield f"http://127.0.0.1:{port}/webhooks/", port, accepted
        finally:
            await runner.cleanup()
            sock.close()


async def _bomb_cpu(guarded: bool) -> float:
    async with _serving(guarded) as (base, _, _), aiohttp.ClientSession() as session:
        headers = {"Content-Encoding": "gzip", "Content-Type": FORM_TYPE}
        start = time.process_time()
        async with session.post(base + "guess", data=BOMB, headers=headers) as response:
            await response.read()
        await asyncio.sleep(0.2)  # let a server still inflating after the answer show up
        return time.process_time() - start


async def _latency_with_slow_sockets(guarded: bool) -> float:
    async with _serving(guarded) as (base, port, accepted), aiohttp.ClientSession() as session:
        held = []
        for n in range(SLOW):
            _, writer = await asyncio.open_connection("127.0.0.1", port)
            if n % 2:
                writer.write(b"POST /webhooks/x HTTP/1.1\r\nHost: x\r\n")
            held.append(writer)
        for _ in range(3000):  # all held, none still queued ahead of the delivery
            if accepted() >= SLOW:
                break
            await asyncio.sleep(0.01)
        start = time.perf_counter()
        async with session.post(base + SECRET, data=FORM) as response:
            await response.read()
        elapsed = time.perf_counter() - start
        for writer in held:
            writer.close()
        return elapsed


def _summary(name: str, sdk: list[float], base: list[float], unit: str, scale: float) -> str:
    ratios = [b / s for s, b in zip(sdk, base, strict=True) if s > 0]
    spread = f"{min(ratios):.1f}-{max(ratios):.1f}" if ratios else "n/a"
    return (
        f"{name}: guarded {statistics.median(sdk) * scale:.2f} {unit}, "
        f"aiohttp default {statistics.median(base) * scale:.2f} {unit}, "
        f"baseline/guarded x{statistics.median(ratios):.1f} (spread {spread})"
    )


async def _main(rounds: int) -> None:
    logging.disable(logging.CRITICAL)
    cpu: dict[bool, list[float]] = {True: [], False: []}
    latency: dict[bool, list[float]] = {True: [], False: []}
    for _ in range(rounds):
        for guarded in (True, False):
            cpu[guarded].append(await _bomb_cpu(guarded))
            latency[guarded].append(await _latency_with_slow_sockets(guarded))
    print(f"bomb: {len(BOMB)} bytes inflating to 256 MiB; {rounds} interleaved rounds")
    print(_summary("CPU per bomb", cpu[True], cpu[False], "CPU-ms", 1e3))
    name = f"delivery answer with {SLOW} slow sockets"
    print(_summary(name, latency[True], latency[False], "ms", 1e3))


if __name__ == "__main__":
    asyncio.run(_main(int(sys.argv[1]) if len(sys.argv) > 1 else 5))

"""Per-request CPU the SDK adds over aiohttp, for a GET and for benchmark 1's create.

Each client calls a do-nothing server in another process sequentially; batches of
200 calls alternate between the two on one loop (so drift on a noisy machine hits
both alike), and the medians of CPU time per request are compared:

- ``get``: ``members.get`` against a bare ``session.get`` (no signing, no decoding),
  so the extra is everything the SDK does: signing, scheduling, retry bookkeeping,
  decoding the model;
- ``create``: ``members.create`` against benchmark 1's raw loop, which signs with a
  prepared key and encodes and decodes the JSON itself, so the extra is the SDK's
  own machinery.

Run: python -m benchmarks.overhead [requests per side] [get|create]
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import sys
import time
import timeit
from collections.abc import AsyncIterator, Callable, Coroutine
from typing import Any

import aiohttp
import jwt
import orjson

from coursepath_async import CoursepathClient, Member
from coursepath_async._auth import TokenSigner
from coursepath_async._models import structure

from ._common import PreparedSigner
from ._util import HERE, free_port, median, server_process

KEY = "benchmark-key-0123456789abcdef0123456789"
USER = "ada.lovelace@example.com"


Batch = Callable[[int], Coroutine[Any, Any, None]]
Pair = Callable[[str], contextlib.AbstractAsyncContextManager[tuple[Batch, Batch]]]


@contextlib.asynccontextmanager
async def _get_pair(url: str) -> AsyncIterator[tuple[Batch, Batch]]:
    """A bare ``session.get`` loop and the SDK's ``members.get`` loop."""
    async with (
        aiohttp.ClientSession() as session,
        CoursepathClient(url, api_key=KEY, user=USER, allow_http=True) as client,
    ):

        async def bare(n: int) -> None:
            for _ in range(n):
                async with session.get(f"{url}/api/v1/members/1") as response:
                    await response.read()

        async def sdk(n: int) -> None:
            for _ in range(n):
                await client.members.get(1)

        yield bare, sdk


@contextlib.asynccontextmanager
async def _create_pair(url: str) -> AsyncIterator[tuple[Batch, Batch]]:
    """Benchmark 1's raw create loop and the SDK's ``members.create`` loop."""
    signer = PreparedSigner(KEY)
    endpoint = f"{url}/api/v1/members"
    counter = itertools.count()
    async with (
        aiohttp.ClientSession() as session,
        CoursepathClient(url, api_key=KEY, user=USER, allow_http=True) as client,
    ):

        async def raw(n: int) -> None:
            for _ in range(n):
                i = next(counter)
                headers = {
                    "Authorization": "Bearer " + signer.sign(USER),
                    "Content-Type": "application/json",
                    "Accept": "application/json",
                }
                data = orjson.dumps({"email": f"p-{i}@bench.test", "name": f"Person {i}"})
                async with session.post(endpoint, data=data, headers=headers) as response:
                    body = await response.read()
                    if response.status >= 300:
                        raise RuntimeError(f"raw create failed: {response.status}")
                    orjson.loads(body)

        async def sdk(n: int) -> None:
            for _ in range(n):
                i = next(counter)
                await client.members.create(f"p-{i}@bench.test", name=f"Person {i}")

        yield raw, sdk


async def _compare(url: str, pair: Pair, n: int, batch: int) -> tuple[float, float]:
    """Median CPU µs per request of (baseline, SDK), alternating batches on one loop."""
    cpu: tuple[list[float], list[float]] = ([], [])
    async with pair(url) as loops:
        for loop in loops:
            await loop(batch)  # open the pools outside the measurement
        for round_no in range(max(1, n // batch)):
            order = (0, 1) if round_no % 2 == 0 else (1, 0)
            for which in order:
                start = time.process_time()
                await loops[which](batch)
                cpu[which].append((time.process_time() - start) / batch * 1e6)
    return median(cpu[0]), median(cpu[1])


def _micro() -> dict[str, float]:
    signer = TokenSigner(KEY)
    raw = {
        "id": 1,
        "email": USER,
        "name": "Ada",
        "externalId": "E-1",
        "createdDate": "2024-05-01T09:30:00Z",
    }
    n = 20_000
    return {
        "jwt.encode": timeit.timeit(
            lambda: jwt.encode({"email": USER, "iat": 1, "jti": "x"}, KEY), number=n
        )
        / n,
        "sign (SDK)": timeit.timeit(lambda: signer.sign(USER), number=n) / n,
        "decode Member": timeit.timeit(lambda: structure(raw, Member), number=n) / n,
    }


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 2000
    only = sys.argv[2] if len(sys.argv) > 2 else None
    pairs: dict[str, Pair] = {"get": _get_pair, "create": _create_pair}
    port = free_port()
    with server_process(
        [str(HERE / "_echo_server.py"), str(port)], port=port, ready_path="/api/v1/members/1"
    ) as url:
        for shape, pair in pairs.items():
            if only not in (None, shape):
                continue
            base_cpu, sdk_cpu = asyncio.run(_compare(url, pair, n, batch=200))
            print(
                f"{shape:<7} baseline {base_cpu:6.1f} µs  SDK {sdk_cpu:6.1f} µs  "
                f"extra {sdk_cpu - base_cpu:5.1f} µs ({sdk_cpu / base_cpu:.2f}x)"
            )
    for name, seconds in _micro().items():
        print(f"  {name:<22} {seconds * 1e6:7.1f} µs")


if __name__ == "__main__":
    main()

"""Per-request CPU cost the SDK adds over a bare aiohttp call.

Both clients fetch the same member from a do-nothing server in another process,
sequentially; the client process's CPU time per request is compared in interleaved
runs. The extra is signing, scheduling, retry bookkeeping and model decoding.
Run: python benchmarks/overhead.py [requests]
"""

from __future__ import annotations

import asyncio
import sys
import time
import timeit

import aiohttp
import jwt

from coursepath_async import CoursepathClient, Member
from coursepath_async._auth import TokenSigner
from coursepath_async._models import structure

from ._util import HERE, free_port, median, server_process

KEY = "benchmark-key-0123456789abcdef0123456789"
USER = "ada.lovelace@example.com"


async def _raw(url: str, n: int) -> float:
    async with aiohttp.ClientSession() as session:
        start = time.process_time()
        for _ in range(n):
            async with session.get(f"{url}/api/v1/members/1") as response:
                await response.read()
        return (time.process_time() - start) / n


async def _sdk(url: str, n: int) -> float:
    async with CoursepathClient(url, api_key=KEY, user=USER, allow_http=True) as client:
        await client.members.get(1)  # open the pool outside the measurement
        start = time.process_time()
        for _ in range(n):
            await client.members.get(1)
        return (time.process_time() - start) / n


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
    port = free_port()
    with server_process(
        [str(HERE / "_echo_server.py"), str(port)], port=port, ready_path="/api/v1/members/1"
    ) as url:
        raw_runs, sdk_runs = [], []
        for _ in range(5):  # interleaved so drift hits both alike
            raw_runs.append(asyncio.run(_raw(url, n)))
            sdk_runs.append(asyncio.run(_sdk(url, n)))
    raw_cpu, sdk_cpu = median(raw_runs), median(sdk_runs)
    print(f"bare aiohttp GET:        {raw_cpu * 1e6:7.1f} µs CPU/request")
    print(f"SDK members.get:         {sdk_cpu * 1e6:7.1f} µs CPU/request")
    extra = (sdk_cpu - raw_cpu) * 1e6
    print(f"SDK overhead:            {extra:7.1f} µs/request ({sdk_cpu / raw_cpu:.2f}x)")
    for name, seconds in _micro().items():
        print(f"  {name:<22} {seconds * 1e6:7.1f} µs")


if __name__ == "__main__":
    main()

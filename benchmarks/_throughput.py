"""Benchmarks 1-3: request throughput of the SDK against raw aiohttp, httpx and C/L.

1 and 2: member creates at concurrency 32 against a no-latency sandbox, the same worker
loop driving the SDK, a raw aiohttp session and an httpx.AsyncClient. All three sign a
fresh token per request (the raw loops with :class:`PreparedSigner`) and decode the
JSON answer; the SDK also builds the ``Member`` model.
3: ``members.get`` at concurrency 64 against a sandbox answering each request 50 ms after
it arrives, compared with the ideal C/L; for the notes, the rig's ceiling (raw aiohttp against a
bare server that only sleeps) and the same mean latency with jitter.
"""

from __future__ import annotations

import asyncio
import gc
import importlib.util
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass

import aiohttp
import httpx
import orjson

from coursepath_async import CoursepathClient

from ._common import (
    ADMIN,
    API_KEY,
    PreparedSigner,
    Result,
    at_least,
    interleaved,
    sandbox,
    spread,
)
from ._util import HERE, free_port, median, server_process

Job = Callable[[int], Awaitable[None]]


@dataclass(frozen=True)
class Sample:
    """One run: requests per second, and the client's CPU microseconds per request."""

    rate: float
    cpu_us: float


async def _drive(concurrency: int, n: int, job: Job) -> Sample:
    """Run ``job(i)`` for ``i < n`` on ``concurrency`` workers."""
    indices: Iterator[int] = iter(range(n))

    async def worker() -> None:
        for i in indices:
            await job(i)

    cpu, started = time.process_time(), time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu
    return Sample(rate=n / elapsed, cpu_us=cpu / n * 1e6)


def _member_body(prefix: str, i: int) -> dict[str, str]:
    return {"email": f"{prefix}-{i}@bench.test", "name": f"Bench Person {i}"}


async def sdk_creates(url: str, n: int, concurrency: int, prefix: str) -> Sample:
    """SDK ``members.create`` throughput."""
    async with CoursepathClient(
        url, api_key=API_KEY, user=ADMIN, allow_http=True, max_concurrency=concurrency
    ) as client:
        await asyncio.gather(*(client.members.get(1) for _ in range(concurrency)))  # warm pool

        async def job(i: int) -> None:
            body = _member_body(prefix, i)
            await client.members.create(body["email"], name=body["name"])

        return await _drive(concurrency, n, job)


async def raw_creates(url: str, n: int, concurrency: int, prefix: str) -> Sample:
    """Raw aiohttp create throughput, signing with a prepared key."""
    signer = PreparedSigner(API_KEY)
    endpoint = f"{url}/api/v1/members"
    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector) as session:

        async def warm(_: int) -> None:
            headers = {"Authorization": "Bearer " + signer.sign(ADMIN)}
            async with session.get(f"{url}/api/v1/members/1", headers=headers) as response:
                await response.read()

        await asyncio.gather(*(warm(i) for i in range(concurrency)))

        async def job(i: int) -> None:
            headers = {
                "Authorization": "Bearer " + signer.sign(ADMIN),
                "Content-Type": "application/json",
                "Accept": "application/json",
            }
            data = orjson.dumps(_member_body(prefix, i))
            async with session.post(endpoint, data=data, headers=headers) as response:
                body = await response.read()
                if response.status >= 300:
                    raise RuntimeError(f"raw create failed: {response.status}")
                orjson.loads(body)

        return await _drive(concurrency, n, job)


async def httpx_creates(url: str, n: int, concurrency: int, prefix: str) -> Sample:
    """httpx.AsyncClient create throughput, same signer and decoding as raw."""
    signer = PreparedSigner(API_KEY)
    endpoint = f"{url}/api/v1/members"
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(limits=limits, timeout=30.0) as client:

        async def warm(_: int) -> None:
            headers = {"Authorization": "Bearer " + signer.sign(ADMIN)}
            await client.get(f"{url}/api/v1/members/1", headers=headers)

        await asyncio.gather(*(warm(i) for i in range(concurrency)))

        async def job(i: int) -> None:
            headers = {
                "Authorization": "Bearer " + signer.sign(ADMIN),
                "Content-Type": "application/json",
                "Accept": "application/json",
            }
            data = orjson.dumps(_member_body(prefix, i))
            response = await client.post(endpoint, content=data, headers=headers)
            if response.status_code >= 300:
                raise RuntimeError(f"httpx create failed: {response.status_code}")
            orjson.loads(response.content)

        return await _drive(concurrency, n, job)


def _has_sniffio() -> bool:
    return importlib.util.find_spec("sniffio") is not None


def _on_uvloop(
    url: str, n: int, concurrency: int, runs: int
) -> tuple[Sample, Sample, float] | None:
    """Both clients on uvloop: median samples and the median of the rounds' SDK/raw ratios.

    None when uvloop is not installed.
    """
    if importlib.util.find_spec("uvloop") is None:
        return None
    import uvloop

    sdk: list[Sample] = []
    raw: list[Sample] = []
    for round_no in range(runs):
        sdk.append(uvloop.run(sdk_creates(url, n, concurrency, f"uvsdk{round_no}")))
        raw.append(uvloop.run(raw_creates(url, n, concurrency, f"uvraw{round_no}")))

    def mid(samples: list[Sample]) -> Sample:
        return Sample(
            rate=median([s.rate for s in samples]), cpu_us=median([s.cpu_us for s in samples])
        )

    paired = [s.rate / r.rate for s, r in zip(sdk, raw, strict=True)]
    return mid(sdk), mid(raw), median(paired)


def creates(*, quick: bool) -> list[Result]:
    """Benchmarks 1 and 2: 3,000 creates at concurrency 32, SDK vs raw aiohttp vs httpx.

    SDK and raw run in every round; httpx (slow: ~10 s a run) in the first, middle and last.
    """
    n, concurrency, runs = (1000, 32, 3) if quick else (3000, 32, 15)
    httpx_rounds = sorted({0, runs // 2, runs - 1})
    figures: dict[str, list[Sample]] = {"sdk": [], "raw": [], "httpx": []}
    with sandbox(members=20) as url:
        for round_no in range(runs):
            order = ["sdk", "raw", "httpx"] if round_no in httpx_rounds else ["sdk", "raw"]
            shift = round_no % len(order)
            for name in order[shift:] + order[:shift]:
                gc.collect()
                prefix = f"{name}{round_no}"
                run = {"sdk": sdk_creates, "raw": raw_creates, "httpx": httpx_creates}[name]
                figures[name].append(asyncio.run(run(url, n, concurrency, prefix)))
        uv = _on_uvloop(url, n, concurrency, runs=5)
    sdk, raw, hx = (median([s.rate for s in figures[k]]) for k in ("sdk", "raw", "httpx"))
    sdk_cpu, raw_cpu, hx_cpu = (
        median([s.cpu_us for s in figures[k]]) for k in ("sdk", "raw", "httpx")
    )
    sdk_range, raw_range = (spread([s.rate for s in figures[k]]) for k in ("sdk", "raw"))
    # Each round's SDK and raw runs are adjacent: their ratio cancels slow drift, and the
    # median of the rounds' ratios shrugs off a noise burst that hit one side of a round.
    # That median is the figure; the ratio of the two sides' median rates is noted.
    paired = [s.rate / r.rate for s, r in zip(figures["sdk"], figures["raw"], strict=True)]
    ratio = median(paired)
    runs_note = (
        f"{n:,} creates per run, SDK and raw in {runs} interleaved rounds; the ratio is the "
        f"median of the rounds' SDK/raw ratios (range {spread(paired, '{:.2f}')}); the ratio "
        f"of the median rates is {sdk / raw:.2f}x; req/s ranges: SDK {sdk_range}, raw "
        f"{raw_range}"
        f"; client CPU per request: SDK {sdk_cpu:.0f} µs, raw {raw_cpu:.0f} µs "
        f"({sdk_cpu / raw_cpu:.2f}x)"
    )
    httpx_note = (
        f"httpx in {len(httpx_rounds)} of those rounds, {hx_cpu:.0f} µs client CPU per request "
        f"(its connection pool rescans every connection per request); range "
        f"{spread([s.rate for s in figures['httpx']])} req/s"
    )
    if uv is not None:
        uv_sdk, uv_raw, uv_ratio = uv
        runs_note += (
            f"; on uvloop (the `speed` extra), both sides, 5 rounds: SDK {uv_sdk.rate:,.0f} "
            f"req/s ({uv_sdk.cpu_us:.0f} µs CPU per request, {uv_sdk.rate / sdk:.2f}x the SDK "
            f"on asyncio), raw {uv_raw.rate:,.0f} req/s (SDK/raw {uv_ratio:.2f}x)"
        )
    if not _has_sniffio():
        httpx_note += (
            "; sniffio is NOT installed, so httpcore retries a failing import per lock and httpx "
            "is ~2x slower than usual"
        )
    return [
        Result(
            number=1,
            title=f"{n:,} member creates, concurrency {concurrency}, no latency",
            sdk=f"{sdk:,.0f} req/s",
            baseline=f"{raw:,.0f} req/s (raw aiohttp, prepared-key HMAC signer)",
            ratio=f"{ratio:.2f}x",
            measured=ratio,
            bar=at_least(0.85),
            goal=at_least(0.95),
            notes=(runs_note,),
        ),
        Result(
            number=2,
            title="the same loop vs httpx",
            sdk=f"{sdk:,.0f} req/s",
            baseline=f"{hx:,.0f} req/s (httpx.AsyncClient, same signer)",
            ratio=f"{sdk / hx:.2f}x",
            measured=sdk / hx,
            bar=at_least(1.5),
            goal=at_least(3.0),
            notes=(httpx_note,),
        ),
    ]


async def sdk_gets(url: str, n: int, concurrency: int, members: int) -> Sample:
    """SDK ``members.get`` throughput with ``concurrency`` workers and slots."""
    async with CoursepathClient(
        url, api_key=API_KEY, user=ADMIN, allow_http=True, max_concurrency=concurrency
    ) as client:
        await asyncio.gather(*(client.members.get(1) for _ in range(concurrency)))

        async def job(i: int) -> None:
            await client.members.get(i % members + 1)

        return await _drive(concurrency, n, job)


async def raw_gets(url: str, n: int, concurrency: int, members: int) -> Sample:
    """Raw aiohttp GET throughput: the reference for what the server allows."""
    signer = PreparedSigner(API_KEY)
    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector) as session:

        async def job(i: int) -> None:
            headers = {"Authorization": "Bearer " + signer.sign(ADMIN)}
            async with session.get(
                f"{url}/api/v1/members/{i % members + 1}", headers=headers
            ) as response:
                body = await response.read()
                if response.status >= 300:
                    raise RuntimeError(f"raw get failed: {response.status}")
                orjson.loads(body)

        await asyncio.gather(*(job(i) for i in range(concurrency)))
        return await _drive(concurrency, n, job)


def _rig_ceiling(latency: float, n: int, concurrency: int, runs: int) -> tuple[float, float]:
    """What raw aiohttp reaches against a server that only sleeps: (at C, one at a time).

    The loop's timer granularity and two processes sharing the machine cost some of
    C/L before any client does anything; this is how much.
    """
    port = free_port()
    args = [str(HERE / "_echo_server.py"), str(port), str(latency)]
    with server_process(args, port=port, ready_path="/api/v1/members/1") as url:
        at_c = median([asyncio.run(raw_gets(url, n, concurrency, 100)).rate for _ in range(runs)])
        one = asyncio.run(raw_gets(url, 40, 1, 100)).rate
    return at_c, one


def _get_rounds(
    url: str, runs: int, n: int, concurrency: int, members: int
) -> dict[str, list[Sample]]:
    """Interleaved runs of the SDK's and raw aiohttp's GET loops against ``url``."""
    return interleaved(
        runs,
        {
            "sdk": lambda _: asyncio.run(sdk_gets(url, n, concurrency, members)),
            "raw": lambda _: asyncio.run(raw_gets(url, n, concurrency, members)),
        },
    )


def latency_bound(*, quick: bool) -> list[Result]:
    """Benchmark 3: achieved req/s at 50 ms latency and concurrency 64 vs the ideal C/L."""
    latency, concurrency, members = 0.05, 64, 1000
    n, runs = (concurrency * 15, 3) if quick else (concurrency * 40, 5)
    ideal = concurrency / latency
    with sandbox(members=members, latency=latency) as url:
        figures = _get_rounds(url, runs, n, concurrency, members)
    ceiling, one_at_a_time = _rig_ceiling(latency, n, concurrency, runs=3)
    # The same mean latency with jitter, which keeps the 64 requests out of lockstep.
    with sandbox(members=members, latency=latency * 0.8, latency_jitter=latency * 0.4) as url:
        jittered = _get_rounds(url, 3, n, concurrency, members)
    jit_sdk, jit_raw = (median([s.rate for s in jittered[k]]) / ideal for k in ("sdk", "raw"))
    sdk, raw = (median([s.rate for s in figures[k]]) for k in ("sdk", "raw"))
    sdk_range, raw_range = (spread([s.rate for s in figures[k]]) for k in ("sdk", "raw"))
    return [
        Result(
            number=3,
            title=f"latency-bound: {latency * 1000:.0f} ms latency, concurrency {concurrency}",
            sdk=f"{sdk:,.0f} req/s",
            baseline=f"{ideal:,.0f} req/s (ideal C/L)",
            ratio=f"{sdk / ideal:.3f}",
            measured=sdk / ideal,
            bar=at_least(0.90, ""),
            goal=at_least(0.97, ""),
            notes=(
                f"{n:,} GETs x {runs} runs; raw aiohttp in the same runs reached "
                f"{raw:,.0f} req/s = {raw / ideal:.3f} of C/L (SDK/raw {sdk / raw:.2f}x); "
                f"SDK range {sdk_range}, raw {raw_range}; the rig's ceiling: raw aiohttp "
                f"against a bare server that only sleeps {latency * 1000:.0f} ms reaches "
                f"{ceiling / ideal:.3f} of C/L at concurrency {concurrency} and "
                f"{one_at_a_time / (1 / latency):.3f} one request at a time "
                f"(SDK/ceiling {sdk / ceiling:.2f}); the same mean latency with jitter "
                f"({latency * 800:.0f} ms + uniform 0-{latency * 400:.0f} ms), which keeps "
                f"requests out of lockstep: SDK {jit_sdk:.3f}, raw {jit_raw:.3f} of C/L",
            ),
        )
    ]


def gets_at_32(*, quick: bool) -> list[Result]:
    """Benchmark 14: ``members.get`` at concurrency 32, no latency, vs raw aiohttp."""
    concurrency, members = 32, 1000
    n, runs = (1000, 3) if quick else (3000, 15)
    with sandbox(members=members) as url:
        figures = _get_rounds(url, runs, n, concurrency, members)
    sdk, raw = (median([s.rate for s in figures[k]]) for k in ("sdk", "raw"))
    sdk_cpu, raw_cpu = (median([s.cpu_us for s in figures[k]]) for k in ("sdk", "raw"))
    paired = [s.rate / r.rate for s, r in zip(figures["sdk"], figures["raw"], strict=True)]
    ratio = median(paired)
    return [
        Result(
            number=14,
            title=f"{n:,} `members.get`, concurrency {concurrency}, no latency",
            sdk=f"{sdk:,.0f} req/s",
            baseline=f"{raw:,.0f} req/s (raw aiohttp, prepared-key HMAC signer)",
            ratio=f"{ratio:.2f}x",
            measured=ratio,
            bar=at_least(0.90),
            goal=at_least(0.97),
            notes=(
                f"{n:,} GETs per run over {members:,} members, SDK and raw in {runs} "
                f"interleaved rounds; the ratio is the median of the rounds' SDK/raw ratios "
                f"(range {spread(paired, '{:.2f}')}; ratio of the median rates "
                f"{sdk / raw:.2f}x); req/s ranges: SDK {spread([s.rate for s in figures['sdk']])}"
                f", raw {spread([s.rate for s in figures['raw']])}; client CPU per request: "
                f"SDK {sdk_cpu:.0f} µs, raw {raw_cpu:.0f} µs ({sdk_cpu / raw_cpu:.2f}x)",
            ),
        )
    ]

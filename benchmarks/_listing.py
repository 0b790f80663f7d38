"""Benchmarks 4 and 5: full listings, fast (a parallel page window) and in bounded memory.

4: all members of a 100,000-member sandbox at 50 ms latency, through the SDK paginator
with a window of pages in flight, against a raw aiohttp loop paging sequentially and a
hand-written raw aiohttp pager keeping the same window of pages in flight; all must
return the same ids in the same order.
5: 1,000,000 members streamed through ``async for`` in a child process that reports its
peak RSS growth; the pages come from a generator server (``_page_server.py``), since
seeding a million members in the sandbox would take ~17 s and 1.3 GB for nothing the
client can tell apart.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
from collections import deque
from typing import Any

import aiohttp
import orjson

from coursepath_async import CoursepathClient

from ._common import ADMIN, API_KEY, PreparedSigner, Result, at_least, at_most, sandbox, spread
from ._util import HERE, free_port, median, server_process

PAGE_CAP = 500
#: The window benchmark 4's table row uses; the client default is reported beside it.
WINDOW = 16


async def _raw_page(
    session: aiohttp.ClientSession, signer: PreparedSigner, url: str, offset: int
) -> list[dict[str, Any]]:
    """One raw page of ``/members`` at ``offset``, freshly signed and decoded."""
    headers = {"Authorization": "Bearer " + signer.sign(ADMIN)}
    params = {"offset": str(offset), "limit": str(PAGE_CAP)}
    async with session.get(f"{url}/api/v1/members", params=params, headers=headers) as response:
        body = await response.read()
        if response.status != 200:
            raise RuntimeError(f"raw page at {offset} failed: {response.status}")
    page: list[dict[str, Any]] = orjson.loads(body)
    return page


async def raw_sequential(url: str) -> tuple[float, list[int]]:
    """Page through ``/members`` one request at a time; returns (seconds, ids)."""
    signer = PreparedSigner(API_KEY)
    ids: list[int] = []
    offset = 0
    async with aiohttp.ClientSession() as session:
        started = time.perf_counter()
        while True:
            page = await _raw_page(session, signer, url, offset)
            ids.extend(record["id"] for record in page)
            offset += len(page)
            if len(page) < PAGE_CAP:
                return time.perf_counter() - started, ids


async def raw_parallel(url: str, window: int) -> tuple[float, list[int]]:
    """Page through ``/members`` with ``window`` pages in flight, as a careful user would.

    The total is not known up front: it keeps ``window`` consecutive offsets requested,
    takes answers in order, and stops (cancelling the rest) at the first short page.
    """
    signer = PreparedSigner(API_KEY)
    ids: list[int] = []
    connector = aiohttp.TCPConnector(limit=window)
    async with aiohttp.ClientSession(connector=connector) as session:

        def page_at(offset: int) -> asyncio.Task[list[dict[str, Any]]]:
            return asyncio.create_task(_raw_page(session, signer, url, offset))

        started = time.perf_counter()
        in_flight = deque(page_at(i * PAGE_CAP) for i in range(window))
        next_offset = window * PAGE_CAP
        try:
            while in_flight:
                page = await in_flight.popleft()
                ids.extend(int(record["id"]) for record in page)
                if len(page) < PAGE_CAP:
                    break
                in_flight.append(page_at(next_offset))
                next_offset += PAGE_CAP
        finally:
            for task in in_flight:
                task.cancel()
            await asyncio.gather(*in_flight, return_exceptions=True)
        return time.perf_counter() - started, ids


async def sdk_listing(url: str, window: int | None) -> tuple[float, list[int]]:
    """The SDK paginator over ``/members`` (``window=None``: the client default)."""
    async with CoursepathClient(
        url, api_key=API_KEY, user=ADMIN, allow_http=True, max_concurrency=max(16, window or 0)
    ) as client:
        started = time.perf_counter()
        ids = [member.id async for member in client.members.list(window=window)]
        return time.perf_counter() - started, ids


def full_listing(*, quick: bool) -> list[Result]:
    """Benchmark 4: windowed SDK listing vs sequential and parallel raw paging, same ids."""
    members, runs, latency = (20_000, 3, 0.05) if quick else (100_000, 3, 0.05)
    seconds: dict[str, list[float]] = {"seq": [], "par": [], "win": [], "default": []}
    with sandbox(members=members, latency=latency) as url:
        listings = {
            "seq": lambda: raw_sequential(url),
            "par": lambda: raw_parallel(url, WINDOW),
            "win": lambda: sdk_listing(url, WINDOW),
            "default": lambda: sdk_listing(url, None),
        }
        order = list(listings)
        for round_no in range(runs):
            shift = round_no % len(order)
            for variant in order[shift:] + order[:shift]:
                took, ids = asyncio.run(listings[variant]())
                seconds[variant].append(took)
                if ids != list(range(1, members + 1)):
                    raise RuntimeError(f"{variant} listing returned other ids or another order")
    base, par, sdk, dflt = (median(seconds[k]) for k in ("seq", "par", "win", "default"))
    vs_par = [p / w for p, w in zip(seconds["par"], seconds["win"], strict=True)]
    default_ok = "passes" if base / dflt >= 5 else "fails"
    return [
        Result(
            number=4,
            title=f"full listing of {members:,} members, {latency * 1000:.0f} ms latency",
            sdk=f"{sdk:.2f} s ({members / sdk:,.0f} rec/s, window {WINDOW})",
            baseline=(
                f"{base:.2f} s (raw aiohttp, sequential pages); {par:.2f} s (raw aiohttp, "
                f"{WINDOW} pages in flight)"
            ),
            ratio=f"{base / sdk:.1f}x faster; {median(vs_par):.2f}x the raw parallel pager",
            measured=base / sdk,
            bar=at_least(5),
            goal=at_least(8),
            notes=(
                f"{runs} interleaved runs; every run's ids were checked equal to 1..{members:,} "
                f"in order (all sides); against the hand-written raw pager with the same "
                f"window the SDK is {median(vs_par):.2f}x as fast (its seconds / the SDK's, "
                f"median of the rounds' ratios, range {spread(vs_par, '{:.2f}')}); with the "
                f"default window (min(budget, 16)) it took {dflt:.2f} s = {base / dflt:.1f}x "
                f"faster, which {default_ok} the 5x bar; seconds: sequential "
                f"{spread(seconds['seq'], '{:.2f}')}, raw window {WINDOW} "
                f"{spread(seconds['par'], '{:.2f}')}, SDK window {WINDOW} "
                f"{spread(seconds['win'], '{:.2f}')}, default "
                f"{spread(seconds['default'], '{:.2f}')}",
            ),
        )
    ]


def _stream_once(url: str, total: int) -> dict[str, float]:
    proc = subprocess.run(
        [sys.executable, "-m", "benchmarks._stream_child", url, str(total)],
        cwd=HERE.parent,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"stream child failed:\n{proc.stderr}")
    data: dict[str, float] = orjson.loads(proc.stdout.strip().splitlines()[-1])
    return data


def streaming_memory(*, quick: bool) -> list[Result]:
    """Benchmark 5: peak RSS growth of a client streaming a huge listing with ``async for``."""
    total, runs = (200_000, 3) if quick else (1_000_000, 3)
    port = free_port()
    samples = []
    with server_process(
        [str(HERE / "_page_server.py"), str(port), str(total)],
        port=port,
        ready_path="/__stats",
    ) as url:
        for _ in range(runs):
            samples.append(_stream_once(url, total))
    growth = [(s["peak_kib"] - s["rss_before_kib"]) / 1024 for s in samples]
    whole = [(max(s["peak_kib"], s["warm_peak_kib"]) - s["rss_start_kib"]) / 1024 for s in samples]
    streamed = median([s["bytes_streamed"] / 2**20 for s in samples])
    seconds = median([s["seconds"] for s in samples])
    mib = median(growth)
    return [
        Result(
            number=5,
            title=f"streaming {total:,} members through `async for`",
            sdk=f"{mib:.1f} MiB peak RSS growth",
            baseline=f"{streamed:,.0f} MiB of page JSON streamed",
            ratio=f"{100 * mib / streamed:.1f}% of the data",
            measured=mib,
            bar=at_most(64, " MiB"),
            goal=at_most(20, " MiB"),
            notes=(
                f"{runs} child processes; growth = peak RSS while streaming minus RSS after "
                f"a 3,000-record warm-up listing (per run {spread(growth, '{:.1f}')} MiB); "
                f"counted from the idle client instead (warm-up, pool and decode hooks "
                f"included): {median(whole):.1f} MiB; pages from the generator server "
                f"(_page_server.py, not the sandbox), the default window x 500 records, "
                f"{total / seconds:,.0f} records/s",
            ),
        )
    ]

"""Benchmark 8: interactive ``members.get`` latency while a 10,000-call bulk backlog waits.

One client (16 slots, the default 2 interactive-only reserve slots) against a sandbox
adding 20 ms to each request. Idle phase: a view at ``Priority.INTERACTIVE`` makes
sequential ``members.get`` calls and each is timed. Busy phase: a view at
``Priority.BULK`` queues 10,000 ``members.get`` calls at once, and the same interactive
calls are timed while that backlog drains; whatever is still queued when they finish is
cancelled (the phase checks a backlog was still waiting). Phases alternate in each
round, and p50/p95 are medians over rounds. A third phase repeats the busy one with
``interactive_reserve=0`` (priority lanes alone), for the notes.
"""

from __future__ import annotations

import asyncio
import statistics
import time

from coursepath_async import CoursepathClient, Priority

from ._common import ADMIN, API_KEY, Result, at_most, sandbox
from ._util import median

MEMBERS = 1000
BACKLOG = 10_000
SLOTS = 16


def _percentile(values: list[float], q: int) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[q - 1]


async def _phase(url: str, samples: int, *, busy: bool, reserve: int = 2) -> tuple[float, float]:
    """Time ``samples`` interactive gets (optionally under a bulk backlog); (p50, p95) ms."""
    async with CoursepathClient(
        url,
        api_key=API_KEY,
        user=ADMIN,
        allow_http=True,
        max_concurrency=SLOTS,
        interactive_reserve=reserve,
    ) as client:
        interactive = client.with_options(priority=Priority.INTERACTIVE)
        bulk = client.with_options(priority=Priority.BULK)
        await asyncio.gather(*(client.members.get(1) for _ in range(SLOTS)))  # warm pool
        backlog: list[asyncio.Task[object]] = []
        if busy:
            backlog = [
                asyncio.ensure_future(bulk.members.get(i % MEMBERS + 1)) for i in range(BACKLOG)
            ]
            await asyncio.sleep(0.2)  # let the backlog take every slot
        latencies: list[float] = []
        try:
            for i in range(samples):
                started = time.perf_counter()
                await interactive.members.get((i * 7) % MEMBERS + 1)
                latencies.append((time.perf_counter() - started) * 1000)
            if busy and client.scheduler_stats().pending["bulk"] == 0:
                raise RuntimeError("the bulk backlog drained before the interactive calls ended")
        finally:
            for task in backlog:
                task.cancel()
            await asyncio.gather(*backlog, return_exceptions=True)
    return _percentile(latencies, 50), _percentile(latencies, 95)


def interactive_latency(*, quick: bool) -> list[Result]:
    """Benchmark 8: interactive p95 under a bulk backlog vs on an idle client."""
    samples, runs = (40, 3) if quick else (100, 3)
    idle: list[tuple[float, float]] = []
    busy: list[tuple[float, float]] = []
    lanes_only: list[tuple[float, float]] = []
    with sandbox(members=MEMBERS, latency=0.02) as url:
        for round_no in range(runs):
            for is_busy in (False, True) if round_no % 2 == 0 else (True, False):
                figures = asyncio.run(_phase(url, samples, busy=is_busy))
                (busy if is_busy else idle).append(figures)
            lanes_only.append(asyncio.run(_phase(url, samples, busy=True, reserve=0)))
    idle50, idle95 = median([p[0] for p in idle]), median([p[1] for p in idle])
    busy50, busy95 = median([p[0] for p in busy]), median([p[1] for p in busy])
    lanes95 = median([p[1] for p in lanes_only])
    return [
        Result(
            number=8,
            title=f"interactive `members.get` under a {BACKLOG:,}-call bulk backlog",
            sdk=f"p95 {busy95:.1f} ms (p50 {busy50:.1f})",
            baseline=f"p95 {idle95:.1f} ms (p50 {idle50:.1f}) on an idle client",
            ratio=f"{busy95 / idle95:.2f}x p95",
            measured=busy95 / idle95,
            bar=at_most(2),
            goal=at_most(1.3),
            notes=(
                f"{samples} sequential interactive calls per phase, {runs} rounds, {SLOTS} slots "
                f"+ 2 interactive-only, 20 ms sandbox latency; the backlog was still queued "
                f"when every busy phase ended; p50 ratio {busy50 / idle50:.2f}x; with "
                f"priority lanes alone (interactive_reserve=0): p95 {lanes95:.1f} ms = "
                f"{lanes95 / idle95:.2f}x idle, the wait for a bulk call to free a slot",
            ),
        )
    ]

"""Benchmark 13: event-loop lag during a 10,000-row library import with ``--invite``'s work.

The SDK side is ``bulk.import_members`` over a CSV file (``CsvRows``), with its journal
on disk (fsynced group commits on the writer thread) and ``invite="new"``, a group and a
course, on the standard asyncio loop: what a library user runs. A probe task on the
same loop sleeps 1 ms at a time and records how late it wakes; the figure is the p99 of
that overshoot. The baseline is the same probe during the raw aiohttp loop making the
same four calls per row (``_raw_import_child.main``), in interleaved rounds.
"""

from __future__ import annotations

import asyncio
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

from coursepath_async import CoursepathClient
from coursepath_async.bulk import CsvRows, ImportOptions, PlanOptions, import_members, open_journal

from ._cli_import import COURSE_ID, GROUP, write_csv
from ._common import ADMIN, API_KEY, Result, at_most, interleaved, sandbox, spread
from ._raw_import_child import main as raw_main
from ._util import median

CONCURRENCY = 16  # the CLI's default --concurrency: the client's request budget
PROBE_SLEEP = 0.001


@dataclass(frozen=True)
class Lag:
    """One run's probe overshoots in milliseconds (p50, p99, max), and rows/s."""

    p50: float
    p99: float
    worst: float
    rate: float


def _quantile(ordered: list[float], q: float) -> float:
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def probed(n: int, work: Callable[[], Awaitable[object]]) -> Lag:
    """Run ``work()`` while a probe on the same loop measures how late 1 ms sleeps wake."""
    overshoots: list[float] = []
    done = asyncio.Event()

    async def probe() -> None:
        while not done.is_set():
            before = time.perf_counter()
            await asyncio.sleep(PROBE_SLEEP)
            overshoots.append((time.perf_counter() - before - PROBE_SLEEP) * 1000)

    prober = asyncio.create_task(probe())
    started = time.perf_counter()
    try:
        await work()
    finally:
        done.set()
        await prober
    seconds = time.perf_counter() - started
    ordered = sorted(overshoots)
    return Lag(
        p50=_quantile(ordered, 0.5),
        p99=_quantile(ordered, 0.99),
        worst=ordered[-1],
        rate=n / seconds,
    )


async def sdk_import(url: str, folder: Path, prefix: str, n: int) -> Lag:
    """The library import of a fresh ``n``-row CSV, journal on disk, under the probe."""
    people = folder / f"{prefix}.csv"
    write_csv(people, prefix, n)
    plan = PlanOptions(groups=(GROUP,), courses=(COURSE_ID,), invite="new")
    with CsvRows(people) as rows:
        journal = open_journal(str(folder / f"{prefix}.sqlite"), rows, kind="import", options=plan)
        with journal:
            async with CoursepathClient(
                url, api_key=API_KEY, user=ADMIN, allow_http=True, max_concurrency=CONCURRENCY
            ) as client:
                await client.members.get(1)  # connect before the probe starts

                async def work() -> None:
                    report = await import_members(
                        client, rows, journal=journal, options=ImportOptions(plan=plan)
                    )
                    if report.totals.created != n:
                        raise RuntimeError(f"SDK import: {report.summary()}")

                return await probed(n, work)


async def raw_import(url: str, prefix: str, n: int) -> Lag:
    """The raw loop's four calls per row, under the same probe."""
    return await probed(n, lambda: raw_main(url, prefix, n, CONCURRENCY, GROUP, COURSE_ID))


def loop_lag(*, quick: bool) -> list[Result]:
    """Benchmark 13: p99 loop lag of a journaled library import vs the raw loop's."""
    n, runs = (1_000, 2) if quick else (10_000, 3)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        with sandbox(members=1, courses=2, groups=1) as url:
            figures = interleaved(
                runs,
                {
                    "sdk": lambda r: asyncio.run(sdk_import(url, folder, f"lagsdk{r}", n)),
                    "raw": lambda r: asyncio.run(raw_import(url, f"lagraw{r}", n)),
                },
            )
    sdk, raw = figures["sdk"], figures["raw"]
    p99, raw_p99 = median([s.p99 for s in sdk]), median([s.p99 for s in raw])
    return [
        Result(
            number=13,
            title=f"event-loop lag p99, {n:,}-row library import (invite, journal on disk)",
            sdk=f"{p99:.1f} ms p99 lag ({median([s.rate for s in sdk]):,.0f} rows/s)",
            baseline=(
                f"{raw_p99:.1f} ms (raw aiohttp loop, same 4 calls per row, "
                f"{median([s.rate for s in raw]):,.0f} rows/s)"
            ),
            ratio=f"+{p99 - raw_p99:.1f} ms",
            measured=p99,
            bar=at_most(8, " ms"),
            goal=at_most(4, " ms"),
            notes=(
                f"{runs} interleaved rounds on asyncio, {CONCURRENCY} requests in flight; "
                f"a probe task sleeps {PROBE_SLEEP * 1000:.0f} ms and records the overshoot; "
                f"per-run p99 ms: SDK {spread([s.p99 for s in sdk], '{:.1f}')}, raw "
                f"{spread([s.p99 for s in raw], '{:.1f}')}; p50 ms: SDK "
                f"{median([s.p50 for s in sdk]):.2f}, raw {median([s.p50 for s in raw]):.2f}; "
                f"max ms: SDK {spread([s.worst for s in sdk], '{:.0f}')}, raw "
                f"{spread([s.worst for s in raw], '{:.0f}')}; CSV and journal in a "
                "temporary folder, as in benchmark 10",
            ),
        )
    ]

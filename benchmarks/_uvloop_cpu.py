"""Benchmark 15: client CPU on uvloop vs asyncio, the claim behind the ``speed`` extra.

The figure is the CLI ``import FILE --group G --course C --invite`` (what the extra is
for), run with ``COURSEPATH_LOOP=uvloop`` and ``=asyncio`` in adjacent, rotating runs;
each run's CPU (user + system, the finished child's ``getrusage``) per row, less
interpreter start-up and preflight (a 50-row import on the same loop in the same
round), is compared. For the
notes, benchmark 1's in-process SDK create loop on both loops, paired the same way.
"""

from __future__ import annotations

import asyncio
import importlib.util
import tempfile
from pathlib import Path

from ._cli_import import cli_run
from ._common import Result, interleaved, sandbox, spread
from ._throughput import sdk_creates
from ._util import median

SMALL = 50


def cli_cpu(url: str, folder: Path, prefix: str, n: int, loop: str) -> float:
    """CPU seconds (user + system) of one CLI ``--invite`` import of ``n`` new people."""
    return cli_run(url, folder, prefix, n, loop=loop).cpu


def _marginal(url: str, folder: Path, tag: str, n: int, loop: str) -> float:
    """CPU microseconds per row beyond start-up: (CPU(n) - CPU(SMALL)) / (n - SMALL)."""
    big = cli_cpu(url, folder, f"{tag}big", n, loop)
    small = cli_cpu(url, folder, f"{tag}small", SMALL, loop)
    return (big - small) / (n - SMALL) * 1e6


def _creates_cpu(url: str, n: int, prefix: str, loop: str) -> float:
    """Benchmark 1's SDK create loop on ``loop``: client CPU microseconds per request."""
    coro = sdk_creates(url, n, 32, prefix)
    if loop == "uvloop":
        import uvloop

        return uvloop.run(coro).cpu_us
    return asyncio.run(coro).cpu_us


def uvloop_cpu(*, quick: bool) -> list[Result]:
    """Benchmark 15: CLI import CPU per row on uvloop / on asyncio, paired rounds."""
    if importlib.util.find_spec("uvloop") is None:
        raise RuntimeError("benchmark 15 needs uvloop: pip install 'coursepath-async[speed]'")
    n, runs, creates = (500, 3, 1000) if quick else (2_000, 5, 3000)
    with tempfile.TemporaryDirectory() as tmp, sandbox(members=20, courses=2, groups=1) as url:
        folder = Path(tmp)
        cli = interleaved(
            runs,
            {
                "asyncio": lambda r: _marginal(url, folder, f"aio{r}", n, "asyncio"),
                "uvloop": lambda r: _marginal(url, folder, f"uv{r}", n, "uvloop"),
            },
        )
        sdk = interleaved(
            runs,
            {
                "asyncio": lambda r: _creates_cpu(url, creates, f"cpuaio{r}", "asyncio"),
                "uvloop": lambda r: _creates_cpu(url, creates, f"cpuuv{r}", "uvloop"),
            },
        )
    paired = [u / a for u, a in zip(cli["uvloop"], cli["asyncio"], strict=True)]
    sdk_paired = [u / a for u, a in zip(sdk["uvloop"], sdk["asyncio"], strict=True)]
    ratio = median(paired)
    on_uv, on_aio = median(cli["uvloop"]), median(cli["asyncio"])
    return [
        Result(
            number=15,
            title=f"client CPU per row, CLI `import --invite` ({n:,} rows), uvloop vs asyncio",
            sdk=f"{on_uv:,.0f} µs per row (uvloop)",
            baseline=f"{on_aio:,.0f} µs per row (asyncio, COURSEPATH_LOOP=asyncio)",
            ratio=f"{ratio:.2f}x",
            measured=ratio,
            bar=None,
            goal=None,
            notes=(
                f"{runs} interleaved rounds; CPU from getrusage (user + system) less a {SMALL}-row "
                f"import's on the same loop; per-round uvloop/asyncio {spread(paired, '{:.2f}')}"
                f"; µs per row: uvloop {spread(cli['uvloop'])}, asyncio "
                f"{spread(cli['asyncio'])}; benchmark 1's SDK create loop ({creates:,} creates, "
                f"concurrency 32, in process): uvloop {median(sdk['uvloop']):.0f} µs, asyncio "
                f"{median(sdk['asyncio']):.0f} µs CPU per request = {median(sdk_paired):.2f}x "
                f"(per round {spread(sdk_paired, '{:.2f}')})",
            ),
        )
    ]

"""Run the benchmark suite and print the README table: ``python -m benchmarks``.

Options: ``--only N`` (repeatable, or ``--only 1,4``) runs the benchmarks named;
``--quick`` shrinks every workload for a smoke run (the figures are then rougher).
Every server runs in its own process on loopback; each figure is a median over
interleaved runs against a baseline measured in the same run. Exits 1 when a bar fails.
Profile the client side with ``python -m benchmarks.profile {1,4}``.
"""

from __future__ import annotations

import argparse
import compileall
import platform
import signal
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from ._common import Result

Group = tuple[tuple[int, ...], Callable[[bool], list[Result]]]


def _groups() -> list[Group]:
    from . import (
        _cli_import,
        _hooks_bench,
        _import_bench,
        _import_memory,
        _listing,
        _loop_lag,
        _priority,
        _rate_limit,
        _signing,
        _throughput,
        _uvloop_cpu,
    )

    return [
        ((1, 2), lambda quick: _throughput.creates(quick=quick)),
        ((3,), lambda quick: _throughput.latency_bound(quick=quick)),
        ((4,), lambda quick: _listing.full_listing(quick=quick)),
        ((5,), lambda quick: _listing.streaming_memory(quick=quick)),
        ((6,), lambda quick: _signing.signing(quick=quick)),
        ((7,), lambda quick: _import_bench.bulk_import(quick=quick)),
        ((8,), lambda quick: _priority.interactive_latency(quick=quick)),
        ((9,), lambda quick: _rate_limit.rate_limited_import(quick=quick)),
        ((10,), lambda quick: _cli_import.cli_import_bench(quick=quick)),
        ((11,), lambda quick: _import_memory.import_memory(quick=quick)),
        ((12,), lambda quick: _hooks_bench.hook_overhead(quick=quick)),
        ((13,), lambda quick: _loop_lag.loop_lag(quick=quick)),
        ((14,), lambda quick: _throughput.gets_at_32(quick=quick)),
        ((15,), lambda quick: _uvloop_cpu.uvloop_cpu(quick=quick)),
    ]


def _wanted(values: Sequence[str]) -> set[int]:
    wanted: set[int] = set()
    last = max(number for numbers, _ in _groups() for number in numbers)
    for value in values:
        for part in value.split(","):
            number = int(part)
            if not 1 <= number <= last:
                raise SystemExit(f"no benchmark {number}: choose 1-{last}")
            wanted.add(number)
    return wanted


def table(results: Sequence[Result]) -> str:
    """The results as a markdown table, then their notes."""
    lines = [
        "| # | benchmark | SDK | baseline | ratio | bar | goal | result |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for r in sorted(results, key=lambda r: r.number):
        bar = "report" if r.bar is None else r.bar.text
        goal = "" if r.goal is None else r.goal.text
        lines.append(
            f"| {r.number} | {r.title} | {r.sdk} | {r.baseline} | {r.ratio} | {bar} | {goal} "
            f"| {r.verdict} |"
        )
    notes = [
        f"{r.number}. {note}" for r in sorted(results, key=lambda r: r.number) for note in r.notes
    ]
    if notes:
        lines += ["", "Notes:", "", *notes]
    return "\n".join(lines)


def _compile_package() -> None:
    """Byte-compile the SDK as ``pip install`` does, so every CLI run starts as a user's would.

    A source checkout without ``__pycache__`` (or with ``PYTHONDONTWRITEBYTECODE`` set)
    would recompile about 100 modules in every CLI process the benchmarks start, which
    no installed copy does; the raw baselines' aiohttp is byte-compiled by pip.
    """
    import coursepath_async

    compileall.compile_dir(Path(coursepath_async.__file__).parent, quiet=1)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    parser.add_argument("--only", action="append", default=[], metavar="N")
    parser.add_argument("--quick", action="store_true", help="smaller workloads (smoke run)")
    args = parser.parse_args(argv)
    # A plain SIGTERM would skip the finally blocks that stop the server processes.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    wanted = _wanted(args.only) or {n for numbers, _ in _groups() for n in numbers}
    _compile_package()
    started = time.perf_counter()
    results: list[Result] = []
    for numbers, run in _groups():
        if wanted.isdisjoint(numbers):
            continue
        t0 = time.perf_counter()
        print(f"running benchmark {'+'.join(map(str, numbers))}...", file=sys.stderr, flush=True)
        for result in run(args.quick):
            if result.number in wanted:
                results.append(result)
        print(f"  done in {time.perf_counter() - t0:.1f}s", file=sys.stderr, flush=True)
    elapsed = time.perf_counter() - started
    print(table(results))
    print()
    print(
        f"{'quick' if args.quick else 'full'} run of {len(results)} benchmark(s) in "
        f"{elapsed:.0f}s on {platform.python_implementation()} {platform.python_version()}, "
        f"{platform.machine()}"
    )
    failed = [r.number for r in results if r.passed is False]
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())

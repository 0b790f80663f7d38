"""Benchmark 11: peak RSS of a 1,000,000-row CLI import minus that of a 10,000-row one.

Both are ``coursepath-async import FILE --group G`` on a generated CSV, journal and
report on disk, each in a fresh process whose peak RSS is read from ``wait4``. Flat
memory means the difference stays small: rows are journaled and reported from disk,
so only counters and bounded buffers stay in memory. ``--quick`` uses 200,000 rows.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from ._cli_import import GROUP, _env, write_csv
from ._common import Result, at_most, sandbox

SMALL = 10_000


def peak_rss(url: str, folder: Path, prefix: str, n: int) -> tuple[float, float]:
    """(peak RSS in MiB, seconds) of one CLI import of ``n`` new people."""
    people = folder / f"{prefix}.csv"
    write_csv(people, prefix, n)
    command = [sys.executable, "-m", "coursepath_async", "import", str(people), "--group", GROUP]
    started = time.perf_counter()
    process = subprocess.Popen(
        command, env=_env(url), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    assert process.stderr is not None
    errors = process.stderr.read()
    _, status, usage = os.wait4(process.pid, 0)
    process.returncode = os.waitstatus_to_exitcode(status)
    seconds = time.perf_counter() - started
    if process.returncode != 0:
        raise RuntimeError(f"CLI import of {n} rows failed: {errors.decode()[-2000:]}")
    for leftover in folder.glob(f"{prefix}.csv*"):
        leftover.unlink()
    return usage.ru_maxrss / 1024, seconds  # ru_maxrss is in KiB on Linux


def import_memory(*, quick: bool) -> list[Result]:
    """Benchmark 11: the RSS a big import adds over a small one."""
    big = 200_000 if quick else 1_000_000
    with tempfile.TemporaryDirectory() as tmp, sandbox(members=1, courses=2, groups=1) as url:
        folder = Path(tmp)
        small_rss, small_s = peak_rss(url, folder, "small", SMALL)
        big_rss, big_s = peak_rss(url, folder, "big", big)
    grown = big_rss - small_rss
    return [
        Result(
            number=11,
            title=f"peak RSS, {big:,}-row CLI import minus {SMALL:,}-row import",
            sdk=f"{big_rss:,.0f} MiB ({big:,} rows, {big_s:,.0f} s)",
            baseline=f"{small_rss:,.0f} MiB ({SMALL:,} rows, {small_s:,.0f} s)",
            ratio=f"+{grown:,.1f} MiB",
            measured=grown,
            bar=at_most(64, " MiB"),
            goal=at_most(16, " MiB"),
            notes=(
                "one run each, fresh processes, peak RSS from wait4; the sandbox runs in its "
                "own process and is not counted",
            ),
        )
    ]

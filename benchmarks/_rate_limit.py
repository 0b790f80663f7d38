"""Benchmark 9: a 2,000-row ``import --invite`` with the CLI's defaults, at a limiter's pace.

The sandbox runs as ``coursepath-async sandbox --rate-limit 100/s --rate-limit-style S``
in its own process (a gateway's token bucket holding one second's worth), once per
style: ``429`` (no Retry-After), ``429-date`` (an HTTP-date Retry-After, the server's
clock 90 s ahead of ours) and ``503-retry-after``. The CLI then imports a CSV of
2,000 new people (email, name) with ``--invite`` and nothing else: two requests a row
(create, invite), so the ideal is 4,000 requests ÷ 100/s = 40 s. Per style: rows
failed and invitations lost (both must be 0) and wall time ÷ that ideal (bar ≤ 1.25),
the CLI's start-up included.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import orjson

from ._common import ADMIN, API_KEY, Result, at_most
from ._util import free_port, server_process

STYLES = ("429", "429-date", "503-retry-after")
#: Requests per row: the create and the invitation.
REQUESTS_PER_ROW = 2
#: How far ahead of ours the academy's clock runs in the dated style.
CLOCK_OFFSET = 90.0


@dataclass(frozen=True)
class Run:
    """One import under one limiter style."""

    style: str
    rows_failed: int
    invitations_lost: int
    seconds: float
    ideal: float

    @property
    def ratio(self) -> float:
        """Wall time over the ideal (requests ÷ the limiter's rate)."""
        return self.seconds / self.ideal


def _people(path: Path, rows: int, style: str) -> None:
    lines = ["email,name", *(f"p{i}.{style}@rate.test,Person {i}" for i in range(rows))]
    path.write_text("\n".join(lines) + "\n")


def import_under_limit(style: str, *, rows: int, rate: float, folder: Path) -> Run:
    """Serve a limited sandbox, run the CLI import against it, read its report."""
    port = free_port()
    offset = CLOCK_OFFSET if style == "429-date" else 0.0
    server = [
        *("-m", "coursepath_async", "sandbox", f"--port={port}", f"--api-key={API_KEY}"),
        *("--members=1", f"--rate-limit={rate:g}/s", f"--rate-limit-style={style}"),
        f"--clock-offset={offset:g}",
    ]
    people, report = folder / f"{style}.csv", folder / f"{style}.report.json"
    _people(people, rows, style)
    with server_process(server, port=port, ready_path="/api/v1/members/me") as url:
        env = {k: v for k, v in os.environ.items() if not k.startswith("COURSEPATH_")}
        env.update(
            COURSEPATH_URL=url,
            COURSEPATH_API_KEY=API_KEY,
            COURSEPATH_USER=ADMIN,
            COURSEPATH_ALLOW_HTTP="1",
        )
        time.sleep(1.0)  # the ready check spent tokens: start with a full bucket
        started = time.perf_counter()
        command = [sys.executable, "-m", "coursepath_async", "import", str(people), "--invite"]
        subprocess.run(
            [*command, f"--report={report}"],
            env=env,
            check=False,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        seconds = time.perf_counter() - started
    totals = orjson.loads(report.read_bytes())["totals"]
    return Run(
        style=style,
        rows_failed=totals["rows"] - totals["succeeded"],
        invitations_lost=totals["created"] - totals["invitations_sent"],
        seconds=seconds,
        ideal=rows * REQUESTS_PER_ROW / rate,
    )


def rate_limited_import(*, quick: bool) -> list[Result]:
    """Benchmark 9: the import under each limiter style, wall time against the ideal."""
    rows, rate = (300, 200.0) if quick else (2_000, 100.0)
    with tempfile.TemporaryDirectory() as tmp:
        runs = [import_under_limit(s, rows=rows, rate=rate, folder=Path(tmp)) for s in STYLES]
    clean = all(r.rows_failed == 0 and r.invitations_lost == 0 for r in runs)
    worst = max(r.ratio for r in runs)
    per_style = " · ".join(f"{r.style} {r.ratio:.2f}x" for r in runs)
    details = "; ".join(
        f"{r.style}: {r.rows_failed} rows failed, {r.invitations_lost} invitations lost, "
        f"{r.seconds:.1f}s"
        for r in runs
    )
    return [
        Result(
            number=9,
            title=f"{rows:,}-row import --invite behind a {rate:g} req/s limiter",
            sdk=f"wall ÷ ideal: {per_style}",
            baseline=f"ideal {runs[0].ideal:.0f}s ({rows * REQUESTS_PER_ROW:,} req ÷ {rate:g}/s)",
            ratio=f"{worst:.2f}x (worst)",
            measured=worst if clean else float("inf"),
            bar=at_most(1.25),
            goal=at_most(1.1),
            notes=(
                f"the CLI's defaults (16 in flight, no --max-rate), one run per style, "
                f"start-up included; the dated style's server clock is {CLOCK_OFFSET:g}s "
                f"ahead; {details}",
            ),
        )
    ]

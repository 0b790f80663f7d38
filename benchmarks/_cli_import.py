"""Benchmark 10: ``coursepath-async import FILE --group G --course C --invite``, as users run it.

The SDK side is the CLI itself, in its own process, on a generated CSV file with its
journal and report on disk (the default durability: every commit fsynced). The baseline
is a raw aiohttp loop in its own process making the same four calls per row (create,
add to group, enrol, invite) with a prepared HMAC signer, the same number in flight,
and nothing written anywhere. Both are timed from process start to exit (interpreter
start-up included on both sides), in interleaved rounds; then once more against a
sandbox adding 20 ms per request. The figure is rows per second, as a ratio; each
side's client CPU per row (from ``getrusage`` of the finished child) is in the notes,
since that is what decides it when nothing waits on the network, and so is how many
cores each side's client and the sandbox kept busy (the sandbox's from ``/proc``).

Also measured in process (``journal_counts``): the journal's commits and SQLite
statements per row, counted with ``sqlite3``'s trace callback over a real import.
"""

from __future__ import annotations

import asyncio
import os
import resource
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from attrs import frozen

from ._common import ADMIN, API_KEY, Result, at_least, interleaved, sandbox, spread
from ._util import HERE, median, server_cpu

CONCURRENCY = 16  # the CLI's default --concurrency
GROUP = "Bench Importers"
COURSE_ID = 1
LATENCY = 0.02


def write_csv(path: Path, prefix: str, n: int) -> None:
    """A CSV of ``n`` new people (email, name), streamed: any size, flat memory."""
    with path.open("w", encoding="utf-8", newline="") as out:
        out.write("email,name\r\n")
        for i in range(n):
            out.write(f"{prefix}-{i}@bench.test,Imported Person {i}\r\n")


def _env(url: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("COURSEPATH_")}
    env.update(
        COURSEPATH_URL=url,
        COURSEPATH_API_KEY=API_KEY,
        COURSEPATH_USER=ADMIN,
        COURSEPATH_ALLOW_HTTP="1",
    )
    return env


@frozen
class Run:
    """One timed process: its rows, seconds from start to exit, and CPU (user + system).

    Also the sandbox's CPU over the same run (None where it cannot be read).
    """

    rows: int
    seconds: float
    cpu: float
    server_cpu: float | None = None

    @property
    def rate(self) -> float:
        """Rows per second, start to exit."""
        return self.rows / self.seconds

    @property
    def cpu_ms(self) -> float:
        """CPU milliseconds per row."""
        return self.cpu / self.rows * 1000


def cli_run(url: str, folder: Path, prefix: str, n: int, *, loop: str | None = None) -> Run:
    """Run the CLI import of a fresh ``n``-row file, timed from process start to exit.

    ``loop`` sets ``COURSEPATH_LOOP`` (default: the CLI's own choice).
    """
    people = folder / f"{prefix}.csv"
    write_csv(people, prefix, n)
    command = [
        sys.executable,
        "-m",
        "coursepath_async",
        "import",
        str(people),
        "--group",
        GROUP,
        "--course",
        str(COURSE_ID),
        "--invite",
        "--concurrency",
        str(CONCURRENCY),
    ]
    env = _env(url) if loop is None else _env(url) | {"COURSEPATH_LOOP": loop}
    return _timed(command, env, n, "CLI import", url)


def raw_run(url: str, prefix: str, n: int) -> Run:
    """The raw loop (``_raw_import_child.py``) in its own process."""
    command = [
        sys.executable,
        str(HERE / "_raw_import_child.py"),
        url,
        prefix,
        str(n),
        str(CONCURRENCY),
        GROUP,
        str(COURSE_ID),
    ]
    return _timed(command, None, n, "raw import", url)


def _timed(command: list[str], env: dict[str, str] | None, n: int, what: str, url: str) -> Run:
    """Run ``command`` (an import of ``n`` rows) to its exit, timed and its CPU counted.

    The sandbox at ``url`` has its CPU counted over the same run.
    """
    served = server_cpu(url)
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    done = subprocess.run(command, env=env, capture_output=True, check=False)
    seconds = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0:
        raise RuntimeError(f"{what} failed ({done.returncode}): {done.stderr.decode()[-2000:]}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    now = server_cpu(url)
    server = None if served is None or now is None else now - served
    return Run(rows=n, seconds=seconds, cpu=cpu, server_cpu=server)


def _rounds(url: str, folder: Path, n: int, runs: int, tag: str) -> dict[str, list[Run]]:
    return interleaved(
        runs,
        {
            "cli": lambda r: cli_run(url, folder, f"cli{tag}{r}", n),
            "raw": lambda r: raw_run(url, f"raw{tag}{r}", n),
        },
    )


def _machine_load(figures: dict[str, list[Run]]) -> str:
    """How much of the machine each side's runs kept busy, client and sandbox together.

    Near all of it means the figure is a CPU budget split between the client and the
    sandbox, not a wait for the network: a client that spends less per row goes faster.
    """
    parts = []
    for side in ("cli", "raw"):
        known = [(run, run.server_cpu) for run in figures[side] if run.server_cpu is not None]
        if not known:
            return "machine load: not measured (no /proc)"
        client = median([run.cpu / run.seconds for run, _ in known])
        server = median([served / run.seconds for run, served in known])
        per_row = median([served / run.rows * 1000 for run, served in known])
        parts.append(
            f"{side} {client:.2f} client + {server:.2f} sandbox cores "
            f"(sandbox {per_row:.2f} ms CPU per row)"
        )
    return f"machine load of {os.cpu_count()} cores, medians: " + "; ".join(parts)


def journal_counts(n: int = 500) -> tuple[float, float]:
    """(commits, statements) per row of an in-process ``--invite`` import, by trace callback."""
    from coursepath_async import CoursepathClient
    from coursepath_async.bulk import CsvRows, PlanOptions, import_members, open_journal
    from coursepath_async.bulk._import import ImportOptions

    statements: list[str] = []
    with tempfile.TemporaryDirectory() as tmp, sandbox(members=1, courses=2, groups=1) as url:
        people = Path(tmp) / "people.csv"
        write_csv(people, "count", n)
        plan = PlanOptions(groups=(GROUP,), courses=(COURSE_ID,), invite="new")
        with CsvRows(people) as rows:
            journal = open_journal(str(Path(tmp) / "j.sqlite"), rows, kind="import", options=plan)
            conn: sqlite3.Connection = journal._conn
            conn.set_trace_callback(statements.append)

            async def run() -> None:
                async with CoursepathClient(url, api_key=API_KEY, user=ADMIN, allow_http=True) as c:
                    await import_members(c, rows, journal=journal, options=ImportOptions(plan=plan))

            with journal:
                asyncio.run(run())
    commits = sum(1 for s in statements if s.strip().upper() == "COMMIT")
    work = [s for s in statements if s.split(None, 1)[0].upper() in ("INSERT", "UPDATE", "SELECT")]
    return commits / n, len(work) / n


def cli_import_bench(*, quick: bool) -> list[Result]:
    """Benchmark 10: the CLI import with --invite vs the raw loop, rows/s, and at 20 ms."""
    # Seven rounds: the figure sits near its bar, and one run moves by a tenth here.
    n, runs = (1_000, 3) if quick else (10_000, 7)
    # 5,000 rows at 20 ms: a job long enough (about 30 s) that each side's start-up and
    # exit (0.3 s raw, 0.8 s for the CLI, which also checks the academy first) do not
    # decide the figure, as they do not for the tens of thousands of rows users import.
    latency_rows, latency_runs = (300, 1) if quick else (5_000, 3)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        with sandbox(members=1, courses=2, groups=1) as url:
            figures = _rounds(url, folder, n, runs, "")
        with sandbox(members=1, courses=2, groups=1, latency=LATENCY) as url:
            slow = _rounds(url, folder, latency_rows, latency_runs, "lat")
    commits, statements = journal_counts(300 if quick else 1_000)
    rates = {side: [run.rate for run in figures[side]] for side in ("cli", "raw")}
    cpu = {side: [run.cpu_ms for run in figures[side]] for side in ("cli", "raw")}
    cli, raw = median(rates["cli"]), median(rates["raw"])
    cli_lat, raw_lat = (median([run.rate for run in slow[side]]) for side in ("cli", "raw"))
    # Paired by round, as benchmark 14: a round's two runs are minutes apart at most, so
    # the machine's drift over the whole run (twofold here on a busy day) cancels out.
    ratios = [c.rate / r.rate for c, r in zip(figures["cli"], figures["raw"], strict=True)]
    ratio = median(ratios)
    slow_ratios = [c.rate / r.rate for c, r in zip(slow["cli"], slow["raw"], strict=True)]
    cpu_ratios = [c.cpu_ms / r.cpu_ms for c, r in zip(figures["cli"], figures["raw"], strict=True)]
    return [
        Result(
            number=10,
            title=f"CLI `import --group --course --invite`, {n:,}-row CSV, journal on disk",
            sdk=f"{cli:,.0f} rows/s (CLI, journal fsynced)",
            baseline=f"{raw:,.0f} rows/s (raw aiohttp, same 4 calls per row)",
            ratio=f"{ratio:.2f}x",
            measured=ratio,
            bar=at_least(0.7),
            goal=at_least(0.9),
            notes=(
                f"{runs} interleaved rounds, {CONCURRENCY} in flight on both sides, each side "
                f"a fresh process timed start to exit; the ratio is the median of the rounds' "
                f"CLI/raw ratios (range {spread(ratios, '{:.2f}')}; ratio of the median rates "
                f"{cli / raw:.2f}x); rows/s ranges: CLI {spread(rates['cli'])}, "
                f"raw {spread(rates['raw'])}",
                f"client CPU per row (user + system, start-up included): CLI "
                f"{median(cpu['cli']):.2f} ms ({spread(cpu['cli'], '{:.2f}')}), raw "
                f"{median(cpu['raw']):.2f} ms ({spread(cpu['raw'], '{:.2f}')}); CLI/raw "
                f"{median(cpu_ratios):.2f}x (per-round {spread(cpu_ratios, '{:.2f}')})",
                _machine_load(figures),
                f"at {LATENCY * 1000:.0f} ms per request ({latency_rows:,} rows, "
                f"{latency_runs} rounds): CLI {cli_lat:,.0f} rows/s, raw {raw_lat:,.0f}; "
                f"{median(slow_ratios):.2f}x (per-round {spread(slow_ratios, '{:.2f}')}; "
                "bar 0.95x, goal 1.00x)",
                f"journal per row: {commits:.3f} commits, {statements:.1f} statements "
                "(sqlite3 trace callback, in-process import of the same shape)",
            ),
        )
    ]

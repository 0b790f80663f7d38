"""``coursepath-async demo``: the main job end to end against an embedded sandbox academy.

Generates a realistic CSV (thousands of people, a few bad rows), imports it with
progress while the sandbox injects mild faults, lets some learners finish courses,
exports members and results, and prints what happened, including the checks that
matter: every bad row reported, no token reused, no invitation sent twice.
"""

from __future__ import annotations

import asyncio
import tempfile
import time
from pathlib import Path

from ._client import CoursepathClient
from ._progress import Progress
from ._retry import RetryPolicy
from .bulk import (
    CsvRows,
    ImportOptions,
    ImportReport,
    PlanOptions,
    export_members,
    export_results,
    import_members,
    open_journal,
)
from .testing import Faults, SandboxAcademy
from .testing._people import PeopleFile, write_people_csv


def demo_folder(directory: Path | None) -> Path:
    """Where the demo writes its files: the given folder (created) or a new temp dir."""
    folder = Path(directory or tempfile.mkdtemp(prefix="coursepath-demo-"))
    folder.mkdir(parents=True, exist_ok=True)
    return folder


async def run_demo(*, rows: int, folder: Path, seed: int, stop: asyncio.Event) -> int:
    """Run the demo; 0 when the import behaved exactly as it should under the faults."""
    faults = Faults(
        seed=seed,
        latency=0.002,
        latency_jitter=0.004,
        error_rate=0.02,
        rate_limit_rate=0.002,
        rate_limit_burst=3,
        retry_after=0.2,
        reset_rate=0.003,
        applied_then_fail_rate=0.01,
    )
    async with SandboxAcademy(
        members=120, courses=6, programs=2, groups=5, seed=seed, faults=faults, max_log=1000
    ) as academy:
        existing = [m.email for m in list(academy.state.members())[1:40]]
        course_ids = [c.id for c in academy.state.courses()]
        people = write_people_csv(
            folder / "people.csv",
            rows=rows,
            seed=seed,
            existing_emails=existing,
            course_ids=course_ids[:3],
        )
        print(f"sandbox academy at {academy.url}: {academy.state.member_count} members")
        print(
            "injected faults: 2% 5xx pages, 1% writes applied then 502, 0.3% connection "
            "resets, 429 bursts with Retry-After, 2-6 ms latency"
        )
        print(f"generated {people.path} ({people.rows:,} rows, {len(people.bad_lines)} bad)\n")
        async with CoursepathClient(
            academy.url,
            api_key=academy.api_key,
            user=academy.admin_email,
            allow_http=True,
            max_concurrency=32,
            retry=RetryPolicy(max_attempts=6, base_delay=0.05, max_delay=1.0),
        ) as client:
            started = time.perf_counter()
            report = await _import(client, people, folder, stop)
            elapsed = time.perf_counter() - started
            print(
                f"imported {people.rows:,} rows in {elapsed:.1f}s "
                f"({people.rows / elapsed:,.0f} rows/s, sandbox in the same process)"
            )
            if stop.is_set():
                print(report.summary(limit=5))
                return 1
            completed = academy.complete_random(0.4, seed=seed)
            print(f"\n{len(completed):,} learners completed a course meanwhile; exporting...")
            members = await export_members(
                client, folder / "members.csv", format="csv", overwrite=True
            )
            results = await export_results(
                client, folder / "results.csv", format="csv", overwrite=True
            )
        print(f"  {members.records:,} members -> {members.path}")
        print(f"  {results.records:,} course results -> {results.path}\n")
        print(report.summary(limit=5))
        return _verdict(academy, people, report)


async def _import(
    client: CoursepathClient, people: PeopleFile, folder: Path, stop: asyncio.Event
) -> ImportReport:
    rows = CsvRows(people.path)
    plan = PlanOptions(groups=("Onboarding 2026",), invite="new")
    journal_path = folder / "people.journal.sqlite"
    # Each demo runs against a brand-new sandbox: a journal left by an earlier demo in
    # the same --dir describes another academy and must not be resumed.
    for stale in (journal_path, *(Path(f"{journal_path}{end}") for end in ("-wal", "-shm"))):
        stale.unlink(missing_ok=True)
    with (
        rows,
        open_journal(str(journal_path), rows, kind="import", options=plan) as journal,
        Progress("import", total=people.rows) as progress,
    ):
        report = await import_members(
            client,
            rows,
            journal=journal,
            options=ImportOptions(plan=plan),
            stop=stop,
            on_row=lambda row: progress.advance(ok=row.ok),
        )
    (folder / "people.report.json").write_bytes(report.to_json())
    return report


def _verdict(academy: SandboxAcademy, people: PeopleFile, report: ImportReport) -> int:
    """Print the checks that matter and turn them into the exit code."""
    recorder = academy.recorder
    invalid = {row.line for row in report.rows if row.outcome == "skipped_invalid"}
    missed = sorted(set(people.bad_lines) - invalid)
    failed = [row for row in report.rows if row.outcome == "failed"]
    twice = sum(1 for count in recorder.invitations.values() if count > 1)
    faults = ", ".join(f"{name} {count}" for name, count in sorted(recorder.fault_counts.items()))
    checks = [
        (f"every row accounted for ({report.accounted_for:,}/{people.rows:,})", report.consistent),
        (f"all {len(people.bad_lines)} planted bad rows reported with line and reason", not missed),
        (f"no valid row failed ({len(failed)} failed)", not failed),
        (f"no invitation sent twice ({twice} members got two)", twice == 0),
        (f"no token reused ({len(recorder.duplicate_jtis)} reused)", not recorder.duplicate_jtis),
    ]
    print(f"\nsandbox saw {recorder.total:,} requests, peak {recorder.peak_in_flight} in flight")
    print(f"faults injected: {faults or 'none'}")
    for text, ok in checks:
        print(f"  [{'ok' if ok else 'FAIL'}] {text}")
    print(
        "\nuncertain invitations are never re-sent automatically: re-run with "
        "--resend-uncertain to send them deliberately; withheld ones (this run could not "
        "tell it created the member) wait for --release-withheld."
    )
    return 0 if all(ok for _, ok in checks) else 1

"""The runner around an import or sync: preflight, journal, progress, report file and summary."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO, Protocol

from attrs import asdict, frozen

from ._cli_support import EXIT_ROWS_FAILED, EXIT_USAGE, log
from ._progress import Progress, count_data_lines, governor_line
from ._redact import REDACT

#: How the preflight names where an id came from: the CLI's flags.
CLI_SOURCES = {"courses": "--course"}

if TYPE_CHECKING:  # the bulk jobs are imported when a command runs, not at start-up
    from ._client import CoursepathClient
    from ._scheduler import SchedulerStats
    from .bulk import (
        CsvRows,
        ImportReport,
        JobKind,
        Journal,
        PlanOptions,
        PreflightError,
        RemovalsRefusedError,
        RowPlan,
        RowReport,
    )


class _RowJob(Protocol):
    """An import or sync run, given its journal (None on a dry run) and callbacks."""

    def __call__(
        self,
        journal: Journal | None,
        on_row: Callable[[RowReport], None],
        on_plan: Callable[[RowPlan], None],
    ) -> Awaitable[ImportReport]: ...


async def run_row_job(
    args: argparse.Namespace,
    rows: CsvRows,
    kind: JobKind,
    plan: PlanOptions,
    client: CoursepathClient,
    run: _RowJob,
) -> int:
    """Preflight, journal, progress, report file and summary around an import or sync run.

    The preflight runs first: an unreachable academy, a refused key, a non-admin or an
    unknown course exits 2 with nothing written, no journal opened and the previous
    report kept. Otherwise the old report is removed before the run, so a run that
    fails later leaves no report that looks current; a sync refusing its removals
    exits 2 too, before any write to the academy. A dry run opens no journal and
    writes no report: its plan goes to stdout, or to ``--plan-out`` as JSON. A sync
    whose run reached every row marks its journal finished: the next sync re-plans
    every row against the academy, keeping only the invitation history. A report that
    cannot be written after the run exits 1 (the academy may have changed), with the
    summary still printed. The progress line, and a closing line on stderr, show the
    rate governor once the academy has limited us.
    """
    from .bulk import PreflightError, RemovalsRefusedError, preflight

    job = _RowJobRun(args, rows, kind, plan, _Outputs.from_args(args), client.scheduler_stats)
    try:
        await preflight(client, rows, options=plan, sources=CLI_SOURCES)
        report = await job.execute(run)
    except (PreflightError, RemovalsRefusedError) as exc:
        print(f"coursepath-async: {_refusal(exc)}", file=sys.stderr)
        return EXIT_USAGE
    return job.finish_dry_run(report) if args.dry_run else job.finish(report)


@frozen
class _Outputs:
    """Where an import or sync writes: its report and journal, and a dry run's plan file."""

    report: Path
    journal: Path
    plan: Path | None

    @classmethod
    def from_args(cls, args: argparse.Namespace) -> _Outputs:
        """The flags' files; the one this run writes is checked before any request."""
        report = _report_path(args)
        plan: Path | None = args.plan_out
        if plan is not None and not args.dry_run:
            raise ValueError("--plan-out writes a dry run's plan: add --dry-run")
        written = plan if args.dry_run else report
        if written is not None:
            _check_writable(written)  # still before any request: the client opens lazily
        journal = args.journal or Path(f"{args.file}.journal.sqlite")
        return cls(report=report, journal=journal, plan=plan)


@frozen
class _RowJobRun:
    """One import or sync as the CLI runs it: its flags, rows, options and output files."""

    args: argparse.Namespace
    rows: CsvRows
    kind: JobKind
    plan: PlanOptions
    outputs: _Outputs
    stats: Callable[[], SchedulerStats]

    async def execute(self, run: _RowJob) -> ImportReport:
        """The run under a progress line: in its journal, or without one on a dry run."""
        title = f"{self.kind} {self.args.file.name}"
        total = count_data_lines(str(self.args.file))
        with Progress(title, total=total, stats=self.stats) as progress:
            on_row = lambda row: progress.advance(ok=row.ok)  # noqa: E731
            if self.args.dry_run:
                report = await run(None, on_row, self._show_plan)
            else:
                report = await self._journaled(run, on_row)
            if not report.totals.interrupted:
                progress.finish()  # the line count was an estimate; every row is done
        return report

    async def _journaled(self, run: _RowJob, on_row: Callable[[RowReport], None]) -> ImportReport:
        """A real run in its journal; the old report goes first, so none looks current."""
        from .bulk import open_journal

        with open_journal(
            str(self.outputs.journal),
            self.rows,
            kind=self.kind,
            options=self.plan,
            allow_changed_input=self.args.allow_changed_input,
        ) as journal:
            self.outputs.report.unlink(missing_ok=True)
            report = await run(journal, on_row, self._show_plan)
            if self.kind == "sync" and not report.totals.interrupted:
                journal.finish_run()
        return report

    def _show_plan(self, row_plan: RowPlan) -> None:
        """A dry run's plan, line by line on stdout, unless it goes to ``--plan-out``."""
        if self.args.dry_run and self.outputs.plan is None:
            for line in row_plan.describe():
                print(_would(line))

    def finish_dry_run(self, report: ImportReport) -> int:
        """A dry run's summary, and its plan written to ``--plan-out`` if given."""
        plan_out = self.outputs.plan
        if plan_out is not None:
            _write_atomically(plan_out, report.write_json)
        print(report.summary())
        print(
            "dry run: nothing was written (no journal; the last report is kept)"
            + ("" if plan_out is None else f"   plan: {plan_out}")
        )
        return int(report.exit_code)

    def finish(self, report: ImportReport) -> int:
        """A real run's summary record, report file and closing lines."""
        report_path = self.outputs.report
        _log_summary(report, self.kind, report_path)
        try:
            _write_atomically(report_path, report.write_json)
        except OSError as exc:
            print(report.summary())
            print(f"coursepath-async: failed: cannot write the report: {exc}", file=sys.stderr)
            return EXIT_ROWS_FAILED
        print(report.summary())
        print(f"report: {report_path}   journal: {self.outputs.journal}")
        limits = governor_line(self.stats())
        if limits is not None:
            print(f"rate limit: {limits}", file=sys.stderr)
        return int(report.exit_code)


def _log_summary(report: ImportReport, kind: JobKind, report_path: Path) -> None:
    """The job's outcome as one log record (one JSON line with ``--log-format json``)."""
    totals = report.totals
    log.info(
        "%s finished: %d rows, %d succeeded, %d failed",
        kind,
        totals.rows,
        totals.succeeded,
        totals.failed,
        extra={
            "event": "job_summary",
            "kind": kind,
            "source": report.source,
            "dry_run": report.dry_run,
            "consistent": report.consistent,
            "exit_code": int(report.exit_code),
            "totals": asdict(totals),
            "report": str(report_path),
        },
    )


def _refusal(exc: PreflightError | RemovalsRefusedError) -> str:
    """What the CLI prints for a job refused before its first write, flags named."""
    from .bulk import PreflightError

    if isinstance(exc, PreflightError):
        problems = "\n  ".join(REDACT(problem) for problem in exc.problems)
        return f"refused before any write (nothing was changed):\n  {problems}"
    if exc.limit is None:
        head = f"{exc.planned:,} planned removals were not confirmed"
    else:
        head = (
            f"the plan removes {exc.planned:,} group memberships and enrolments, more than "
            f"--max-removals {exc.limit:,}; raise it if that is intended"
        )
    sample = "".join(f"\n  {line}" for line in exc.sample)
    return f"refused before any write to the academy: {head}; first:{sample}"


def _report_path(args: argparse.Namespace) -> Path:
    """Where the JSON report goes: ``--report``, else next to the input file."""
    report: Path | None = args.report
    return report or Path(f"{args.file}.report.json")


def _would(line: str) -> str:
    """A plan line as a dry run says it: ``line 2 a@x (member 7): would enrol in course 3``."""
    who, _, step = line.partition(": ")
    flag, destructive, rest = step.partition("DESTRUCTIVE: ")
    if destructive and not flag:
        return f"{who}: DESTRUCTIVE: would {rest}"
    return line if step.startswith("CONFLICT") else f"{who}: would {step}"


def _check_writable(path: Path) -> None:
    """Refuse (usage error, before connecting) an output file that could not be written."""
    if path.is_dir():
        raise ValueError(f"cannot write {path}: it is a directory")
    probe = path.with_name(f".{path.name}.tmp")
    try:
        probe.touch()
    except OSError as exc:
        raise ValueError(f"cannot write {path}: {exc.strerror or exc}") from None
    probe.unlink(missing_ok=True)


def _write_atomically(path: Path, write: Callable[[BinaryIO], None]) -> None:
    """Stream a file whole or not at all, so a crash never leaves a truncated report.

    Created readable by its owner only (0600), like the journal: a report lists emails.
    """
    temporary = path.with_name(f".{path.name}.tmp")
    temporary.unlink(missing_ok=True)  # a stale one may have wider permissions
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as out:
        write(out)
    os.replace(temporary, path)

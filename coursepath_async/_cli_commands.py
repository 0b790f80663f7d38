"""The CLI's subcommands: each parses its flags and drives one job from ``bulk`` or ``testing``."""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO, Protocol

from attrs import asdict

from ._cli import (
    EXIT_OK,
    EXIT_ROWS_FAILED,
    EXIT_USAGE,
    add_log_level,
    client_from_args,
    log,
    run_interruptible,
)
from ._config import parse_rate
from ._progress import Progress, count_data_lines, governor_line
from ._redact import REDACT

#: How the preflight names where an id came from: the CLI's flags.
CLI_SOURCES = {"courses": "--course"}

if TYPE_CHECKING:  # the bulk jobs are imported when a command runs, not at start-up
    from ._client import CoursepathClient
    from .bulk import (
        CsvRows,
        ImportReport,
        JobKind,
        Journal,
        Plan,
        PlanOptions,
        PreflightError,
        RemovalsRefusedError,
        RowPlan,
        RowReport,
    )

Subparsers = Any  # argparse's _SubParsersAction is private


class _RowJob(Protocol):
    """An import or sync run, given its journal (None on a dry run) and callbacks."""

    def __call__(
        self,
        journal: Journal | None,
        on_row: Callable[[RowReport], None],
        on_plan: Callable[[RowPlan], None],
    ) -> Awaitable[ImportReport]: ...


def add_commands(
    commands: Subparsers, connection: Callable[[argparse.ArgumentParser], None]
) -> None:
    """Register every subcommand on the top-level parser."""
    _add_import(commands, connection)
    _add_sync(commands, connection)
    _add_export(commands, connection)
    _add_sandbox(commands)
    _add_demo(commands)

    from ._webhooks._command import add_webhooks_command

    add_webhooks_command(commands, connection)

    from ._doctor._command import add_doctor_command

    add_doctor_command(commands, connection)


# -- import and sync ---------------------------------------------------------------------


def _row_job_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("file", type=Path, help="CSV of desired members (an `email` column)")
    parser.add_argument("--course", type=int, action="append", default=[], metavar="ID")
    parser.add_argument("--program", type=int, action="append", default=[], metavar="ID")
    parser.add_argument("--group", action="append", default=[], metavar="NAME")
    parser.add_argument(
        "--invite",
        nargs="?",
        const="new",
        default="none",
        choices=["none", "new", "all"],
        help="send invitations: to members this run creates (--invite) or to all rows",
    )
    parser.add_argument(
        "--resend-uncertain",
        action="store_true",
        help="re-send invitations an earlier run left uncertain (may email someone twice)",
    )
    parser.add_argument(
        "--release-withheld",
        action="store_true",
        help="send the invitations withheld because a run could not tell it created the member",
    )
    parser.add_argument(
        "--acknowledge-uncertain",
        action="store_true",
        help="settle uncertain and withheld invitations as they are: recorded in the "
        "journal, never sent, no longer exit 1",
    )
    parser.add_argument(
        "--journal",
        type=Path,
        help="default: FILE.journal.sqlite; a sync resumes it only if its last run was cut off",
    )
    parser.add_argument("--report", type=Path, help="default: FILE.report.json")
    parser.add_argument(
        "--dry-run",
        action="store_true",
        help="print what would be done; write nothing (no journal, the last report kept)",
    )
    parser.add_argument(
        "--plan-out",
        type=Path,
        metavar="FILE",
        help="with --dry-run: write the plan as a JSON report to FILE instead of stdout",
    )
    parser.add_argument("--delimiter", default=",", help="CSV delimiter (default: ,)")
    parser.add_argument(
        "--allow-changed-input",
        action="store_true",
        help="resume a journal although the file or options changed",
    )


def _add_import(
    commands: Subparsers, connection: Callable[[argparse.ArgumentParser], None]
) -> None:
    parser = commands.add_parser("import", help="create or update the members of a CSV file")
    _row_job_options(parser)
    connection(parser)
    parser.set_defaults(handler=_import)


def _add_sync(commands: Subparsers, connection: Callable[[argparse.ArgumentParser], None]) -> None:
    parser = commands.add_parser("sync", help="bring the academy to the state a CSV describes")
    _row_job_options(parser)
    parser.add_argument(
        "--remove-groups", action="store_true", help="DESTRUCTIVE: leave groups the file omits"
    )
    parser.add_argument(
        "--unenroll",
        action="store_true",
        help="DESTRUCTIVE: unenrol from courses the file omits (deletes learning results)",
    )
    parser.add_argument(
        "--max-removals",
        type=int,
        metavar="N",
        help="refuse (exit 2, before any write) a plan removing more than N group "
        "memberships and enrolments (default: 5%% of the file's rows, at least 10)",
    )
    parser.add_argument(
        "--yes",
        action="store_true",
        help="apply planned removals without asking (a terminal is asked otherwise)",
    )
    connection(parser)
    parser.set_defaults(handler=_sync)


def _plan_options(args: argparse.Namespace) -> PlanOptions:
    from .bulk import PlanOptions

    return PlanOptions(
        groups=tuple(args.group),
        courses=tuple(args.course),
        programs=tuple(args.program),
        invite=args.invite,
        remove_groups=getattr(args, "remove_groups", False),
        unenroll=getattr(args, "unenroll", False),
    )


def _import(args: argparse.Namespace) -> int:
    from .bulk import CsvRows, ImportOptions, import_members

    rows = CsvRows(args.file, delimiter=args.delimiter)
    options = ImportOptions(
        plan=_plan_options(args),
        resend_uncertain=args.resend_uncertain,
        release_withheld=args.release_withheld,
        acknowledge_uncertain=args.acknowledge_uncertain,
        dry_run=args.dry_run,
    )

    async def job(stop: asyncio.Event) -> int:
        async with client_from_args(args) as client:
            return await _run_row_job(
                args,
                rows,
                "import",
                options.plan,
                client,
                lambda journal, on_row, on_plan: import_members(
                    client,
                    rows,
                    journal=journal,
                    options=options,
                    stop=stop,
                    on_row=on_row,
                    on_plan=on_plan,
                    preflight=False,  # _run_row_job ran it, before opening the journal
                ),
            )

    with rows:
        return _run_rows_interruptible(args, job)


def _sync(args: argparse.Namespace) -> int:
    from .bulk import CsvRows, SyncOptions, sync_members

    rows = CsvRows(args.file, delimiter=args.delimiter)
    options = SyncOptions(
        plan=_plan_options(args),
        resend_uncertain=args.resend_uncertain,
        release_withheld=args.release_withheld,
        acknowledge_uncertain=args.acknowledge_uncertain,
        dry_run=args.dry_run,
    )

    async def job(stop: asyncio.Event) -> int:
        async with client_from_args(args) as client:

            async def run(
                journal: Journal | None,
                on_row: Callable[[RowReport], None],
                on_plan: Callable[[RowPlan], None],
            ) -> ImportReport:
                asks = sys.stdin.isatty() and not args.yes
                result = await sync_members(
                    client,
                    rows,
                    journal=journal,
                    options=options,
                    stop=stop,
                    on_row=on_row,
                    on_plan=on_plan,
                    preflight=False,  # _run_row_job ran it, before opening the journal
                    max_removals=args.max_removals,
                    confirm_removals=_ask_to_remove if asks else None,
                )
                if args.dry_run:
                    _print_dry_plan(result.plan, args.max_removals, rows.stats.rows)
                return result.report

            return await _run_row_job(args, rows, "sync", options.plan, client, run)

    with rows:
        return _run_rows_interruptible(args, job)


def _run_rows_interruptible(
    args: argparse.Namespace, job: Callable[[asyncio.Event], Awaitable[int]]
) -> int:
    """Run an import or sync; what Ctrl-C says fits it: a dry run has no journal to resume."""
    if not args.dry_run:
        return run_interruptible(job)  # the defaults: journal and report, re-run to resume
    return run_interruptible(
        job,
        stopping="stopping: finishing the rows in flight, then showing what was planned "
        "(Ctrl-C again to abort at once)",
        aborted="aborted: the dry run stopped; it changed nothing",
    )


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


def _ask_to_remove(plan: Plan) -> bool:
    """Show a plan's removals on the terminal and ask whether to apply them."""
    from .bulk import removal_sample

    counts = plan.counts
    print(
        f"this sync will remove {counts.destructive:,}: unenrol {counts.course_unenrolments:,}"
        f" (deletes learning results) and leave groups {counts.group_removals:,}; first:",
        file=sys.stderr,
    )
    for line in removal_sample(plan):
        print(f"  {line}", file=sys.stderr)
    print("apply these removals? [y/N] ", end="", file=sys.stderr, flush=True)
    return sys.stdin.readline().strip().lower() in ("y", "yes")


def _print_dry_plan(plan: Plan, max_removals: int | None, rows: int) -> None:
    """The dry run's plan summary, and whether a real run would refuse its removals."""
    from .bulk import removal_limit

    print(plan.describe()[-1])
    limit = removal_limit(rows) if max_removals is None else max_removals
    if plan.counts.destructive > limit:
        print(
            f"a real run would refuse: {plan.counts.destructive:,} removals planned, "
            f"more than --max-removals {limit:,}"
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


async def _run_row_job(
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
    from .bulk import PreflightError, RemovalsRefusedError, open_journal, preflight

    stats = client.scheduler_stats
    report_path = _report_path(args)
    plan_out: Path | None = args.plan_out
    if plan_out is not None and not args.dry_run:
        raise ValueError("--plan-out writes a dry run's plan: add --dry-run")
    written = plan_out if args.dry_run else report_path
    if written is not None:
        _check_writable(written)  # still before any request: the client opens lazily
    journal_path = args.journal or Path(f"{args.file}.journal.sqlite")

    def show_plan(row_plan: RowPlan) -> None:
        if args.dry_run and plan_out is None:
            for line in row_plan.describe():
                print(_would(line))

    try:
        await preflight(client, rows, options=plan, sources=CLI_SOURCES)
        with Progress(
            f"{kind} {args.file.name}", total=count_data_lines(str(args.file))
        ) as progress:
            on_row = lambda row: progress.advance(ok=row.ok, stats=stats())  # noqa: E731
            if args.dry_run:
                report = await run(None, on_row, show_plan)
            else:
                with open_journal(
                    str(journal_path),
                    rows,
                    kind=kind,
                    options=plan,
                    allow_changed_input=args.allow_changed_input,
                ) as journal:
                    report_path.unlink(missing_ok=True)
                    report = await run(journal, on_row, show_plan)
                    if kind == "sync" and not report.totals.interrupted:
                        journal.finish_run()
            if not report.totals.interrupted:
                progress.finish()  # the line count was an estimate; every row is done
    except (PreflightError, RemovalsRefusedError) as exc:
        print(f"coursepath-async: {_refusal(exc)}", file=sys.stderr)
        return EXIT_USAGE
    if args.dry_run:
        if plan_out is not None:
            _write_atomically(plan_out, report.write_json)
        print(report.summary())
        print(
            "dry run: nothing was written (no journal; the last report is kept)"
            + ("" if plan_out is None else f"   plan: {plan_out}")
        )
        return int(report.exit_code)
    _log_summary(report, kind, report_path)
    try:
        _write_atomically(report_path, report.write_json)
    except OSError as exc:
        print(report.summary())
        print(f"coursepath-async: failed: cannot write the report: {exc}", file=sys.stderr)
        return EXIT_ROWS_FAILED
    print(report.summary())
    print(f"report: {report_path}   journal: {journal_path}")
    limits = governor_line(stats())
    if limits is not None:
        print(f"rate limit: {limits}", file=sys.stderr)
    return int(report.exit_code)


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


# -- export ------------------------------------------------------------------------------


def _add_export(
    commands: Subparsers, connection: Callable[[argparse.ArgumentParser], None]
) -> None:
    parser = commands.add_parser("export", help="stream members or course results to a file")
    parser.add_argument("what", choices=["members", "results"])
    parser.add_argument(
        "--format",
        choices=["csv", "jsonl", "sqlite"],
        help="default: from --out's extension (.csv, .jsonl/.ndjson, .sqlite/.sqlite3/.db), "
        "else csv",
    )
    parser.add_argument("--out", type=Path, required=True, help="output file")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing file")
    parser.add_argument(
        "--no-formula-guard",
        dest="formula_guard",
        action="store_false",
        help="CSV only: write cells starting with = + - @ as they are (no leading ')",
    )
    parser.add_argument(
        "--course", type=int, action="append", default=[], metavar="ID", help="results only"
    )
    parser.add_argument("--completed-only", action="store_true", help="results only")
    connection(parser)
    parser.set_defaults(handler=_export)


def _export(args: argparse.Namespace) -> int:
    from .bulk import export_members, export_results

    if args.what == "members" and (args.course or args.completed_only):
        raise ValueError("--course and --completed-only apply to 'export results' only")
    args.format = export_format(args.format, args.out)

    async def job(stop: asyncio.Event) -> int:
        async with client_from_args(args) as client:
            with Progress(f"export {args.what}", total=None, unit="record") as progress:
                if args.what == "members":
                    stats = await export_members(
                        client,
                        args.out,
                        format=args.format,
                        overwrite=args.overwrite,
                        formula_guard=args.formula_guard,
                        on_record=lambda _: progress.advance(),
                    )
                else:
                    stats = await export_results(
                        client,
                        args.out,
                        format=args.format,
                        course_ids=tuple(args.course) or None,
                        completed_only=args.completed_only,
                        overwrite=args.overwrite,
                        formula_guard=args.formula_guard,
                        on_record=lambda _: progress.advance(),
                    )
        print(f"exported {stats.records:,} {args.what} to {stats.path} in {stats.seconds:.1f}s")
        if stats.skipped:
            print(
                f"skipped {stats.skipped:,} results: the learner left the course (404) "
                "between the listing and the result"
            )
        return EXIT_OK

    try:
        return run_interruptible(
            job, drain=False, aborted="aborted: the export was cancelled; no partial file is left"
        )
    except FileExistsError as exc:  # the library names its own argument, not the flag
        raise FileExistsError(str(exc).replace("overwrite=True", "--overwrite")) from None


_EXTENSIONS = {
    ".csv": "csv",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".sqlite": "sqlite",
    ".sqlite3": "sqlite",
    ".db": "sqlite",
}


def export_format(given: str | None, out: Path) -> str:
    """``--format``, else what ``--out``'s extension says, else csv; a mismatch is refused."""
    implied = _EXTENSIONS.get(out.suffix.lower())
    if given is None:
        return implied or "csv"
    if implied is not None and implied != given:
        raise ValueError(
            f"--format {given} does not match --out {out} (a {implied} file name); "
            "drop --format or change the extension"
        )
    return given


# -- sandbox and demo --------------------------------------------------------------------


def _add_sandbox(commands: Subparsers) -> None:
    parser = commands.add_parser("sandbox", help="serve a local sandbox academy until Ctrl-C")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8470)
    parser.add_argument("--members", type=int, default=200)
    parser.add_argument("--courses", type=int, default=8)
    parser.add_argument("--programs", type=int, default=3)
    parser.add_argument("--groups", type=int, default=6)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--api-key", help="the sandbox's key (default: random, printed)")
    parser.add_argument("--latency", type=float, default=0.0, help="seconds per request")
    parser.add_argument("--latency-jitter", type=float, default=0.0)
    parser.add_argument("--error-rate", type=float, default=0.0, help="5xx probability")
    parser.add_argument("--rate-limit-rate", type=float, default=0.0, help="429 burst probability")
    parser.add_argument("--reset-rate", type=float, default=0.0)
    parser.add_argument("--applied-then-fail-rate", type=float, default=0.0)
    parser.add_argument("--max-log", type=int, default=10_000, help="requests kept in the log")
    parser.add_argument(
        "--webhook-url",
        metavar="URL",
        help="POST a Coursepath webhook there on each enrolment created, completed or deleted",
    )
    add_log_level(parser)
    limiter = parser.add_argument_group("rate limiting (a gateway in front of the academy)")
    limiter.add_argument("--rate-limit", metavar="N/s", help="admit N requests a second")
    limiter.add_argument(
        "--rate-limit-style",
        choices=["429", "429-date", "503-retry-after"],
        default="429",
        help="how a request over the limit is refused (default: 429, no Retry-After)",
    )
    limiter.add_argument(
        "--rate-limit-burst", type=float, help="bucket size (default: one second's worth)"
    )
    limiter.add_argument(
        "--clock-offset",
        type=float,
        metavar="SECONDS",
        help=(
            "run the academy's clock (Date headers, dated Retry-After, token checks) this "
            "far ahead (overrides a --dialect's)"
        ),
    )
    dialect = parser.add_argument(
        "--dialect",
        metavar="NAME[,NAME...]",
        help=(
            "answer the API's open points as another academy might, one preset or several "
            "combined: %(names)s"
        ),
    )
    dialect.names = _DialectNames()  # read by argparse for %(names)s
    parser.set_defaults(handler=_sandbox)


class _DialectNames:
    """The dialect presets' names, read only when ``--help`` is printed.

    Importing the sandbox (aiohttp's server) for them would slow every command's start.
    """

    def __str__(self) -> str:
        from .testing import DIALECTS

        return ", ".join(DIALECTS)


def _sandbox(args: argparse.Namespace) -> int:
    from .testing import Dialect, Faults, SandboxAcademy

    dialect = Dialect.named(args.dialect or "default")  # an unknown name: usage error

    faults = Faults(
        seed=args.seed,
        latency=args.latency,
        latency_jitter=args.latency_jitter,
        error_rate=args.error_rate,
        rate_limit_rate=args.rate_limit_rate,
        retry_after=0.5,
        reset_rate=args.reset_rate,
        applied_then_fail_rate=args.applied_then_fail_rate,
    )

    rate_limit = (
        None if args.rate_limit is None else parse_rate(args.rate_limit, name="--rate-limit")
    )

    async def serve(stop: asyncio.Event) -> int:
        async with SandboxAcademy(
            members=args.members,
            courses=args.courses,
            programs=args.programs,
            groups=args.groups,
            seed=args.seed,
            api_key=args.api_key,
            host=args.host,
            port=args.port,
            faults=faults,
            max_log=args.max_log,
            record_jtis=False,
            rate_limit=rate_limit,
            rate_limit_style=args.rate_limit_style,
            rate_limit_burst=args.rate_limit_burst,
            clock_offset=args.clock_offset,
            dialect=dialect,
            webhook_url=args.webhook_url,
        ) as academy:
            print(f"sandbox academy at {academy.url} ({args.members} members); Ctrl-C stops it")
            if args.dialect:
                changes = ", ".join(f"{k}={v!r}" for k, v in academy.dialect.changes().items())
                print(f"  dialect {args.dialect}: {changes or 'the default'}")
            if rate_limit is not None:
                print(f"  rate limited to {rate_limit:g} requests/s ({args.rate_limit_style})")
            if args.webhook_url is not None:
                print(f"  webhooks to {args.webhook_url}")
            print(f"  export COURSEPATH_URL={academy.url}")
            if args.api_key is None:
                # A throwaway key the sandbox made up, printed so clients can use it; a
                # key the caller chose is theirs already and is never echoed.
                print(f"  export COURSEPATH_API_KEY={academy.api_key}")
            else:
                print("  export COURSEPATH_API_KEY=...  (the key given with --api-key)")
            print(f"  export COURSEPATH_USER={academy.admin_email}")
            print("  export COURSEPATH_ALLOW_HTTP=1", flush=True)
            await stop.wait()
            print(f"served {academy.recorder.total:,} requests", file=sys.stderr)
        return EXIT_OK

    return run_interruptible(
        serve,
        stopping="stopping the sandbox academy (Ctrl-C again to abort at once)",
        aborted="aborted: the sandbox stopped",
    )


def _add_demo(commands: Subparsers) -> None:
    parser = commands.add_parser(
        "demo", help="import and export against an embedded sandbox, with faults"
    )
    parser.add_argument("--rows", type=int, default=3000, help="people in the generated CSV")
    parser.add_argument("--dir", type=Path, help="where to write files (default: a temp dir)")
    parser.add_argument("--seed", type=int, default=2026)
    add_log_level(parser)
    parser.set_defaults(handler=_demo)


def _demo(args: argparse.Namespace) -> int:
    from ._demo import demo_folder, run_demo

    if args.rows < 10:
        print("coursepath-async: error: --rows must be at least 10", file=sys.stderr)
        return EXIT_USAGE
    folder = demo_folder(args.dir)
    return run_interruptible(
        lambda stop: run_demo(rows=args.rows, folder=folder, seed=args.seed, stop=stop),
        stopping="stopping the demo after the rows in flight (Ctrl-C again to abort at once)",
        aborted="aborted: the demo stopped; run it again to start over",
    )

"""``coursepath-async import`` and ``sync``: a CSV of desired members applied to the academy.

Both share their flags and the runner around the job (``_cli_rowjob``); the bulk jobs
are imported when a command runs, not at start-up.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

from ._cli_rowjob import run_row_job
from ._cli_support import Connection, Subparsers, client_from_args, run_interruptible

if TYPE_CHECKING:
    from .bulk import (
        ImportOptions,
        ImportReport,
        Journal,
        Plan,
        PlanOptions,
        RowPlan,
        RowReport,
        SyncOptions,
    )

_Options = TypeVar("_Options", "ImportOptions", "SyncOptions")


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


def add_import_command(commands: Subparsers, connection: Connection) -> None:
    """Register ``import`` on the top-level parser's subcommands."""
    parser = commands.add_parser("import", help="create or update the members of a CSV file")
    _row_job_options(parser)
    connection(parser)
    parser.set_defaults(handler=_import)


def add_sync_command(commands: Subparsers, connection: Connection) -> None:
    """Register ``sync`` on the top-level parser's subcommands."""
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


def _job_options(args: argparse.Namespace, options: type[_Options]) -> _Options:
    """The options every import and sync takes from its flags."""
    return options(
        plan=_plan_options(args),
        resend_uncertain=args.resend_uncertain,
        release_withheld=args.release_withheld,
        acknowledge_uncertain=args.acknowledge_uncertain,
        dry_run=args.dry_run,
    )


def _import(args: argparse.Namespace) -> int:
    from .bulk import CsvRows, ImportOptions, import_members

    rows = CsvRows(args.file, delimiter=args.delimiter)
    options = _job_options(args, ImportOptions)

    async def job(stop: asyncio.Event) -> int:
        async with client_from_args(args) as client:
            return await run_row_job(
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
                    preflight=False,  # run_row_job ran it, before opening the journal
                ),
            )

    with rows:
        return _run_rows_interruptible(args, job)


def _sync(args: argparse.Namespace) -> int:
    from .bulk import CsvRows, SyncOptions, sync_members

    rows = CsvRows(args.file, delimiter=args.delimiter)
    options = _job_options(args, SyncOptions)

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
                    preflight=False,  # run_row_job ran it, before opening the journal
                    max_removals=args.max_removals,
                    confirm_removals=_ask_to_remove if asks else None,
                )
                if args.dry_run:
                    _print_dry_plan(result.plan, args.max_removals, rows.stats.rows)
                return result.report

            return await run_row_job(args, rows, "sync", options.plan, client, run)

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

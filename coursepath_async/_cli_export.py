"""``coursepath-async export``: stream members or course results to a CSV, JSONL or SQLite file."""

from __future__ import annotations

import argparse
import asyncio
from pathlib import Path

from ._cli_support import (
    EXIT_OK,
    Connection,
    Subparsers,
    client_from_args,
    run_interruptible,
)
from ._progress import Progress


def add_export_command(commands: Subparsers, connection: Connection) -> None:
    """Register ``export`` on the top-level parser's subcommands."""
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
    from .bulk import export_members, export_results  # loaded when it runs, not at start-up

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

"""``coursepath-async doctor``: check the configured academy and say what the SDK will do."""

from __future__ import annotations

import argparse
import asyncio

import orjson

from .._cli_support import Connection, Subparsers, client_from_args, run_interruptible
from ._probe import examine
from ._render import render
from ._report import diagnose

__all__ = ["add_doctor_command"]

_DESCRIPTION = (
    "Check the configured academy without changing it: whether the API key works and as "
    "whom, the clock skew (from Date headers), each list endpoint's shape and page cap, "
    "which documented fields members and course results carry, the rate-limit headers, "
    "and what the SDK will therefore do. Exit 0: usable; 1: usable, with warnings; "
    "2: not usable (unreachable, tokens refused, a learner's email). --write-check makes "
    "ONE harmless write, an update of the acting member with its own current name, to "
    "learn whether the academy takes JSON or form bodies."
)


def add_doctor_command(commands: Subparsers, connection: Connection) -> None:
    """Register ``doctor`` on the top-level parser's subcommands."""
    parser = commands.add_parser(
        "doctor", help="check the configured academy (read-only)", description=_DESCRIPTION
    )
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument(
        "--write-check",
        action="store_true",
        help="update the acting member with its own name (JSON, then a form after a 415)",
    )
    connection(parser)
    parser.set_defaults(handler=_doctor)


def _doctor(args: argparse.Namespace) -> int:
    async def job(_: asyncio.Event) -> int:
        async with client_from_args(args) as client:
            core = client._core  # the doctor sends through the client's own pool and signer
            observed = await examine(core, client.user, write_check=args.write_check)
            report = diagnose(
                observed, academy=client.base_url, user=client.user, redact=core.redact
            )
        if args.json:
            print(orjson.dumps(report.as_json(), option=orjson.OPT_INDENT_2).decode())
        else:
            print(render(report))
        return report.exit_code

    return run_interruptible(job, drain=False, aborted="aborted: the check was cancelled")

"""``coursepath-async sandbox`` and ``demo``: a local sandbox academy, and a whole job on one.

The sandbox (aiohttp's server and the fake academy) is imported when one of these runs,
never at start-up, so the other commands start as fast as before.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from ._cli_support import (
    EXIT_OK,
    EXIT_USAGE,
    Subparsers,
    add_log_level,
    run_interruptible,
)
from ._config import parse_rate

if TYPE_CHECKING:
    from .testing import Dialect, Faults, SandboxAcademy


def add_sandbox_command(commands: Subparsers) -> None:
    """Register ``sandbox`` on the top-level parser's subcommands."""
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
        from .testing import DIALECTS  # see above: not at start-up

        return ", ".join(DIALECTS)


def _sandbox(args: argparse.Namespace) -> int:
    from .testing import Dialect  # the sandbox (aiohttp's server) loads only for this command

    dialect = Dialect.named(args.dialect or "default")  # an unknown name: usage error
    faults = _faults(args)
    rate_limit = (
        None if args.rate_limit is None else parse_rate(args.rate_limit, name="--rate-limit")
    )

    async def serve(stop: asyncio.Event) -> int:
        async with _academy(args, faults, dialect, rate_limit) as academy:
            _print_serving(args, academy, rate_limit)
            await stop.wait()
            print(f"served {academy.recorder.total:,} requests", file=sys.stderr)
        return EXIT_OK

    return run_interruptible(
        serve,
        stopping="stopping the sandbox academy (Ctrl-C again to abort at once)",
        aborted="aborted: the sandbox stopped",
    )


def _faults(args: argparse.Namespace) -> Faults:
    """The faults the sandbox injects, from the flags (a bad rate is refused here)."""
    from .testing import Faults

    return Faults(
        seed=args.seed,
        latency=args.latency,
        latency_jitter=args.latency_jitter,
        error_rate=args.error_rate,
        rate_limit_rate=args.rate_limit_rate,
        retry_after=0.5,
        reset_rate=args.reset_rate,
        applied_then_fail_rate=args.applied_then_fail_rate,
    )


def _academy(
    args: argparse.Namespace, faults: Faults, dialect: Dialect, rate_limit: float | None
) -> SandboxAcademy:
    """The sandbox academy the flags describe (not started yet)."""
    from .testing import SandboxAcademy

    return SandboxAcademy(
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
    )


def _print_serving(
    args: argparse.Namespace, academy: SandboxAcademy, rate_limit: float | None
) -> None:
    """Where the academy listens, how it behaves, and the variables that point clients at it."""
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


def add_demo_command(commands: Subparsers) -> None:
    """Register ``demo`` on the top-level parser's subcommands."""
    parser = commands.add_parser(
        "demo", help="import and export against an embedded sandbox, with faults"
    )
    parser.add_argument("--rows", type=int, default=3000, help="people in the generated CSV")
    parser.add_argument("--dir", type=Path, help="where to write files (default: a temp dir)")
    parser.add_argument("--seed", type=int, default=2026)
    add_log_level(parser)
    parser.set_defaults(handler=_demo)


def _demo(args: argparse.Namespace) -> int:
    from ._demo import demo_folder, run_demo  # it loads the sandbox: only for this command

    if args.rows < 10:
        print("coursepath-async: error: --rows must be at least 10", file=sys.stderr)
        return EXIT_USAGE
    folder = demo_folder(args.dir)
    return run_interruptible(
        lambda stop: run_demo(rows=args.rows, folder=folder, seed=args.seed, stop=stop),
        stopping="stopping the demo after the rows in flight (Ctrl-C again to abort at once)",
        aborted="aborted: the demo stopped; run it again to start over",
    )

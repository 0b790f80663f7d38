"""What the CLI commands share: exit codes, connection flags, the client they build, the runner.

Command modules import this; the entry (``_cli``) imports the commands; nothing imports
the entry, so the command line has no import cycle.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
import ssl
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from ._client import CoursepathClient
from ._config import (
    BODY_FORMATS,
    ENV_ALLOW_HTTP,
    ENV_API_KEY,
    ENV_BODY_FORMAT,
    ENV_MAX_RATE,
    BodyFormat,
    check_body_format,
    parse_rate,
)
from ._event_loop import run as run_on_chosen_loop
from ._exceptions import ConfigurationError

EXIT_OK, EXIT_ROWS_FAILED, EXIT_USAGE = 0, 1, 2

log = logging.getLogger("coursepath_async.cli")

Subparsers = Any  # argparse's _SubParsersAction is private
#: Adds the connection flags to a command's parser (``connection_options``).
Connection = Callable[[argparse.ArgumentParser], None]

_LOG_LEVELS = ("debug", "info", "warning", "error")


def add_log_level(
    parser: argparse.ArgumentParser, *, default: str | None = argparse.SUPPRESS
) -> None:
    """``--log-level``; on a subcommand it is suppressed unless given, so either place works."""
    parser.add_argument(
        "--log-level",
        default=default,
        choices=_LOG_LEVELS,
        help="default: warning (info with --log-format json)",
    )


def connection_options(parser: argparse.ArgumentParser) -> None:
    """The flags of every command that talks to an academy (read by ``client_from_args``)."""
    add_log_level(parser)
    group = parser.add_argument_group("connection")
    group.add_argument("--url", help="academy URL (default: $COURSEPATH_URL)")
    group.add_argument("--user", help="acting member's email (default: $COURSEPATH_USER)")
    group.add_argument(
        "--api-key-file",
        type=Path,
        help=f"file holding the API key (default: ${ENV_API_KEY})",
    )
    group.add_argument(
        "--allow-http",
        action="store_true",
        help=f"allow plain http:// (local sandbox only; or {ENV_ALLOW_HTTP}=1)",
    )
    group.add_argument("--ca-file", type=Path, help="PEM bundle of a private CA to trust")
    group.add_argument(
        "--proxy",
        metavar="URL",
        help="forward proxy, http://[user:password@]host:port "
        "(default: $COURSEPATH_PROXY, else $HTTPS_PROXY unless $NO_PROXY names the host)",
    )
    group.add_argument(
        "--concurrency", type=int, default=16, help="requests in flight (default: 16)"
    )
    group.add_argument(
        "--timeout", type=float, default=30.0, help="seconds per attempt (default: 30)"
    )
    group.add_argument(
        "--max-rate",
        metavar="N/s",
        help=(
            f"never send more than N requests a second (default: ${ENV_MAX_RATE}, else no cap;"
            " the rate a server allows is learnt from its 429s either way)"
        ),
    )
    group.add_argument(
        "--body-format",
        choices=BODY_FORMATS,
        help=(
            f"request bodies as JSON, form or auto: JSON until the academy answers 415, "
            f"then form (default: ${ENV_BODY_FORMAT}, else auto)"
        ),
    )


def client_from_args(args: argparse.Namespace) -> CoursepathClient:
    """Build the client from flags, falling back to the environment."""
    api_key = None
    if args.api_key_file is not None:
        try:
            api_key = args.api_key_file.read_text().strip()
        except OSError as exc:
            raise ConfigurationError(f"cannot read --api-key-file: {exc.strerror}") from None
        except UnicodeDecodeError:
            raise ConfigurationError(
                f"--api-key-file {args.api_key_file} is not UTF-8 text; copy the API key again"
            ) from None
        if not api_key:
            raise ConfigurationError(f"--api-key-file {args.api_key_file} is empty")
    context: ssl.SSLContext | bool = True
    if args.ca_file is not None:
        try:
            context = ssl.create_default_context(cafile=str(args.ca_file))
        except (OSError, ssl.SSLError) as exc:
            raise ConfigurationError(f"cannot load --ca-file {args.ca_file}: {exc}") from None
    return CoursepathClient(
        args.url,
        api_key=api_key,
        user=args.user,
        allow_http=True if args.allow_http else None,  # None: COURSEPATH_ALLOW_HTTP decides
        ssl=context,
        max_concurrency=args.concurrency,
        timeout=args.timeout,
        max_rate=_max_rate(args),
        body_format=_body_format(args),
        proxy=args.proxy or os.environ.get("COURSEPATH_PROXY") or None,
    )


def _max_rate(args: argparse.Namespace) -> float | None:
    """``--max-rate``, else ``COURSEPATH_MAX_RATE``, else no cap."""
    if args.max_rate is not None:
        return parse_rate(args.max_rate, name="--max-rate")
    raw = os.environ.get(ENV_MAX_RATE)
    return parse_rate(raw, name=ENV_MAX_RATE) if raw else None


def _body_format(args: argparse.Namespace) -> BodyFormat:
    """``--body-format``, else ``COURSEPATH_BODY_FORMAT``, else auto."""
    if args.body_format is not None:
        return check_body_format(args.body_format, name="--body-format")
    raw = os.environ.get(ENV_BODY_FORMAT)
    return check_body_format(raw.strip(), name=ENV_BODY_FORMAT) if raw else "auto"


_ABORTED_WITH_JOURNAL = "aborted: the journal keeps what finished; re-run to resume"
_STOPPING_WITH_JOURNAL = (
    "stopping: finishing the rows in flight, then writing the journal and report "
    "(Ctrl-C again to abort at once)"
)


def run_interruptible(
    job: Callable[[asyncio.Event], Awaitable[int]],
    *,
    drain: bool = True,
    stopping: str = _STOPPING_WITH_JOURNAL,
    aborted: str = _ABORTED_WITH_JOURNAL,
) -> int:
    """Run an async job; the first Ctrl-C drains (``stop`` is set), the second aborts.

    Jobs with nothing to drain (``drain=False``, e.g. an export, which never leaves a
    partial file) are cancelled by the first Ctrl-C. ``stopping`` is what the first
    Ctrl-C prints and ``aborted`` what an abort prints; the defaults suit the journaled
    import and sync only, so every other command passes its own.
    """

    async def runner() -> int:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        task = asyncio.current_task()
        presses = 0

        def interrupt() -> None:
            nonlocal presses
            presses += 1
            if presses == 1 and drain:
                stop.set()
                print(f"\n{stopping}", file=sys.stderr)
            elif task is not None:
                task.cancel()

        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, interrupt)
        try:
            return await job(stop)
        except asyncio.CancelledError:
            print(aborted, file=sys.stderr)
            return EXIT_ROWS_FAILED
        finally:
            for signum in (signal.SIGINT, signal.SIGTERM):
                loop.remove_signal_handler(signum)

    return run_on_chosen_loop(runner)

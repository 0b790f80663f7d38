"""The ``coursepath-async`` command: import, sync, export, a sandbox academy, and the demo.

Exit codes: 0 every row succeeded, 1 some rows failed or are uncertain (or the run
was interrupted, or its report could not be written afterwards), 2 usage or
configuration error (nothing was sent).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import re
import signal
import ssl
import sys
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path

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
from ._event_loop import choose_loop
from ._event_loop import run as run_on_chosen_loop
from ._exceptions import ConfigurationError, CoursepathError, InvalidInputError
from ._logformat import JsonFormatter
from ._redact import REDACT

EXIT_OK, EXIT_ROWS_FAILED, EXIT_USAGE = 0, 1, 2
ENV_LOG_FORMAT = "COURSEPATH_LOG_FORMAT"

log = logging.getLogger("coursepath_async.cli")


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; returns the process exit code."""
    parser = _parser()
    args = parser.parse_args(argv)
    try:
        _configure_logging(args)
        choose_loop()  # a bad COURSEPATH_LOOP is refused before any file is touched
        return int(args.handler(args))
    except (ConfigurationError, ValueError) as exc:
        # Bad setup or input: said clearly, before anything was sent.
        return _stopped("error", exc, EXIT_USAGE, message=in_cli_terms(exc, args))
    except OSError as exc:  # an output file that exists or cannot be written
        return _stopped("error", exc, EXIT_USAGE)
    except CoursepathError as exc:
        from .bulk import JournalError, JournalGoneError

        if isinstance(exc, JournalError) and not isinstance(exc, JournalGoneError):
            # Wrong or busy journal: refused before any call.
            return _stopped("error", exc, EXIT_USAGE)
        return _stopped("failed", exc, EXIT_ROWS_FAILED)
    except KeyboardInterrupt:
        print("coursepath-async: aborted", file=sys.stderr)
        return EXIT_ROWS_FAILED


def _configure_logging(args: argparse.Namespace) -> None:
    """Text lines by default; ``--log-format json`` (or ``$COURSEPATH_LOG_FORMAT``) for machines.

    JSON logs default to ``info``, so that the job summary record is among them.
    """
    log_format = args.log_format or os.environ.get(ENV_LOG_FORMAT) or "text"
    if log_format not in ("text", "json"):
        raise ConfigurationError(
            f"${ENV_LOG_FORMAT} must be 'text' or 'json', got {log_format[:40]!r}"
        )
    handler = logging.StreamHandler(sys.stderr)
    if log_format == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    level = args.log_level or ("info" if log_format == "json" else "warning")
    logging.basicConfig(level=getattr(logging, level.upper()), handlers=[handler])


def _stopped(what: str, exc: BaseException, code: int, *, message: str | None = None) -> int:
    """Print why the command stopped and return its exit code.

    The SDK's errors are redacted already; this is the last line before a terminal or a
    CI log, so anything token-shaped is blanked once more.
    """
    print(f"coursepath-async: {what}: {REDACT(message or str(exc))}", file=sys.stderr)
    return code


#: Library parameters whose flag has another name (the rest are ``--the-same-name``).
_RENAMED_FLAGS = {
    "base_url": "--url",
    "api_key": "--api-key-file",
    "max_concurrency": "--concurrency",
    "workers": "--concurrency",
    "secret": "--secret-env",
    "courses": "--course",
    "programs": "--program",
    "groups": "--group",
    "overwrite": "--overwrite",
}
#: Advice phrased for library callers ("pass allow_http=True"), in any message.
_KEYWORD_ADVICE = re.compile(r"(?<![\w-])(allow_http|overwrite)=True\b")


def in_cli_terms(exc: BaseException, args: argparse.Namespace) -> str:
    """An invalid-input message with the library's parameter names turned into flags.

    ``max_concurrency must be ...`` reads ``--concurrency must be ...`` on the command
    line, ``pass api_key or set ...`` reads ``pass --api-key-file or set ...``. Only the
    argument the error names is renamed, so other words of the message stay as they are.
    """
    text = _KEYWORD_ADVICE.sub(lambda m: "--" + m[1].replace("_", "-"), str(exc))
    name = exc.argument if isinstance(exc, InvalidInputError) else None
    flag = _flag_for(name, args) if name else None
    if name is None or flag is None:
        return text
    return re.sub(rf"(?<![\w-]){re.escape(name)}(?![\w-])", flag, text)


def _flag_for(name: str, args: argparse.Namespace) -> str | None:
    """The flag that sets the library's ``name`` in this command, if one does."""
    if hasattr(args, name):  # the flag has the parameter's name (dest), e.g. --timeout
        return "--" + name.replace("_", "-")
    return _RENAMED_FLAGS.get(name)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="coursepath-async",
        description="Bulk import, sync and export for Coursepath academies.",
        epilog=(
            "Connection settings come from flags or COURSEPATH_URL, COURSEPATH_API_KEY, "
            "COURSEPATH_USER, COURSEPATH_MAX_RATE, COURSEPATH_BODY_FORMAT and "
            "COURSEPATH_ALLOW_HTTP=1 (local sandbox "
            "only). The API key is never taken as a flag, so it stays out of shell history "
            "and process lists."
        ),
    )
    from . import __version__

    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    add_log_level(parser, default=None)
    parser.add_argument(
        "--log-format",
        choices=["text", "json"],
        help=f"json: one JSON object per line, redacted (default: ${ENV_LOG_FORMAT}, else text)",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    from ._cli_commands import add_commands  # the commands import the bulk jobs lazily

    add_commands(commands, _connection_options)
    return parser


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


def _connection_options(parser: argparse.ArgumentParser) -> None:
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

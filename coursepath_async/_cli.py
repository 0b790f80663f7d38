"""The ``coursepath-async`` command: import, sync, export, a sandbox academy, and the demo.

Exit codes: 0 every row succeeded, 1 some rows failed or are uncertain (or the run
was interrupted, or its report could not be written afterwards), 2 usage or
configuration error (nothing was sent).

This is the entry: it builds the parser from the commands (``_cli_commands``) and turns
what a command raises into a message and an exit code. Nothing imports it.
"""

from __future__ import annotations

import argparse
import logging
import os
import re
import sys
from collections.abc import Sequence

from . import __version__
from ._cli_commands import add_commands
from ._cli_support import EXIT_OK, EXIT_ROWS_FAILED, EXIT_USAGE, add_log_level
from ._event_loop import choose_loop
from ._exceptions import ConfigurationError, CoursepathError, InvalidInputError
from ._logformat import JsonFormatter
from ._redact import REDACT

__all__ = ["EXIT_OK", "EXIT_ROWS_FAILED", "EXIT_USAGE", "main"]  # the exit codes above

ENV_LOG_FORMAT = "COURSEPATH_LOG_FORMAT"


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
        from .bulk import JournalError, JournalGoneError  # loaded on failure, not at start-up

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
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    add_log_level(parser, default=None)
    parser.add_argument(
        "--log-format",
        choices=["text", "json"],
        help=f"json: one JSON object per line, redacted (default: ${ENV_LOG_FORMAT}, else text)",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    add_commands(commands)
    return parser

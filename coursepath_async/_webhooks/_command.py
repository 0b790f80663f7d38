"""``coursepath-async webhooks serve``: a ready receiver appending verified events to JSONL.

Each confirmed event becomes one JSON line, flushed at once, so a crash loses nothing
already confirmed and ``tail -f`` shows events live. Coursepath only posts to HTTPS
URLs: give ``--cert-file``/``--key-file`` or put a TLS proxy in front. Deliveries are
attempted once and unsigned, so run the nightly sync as well; it catches what this
receiver never saw (downtime, a full queue, a lost request).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import ssl
import sys
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import IO, TYPE_CHECKING, Self

import orjson

from .._cli_support import EXIT_OK, Connection, Subparsers, client_from_args, run_interruptible
from .._exceptions import ConfigurationError

if TYPE_CHECKING:  # aiohttp.web is loaded by ``webhooks serve`` alone, not by every command
    from aiohttp import web

    from ._receiver import WebhookReceiver
    from ._verify import VerifiedEvent

__all__ = ["add_webhooks_command", "event_record", "serve_webhooks"]

_DESCRIPTION = (
    "Receive Coursepath webhooks, confirm each through the API (the posts are unsigned, "
    "so the payload is never trusted) and append every confirmed event to --out as one "
    "JSON line. --concurrency sets the verifying workers (API calls in flight). "
    "Coursepath attempts each delivery once: keep the nightly sync running, "
    "it catches whatever this receiver never saw."
)


def add_webhooks_command(commands: Subparsers, connection: Connection) -> None:
    """Register ``webhooks serve`` on the top-level parser's subcommands."""
    parser = commands.add_parser("webhooks", help="receive and verify Coursepath webhooks")
    actions = parser.add_subparsers(dest="webhooks_action", required=True, metavar="ACTION")
    serve = actions.add_parser(
        "serve", help="serve a webhook receiver until Ctrl-C", description=_DESCRIPTION
    )
    serve.add_argument("--host", default="127.0.0.1", help="address to listen on")
    serve.add_argument("--port", type=int, default=8080, help="port to listen on (default: 8080)")
    serve.add_argument("--path", default="/webhooks", help="URL path (default: /webhooks)")
    serve.add_argument(
        "--secret-env",
        metavar="NAME",
        help="environment variable holding a secret path segment (URL: PATH/SECRET)",
    )
    serve.add_argument("--out", type=Path, required=True, help="JSON Lines file to append to")
    serve.add_argument(
        "--queue-size", type=int, default=100, help="events waiting at most (default: 100)"
    )
    serve.add_argument(
        "--max-connections",
        type=int,
        default=256,
        help="open connections at most; at the cap the oldest still sending its request head "
        "is closed to make room (default: 256)",
    )
    serve.add_argument(
        "--header-timeout",
        type=float,
        default=10.0,
        metavar="SECONDS",
        help="close a connection whose request head has not arrived by then (default: 10)",
    )
    serve.add_argument("--cert-file", type=Path, help="PEM certificate chain: serve HTTPS")
    serve.add_argument("--key-file", type=Path, help="PEM private key for --cert-file")
    connection(serve)  # its --concurrency is the number of verifying workers
    serve.set_defaults(handler=_serve)


def _serve(args: argparse.Namespace) -> int:
    return run_interruptible(
        lambda stop: serve_webhooks(args, stop),
        stopping="stopping: no new deliveries; finishing the events being verified "
        "(Ctrl-C again to abort at once)",
        aborted="aborted: events still being verified were not written; the nightly sync "
        "catches them",
    )


async def serve_webhooks(
    args: argparse.Namespace,
    stop: asyncio.Event,
    *,
    on_listening: Callable[[str, WebhookReceiver], None] | None = None,
) -> int:
    """Serve until ``stop`` is set, then drain.

    ``on_listening`` gets the URL to show (the secret replaced by its variable's name)
    and the receiver, once the port is bound; by default the URL is printed.
    """
    from aiohttp import web

    from ._receiver import WebhookReceiver

    # Every setting is checked before the client, the output file or the port is opened.
    if not 0 <= args.port <= 65535:
        raise ConfigurationError(f"--port must be between 0 and 65535, got {args.port}")
    secret = _secret_from_env(args.secret_env)
    tls = _tls_context(args.cert_file, args.key_file)
    async with client_from_args(args) as client:
        events = _EventLog(args.out)
        receiver = WebhookReceiver(  # checks path, secret and sizes before the file is touched
            client,
            events.append,
            path=args.path,
            secret=secret,
            workers=args.concurrency,
            queue_size=args.queue_size,
            max_connections=args.max_connections,
            header_timeout=args.header_timeout,
        )
        app = web.Application()
        receiver.attach(app)
        with events:
            runner = receiver.runner(app)  # no access log: it would print the secret
            await runner.setup()
            try:
                port = await _listen(receiver, runner, args.host, args.port, tls)
                shown = f"{args.path}/<${args.secret_env}>" if secret else args.path
                host = f"[{args.host}]" if ":" in args.host else args.host
                url = f"{'https' if tls else 'http'}://{host}:{port}{shown}"
                (on_listening or _print_listening)(url, receiver)
                await stop.wait()
            finally:
                await runner.cleanup()
    stats = receiver.stats()
    print(
        f"webhooks: received {stats.received}, verified {stats.verified}, "
        f"unconfirmed {stats.unconfirmed_total}, rejected {stats.rejected_total}, "
        f"duplicates {stats.duplicates}, "
        f"dropped {stats.dropped_queue_full + stats.dropped_shutdown}, "
        f"errors {stats.verify_errors + stats.callback_errors}",
        file=sys.stderr,
    )
    return EXIT_OK


def event_record(verified: VerifiedEvent) -> dict[str, object]:
    """The JSON line written for a verified event (result fields are null for DELETED)."""
    result = verified.result
    return {
        "event": verified.kind.value,
        "course_id": verified.course_id,
        "member_id": verified.member_id,
        "verified_at": _iso(verified.verified_at),
        "score": None if result is None else result.score,
        "success": None if result is None else result.success,
        "completed_date": None if result is None else _iso(result.completed_date),
        "certificate": None if result is None else result.certificate,
    }


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()


def _print_listening(url: str, _receiver: WebhookReceiver) -> None:
    print(f"receiving webhooks at {url}; Ctrl-C stops", flush=True)


def _secret_from_env(name: str | None) -> str | None:
    if name is None:
        return None
    secret = os.environ.get(name, "")
    if not secret:
        raise ConfigurationError(f"--secret-env: ${name} is not set or empty")
    return secret


def _tls_context(cert: Path | None, key: Path | None) -> ssl.SSLContext | None:
    if cert is None and key is None:
        return None
    if cert is None:
        raise ConfigurationError("--key-file needs --cert-file")
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    try:
        context.load_cert_chain(cert, key)
    except (OSError, ssl.SSLError) as exc:
        raise ConfigurationError(f"cannot load --cert-file/--key-file: {exc}") from None
    return context


class _EventLog:
    """Appends verified events to a JSON Lines file, one flushed line per event.

    The file is appended to, never truncated, and created readable by its owner only
    (it names learners and their scores).
    """

    def __init__(self, path: Path) -> None:
        self._path = path
        self._file: IO[bytes] | None = None

    def __enter__(self) -> Self:
        try:
            descriptor = os.open(self._path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        except OSError as exc:
            raise ConfigurationError(f"cannot open --out {self._path}: {exc.strerror}") from None
        self._file = os.fdopen(descriptor, "ab")
        return self

    def __exit__(self, *exc_info: object) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None

    async def append(self, verified: VerifiedEvent) -> None:
        """Write one event's line and flush it, so nothing confirmed sits in a buffer."""
        if self._file is None:
            raise RuntimeError(f"{self._path} is not open")
        self._file.write(orjson.dumps(event_record(verified)) + b"\n")
        self._file.flush()


async def _listen(
    receiver: WebhookReceiver,
    runner: web.AppRunner,
    host: str,
    port: int,
    tls: ssl.SSLContext | None,
) -> int:
    site = receiver.site(runner, host=host, port=port, ssl_context=tls)
    try:
        await site.start()
    except OSError as exc:
        raise ConfigurationError(f"cannot listen on {host}:{port}: {exc.strerror}") from None
    return int(runner.addresses[0][1])

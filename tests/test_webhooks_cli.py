"""``webhooks serve``: parsed flags in process, and the real CLI entry point in a subprocess."""

from __future__ import annotations

import argparse
import asyncio
import signal
import ssl
import stat
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import pytest
import trustme
from attrs import define
from cli_env import cli_env
from conftest import API_KEY, sandbox

from coursepath_async import ConfigurationError
from coursepath_async._cli_support import connection_options
from coursepath_async._webhooks._command import add_webhooks_command, serve_webhooks
from coursepath_async.testing import SandboxAcademy
from coursepath_async.webhooks import WebhookReceiver

SECRET = "cli-secret-segment-0123456789abcdef"
FORM = {"Content-Type": "application/x-www-form-urlencoded"}
WAIT = 10.0

# The real ``main()``, with the command registered the way the lead will register it.


@pytest.fixture
async def academy() -> AsyncIterator[SandboxAcademy]:
    async with sandbox(members=12, courses=3, seed=5) as a:
        yield a


def open_enrolments(academy: SandboxAcademy) -> list[tuple[int, int]]:
    """(course, member) enrolments without a result yet."""
    return [(e.course_id, e.member_id) for e in academy.state.enrolments() if e.completed is None]


def form(event: str, course: int, member: int) -> dict[str, str]:
    """A delivery as Coursepath sends it."""
    return {"courseId": str(course), "memberId": str(member), "event": f"COURSEMEMBER_{event}"}


def parse(academy: SandboxAcademy, tmp_path: Path, *extra: str) -> argparse.Namespace:
    """Parse ``webhooks serve`` flags with the CLI's own connection options."""
    parser = argparse.ArgumentParser(prog="coursepath-async")
    add_webhooks_command(parser.add_subparsers(dest="command", required=True), connection_options)
    key_file = tmp_path / "api-key"
    key_file.write_text(API_KEY)
    return parser.parse_args(
        [
            "webhooks",
            "serve",
            "--port",
            "0",
            "--url",
            academy.url,
            "--user",
            academy.admin_email,
            "--api-key-file",
            str(key_file),
            "--allow-http",
            *extra,
        ]
    )


def read_lines(path: Path) -> list[dict[str, object]]:
    """The JSON lines of ``path``."""
    return [orjson.loads(line) for line in path.read_bytes().splitlines()]


def never(url: str, receiver: WebhookReceiver) -> None:
    """An ``on_listening`` for commands that must fail before they listen."""
    raise AssertionError(f"listening at {url}")


@define
class Served:
    """A running ``serve_webhooks``: its displayed URL, its receiver, later its exit code."""

    url: str
    receiver: WebhookReceiver
    code: int | None = None


@asynccontextmanager
async def serving(args: argparse.Namespace) -> AsyncIterator[Served]:
    """Run the command until the block ends, then stop it (as Ctrl-C does) and await it."""
    stop = asyncio.Event()
    ready: asyncio.Future[Served] = asyncio.get_running_loop().create_future()
    task = asyncio.create_task(
        serve_webhooks(args, stop, on_listening=lambda u, r: ready.set_result(Served(u, r)))
    )
    async with asyncio.timeout(WAIT):
        first: list[asyncio.Future[Any]] = [task, ready]
        await asyncio.wait(first, return_when=asyncio.FIRST_COMPLETED)
    if not ready.done():
        await task  # raises what stopped it
    served = ready.result()
    try:
        yield served
    finally:
        stop.set()
        async with asyncio.timeout(WAIT):
            served.code = await task


async def test_serve_appends_verified_events_as_json_lines(
    academy: SandboxAcademy,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Genuine events land in --out as flushed JSON lines; forged, bad and repeated ones do not."""
    out = tmp_path / "events.jsonl"
    monkeypatch.setenv("HOOK_SECRET", SECRET)
    args = parse(
        academy, tmp_path, "--out", str(out), "--secret-env", "HOOK_SECRET", "--concurrency", "2"
    )
    (done_course, done_member), (open_course, open_member) = open_enrolments(academy)[:2]
    academy.complete_course(done_course, done_member, score=77.0, success=True)
    async with serving(args) as served, aiohttp.ClientSession(headers=FORM) as session:
        assert served.url.endswith("/webhooks/<$HOOK_SECRET>")
        url = served.url.replace("<$HOOK_SECRET>", SECRET)
        genuine = form("COMPLETED", done_course, done_member)
        async with session.post(url, data=genuine) as response:
            assert response.status == 202
        await served.receiver.join()
        [line] = read_lines(out)  # written and flushed while still serving
        for data, status in (
            (genuine, 200),
            (form("COMPLETED", open_course, open_member), 202),
            ({"courseId": "../1"}, 400),
        ):
            async with session.post(url, data=data) as response:
                assert response.status == status
        async with session.post(url.replace(SECRET, "nope" * 4), data=genuine) as response:
            assert response.status == 404
    assert served.code == 0
    assert read_lines(out) == [line]
    assert line.pop("verified_at")
    assert line.pop("completed_date")
    assert line == {
        "event": "COURSEMEMBER_COMPLETED",
        "course_id": done_course,
        "member_id": done_member,
        "score": 77.0,
        "success": True,
        "certificate": academy.state.certificate_url(done_course, done_member),
    }
    assert stat.S_IMODE(out.stat().st_mode) == 0o600
    assert academy.recorder.count("GET", "/courses/{c}/members/{m}/coursemember") == 2
    err = capsys.readouterr().err
    assert "received 5, verified 1, unconfirmed 1, rejected 2, duplicates 1" in err
    assert SECRET not in err


async def test_serve_appends_to_an_existing_file(academy: SandboxAcademy, tmp_path: Path) -> None:
    """--out is appended to, never truncated, so restarts keep earlier events."""
    out = tmp_path / "events.jsonl"
    out.write_bytes(b'{"earlier": true}\n')
    (course, member), *_ = open_enrolments(academy)
    args = parse(academy, tmp_path, "--out", str(out))
    async with (
        serving(args) as served,
        aiohttp.ClientSession(headers=FORM) as session,
        session.post(served.url, data=form("CREATED", course, member)) as response,
    ):
        assert response.status == 202
    assert served.code == 0
    first, second = read_lines(out)
    assert first == {"earlier": True}
    assert second["event"] == "COURSEMEMBER_CREATED"


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (("--secret-env", "UNSET_HOOK_SECRET"), "UNSET_HOOK_SECRET is not set"),
        (("--key-file", "key.pem"), "--key-file needs --cert-file"),
        (("--cert-file", "missing.pem"), "cannot load --cert-file"),
        (("--port", "70000"), "--port must be between 0 and 65535"),
        (("--path", "webhooks"), "path must look like"),
        (("--queue-size", "0"), "queue_size must be a positive integer"),
    ],
)
async def test_bad_setup_is_refused_before_listening(
    academy: SandboxAcademy,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    extra: tuple[str, ...],
    message: str,
) -> None:
    """Bad settings stop the command before it opens --out, listens or calls the API."""
    monkeypatch.delenv("UNSET_HOOK_SECRET", raising=False)
    args = parse(academy, tmp_path, "--out", str(tmp_path / "e.jsonl"), *extra)
    with pytest.raises((ConfigurationError, ValueError), match=message):
        await serve_webhooks(args, asyncio.Event(), on_listening=never)
    assert not (tmp_path / "e.jsonl").exists()
    assert academy.recorder.total == 0


async def test_unwritable_out_is_refused(academy: SandboxAcademy, tmp_path: Path) -> None:
    """An --out in a missing directory is a configuration error, said before serving."""
    args = parse(academy, tmp_path, "--out", str(tmp_path / "missing" / "e.jsonl"))
    with pytest.raises(ConfigurationError, match="cannot open --out"):
        await serve_webhooks(args, asyncio.Event(), on_listening=never)


async def test_serves_https_with_cert_files(academy: SandboxAcademy, tmp_path: Path) -> None:
    """--cert-file/--key-file serve HTTPS, which Coursepath requires of webhook URLs."""
    ca = trustme.CA()
    issued = ca.issue_cert("127.0.0.1")
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    issued.cert_chain_pems[0].write_to_path(str(cert))
    issued.private_key_pem.write_to_path(str(key))
    out = tmp_path / "events.jsonl"
    args = parse(
        academy, tmp_path, "--out", str(out), "--cert-file", str(cert), "--key-file", str(key)
    )
    (course, member), *_ = open_enrolments(academy)
    trust = ssl.create_default_context()
    ca.configure_trust(trust)
    async with serving(args) as served, aiohttp.ClientSession(headers=FORM) as session:
        assert served.url.startswith("https://127.0.0.1:")
        data = form("CREATED", course, member)
        async with session.post(served.url, data=data, ssl=trust) as response:
            assert response.status == 202
    assert served.code == 0
    [line] = read_lines(out)
    assert line["member_id"] == member


# -- the real entry point ----------------------------------------------------------------


async def test_cli_serves_until_ctrl_c_then_drains(academy: SandboxAcademy, tmp_path: Path) -> None:
    """Run by ``main()``: prints its URL without the secret, Ctrl-C drains, exits 0."""
    out = tmp_path / "events.jsonl"
    (course, member), *_ = open_enrolments(academy)
    academy.complete_course(course, member, score=64.0)
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "coursepath_async",
        "webhooks",
        "serve",
        "--port",
        "0",
        "--out",
        str(out),
        "--secret-env",
        "HOOK_SECRET",
        env=cli_env(academy, HOOK_SECRET=SECRET),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    assert process.stdout is not None
    async with asyncio.timeout(WAIT):
        banner = (await process.stdout.readline()).decode()
    assert "receiving webhooks at http://127.0.0.1:" in banner
    assert SECRET not in banner
    url = banner.split()[3].rstrip(";").replace("<$HOOK_SECRET>", SECRET)
    async with (
        aiohttp.ClientSession(headers=FORM) as session,
        session.post(url, data=form("COMPLETED", course, member)) as response,
    ):
        assert response.status == 202
    process.send_signal(signal.SIGINT)  # the event was only queued: stopping must drain it
    async with asyncio.timeout(WAIT):
        rest, err = await process.communicate()
    assert process.returncode == 0, err.decode()
    assert SECRET not in (rest + err).decode()
    [line] = read_lines(out)
    assert (line["event"], line["member_id"], line["score"]) == (
        "COURSEMEMBER_COMPLETED",
        member,
        64.0,
    )


async def test_cli_missing_secret_exits_2(academy: SandboxAcademy, tmp_path: Path) -> None:
    """A --secret-env naming an unset variable is a usage error (exit 2), nothing served."""
    env = cli_env(academy)
    env.pop("HOOK_SECRET", None)
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "coursepath_async",
        "webhooks",
        "serve",
        "--out",
        str(tmp_path / "e.jsonl"),
        "--secret-env",
        "HOOK_SECRET",
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    async with asyncio.timeout(WAIT):
        out, err = await process.communicate()
    assert process.returncode == 2
    assert "HOOK_SECRET is not set" in err.decode()
    assert out == b""

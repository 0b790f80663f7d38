"""The command line speaks its own language: flags in errors, --version, fitting Ctrl-C lines.

Every test runs ``python -m coursepath_async`` as a real subprocess, against a sandbox
academy in this process or one the CLI itself serves.
"""

from __future__ import annotations

import asyncio
import fcntl
import os
import signal
import sqlite3
import stat
import struct
import termios
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp import web
from cli_env import run_cli, start_cli
from conftest import API_KEY, sandbox

from coursepath_async import CoursepathClient, __version__
from coursepath_async.testing import SandboxAcademy


@pytest.fixture
async def academy() -> AsyncIterator[SandboxAcademy]:
    async with sandbox(members=6, courses=2, groups=2, seed=3) as a:
        yield a


def _people(tmp_path: Path, rows: int = 3) -> Path:
    path = tmp_path / "people.csv"
    lines = ["email,name", *(f"p{i}@polish.test,P {i}" for i in range(rows))]
    path.write_text("\n".join(lines) + "\n")
    return path


async def test_version_prints_the_package_version() -> None:
    """``--version`` prints ``coursepath-async <version>`` and exits 0."""
    code, out, _ = await run_cli(None, "--version")
    assert code == 0
    assert out.strip() == f"coursepath-async {__version__}"


async def test_log_level_is_accepted_after_the_subcommand(
    academy: SandboxAcademy, tmp_path: Path
) -> None:
    """``import FILE --log-level debug`` logs each request, like ``--log-level debug import``."""
    code, _, err = await run_cli(academy, "import", str(_people(tmp_path)), "--log-level", "debug")
    assert code == 0, err
    assert "DEBUG coursepath_async: POST /members" in err
    journal = str(tmp_path / "second.journal.sqlite")
    code, _, err = await run_cli(academy, "import", str(_people(tmp_path)), "--journal", journal)
    assert code == 0, err
    assert "DEBUG" not in err  # the default stays warning


async def test_errors_name_flags_not_library_parameters(tmp_path: Path) -> None:
    """Plain http, a bad --concurrency or an empty key file: exit 2 naming the flag."""
    people = str(_people(tmp_path))
    key_file = tmp_path / "key"
    key_file.write_text(API_KEY)
    connection = ("--user", "admin@polish.test", "--api-key-file", str(key_file))
    code, _, err = await run_cli(None, "import", people, "--url", "http://127.0.0.1:9", *connection)
    assert code == 2
    assert "(--url)" in err
    assert "--allow-http" in err
    assert "allow_http" not in err
    assert "base_url" not in err
    code, _, err = await run_cli(
        None, "import", people, "--url", "https://a.example.com", "--concurrency", "0", *connection
    )
    assert code == 2
    assert "--concurrency must be an integer >= 1, got 0" in err
    assert "max_concurrency" not in err
    key_file.write_text("\n")
    code, _, err = await run_cli(
        None, "import", people, "--url", "https://a.example.com", *connection
    )
    assert code == 2
    assert f"--api-key-file {key_file} is empty" in err
    assert "api_key" not in err


async def test_export_takes_its_format_from_the_extension(
    academy: SandboxAcademy, tmp_path: Path
) -> None:
    """``--out m.sqlite`` writes SQLite; ``--format csv --out m.sqlite`` is refused unsent."""
    out = tmp_path / "m.sqlite"
    code, _, err = await run_cli(academy, "export", "members", "--out", str(out))
    assert code == 0, err
    with sqlite3.connect(out) as db:
        assert db.execute("select count(*) from members").fetchone() == (6,)
    sent = academy.recorder.total
    clash = tmp_path / "n.sqlite"
    code, _, err = await run_cli(
        academy, "export", "members", "--format", "csv", "--out", str(clash)
    )
    assert code == 2
    assert f"--format csv does not match --out {clash}" in err
    assert academy.recorder.total == sent
    assert not clash.exists()


async def test_the_report_is_readable_by_its_owner_only(
    academy: SandboxAcademy, tmp_path: Path
) -> None:
    """The JSON report (it lists emails) is created 0600, like the journal."""
    people = _people(tmp_path)
    report = tmp_path / "people.report.json"
    report.write_text("{}")
    report.chmod(0o644)  # an older report, world-readable: replaced, not reused
    code, _, err = await run_cli(academy, "import", str(people), "--report", str(report))
    assert code == 0, err
    assert stat.S_IMODE(report.stat().st_mode) == 0o600
    journal = Path(f"{people}.journal.sqlite")
    assert stat.S_IMODE(await asyncio.to_thread(lambda: journal.stat().st_mode)) == 0o600


async def test_progress_bar_ends_at_100_percent_when_the_line_count_is_off(
    academy: SandboxAcademy, tmp_path: Path
) -> None:
    """On a terminal, a file whose line count overstates its rows still ends its bar at 100%."""
    people = tmp_path / "people.csv"
    # Quoted line breaks: 9 lines for 3 rows, so the estimate says 8 rows.
    people.write_text(
        "email,name,company\n"
        'a@polish.test,A,"Acme\nWest\nWing"\n'
        'b@polish.test,B,"Acme\nEast"\n'
        'c@polish.test,C,"Acme\nNorth\nHall"\n'
    )
    main, child = os.openpty()  # a terminal for stderr: tqdm draws only there
    # 24 rows of 120 columns (a new pty has none, and tqdm draws a bar 0 wide).
    fcntl.ioctl(child, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 120, 0, 0))
    try:
        reading = asyncio.ensure_future(asyncio.to_thread(_read_all, main))
        process = await start_cli(academy, "import", str(people), stderr=child)
        os.close(child)
        async with asyncio.timeout(120):
            await process.communicate()
            drawn = await reading
    finally:
        os.close(main)
    assert process.returncode == 0
    last = drawn.replace("\r", "\n").strip().splitlines()[-1]
    assert "100%" in last, drawn
    assert "3.00/3.00" in last, drawn


def _read_all(fd: int) -> str:
    """Everything written to a pty until its other end closed."""
    chunks = []
    while True:
        try:
            chunk = os.read(fd, 65536)
        except OSError:  # EIO: the child's side is closed
            break
        if not chunk:
            break
        chunks.append(chunk)
    return b"".join(chunks).decode("utf-8", "replace")


async def _banner(process: asyncio.subprocess.Process, last: str) -> list[str]:
    """The lines a serving command prints up to (and including) the one starting ``last``."""
    assert process.stdout is not None
    lines: list[str] = []
    async with asyncio.timeout(60):
        while not lines or not lines[-1].startswith(last):
            line = (await process.stdout.readline()).decode()
            assert line, f"exited early: {lines}"
            lines.append(line)
    return lines


@pytest.mark.parametrize(
    ("command", "banner_ends", "says"),
    [
        pytest.param(
            ("sandbox", "--port", "0", "--members", "3"),
            "  export COURSEPATH_ALLOW_HTTP",
            "stopping the sandbox academy",
            id="sandbox",
        ),
        pytest.param(
            ("webhooks", "serve", "--port", "0", "--out", "{tmp}/events.jsonl"),
            "receiving webhooks at",
            "stopping: no new deliveries; finishing the events being verified",
            id="webhooks serve",
        ),
    ],
)
async def test_ctrl_c_says_what_each_serving_command_does(
    academy: SandboxAcademy,
    tmp_path: Path,
    command: tuple[str, ...],
    banner_ends: str,
    says: str,
) -> None:
    """Ctrl-C on ``sandbox`` or ``webhooks serve`` speaks of it, not of rows or a journal."""
    args = [part.replace("{tmp}", str(tmp_path)) for part in command]
    process = await start_cli(academy, *args)
    await _banner(process, banner_ends)
    process.send_signal(signal.SIGINT)
    async with asyncio.timeout(60):
        _, err = await process.communicate()
    text = err.decode()
    assert process.returncode == 0
    assert says in text
    assert "journal" not in text
    assert "rows" not in text


async def test_sandbox_webhook_url_delivers_enrolment_events() -> None:
    """``sandbox --webhook-url URL`` POSTs a COURSEMEMBER_CREATED form when a member is enrolled."""
    received: asyncio.Queue[dict[str, str]] = asyncio.Queue()

    async def hook(request: web.Request) -> web.Response:
        received.put_nowait(dict(await request.post()))  # type: ignore[arg-type]
        return web.Response(text="ok")

    app = web.Application()
    app.router.add_post("/hook", hook)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    process = await start_cli(
        None,
        "sandbox",
        "--port",
        "0",
        "--members",
        "3",
        "--courses",
        "2",
        "--api-key",
        API_KEY,
        "--webhook-url",
        f"http://127.0.0.1:{port}/hook",
    )
    try:
        banner = await _banner(process, "  export COURSEPATH_ALLOW_HTTP")
        assert f"  webhooks to http://127.0.0.1:{port}/hook\n" in banner
        url = next(line for line in banner if "COURSEPATH_URL=" in line).split("=", 1)[1].strip()
        async with CoursepathClient(
            url, api_key=API_KEY, user="admin@sandbox.test", allow_http=True
        ) as client:
            member = await client.members.create("hooked@polish.test")
            await client.courses.enroll(1, member.id)
        async with asyncio.timeout(60):
            form = await received.get()
        assert form == {
            "courseId": "1",
            "memberId": str(member.id),
            "event": "COURSEMEMBER_CREATED",
        }
    finally:
        process.send_signal(signal.SIGINT)
        async with asyncio.timeout(60):
            await process.communicate()
        await runner.cleanup()

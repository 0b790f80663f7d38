"""The ``coursepath-async`` command, run as a real subprocess against an in-test sandbox."""

from __future__ import annotations

import asyncio
import signal
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import orjson
import pytest
from cli_env import cli_env

from coursepath_async.testing import Faults, SandboxAcademy
from coursepath_async.testing._people import write_people_csv

API_KEY = "cli-tests-api-key-0123456789abcdefghijklmnop"


@pytest.fixture
async def academy() -> AsyncIterator[SandboxAcademy]:
    async with SandboxAcademy(members=10, courses=3, groups=2, seed=4, api_key=API_KEY) as a:
        yield a


async def _start(
    academy: SandboxAcademy | None, *args: str, **env: str
) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "coursepath_async",
        *args,
        env=cli_env(academy, **env),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )


async def _run(academy: SandboxAcademy | None, *args: str, **env: str) -> tuple[int, str, str]:
    process = await _start(academy, *args, **env)
    out, err = await process.communicate()
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


async def test_help_lists_every_command() -> None:
    """``--help`` exits 0 and names each command."""
    code, out, _ = await _run(None, "--help")
    assert code == 0
    for command in ("import", "sync", "export", "sandbox", "demo", "webhooks"):
        assert command in out


async def test_missing_file_is_a_usage_error(academy: SandboxAcademy, tmp_path: Path) -> None:
    """An unreadable input file exits 2 with a clear message and sends nothing."""
    code, _, err = await _run(academy, "import", str(tmp_path / "missing.csv"))
    assert code == 2
    assert "missing.csv" in err
    assert academy.recorder.total == 0


async def test_plain_http_without_permission_is_refused(tmp_path: Path) -> None:
    """Without COURSEPATH_ALLOW_HTTP an http:// academy exits 2 before any call."""
    people = write_people_csv(tmp_path / "p.csv", rows=20, bad_rows=False)
    env_academy = None
    code, _, err = await _run(
        env_academy,
        "import",
        str(people.path),
        "--url",
        "http://127.0.0.1:9",
        "--user",
        "admin@sandbox.test",
        "--api-key-file",
        str(_key_file(tmp_path)),
    )
    assert code == 2
    assert "https" in err


@pytest.mark.parametrize(
    ("setting", "loop"),
    [("", "uvloop"), ("auto", "uvloop"), ("asyncio", "asyncio"), ("uvloop", "uvloop")],
)
async def test_the_cli_runs_on_the_chosen_loop(
    academy: SandboxAcademy, tmp_path: Path, setting: str, loop: str
) -> None:
    """The CLI runs on uvloop (``speed`` extra) by default, asyncio on request; same result."""
    pytest.importorskip("uvloop")
    people = write_people_csv(tmp_path / "p.csv", rows=12, bad_rows=False)
    code, _, err = await _run(
        academy, "--log-level", "debug", "import", str(people.path), COURSEPATH_LOOP=setting
    )
    assert code == 0, err
    assert f"event loop: {loop}" in err
    report = orjson.loads((tmp_path / "p.csv.report.json").read_bytes())
    assert report["totals"]["created"] == 12


async def test_an_unknown_loop_setting_is_a_usage_error(academy: SandboxAcademy) -> None:
    """A misspelt COURSEPATH_LOOP exits 2, naming the variable, before any request."""
    code, _, err = await _run(academy, "import", "x.csv", COURSEPATH_LOOP="uvlopp")
    assert code == 2
    assert "COURSEPATH_LOOP must be auto, asyncio or uvloop, got 'uvlopp'" in err
    assert academy.recorder.total == 0


def _key_file(tmp_path: Path) -> Path:
    path = tmp_path / "key"
    path.write_text(API_KEY)
    return path


async def test_import_writes_report_and_exit_code(academy: SandboxAcademy, tmp_path: Path) -> None:
    """A CSV with bad rows exits 1; the JSON report accounts for every row; the key is not in it."""
    people = write_people_csv(tmp_path / "p.csv", rows=60, seed=2)
    code, out, err = await _run(academy, "import", str(people.path), "--group", "CLI")
    assert code == 1
    report = orjson.loads((tmp_path / "p.csv.report.json").read_bytes())
    assert report["accounted_for"] == report["total_rows"] == 60
    assert report["totals"]["skipped_invalid"] == len(people.bad_lines)
    for text in (out, err, (tmp_path / "p.csv.report.json").read_text()):
        assert API_KEY not in text


async def test_sigkill_mid_import_then_resume_completes_without_double_invites(
    tmp_path: Path,
) -> None:
    """SIGKILL an import mid-run; re-running with its journal finishes and never invites twice."""
    faults = Faults(seed=3, latency=0.004, error_rate=0.03, applied_then_fail_rate=0.02)
    async with SandboxAcademy(members=5, seed=1, api_key=API_KEY, faults=faults) as academy:
        people = write_people_csv(tmp_path / "p.csv", rows=800, seed=5, bad_rows=False)
        args = ("import", str(people.path), "--invite", "--group", "Resumed", "--concurrency", "8")
        process = await _start(academy, *args)
        async with asyncio.timeout(60):
            await academy.recorder.wait_for(lambda r: sum(r.invitations.values()) >= 150)
        process.send_signal(signal.SIGKILL)
        await process.communicate()
        assert process.returncode == -signal.SIGKILL
        killed_at = academy.state.member_count
        assert killed_at < 5 + 800

        code, _, _ = await _run(academy, *args)
        assert code in (0, 1)  # 1 when some invitation is uncertain
        report = orjson.loads((tmp_path / "p.csv.report.json").read_bytes())
        assert report["accounted_for"] == 800
        assert report["totals"]["failed"] == 0
        assert academy.state.member_count == 5 + 800
        assert max(academy.recorder.invitations.values()) == 1
        totals = report["totals"]
        invited = (
            totals["invitations_sent"]
            + totals["invitations_uncertain"]
            + totals["invitations_skipped_already_sent"]
        )
        assert invited == 800
        assert totals["resumed"] > 0


async def test_ctrl_c_drains_and_writes_the_report(tmp_path: Path) -> None:
    """SIGINT stops starting rows, finishes those in flight, writes journal and report, exits 1."""
    async with SandboxAcademy(
        members=5, seed=1, api_key=API_KEY, faults=Faults(latency=0.01)
    ) as academy:
        people = write_people_csv(tmp_path / "p.csv", rows=1000, seed=6, bad_rows=False)
        process = await _start(academy, "import", str(people.path), "--concurrency", "4")
        async with asyncio.timeout(60):
            await academy.recorder.wait_for(lambda r: r.total >= 40)
        process.send_signal(signal.SIGINT)
        _, err = await process.communicate()
        assert process.returncode == 1
        assert "stopping" in err.decode()
        report = orjson.loads((tmp_path / "p.csv.report.json").read_bytes())
        assert report["accounted_for"] == 1000
        assert report["totals"]["interrupted"] > 0
        assert (tmp_path / "p.csv.journal.sqlite").exists()


async def test_demo_runs_end_to_end(tmp_path: Path) -> None:
    """``demo`` imports, exports and passes its own checks on a small generated file."""
    code, out, err = await _run(None, "demo", "--rows", "150", "--dir", str(tmp_path))
    assert code == 0, out + err
    assert "[FAIL]" not in out
    assert (tmp_path / "members.csv").exists()
    assert (tmp_path / "results.csv").exists()

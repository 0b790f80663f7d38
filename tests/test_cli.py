"""The ``coursepath-async`` command, run as a real subprocess against an in-test sandbox."""

from __future__ import annotations

import asyncio
import signal
from collections.abc import AsyncIterator
from pathlib import Path

import orjson
import pytest
from cli_env import run_cli, start_cli
from conftest import API_KEY, sandbox

from coursepath_async.testing import Faults, SandboxAcademy
from coursepath_async.testing._people import write_people_csv


@pytest.fixture
async def academy() -> AsyncIterator[SandboxAcademy]:
    async with sandbox(members=10, courses=3, groups=2, seed=4) as a:
        yield a


async def test_help_lists_every_command() -> None:
    """``--help`` exits 0 and names each command."""
    code, out, _ = await run_cli(None, "--help")
    assert code == 0
    for command in ("import", "sync", "export", "sandbox", "demo", "webhooks", "doctor"):
        assert command in out


async def test_missing_file_is_a_usage_error(academy: SandboxAcademy, tmp_path: Path) -> None:
    """An unreadable input file exits 2 with a clear message and sends nothing."""
    code, _, err = await run_cli(academy, "import", str(tmp_path / "missing.csv"))
    assert code == 2
    assert "missing.csv" in err
    assert academy.recorder.total == 0


async def test_plain_http_without_permission_is_refused(tmp_path: Path) -> None:
    """Without COURSEPATH_ALLOW_HTTP an http:// academy exits 2 before any call."""
    people = write_people_csv(tmp_path / "p.csv", rows=20, bad_rows=False)
    env_academy = None
    code, _, err = await run_cli(
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
    code, _, err = await run_cli(
        academy, "--log-level", "debug", "import", str(people.path), COURSEPATH_LOOP=setting
    )
    assert code == 0, err
    assert f"event loop: {loop}" in err
    report = orjson.loads((tmp_path / "p.csv.report.json").read_bytes())
    assert report["totals"]["created"] == 12


async def test_an_unknown_loop_setting_is_a_usage_error(academy: SandboxAcademy) -> None:
    """A misspelt COURSEPATH_LOOP exits 2, naming the variable, before any request."""
    code, _, err = await run_cli(academy, "import", "x.csv", COURSEPATH_LOOP="uvlopp")
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
    code, out, err = await run_cli(academy, "import", str(people.path), "--group", "CLI")
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
    async with sandbox(members=5, seed=1, faults=faults) as academy:
        people = write_people_csv(tmp_path / "p.csv", rows=800, seed=5, bad_rows=False)
        args = ("import", str(people.path), "--invite", "--group", "Resumed", "--concurrency", "8")
        process = await start_cli(academy, *args)
        async with asyncio.timeout(60):
            await academy.recorder.wait_for(lambda r: sum(r.invitations.values()) >= 150)
        process.send_signal(signal.SIGKILL)
        await process.communicate()
        assert process.returncode == -signal.SIGKILL
        killed_at = academy.state.member_count
        assert killed_at < 5 + 800

        code, _, _ = await run_cli(academy, *args)
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
            + totals["invitations_withheld"]  # created by creates the kill cut short
        )
        assert invited == 800
        assert totals["resumed"] > 0


async def test_ctrl_c_drains_and_writes_the_report(tmp_path: Path) -> None:
    """SIGINT stops starting rows, finishes those in flight, writes journal and report, exits 1."""
    async with sandbox(members=5, seed=1, faults=Faults(latency=0.01)) as academy:
        people = write_people_csv(tmp_path / "p.csv", rows=1000, seed=6, bad_rows=False)
        process = await start_cli(academy, "import", str(people.path), "--concurrency", "4")
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
    code, out, err = await run_cli(None, "demo", "--rows", "150", "--dir", str(tmp_path))
    assert code == 0, out + err
    assert "[FAIL]" not in out
    assert (tmp_path / "members.csv").exists()
    assert (tmp_path / "results.csv").exists()


def _groups_of(academy: SandboxAcademy, member_id: int) -> set[str]:
    state = academy.state
    return {g.name for g in state.groups() if member_id in state.group_member_ids(g.id)}


async def test_a_second_sync_corrects_drift(academy: SandboxAcademy, tmp_path: Path) -> None:
    """Re-running a finished sync on the same file re-plans and repairs the academy's drift."""
    member = academy.state.members()[4]
    people = tmp_path / "people.csv"
    people.write_text(f"email,groups,courses\n{member.email},Night Team,2\n")
    code, _, err = await run_cli(academy, "sync", str(people))
    assert code == 0, err
    academy.state.leave_group(member.id, "Night Team")  # drift during the day
    academy.state.unenrol(2, member.id)
    code, _, err = await run_cli(academy, "sync", str(people))
    assert code == 0, err
    assert "Night Team" in _groups_of(academy, member.id)
    assert 2 in academy.state.member_course_ids(member.id)
    report = orjson.loads((tmp_path / "people.csv.report.json").read_bytes())
    assert report["totals"]["resumed"] == 0


async def test_a_second_sync_never_resends_an_invitation(
    academy: SandboxAcademy, tmp_path: Path
) -> None:
    """Invitations the first sync sent or left uncertain are not sent again by the next one."""
    people = tmp_path / "people.csv"
    people.write_text("email,name\n" + "".join(f"n{i}@x.test,N {i}\n" for i in range(4)))
    academy.script("POST", "/members/{id}/invite", "applied_then_502")
    code, _, _ = await run_cli(academy, "sync", str(people), "--invite", "all")
    assert code == 1  # one invitation is uncertain
    assert sum(academy.recorder.invitations.values()) == 4
    people.write_text(people.read_text() + "n4@x.test,N 4\n")  # tonight's file has one more
    code, _, err = await run_cli(academy, "sync", str(people), "--invite", "all")
    assert code == 1, err  # the uncertain one still needs a human
    assert set(academy.recorder.invitations.values()) == {1}  # nobody emailed twice
    assert len(academy.recorder.invitations) == 5
    totals = orjson.loads((tmp_path / "people.csv.report.json").read_bytes())["totals"]
    assert (totals["invitations_sent"], totals["invitations_uncertain"]) == (1, 1)
    assert totals["invitations_skipped_already_sent"] == 3


async def test_an_interrupted_sync_resumes(tmp_path: Path) -> None:
    """A sync stopped by Ctrl-C is resumed by the next one: finished rows are not redone."""
    async with sandbox(members=5, seed=1, faults=Faults(latency=0.01)) as academy:
        people = write_people_csv(tmp_path / "p.csv", rows=300, seed=6, bad_rows=False)
        process = await start_cli(academy, "sync", str(people.path), "--concurrency", "2")
        async with asyncio.timeout(60):
            await academy.recorder.wait_for(lambda r: academy.state.member_count >= 25)
        process.send_signal(signal.SIGINT)
        await process.communicate()
        assert process.returncode == 1
        code, _, err = await run_cli(academy, "sync", str(people.path))
        assert code == 0, err
    report = orjson.loads((tmp_path / "p.csv.report.json").read_bytes())
    assert report["totals"]["resumed"] >= 20
    assert academy.state.member_count == 5 + 300


async def test_an_unwritable_report_is_refused_before_connecting(
    academy: SandboxAcademy, tmp_path: Path
) -> None:
    """A --report in a missing folder exits 2 before a single request."""
    people = write_people_csv(tmp_path / "p.csv", rows=5, bad_rows=False)
    report = tmp_path / "missing" / "r.json"
    code, _, err = await run_cli(academy, "sync", str(people.path), "--report", str(report))
    assert code == 2
    assert "cannot write" in err
    assert academy.recorder.total == 0


async def test_a_report_lost_after_the_run_exits_1(tmp_path: Path) -> None:
    """When the report cannot be written after writes were sent: summary, error, exit 1."""
    async with sandbox(members=5, seed=1, faults=Faults(latency=0.02)) as academy:
        people = write_people_csv(tmp_path / "p.csv", rows=60, seed=6, bad_rows=False)
        folder = tmp_path / "out"
        folder.mkdir()
        args = ("import", str(people.path), "--report", str(folder / "r.json"))
        process = await start_cli(academy, *args, "--concurrency", "1")
        async with asyncio.timeout(60):
            await academy.recorder.wait_for(lambda r: academy.state.member_count > 5)
        folder.rmdir()  # the folder goes away while the job runs
        out, err = await process.communicate()
    assert process.returncode == 1
    assert "created 60" in out.decode()
    assert "cannot write the report" in err.decode()


async def test_a_failed_run_leaves_no_stale_report(academy: SandboxAcademy, tmp_path: Path) -> None:
    """A sync that fails after its preflight, before any row, removes the previous report."""
    people = write_people_csv(tmp_path / "p.csv", rows=3, bad_rows=False)
    report = tmp_path / "p.csv.report.json"
    code, _, _ = await run_cli(academy, "sync", str(people.path))
    assert code == 0
    assert report.exists()
    academy.script("GET", "/courses", *([503] * 50))  # the listing, not the preflight
    code, _, err = await run_cli(academy, "sync", str(people.path), "--timeout", "2")
    assert code == 1, err
    assert not report.exists()


async def test_demo_twice_in_one_folder_starts_fresh(tmp_path: Path) -> None:
    """A second demo in the same --dir does not resume the first one's journal."""
    for _ in range(2):
        code, out, err = await run_cli(None, "demo", "--rows", "60", "--dir", str(tmp_path))
        assert code == 0, out + err
    report = orjson.loads((tmp_path / "people.report.json").read_bytes())
    assert report["totals"]["resumed"] == 0
    assert "earlier run" not in out


async def test_export_results_says_what_it_skipped(academy: SandboxAcademy, tmp_path: Path) -> None:
    """Results answered 404 are left out of the file and counted in the summary."""
    academy.script("GET", "/courses/{c}/members/{m}/coursemember", 404, 404)
    code, out, err = await run_cli(academy, "export", "results", "--out", str(tmp_path / "r.csv"))
    assert code == 0, err
    assert "skipped 2 results" in out


async def test_export_csv_guards_formulas_unless_told_not_to(
    academy: SandboxAcademy, tmp_path: Path
) -> None:
    """A member named like a formula is exported with a leading quote, raw on request."""
    academy.state.add_member("formula@x.test", name="=HYPERLINK(1)")
    guarded, raw = tmp_path / "g.csv", tmp_path / "r.csv"
    assert (await run_cli(academy, "export", "members", "--out", str(guarded)))[0] == 0
    flag = "--no-formula-guard"
    assert (await run_cli(academy, "export", "members", "--out", str(raw), flag))[0] == 0
    assert "'=HYPERLINK(1)" in guarded.read_text(encoding="utf-8")
    assert "'=HYPERLINK" not in raw.read_text(encoding="utf-8")
    assert "=HYPERLINK(1)" in raw.read_text(encoding="utf-8")


async def test_export_members_refuses_results_only_flags(
    academy: SandboxAcademy, tmp_path: Path
) -> None:
    """--course and --completed-only on a members export are a usage error, not ignored."""
    out_file = tmp_path / "m.csv"
    code, _, err = await run_cli(
        academy, "export", "members", "--out", str(out_file), "--course", "1"
    )
    assert code == 2
    assert "apply to 'export results' only" in err
    assert not out_file.exists()
    assert academy.recorder.total == 0


async def test_export_refusal_names_the_flag(academy: SandboxAcademy, tmp_path: Path) -> None:
    """Refusing an existing output file points at --overwrite, not the library argument."""
    out_file = tmp_path / "m.csv"
    out_file.write_text("keep me")
    code, _, err = await run_cli(academy, "export", "members", "--out", str(out_file))
    assert code == 2
    assert "--overwrite" in err
    assert "overwrite=True" not in err
    assert out_file.read_text() == "keep me"


async def test_ctrl_c_on_an_export_does_not_mention_a_journal(tmp_path: Path) -> None:
    """An aborted export says it was cancelled; exports have no journal to resume."""
    async with sandbox(members=60, courses=4, seed=1, faults=Faults(latency=0.05)) as academy:
        out_file = tmp_path / "r.csv"
        process = await start_cli(academy, "export", "results", "--out", str(out_file))
        async with asyncio.timeout(60):
            await academy.recorder.wait_for(lambda r: r.total >= 10)
        process.send_signal(signal.SIGINT)
        _, err = await process.communicate()
    assert process.returncode == 1
    assert "export was cancelled" in err.decode()
    assert "journal" not in err.decode()


async def _sandbox_banner(*args: str) -> str:
    """The lines ``sandbox`` prints before serving, then Ctrl-C."""
    process = await start_cli(None, "sandbox", "--port", "0", "--members", "3", *args)
    assert process.stdout is not None
    lines = []
    async with asyncio.timeout(30):
        while not (line := (await process.stdout.readline()).decode()).startswith(
            "  export COURSEPATH_ALLOW_HTTP"
        ):
            lines.append(line)
    process.send_signal(signal.SIGINT)
    await process.communicate()
    return "".join(lines)


async def test_sandbox_prints_only_a_key_it_generated() -> None:
    """A key given with --api-key is never echoed; a generated one is printed for clients."""
    given = await _sandbox_banner("--api-key", API_KEY)
    assert API_KEY not in given
    assert "COURSEPATH_URL=http" in given
    generated = await _sandbox_banner()
    assert "COURSEPATH_API_KEY=" in generated
    assert "--api-key" not in generated

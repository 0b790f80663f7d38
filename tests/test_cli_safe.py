"""Safe bulk runs through the CLI in another process: preflight, removal bounds, dry runs."""

from __future__ import annotations

import asyncio
import os
import pty
import socket
import sqlite3
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import orjson
import pytest
from cli_env import cli_env, run_cli
from conftest import API_KEY, sandbox

from coursepath_async.testing import SandboxAcademy

OLD_REPORT = b'{"an": "earlier report"}'


@pytest.fixture
async def academy() -> AsyncIterator[SandboxAcademy]:
    async with sandbox(members=6, courses=3, groups=2, seed=3) as a:
        yield a


def _people(tmp_path: Path, rows: int = 5, *, courses: str = "") -> Path:
    path = tmp_path / "people.csv"
    lines = "".join(f"new{i}@hires.test,New {i},{courses}\n" for i in range(rows))
    path.write_text("email,name,courses\n" + lines)
    return path


def _beside(people: Path, suffix: str) -> Path:
    """The journal or report the CLI keeps next to ``people`` by default."""
    return people.with_name(f"{people.name}.{suffix}")


def _writes(academy: SandboxAcademy) -> list[str]:
    return [f"{r.method} {r.path}" for r in academy.recorder.requests if r.method != "GET"]


def _old_report(people: Path) -> Path:
    report = _beside(people, "report.json")
    report.write_bytes(OLD_REPORT)
    return report


def _assert_refused_untouched(academy: SandboxAcademy, people: Path, members: int) -> None:
    """Nothing written to the academy, no journal created, the earlier report kept."""
    assert _writes(academy) == []
    assert academy.state.member_count == members
    assert not _beside(people, "journal.sqlite").exists()
    assert _beside(people, "report.json").read_bytes() == OLD_REPORT


async def test_a_typod_course_flag_is_refused_before_any_write(
    academy: SandboxAcademy, tmp_path: Path
) -> None:
    """``import --course 999 --invite`` exits 2 naming the course and flag; nothing is written."""
    people = _people(tmp_path)
    _old_report(people)
    members = academy.state.member_count
    code, out, err = await run_cli(academy, "import", str(people), "--course", "999", "--invite")
    assert code == 2, out + err
    assert "course 999 does not exist (named by --course)" in err
    _assert_refused_untouched(academy, people, members)


async def test_a_missing_course_in_the_file_is_refused_naming_its_line(
    academy: SandboxAcademy, tmp_path: Path
) -> None:
    """A course id only the file names is checked too, and the message names its line."""
    people = tmp_path / "people.csv"
    people.write_text("email,courses\na@hires.test,1\nb@hires.test,2;77\nc@hires.test,77\n")
    _old_report(people)
    members = academy.state.member_count
    code, _, err = await run_cli(academy, "sync", str(people))
    assert code == 2
    assert f"course 77 does not exist (named by line 3 of {people})" in err
    _assert_refused_untouched(academy, people, members)


async def test_a_wrong_key_is_refused_before_any_row(
    academy: SandboxAcademy, tmp_path: Path
) -> None:
    """A wrong API key exits 2 saying the key was refused; no row is tried, no report written."""
    people = _people(tmp_path, rows=50)
    _old_report(people)
    members = academy.state.member_count
    key = tmp_path / "key"
    key.write_text("not-the-academy-key-0123456789abcdef")
    code, _, err = await run_cli(academy, "import", str(people), "--api-key-file", str(key))
    assert code == 2
    assert "the key was refused" in err
    assert academy.recorder.total <= 4  # the one check and its retries, not 50 rows
    _assert_refused_untouched(academy, people, members)


async def test_an_unreachable_academy_is_refused(tmp_path: Path) -> None:
    """An academy nobody listens at exits 2 naming its URL; no journal, the report kept."""
    with socket.socket() as probe:  # a port that was free a moment ago: nothing listens
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    people = _people(tmp_path)
    _old_report(people)
    code, _, err = await run_cli(
        None,
        "import",
        str(people),
        COURSEPATH_URL=f"http://127.0.0.1:{port}",
        COURSEPATH_API_KEY=API_KEY,
        COURSEPATH_USER="admin@sandbox.test",
        COURSEPATH_ALLOW_HTTP="1",
    )
    assert code == 2
    assert f"cannot reach the academy at http://127.0.0.1:{port}" in err
    assert not _beside(people, "journal.sqlite").exists()
    assert _beside(people, "report.json").read_bytes() == OLD_REPORT


async def test_a_learner_is_refused_as_not_an_admin(
    academy: SandboxAcademy, tmp_path: Path
) -> None:
    """Acting as a learner exits 2 saying admin endpoints are needed; nothing is written."""
    learner = academy.state.members()[2].email
    people = _people(tmp_path)
    _old_report(people)
    members = academy.state.member_count
    code, _, err = await run_cli(academy, "import", str(people), "--user", learner)
    assert code == 2
    assert f"{learner} may not use the admin endpoints" in err
    _assert_refused_untouched(academy, people, members)


async def _enrolled_academy(tmp_path: Path) -> tuple[SandboxAcademy, Path]:
    """An academy whose 20 learners have 2 courses each, and a file wanting them in none."""
    academy = sandbox(members=1, courses=3, groups=0, seed=5)
    await academy.start()
    lines = []
    for i in range(20):
        member = academy.state.add_member(f"learner{i}@school.test", name=f"Learner {i}")
        academy.state.enrol(1, member.id)
        academy.state.enrol(2, member.id)
        lines.append(f"{member.email},\n")
    people = tmp_path / "people.csv"
    people.write_text("email,courses\n" + "".join(lines))
    return academy, people


def _enrolments(academy: SandboxAcademy) -> int:
    return sum(len(academy.state.enrolments(course)) for course in (1, 2, 3))


async def test_a_sync_over_max_removals_is_refused_before_any_write(tmp_path: Path) -> None:
    """40 planned unenrolments, ``--max-removals 5``: exit 2, count and sample shown, 0 applied."""
    academy, people = await _enrolled_academy(tmp_path)
    try:
        code, out, err = await run_cli(
            academy, "sync", str(people), "--unenroll", "--max-removals", "5", "--yes"
        )
        assert code == 2, out + err
        assert "removes 40 group memberships and enrolments, more than --max-removals 5" in err
        assert "unenroll from course 1" in err  # the sample
        assert _enrolments(academy) == 40
        assert _writes(academy) == []
        assert not _beside(people, "report.json").exists()
    finally:
        await academy.close()


async def test_removals_within_the_bound_are_applied_counted_and_recorded(
    tmp_path: Path,
) -> None:
    """Applied removals are in the summary, each report entry (with a time) and the journal."""
    academy, people = await _enrolled_academy(tmp_path)
    try:
        code, out, err = await run_cli(
            academy, "sync", str(people), "--unenroll", "--max-removals", "40"
        )  # no terminal, within the bound: proceeds without asking
        assert code == 0, out + err
        assert "removals: unenrolled 40 · left groups 0" in out
        assert _enrolments(academy) == 0
    finally:
        await academy.close()
    report = orjson.loads(_beside(people, "report.json").read_bytes())
    assert report["totals"]["unenrolled"] == 40
    for entry in report["rows"]:
        unenrolled = [a for a in entry["actions"] if a["kind"] == "unenroll"]
        assert sorted(a["target"] for a in unenrolled) == [1, 2]
        assert all(a["at"] for a in unenrolled)
    with sqlite3.connect(_beside(people, "journal.sqlite")) as journal:
        logged = journal.execute("SELECT kind, target, at FROM removals").fetchall()
    assert len(logged) == 40
    assert {kind for kind, _, _ in logged} == {"unenroll"}
    assert all(at for _, _, at in logged)


async def test_a_terminal_is_asked_and_no_means_nothing_removed(tmp_path: Path) -> None:
    """On a terminal the sync shows its removals and asks; answering no exits 2 with 0 applied."""
    academy, people = await _enrolled_academy(tmp_path)
    master, terminal = pty.openpty()
    try:
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "coursepath_async",
            "sync",
            str(people),
            "--unenroll",
            "--max-removals",
            "40",
            env=cli_env(academy),
            stdin=terminal,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        os.close(terminal)
        os.write(master, b"n\n")  # waits in the terminal's buffer for the question
        async with asyncio.timeout(60):
            _, err = await process.communicate()
        assert process.returncode == 2
        assert "this sync will remove 40" in err.decode()
        assert "not confirmed" in err.decode()
        assert _enrolments(academy) == 40
        assert _writes(academy) == []
    finally:
        os.close(master)
        await academy.close()


async def test_a_dry_run_writes_nothing_and_says_would(
    academy: SandboxAcademy, tmp_path: Path
) -> None:
    """``--dry-run`` keeps the last report, opens no journal, writes nothing, says would-invite."""
    people = _people(tmp_path, rows=4, courses="2")
    _old_report(people)
    members = academy.state.member_count
    code, out, err = await run_cli(academy, "import", str(people), "--dry-run", "--invite")
    assert code == 0, out + err
    assert "would create member new0@hires.test" in out
    assert "would enrol in course 2" in out
    assert "invitations: would send 4" in out
    assert "sent 0" not in out
    _assert_refused_untouched(academy, people, members)


async def test_a_dry_run_plan_goes_to_plan_out(academy: SandboxAcademy, tmp_path: Path) -> None:
    """``--plan-out FILE`` gets the dry run's plan as a JSON report; the last report is kept."""
    people = _people(tmp_path, rows=3)
    _old_report(people)
    plan = tmp_path / "plan.json"
    code, out, err = await run_cli(
        academy, "sync", str(people), "--dry-run", "--invite", "--plan-out", str(plan)
    )
    assert code == 0, out + err
    document = orjson.loads(plan.read_bytes())
    assert document["dry_run"] is True
    assert document["totals"]["invitations_would_send"] == 3
    assert document["totals"]["invitations_sent"] == 0
    assert [a["kind"] for a in document["rows"][0]["actions"]] == ["create", "invite"]
    assert "would create member" not in out  # the plan went to the file
    assert _beside(people, "report.json").read_bytes() == OLD_REPORT
    assert _writes(academy) == []


async def test_a_fixed_rerun_invites_the_members_a_failed_run_created(
    academy: SandboxAcademy, tmp_path: Path
) -> None:
    """Members a failed run created uninvited get one invitation from a re-run with new options."""
    people = _people(tmp_path, rows=5)
    academy.script("POST", "/courses/{c}/members/{m}/coursemember", *([403] * 5))
    code, out, err = await run_cli(academy, "import", str(people), "--course", "2", "--invite")
    assert code == 1, out + err
    assert sum(academy.recorder.invitations.values()) == 0  # every row failed its enrolment
    code, out, err = await run_cli(academy, "import", str(people), "--course", "3")
    assert code == 2  # other options: the journal says how to keep what it owes
    assert "--allow-changed-input" in err
    assert "5 invitations owed" in err
    code, out, err = await run_cli(
        academy, "import", str(people), "--course", "3", "--allow-changed-input"
    )
    assert code == 0, out + err
    created = [academy.state.member_by_email(f"new{i}@hires.test") for i in range(5)]
    assert all(m is not None for m in created)
    assert {academy.recorder.invitations[m.id] for m in created if m is not None} == {1}
    report = orjson.loads(_beside(people, "report.json").read_bytes())
    assert {row["invitation"] for row in report["rows"]} == {"sent"}
    assert all("owed" in row["invitation_reason"] for row in report["rows"])


async def test_an_acknowledged_uncertain_invitation_stops_failing_the_nightly_sync(
    academy: SandboxAcademy, tmp_path: Path
) -> None:
    """``--acknowledge-uncertain`` settles it once, recorded: later nights exit 0, none re-sent."""
    people = _people(tmp_path, rows=3)
    academy.script("POST", "/members/{id}/invite", "applied_then_502")
    code, _, _ = await run_cli(academy, "sync", str(people), "--invite")
    assert code == 1  # one invitation may or may not have gone out
    code, out, _ = await run_cli(academy, "sync", str(people), "--invite")
    assert code == 1  # ...and the next night cannot know either
    assert "--acknowledge-uncertain" in out
    code, out, err = await run_cli(
        academy, "sync", str(people), "--invite", "--acknowledge-uncertain"
    )
    assert code == 0, out + err
    assert "acknowledged 1" in out
    code, out, err = await run_cli(academy, "sync", str(people), "--invite")
    assert code == 0, out + err  # the acknowledgement is in the journal
    report = orjson.loads(_beside(people, "report.json").read_bytes())
    acknowledged = [r for r in report["rows"] if r["invitation"] == "acknowledged"]
    assert len(acknowledged) == 1
    assert "acknowledged 20" in acknowledged[0]["invitation_reason"]  # with its date
    assert set(academy.recorder.invitations.values()) == {1}
    with sqlite3.connect(_beside(people, "journal.sqlite")) as journal:
        assert journal.execute("SELECT state FROM acknowledgements").fetchall() == [("uncertain",)]

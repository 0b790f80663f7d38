"""Crash and resume: SIGKILL ``coursepath-async import`` at several points, then finish the job.

Each scenario runs the real CLI as a subprocess against an in-test sandbox with seeded
faults, kills it with SIGKILL once the sandbox has seen a given number of invitations
(waiting on the recorder, never sleeping), re-runs it with the same journal to
completion, and checks the end state: every valid member exists exactly once and is in
the group, nobody was invited twice, the report accounts for every row, and invitations
whose fate is unknown are listed rather than re-sent. A last run with
``--resend-uncertain`` then sends exactly those.
"""

from __future__ import annotations

import asyncio
import signal
import sqlite3
import sys
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
import pytest
from cli_env import cli_env
from conftest import sandbox

from coursepath_async.bulk import CsvRows, MemberRow
from coursepath_async.testing import Faults, Recorder, SandboxAcademy
from coursepath_async.testing._people import PeopleFile, write_people_csv

ROWS = 600
SEEDED = 20
GROUP = "Crash Cohort"
#: Generous bound on any single wait for the subprocess; a healthy run takes seconds.
WAIT_LIMIT = 60.0

FAULTS = Faults(
    seed=17,
    latency=0.002,
    latency_jitter=0.002,
    error_rate=0.03,
    reset_rate=0.01,
    applied_then_fail_rate=0.02,
)


async def start_import(
    academy: SandboxAcademy, people: Path, *extra: str
) -> asyncio.subprocess.Process:
    """Start ``python -m coursepath_async import FILE --invite --group G`` (plus ``extra``)."""
    return await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "coursepath_async",
        "import",
        str(people),
        "--invite",
        "--group",
        GROUP,
        "--concurrency",
        "8",
        *extra,
        env=cli_env(academy),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )


async def run_import(academy: SandboxAcademy, people: Path, *extra: str) -> tuple[int, str, str]:
    """Run the import to its end; returns exit code, stdout and stderr."""
    process = await start_import(academy, people, *extra)
    async with asyncio.timeout(WAIT_LIMIT):
        out, err = await process.communicate()
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


def valid_rows(path: Path) -> list[MemberRow]:
    """The rows of the file the reader accepts (bad and duplicate rows left out)."""
    with CsvRows(path) as rows:
        return [row for row in rows if isinstance(row, MemberRow)]


def journal_invites(path: Path) -> Counter[str]:
    """Invitation states in the journal, read straight from the SQLite file."""
    connection = sqlite3.connect(path)
    try:
        ledger = connection.execute("SELECT state FROM invitations")
        return Counter(state for (state,) in ledger)
    finally:
        connection.close()


def invitations(recorder: Recorder) -> int:
    """Invitation emails the academy has "sent" so far."""
    return sum(recorder.invitations.values())


class KillMoment:
    """When to SIGKILL: enough invitations sent, and a create applied this very instant.

    The recorder checks the predicate as each request finishes, before the client has
    read the answer, so the member just created is certainly not in the journal yet.
    """

    def __init__(self, academy: SandboxAcademy, invitations_at_least: int) -> None:
        self._academy = academy
        self._threshold = invitations_at_least
        self.created_id: int | None = None

    def reached(self, recorder: Recorder) -> bool:
        """The ``wait_for`` predicate; remembers the id of the member just created."""
        if invitations(recorder) < self._threshold or not recorder.requests:
            return False
        last = recorder.requests[-1]
        if (last.method, last.path, last.status) != ("POST", "/api/v1/members", 201):
            return False
        self.created_id = self._academy.state.members()[-1].id
        return True


#: name → (invitations seen when the process is killed, as a function of the new members)
KILL_POINTS: dict[str, Callable[[int], int]] = {
    "right-after-the-first-invitations": lambda new: 3,
    "mid-run": lambda new: new // 2,
    "near-the-end": lambda new: new * 9 // 10,
}


@pytest.mark.parametrize("point", list(KILL_POINTS))
async def test_sigkill_then_resume_completes_without_double_invitations(
    tmp_path: Path, point: str
) -> None:
    """Killed at this point, a resumed run completes the job; uncertain invites are listed."""
    async with sandbox(members=SEEDED, courses=1, groups=1, seed=8, faults=FAULTS) as academy:
        state = academy.state
        existing = [m.email for m in state.members()[1:16]]
        people: PeopleFile = write_people_csv(
            tmp_path / "people.csv", rows=ROWS, seed=31, existing_emails=existing
        )
        rows = valid_rows(people.path)
        new_rows = [r for r in rows if state.member_by_email(r.email) is None]
        old_rows = [r for r in rows if state.member_by_email(r.email) is not None]
        assert len(rows) == ROWS - len(people.bad_lines)
        assert old_rows  # some rows update members the academy already has
        report_path = tmp_path / "people.csv.report.json"
        journal_path = tmp_path / "people.csv.journal.sqlite"

        # 1. Start, and SIGKILL once enough invitations went out, at the moment the academy
        #    has just applied a create whose answer the client has not even read yet.
        threshold = KILL_POINTS[point](len(new_rows))
        moment = KillMoment(academy, threshold)
        process = await start_import(academy, people.path)
        async with asyncio.timeout(WAIT_LIMIT):
            await academy.recorder.wait_for(moment.reached)
        process.send_signal(signal.SIGKILL)
        await process.communicate()
        assert process.returncode == -signal.SIGKILL
        killed_with = invitations(academy.recorder)
        assert threshold <= killed_with < len(new_rows)
        assert not report_path.exists()  # it died before writing one
        assert journal_path.exists()

        # 2. Resume with the same journal to completion. Two invitations of this run are
        #    made uncertain for sure: one applied then answered 502, one cut off mid-answer.
        #    A row whose calls all failed (four attempts, seeded faults) is retried by a
        #    further run with the same journal, as a user would.
        academy.script("POST", "/members/{id}/invite", "ok", "applied_then_502", "ok", "reset")
        for _ in range(3):
            code, out, err = await run_import(academy, people.path)
            assert code in (0, 1), err
            report: dict[str, Any] = orjson.loads(report_path.read_bytes())
            if report["totals"]["failed"] == 0:
                break
        assert report["consistent"]
        assert report["accounted_for"] == report["total_rows"] == ROWS
        totals = report["totals"]
        assert totals["failed"] == totals["interrupted"] == 0
        assert totals["skipped_invalid"] == len(people.bad_lines)
        assert totals["created"] + totals["updated"] + totals["unchanged"] == len(rows)
        if point != "right-after-the-first-invitations":  # before that, nothing was committed
            assert totals["resumed"] > 0

        # Every valid member exists exactly once and is in the group.
        emails = Counter(m.email.lower() for m in state.members())
        assert max(emails.values()) == 1
        assert state.member_count == SEEDED + len(new_rows)
        group = state.group_by_name(GROUP)
        assert group is not None
        grouped = set(state.group_member_ids(group.id))
        for row in rows:
            member = state.member_by_email(row.email)
            assert member is not None, row.email
            assert member.id in grouped, row.email

        # Nobody was invited twice; each new member was invited or is listed as uncertain.
        # (Whether a member that existed before may be invited after a crash is pinned down
        # by test_member_that_existed_is_not_invited_after_a_crash_following_its_409.)
        recorder = academy.recorder
        assert max(recorder.invitations.values()) == 1
        by_line = {r["line"]: r for r in report["rows"]}
        uncertain = []
        for row in rows:
            line = by_line[row.line]
            member = state.member_by_email(row.email)
            assert member is not None
            # (A row finished by an earlier resume may lack its id: pinned down, with the
            # reason, by test_uncertain_invitation_of_a_row_resumed_after_its_create_...)
            assert line["member_id"] in ((member.id, None) if line["resumed"] else (member.id,))
            if line["invitation"] == "uncertain":
                uncertain.append(line)
                assert recorder.invitations[member.id] <= 1
            elif line["invitation"] in ("sent", "skipped_already_sent"):
                assert recorder.invitations[member.id] == 1, line
            elif line["invitation"] == "withheld":  # its create's answer died with the run
                assert "could not tell" in line["invitation_reason"], line
                assert recorder.invitations[member.id] == 0, line
            else:
                assert line["invitation"] == "not_requested", line
                assert row in old_rows, line  # every new member was invited
                assert recorder.invitations[member.id] == 0, line
        invited = sum(
            by_line[row.line]["invitation"] not in ("not_requested", "withheld") for row in rows
        )
        assert len(uncertain) == totals["invitations_uncertain"] >= 2
        # The member created just before the kill: if the dying run never journaled its
        # create, the resumed one cannot tell it was ours and withholds the invitation
        # (listed with why), never guessing; if the run got as far as its invitation, the
        # ledger has it. (SIGKILL lands a few instructions later or sooner.)
        cut_off = next(r for r in report["rows"] if r["member_id"] == moment.created_id)
        assert cut_off["invitation"] in ("withheld", "uncertain", "sent"), cut_off
        if cut_off["invitation"] == "withheld":
            assert recorder.invitations[moment.created_id or 0] == 0
        assert academy.pending_script() == {}

        # Uncertain invitations are listed for a human, not re-sent.
        assert "may or may not have been sent" in out
        for line in sorted(uncertain, key=lambda r: r["line"])[:10]:
            assert f"line {line['line']}: {line['email']}" in out
        journal = journal_invites(journal_path)
        assert journal["attempting"] == 0
        assert journal["uncertain"] == len(uncertain)
        assert journal["sent"] == invited - len(uncertain)

        # 3. --resend-uncertain sends exactly the uncertain ones (faults off: no new doubt).
        academy.faults = Faults()
        before = Counter(recorder.invitations)
        code, out, err = await run_import(academy, people.path, "--resend-uncertain")
        assert code == 1, err  # the planted bad rows still make the run "not all ok"
        resent = Counter(recorder.invitations)
        resent.subtract(before)
        assert +resent == Counter({line["member_id"]: 1 for line in uncertain})
        final = orjson.loads(report_path.read_bytes())
        assert final["accounted_for"] == ROWS
        assert final["totals"]["invitations_uncertain"] == 0
        assert final["totals"]["invitations_sent"] == len(uncertain)
        assert final["totals"]["failed"] == 0
        assert state.member_count == SEEDED + len(new_rows)
        journal = journal_invites(journal_path)
        assert journal["uncertain"] == journal["attempting"] == 0
        assert journal["sent"] == invited


async def test_member_that_existed_is_not_invited_after_a_crash_following_its_409(
    tmp_path: Path,
) -> None:
    """A crash after a create answered 409 must not make the resume invite a pre-existing member.

    ``--invite`` means "members this run creates". The create-first path journals the
    invite intent durably before the create; when the create answers 409 the member
    existed already, but that is not journaled before the next commit. Killed in that
    window (here: while the follow-up lookup hangs), the resumed run reads "invite
    pending, member step not done" as "we may have created it" and invites them.
    """
    async with sandbox(members=5, seed=2) as academy:
        existing = academy.state.members()[3]
        people = tmp_path / "people.csv"
        people.write_text(f"email,name\r\n{existing.email},{existing.name}\r\n")
        academy.script("GET", "/members", "hang")  # the lookup that follows the 409
        process = await start_import(academy, people)
        async with asyncio.timeout(WAIT_LIMIT):
            await academy.recorder.wait_for(
                lambda r: r.status_counts[409] == 1 and r.in_flight == 1
            )
        process.send_signal(signal.SIGKILL)
        await process.communicate()
        assert academy.recorder.invitations[existing.id] == 0

        code, _, err = await run_import(academy, people)
        assert code in (0, 1), err
        report = orjson.loads((tmp_path / "people.csv.report.json").read_bytes())
        (row,) = report["rows"]
        assert row["member_id"] == existing.id
        assert academy.state.member_count == 5
        # The killed run never journaled its 409: the resumed one cannot tell, so withholds.
        assert (row["invitation"], academy.recorder.invitations[existing.id]) == (
            "withheld",
            0,
        ), "a member that existed before the import was invited"


async def test_uncertain_invitation_of_a_row_resumed_after_its_create_stays_uncertain(
    tmp_path: Path,
) -> None:
    """Killed between a create and its journal entry, the row's uncertain invite is kept.

    The resumed run finds the member by lookup (its create was applied), so no member
    step is journaled: the row's outcome and member id stay empty. If that run's
    invitation ends uncertain, every later run must still list it as uncertain, and
    ``--resend-uncertain`` must re-send it; neither may forget it ("not_requested").
    Once finished, the row is reported with its member id.
    """
    async with sandbox(members=5, seed=2) as academy:
        people = tmp_path / "people.csv"
        people.write_text("email,name\r\nnew.person@crash.test,New Person\r\n")
        report_path = tmp_path / "people.csv.report.json"
        # The create is applied but its answer cut off; the client's retry then hangs, and
        # the process dies there, before it learnt that the member exists.
        academy.script("POST", "/members", "reset", "hang")
        process = await start_import(academy, people)
        async with asyncio.timeout(WAIT_LIMIT):
            await academy.recorder.wait_for(
                lambda r: r.count("POST", "/members") == 1 and r.in_flight == 1
            )
        process.send_signal(signal.SIGKILL)
        await process.communicate()
        member = academy.state.member_by_email("new.person@crash.test")
        assert member is not None

        # The resumed run cannot tell it created the member: withheld, until released.
        code, _, err = await run_import(academy, people)
        assert code == 1, err
        (row,) = orjson.loads(report_path.read_bytes())["rows"]
        assert (row["invitation"], academy.recorder.invitations[member.id]) == ("withheld", 0)

        academy.script("POST", f"/members/{member.id}/invite", "applied_then_502")
        code, _, err = await run_import(academy, people, "--release-withheld")
        assert code == 1, err
        (row,) = orjson.loads(report_path.read_bytes())["rows"]
        assert row["invitation"] == "uncertain"
        assert academy.recorder.invitations[member.id] == 1  # applied, answered 502

        code, out, err = await run_import(academy, people)
        (row,) = orjson.loads(report_path.read_bytes())["rows"]
        assert row["invitation"] == "uncertain", "a later run forgot the uncertain invitation"
        assert "may or may not have been sent" in out

        code, _, err = await run_import(academy, people, "--resend-uncertain")
        (row,) = orjson.loads(report_path.read_bytes())["rows"]
        assert (row["invitation"], academy.recorder.invitations[member.id]) == ("sent", 2)

        # Finished now: a further run skips the row, and still reports whose row it was.
        code, _, err = await run_import(academy, people)
        assert code == 0, err
        (row,) = orjson.loads(report_path.read_bytes())["rows"]
        assert row["resumed"]
        assert (row["invitation"], row["member_id"]) == ("skipped_already_sent", member.id)


async def test_sigkill_inside_a_group_commit_never_sent_a_mark_that_was_not_durable(
    tmp_path: Path,
) -> None:
    """Killed inside a commit batch: none of its claims was sent; durable ones resume uncertain."""
    async with sandbox(
        members=SEEDED, courses=1, groups=1, seed=8, faults=Faults(seed=3)
    ) as academy:
        people = write_people_csv(tmp_path / "people.csv", rows=ROWS, seed=32, bad_rows=False)
        journal_path = tmp_path / "people.csv.journal.sqlite"
        record = tmp_path / "claimed.json"
        runner = Path(__file__).with_name("kill_in_commit.py")
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            str(runner),
            "120",
            str(record),
            "import",
            str(people.path),
            "--invite",
            "--group",
            GROUP,
            "--concurrency",
            "8",
            env=cli_env(academy),
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        async with asyncio.timeout(WAIT_LIMIT):
            _, err = await process.communicate()
        assert process.returncode == -signal.SIGKILL, err.decode()
        claimed = set(orjson.loads(record.read_bytes()))
        connection = sqlite3.connect(journal_path)
        try:
            durable = {
                member_id: state
                for member_id, state in connection.execute(
                    "SELECT member_id, state FROM invitations"
                    " WHERE state IN ('attempting', 'sent', 'failed', 'uncertain')"
                )
            }
        finally:
            connection.close()
        recorder = academy.recorder
        sent = {member_id for member_id, count in recorder.invitations.items() if count}
        not_durable = claimed - set(durable)
        assert not_durable  # the kill landed inside a batch holding claims
        assert sent.isdisjoint(not_durable)  # no email went out before its mark was on disk
        assert sent <= set(durable)

        # Resumed: a durable "attempting" mark becomes uncertain (never re-sent); a mark
        # that died with the batch was never sent, so its member is invited now, once.
        code, _, err_text = await run_import(academy, people.path)
        assert code == 1, err_text  # the uncertain ones are listed for a person
        report: dict[str, Any] = orjson.loads((tmp_path / "people.csv.report.json").read_bytes())
        assert report["consistent"]
        assert report["totals"]["failed"] == 0
        assert max(recorder.invitations.values()) == 1
        by_member = {r["member_id"]: r for r in report["rows"]}
        for member_id, state in durable.items():
            expected = {"attempting": "uncertain", "uncertain": "uncertain"}.get(state)
            if expected is not None:
                assert by_member[member_id]["invitation"] == expected
                assert recorder.invitations[member_id] <= 1
            elif state == "sent":
                assert recorder.invitations[member_id] == 1
        for member_id in not_durable:
            assert by_member[member_id]["invitation"] in ("sent", "withheld")
            assert recorder.invitations[member_id] == (
                1 if by_member[member_id]["invitation"] == "sent" else 0
            )

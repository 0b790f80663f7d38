"""The import job end to end against the sandbox academy over loopback HTTP."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from conftest import make_client, sandbox

from coursepath_async import APITimeoutError, CoursepathClient, RetryPolicy
from coursepath_async._resources._members import Members
from coursepath_async.bulk import (
    CsvRows,
    ImportOptions,
    ImportReport,
    InviteStateError,
    JournalMismatchError,
    MappingRows,
    MemberRow,
    PlanOptions,
    RowPlan,
    import_members,
    open_journal,
    plan_row,
)
from coursepath_async.bulk._ledger import InvitationLedger
from coursepath_async.testing import Faults, SandboxAcademy
from coursepath_async.testing._people import write_people_csv


@pytest.fixture
async def academy() -> AsyncIterator[SandboxAcademy]:
    async with sandbox(members=10, courses=3, programs=2, groups=2, seed=5) as a:
        yield a


def _client(academy: SandboxAcademy, **kwargs: object) -> CoursepathClient:
    return make_client(
        academy,
        retry=RetryPolicy(max_attempts=8, base_delay=0.001, max_delay=0.01),
        **kwargs,
    )


async def _import(
    academy: SandboxAcademy,
    rows: CsvRows | MappingRows,
    journal_path: Path | None,
    plan: PlanOptions,
    **options: object,
) -> ImportReport:
    async with _client(academy, max_concurrency=16) as client:
        if journal_path is None:
            return await import_members(
                client, rows, journal=None, options=ImportOptions(plan=plan, dry_run=True)
            )
        with open_journal(str(journal_path), rows, kind="import", options=plan) as journal:
            return await import_members(
                client,
                rows,
                journal=journal,
                options=ImportOptions(plan=plan, **options),  # type: ignore[arg-type]
            )


def _people(n: int, **extra: object) -> list[dict[str, object]]:
    return [{"email": f"person{i}@import.test", "name": f"Person {i}", **extra} for i in range(n)]


async def test_creates_members_with_groups_courses_and_programs(
    academy: SandboxAcademy, tmp_path: Path
) -> None:
    """Every row becomes one member, grouped and enrolled as the options say."""
    plan = PlanOptions(groups=("Cohort A",), courses=(1,), programs=(2,))
    report = await _import(academy, MappingRows(_people(30)), tmp_path / "j.sqlite", plan)
    assert report.consistent
    assert report.exit_code == 0
    assert report.totals.created == 30
    state = academy.state
    group = state.group_by_name("Cohort A")
    assert group is not None
    for i in range(30):
        member = state.member_by_email(f"person{i}@import.test")
        assert member is not None
        assert member.name == f"Person {i}"
        assert member.id in state.group_member_ids(group.id)
        assert state.enrolment(1, member.id) is not None
        assert state.program_enrolment(2, member.id) is not None


async def test_existing_members_are_updated_or_left_unchanged(
    academy: SandboxAcademy, tmp_path: Path
) -> None:
    """A row for a known email updates only differing fields; an identical one is unchanged."""
    seeded = academy.state.members()[1:3]
    rows = [
        {"email": seeded[0].email.upper(), "company": "New Company Ltd"},
        {"email": seeded[1].email, "name": seeded[1].name},
    ]
    report = await _import(academy, MappingRows(rows), tmp_path / "j.sqlite", PlanOptions())
    outcomes = [row.outcome for row in report.rows]
    assert outcomes == ["updated", "unchanged"]
    assert academy.state.member(seeded[0].id).company == "New Company Ltd"
    assert academy.state.member_count == 10


async def test_external_id_match_moves_the_email(academy: SandboxAcademy, tmp_path: Path) -> None:
    """A row keyed by externalId finds its member even after the email changed, and updates it."""
    member = academy.state.add_member("old.address@import.test", external_id="HR-77")
    rows = [{"email": "new.address@import.test", "externalId": "HR-77"}]
    report = await _import(academy, MappingRows(rows), tmp_path / "j.sqlite", PlanOptions())
    assert [row.outcome for row in report.rows] == ["updated"]
    assert academy.state.member(member.id).email == "new.address@import.test"


async def test_conflicting_keys_fail_the_row_with_a_reason(
    academy: SandboxAcademy, tmp_path: Path
) -> None:
    """An externalId of one member with the email of another is reported, never guessed."""
    academy.state.add_member("a@import.test", external_id="HR-1")
    academy.state.add_member("b@import.test", external_id="HR-2")
    rows = [{"email": "b@import.test", "externalId": "HR-1"}]
    report = await _import(academy, MappingRows(rows), tmp_path / "j.sqlite", PlanOptions())
    (row,) = report.rows
    assert row.outcome == "failed"
    assert row.reason is not None
    assert "HR-1" in row.reason
    assert academy.recorder.count("POST", "/members/{id}") == 0


async def test_invite_new_only_invites_created_members(
    academy: SandboxAcademy, tmp_path: Path
) -> None:
    """``invite="new"`` emails the members this run creates, not existing ones."""
    existing = academy.state.members()[1]
    rows = [*_people(5), {"email": existing.email}]
    report = await _import(
        academy, MappingRows(rows), tmp_path / "j.sqlite", PlanOptions(invite="new")
    )
    assert report.totals.invitations_sent == 5
    assert academy.recorder.invitations[existing.id] == 0
    assert sum(academy.recorder.invitations.values()) == 5


async def test_bad_rows_are_reported_and_the_rest_proceeds(
    academy: SandboxAcademy, tmp_path: Path
) -> None:
    """Each planted bad row of a messy CSV is reported by line; every other row is imported."""
    people = write_people_csv(tmp_path / "people.csv", rows=300, seed=3, course_ids=(1, 2))
    with CsvRows(people.path) as rows:
        report = await _import(academy, rows, tmp_path / "j.sqlite", PlanOptions())
    assert report.consistent
    invalid = {row.line: row.reason for row in report.rows if row.outcome == "skipped_invalid"}
    assert set(invalid) == set(people.bad_lines)
    assert all(reason for reason in invalid.values())
    assert report.totals.created == people.rows - len(people.bad_lines)
    assert report.exit_code == 1


async def test_dry_run_writes_nothing(academy: SandboxAcademy) -> None:
    """A dry run looks members up and reports the plan, but sends no write."""
    existing = academy.state.members()[1]
    rows = [*_people(3), {"email": existing.email, "company": "Changed"}]
    plans: list[RowPlan] = []
    async with _client(academy) as client:
        report = await import_members(
            client,
            MappingRows(rows),
            journal=None,
            options=ImportOptions(plan=PlanOptions(groups=("X",)), dry_run=True),
            on_plan=plans.append,
        )
    assert [row.outcome for row in report.rows] == ["created"] * 3 + ["updated"]
    assert report.dry_run
    assert len(plans) == 4
    writes = [r for r in academy.recorder.requests if r.method != "GET"]
    assert writes == []


async def test_resume_skips_finished_rows(academy: SandboxAcademy, tmp_path: Path) -> None:
    """A second run with the same journal makes no write and reports rows as resumed."""
    plan = PlanOptions(groups=("G",), invite="new")
    first = await _import(academy, MappingRows(_people(20)), tmp_path / "j.sqlite", plan)
    assert first.totals.invitations_sent == 20
    academy.recorder.reset()
    second = await _import(academy, MappingRows(_people(20)), tmp_path / "j.sqlite", plan)
    assert second.totals.resumed == 20
    assert second.totals.invitations_skipped_already_sent == 20
    # Only the preflight's two reads (members/me, one page of members): nothing per row.
    assert academy.recorder.total == 2


async def test_stop_drains_and_reports_the_rest_as_interrupted(
    academy: SandboxAcademy, tmp_path: Path
) -> None:
    """Setting stop finishes rows in flight, reports unreached rows, and a re-run completes."""
    academy.set_faults(latency=0.01)
    stop = asyncio.Event()
    rows = _people(200)
    plan = PlanOptions()
    async with _client(academy, max_concurrency=4) as client:
        with open_journal(
            str(tmp_path / "j.sqlite"), MappingRows(rows), kind="import", options=plan
        ) as journal:
            done = 0

            def on_row(_: object) -> None:
                nonlocal done
                done += 1
                if done == 10:
                    stop.set()

            report = await import_members(
                client,
                MappingRows(rows),
                journal=journal,
                options=ImportOptions(plan=plan, concurrency=8),
                stop=stop,
                on_row=on_row,
            )
    assert report.consistent
    interrupted = report.totals.interrupted
    assert 0 < interrupted < 200
    assert report.totals.created == 200 - interrupted
    academy.set_faults(latency=0.0)
    again = await _import(academy, MappingRows(rows), tmp_path / "j.sqlite", plan)
    assert again.totals.resumed == 200 - interrupted
    assert again.totals.created == 200  # the earlier creates are counted from the journal
    assert academy.state.member_count == 210


async def test_fault_soak_converges_without_duplicates(tmp_path: Path) -> None:
    """Under 5xx, resets, applied-then-502 and 429s each member exists once, invited once."""
    faults = Faults(
        seed=11,
        error_rate=0.10,
        reset_rate=0.03,
        applied_then_fail_rate=0.04,
        rate_limit_rate=0.01,
        retry_after=0.01,
    )
    async with sandbox(members=5, courses=2, groups=1, seed=2, faults=faults) as academy:
        people = write_people_csv(tmp_path / "people.csv", rows=600, seed=9, course_ids=(1,))
        plan = PlanOptions(groups=("Soak",), courses=(2,), invite="new")
        with CsvRows(people.path) as rows:
            report = await _import(academy, rows, tmp_path / "j.sqlite", plan)
        assert report.consistent
        assert report.totals.failed == 0
        valid = people.rows - len(people.bad_lines)
        emails = Counter(m.email for m in academy.state.members())
        assert max(emails.values()) == 1
        assert academy.state.member_count == 5 + valid
        group = academy.state.group_by_name("Soak")
        assert group is not None
        assert len(academy.state.group_member_ids(group.id)) == valid
        seeded = {m.id for m in academy.state.members()[:5]}
        enrolled = {e.member_id for e in academy.state.enrolments(2)} - seeded
        assert len(enrolled) == valid
        assert max(academy.recorder.invitations.values()) == 1
        assert not academy.recorder.duplicate_jtis
        totals = report.totals
        accounted = (
            totals.invitations_sent + totals.invitations_uncertain + totals.invitations_withheld
        )
        assert accounted == valid
        withheld = [row for row in report.rows if row.invitation == "withheld"]
        assert all(
            "could not tell whether this run created" in (r.invitation_reason or "")
            for r in withheld
        )
        assert all(academy.recorder.invitations[r.member_id or 0] == 0 for r in withheld)


# -- resume, invitations and cross-row rules (regressions) -----------------------------------

#: Enough 503s to exhaust the test client's 8 attempts after a first scripted answer.
ALL_RETRIES_503 = (503,) * 7


async def test_invite_of_a_member_created_unseen_survives_a_resume_that_fails_a_step(
    academy: SandboxAcademy, tmp_path: Path
) -> None:
    """``invite="new"``: a create applied unseen is withheld across runs until released."""
    rows = [{"email": "newbie@import.test"}]
    plan = PlanOptions(invite="new", groups=("G",))
    journal = tmp_path / "j.sqlite"
    academy.script("POST", "/members", "applied_then_502", *ALL_RETRIES_503)
    first = await _import(academy, MappingRows(rows), journal, plan)
    assert [row.outcome for row in first.rows] == ["failed"]
    member = academy.state.member_by_email("newbie@import.test")
    assert member is not None  # created, but the run never learnt it
    academy.script("POST", "/members/{id}/groups", 400)
    second = await _import(academy, MappingRows(rows), journal, plan)  # found by lookup
    assert [row.outcome for row in second.rows] == ["failed"]
    third = await _import(academy, MappingRows(rows), journal, plan)
    assert (third.rows[0].invitation, academy.recorder.invitations[member.id]) == ("withheld", 0)
    assert "could not tell" in (third.rows[0].invitation_reason or "")
    released = await _import(academy, MappingRows(rows), journal, plan, release_withheld=True)
    assert (released.rows[0].invitation, academy.recorder.invitations[member.id]) == ("sent", 1)
    again = await _import(academy, MappingRows(rows), journal, plan, release_withheld=True)
    assert (again.rows[0].invitation, academy.recorder.invitations[member.id]) == (
        "skipped_already_sent",
        1,
    )


async def test_existing_member_is_not_invited_on_resume_after_its_create_got_only_5xx(
    academy: SandboxAcademy, tmp_path: Path
) -> None:
    """``invite="new"``: a create-first that saw only 503s, resumed, withholds (never guesses)."""
    existing = academy.state.members()[3]
    rows = [{"email": existing.email}]
    plan = PlanOptions(invite="new")
    journal = tmp_path / "j.sqlite"
    academy.script("POST", "/members", 503, *ALL_RETRIES_503)
    first = await _import(academy, MappingRows(rows), journal, plan)
    assert [row.outcome for row in first.rows] == ["failed"]
    second = await _import(academy, MappingRows(rows), journal, plan)
    (row,) = second.rows
    assert row.member_id == existing.id
    assert (row.invitation, academy.recorder.invitations[existing.id]) == ("withheld", 0)


@pytest.mark.parametrize("concurrency", [1, 8])
async def test_two_rows_acting_on_one_member_conflict_instead_of_both_acting(
    academy: SandboxAcademy, tmp_path: Path, concurrency: int
) -> None:
    """A row moving a member's email and a row with its old email: one acts, one names the other."""
    member = academy.state.add_member("old@import.test", external_id="HR-1")
    rows = [
        {"email": "new@import.test", "externalId": "HR-1", "invite": "yes"},
        {"email": "old@import.test", "invite": "yes"},
    ]
    report = await _import(
        academy, MappingRows(rows), tmp_path / "j.sqlite", PlanOptions(), concurrency=concurrency
    )
    (failed,) = [row for row in report.rows if row.outcome == "failed"]
    other = 2 if failed.line == 1 else 1
    assert failed.reason == f"acts on the same member or email as line {other}"
    assert academy.state.member_count == 11  # no second member for the old address
    assert academy.recorder.invitations == Counter({member.id: 1})


async def test_dry_run_with_a_journal_writes_nothing_and_leaves_the_journal(
    academy: SandboxAcademy, tmp_path: Path
) -> None:
    """``dry_run`` wins over a given journal: no write is sent and the journal stays empty."""
    rows = MappingRows(_people(3))
    plan = PlanOptions(invite="new", groups=("G",))
    async with _client(academy) as client:
        with open_journal(str(tmp_path / "j.sqlite"), rows, kind="import", options=plan) as journal:
            report = await import_members(
                client, rows, journal=journal, options=ImportOptions(plan=plan, dry_run=True)
            )
            assert journal.counts() == {}
    assert report.dry_run
    assert [row.outcome for row in report.rows] == ["created"] * 3
    assert [r for r in academy.recorder.requests if r.method != "GET"] == []


async def test_a_second_import_on_the_same_open_journal_resumes_its_rows(
    academy: SandboxAcademy, tmp_path: Path
) -> None:
    """Reusing one open Journal for a second run skips the finished rows instead of failing them."""
    rows = _people(3)
    plan = PlanOptions(invite="new")
    async with _client(academy) as client:
        with open_journal(
            str(tmp_path / "j.sqlite"), MappingRows(rows), kind="import", options=plan
        ) as journal:
            for _ in range(2):
                report = await import_members(
                    client, MappingRows(rows), journal=journal, options=ImportOptions(plan=plan)
                )
            assert journal.counts() == {"done": 3, "invite_sent": 3}
    assert report.totals.resumed == 3
    assert report.exit_code == 0, report.summary()
    assert set(academy.recorder.invitations.values()) == {1}


async def test_a_journal_error_fails_the_row_without_overwriting_its_done_state(
    academy: SandboxAcademy, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A row the journal refuses is reported failed; the journal keeps the row as it was."""
    rows = _people(1)
    plan = PlanOptions(invite="new")
    journal = tmp_path / "j.sqlite"
    academy.script("POST", "/members/{id}/invite", 400)
    first = await _import(academy, MappingRows(rows), journal, plan)
    assert (first.rows[0].outcome, first.rows[0].invitation) == ("created", "failed")

    async def refuse(self: InvitationLedger, member_id: int, **options: object) -> None:
        raise InviteStateError("refusing to send invitation: scripted")

    monkeypatch.setattr(InvitationLedger, "claim_durably", refuse)
    second = await _import(academy, MappingRows(rows), journal, plan)
    assert second.rows[0].outcome == "failed"
    assert "scripted" in (second.rows[0].reason or "")
    with open_journal(str(journal), MappingRows(rows), kind="import", options=plan) as opened:
        state = opened.get("email:person0@import.test")
    assert state is not None
    assert (state.status, state.error) == ("done", None)


def test_a_journal_over_in_memory_rows_resumes_only_the_same_rows(tmp_path: Path) -> None:
    """Mapping rows are fingerprinted by content; rows from an iterator need a label."""
    path, plan = str(tmp_path / "j.sqlite"), PlanOptions()
    monday = [{"email": "bo@import.test", "department": "Sales"}]
    open_journal(path, MappingRows(monday), kind="import", options=plan).close()
    same = [{"department": "Sales", "email": "bo@import.test"}]  # key order does not matter
    open_journal(path, MappingRows(same), kind="import", options=plan).close()
    tuesday = [{"email": "bo@import.test", "department": "Legal"}]
    with pytest.raises(JournalMismatchError, match="different job: input was rows"):
        open_journal(path, MappingRows(tuesday), kind="import", options=plan)

    other = str(tmp_path / "k.sqlite")
    with pytest.raises(ValueError, match="needs label="):
        open_journal(other, MappingRows(iter(monday)), kind="import", options=plan)
    labelled = MappingRows(iter(monday))
    open_journal(other, labelled, kind="import", options=plan, label="hr-06-01").close()
    with pytest.raises(JournalMismatchError, match="hr-06-02"):
        open_journal(
            other, MappingRows(iter(monday)), kind="import", options=plan, label="hr-06-02"
        )


@pytest.mark.parametrize("flag", ["remove_groups", "unenroll"])
async def test_destructive_plan_options_are_refused_before_any_call(
    academy: SandboxAcademy, tmp_path: Path, flag: str
) -> None:
    """An import refuses remove_groups/unenroll up front, saying why; nothing is sent."""
    rows = [*_people(3), {"email": academy.state.members()[1].email}]
    plan = PlanOptions(**{flag: True})  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=f"cannot {flag}: .*use sync_members"):
        await _import(academy, MappingRows(rows), tmp_path / "j.sqlite", plan)
    assert academy.recorder.total == 0


async def test_invite_that_timed_out_unsent_is_failed_and_sent_on_resume(
    academy: SandboxAcademy, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An invitation timing out before it was sent is "failed", not uncertain: a re-run sends it."""
    rows = _people(1)
    plan = PlanOptions(invite="new")
    journal = tmp_path / "j.sqlite"
    send = Members.invite
    timeouts = [APITimeoutError("could not connect", method="POST", url="/invite", sent=False)]

    async def invite(self: Members, member_id: int, **texts: str | None) -> None:
        if timeouts:
            raise timeouts.pop()
        await send(self, member_id, **texts)

    monkeypatch.setattr(Members, "invite", invite)
    first = await _import(academy, MappingRows(rows), journal, plan)
    assert first.rows[0].invitation == "failed"
    second = await _import(academy, MappingRows(rows), journal, plan)
    member_id = second.rows[0].member_id
    assert member_id is not None
    assert (second.rows[0].invitation, academy.recorder.invitations[member_id]) == ("sent", 1)


async def test_create_finding_an_older_member_after_a_5xx_is_not_counted_as_ours(
    academy: SandboxAcademy, tmp_path: Path
) -> None:
    """A create answered "exists" after a 5xx: ownership unknown, so updated and withheld."""
    rows = [{"email": "late@import.test", "externalId": "HR-9"}]
    plan = PlanOptions(invite="new")
    journal_path = tmp_path / "j.sqlite"

    def someone_else_creates_it(_: RowPlan) -> None:  # between our lookup and our create
        academy.state.add_member("late@import.test", created=datetime(2020, 1, 1, tzinfo=UTC))

    academy.script("POST", "/members", 503)  # then "exists", after an unknown outcome
    async with _client(academy) as client:
        with open_journal(
            str(journal_path), MappingRows(rows), kind="import", options=plan
        ) as journal:
            first = await import_members(
                client,
                MappingRows(rows),
                journal=journal,
                options=ImportOptions(plan=plan),
                on_plan=someone_else_creates_it,
            )
    member = academy.state.member_by_email("late@import.test")
    assert member is not None
    assert (first.rows[0].outcome, first.rows[0].invitation) == ("updated", "withheld")
    second = await _import(academy, MappingRows(rows), journal_path, plan)
    assert (second.rows[0].outcome, second.rows[0].invitation) == ("updated", "withheld")
    assert second.rows[0].resumed
    assert academy.state.member(member.id).external_id == "HR-9"
    assert academy.recorder.invitations[member.id] == 0


async def test_a_group_named_in_another_case_is_joined_not_twinned(
    academy: SandboxAcademy, tmp_path: Path
) -> None:
    """New and existing members whose rows say "SALES" join the academy's "Sales" group."""
    state = academy.state
    catalogue = [g.name for g in state.groups()]
    target = catalogue[0]
    existing = next(
        m for m in state.members()[1:] if m.id not in state.group_member_ids(state.groups()[0].id)
    )
    rows = [
        {"email": "fresh@import.test", "groups": f" {target.upper()} "},
        {"email": existing.email, "groups": target.lower()},
    ]
    report = await _import(academy, MappingRows(rows), tmp_path / "j.sqlite", PlanOptions())
    assert report.exit_code == 0, report.summary()
    assert [g.name for g in state.groups()] == catalogue
    fresh = state.member_by_email("fresh@import.test")
    assert fresh is not None
    assert {fresh.id, existing.id} <= set(state.group_member_ids(state.groups()[0].id))


async def test_an_unexpected_row_error_fails_only_its_row(
    academy: SandboxAcademy, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A non-API exception in one row is a failed line naming the error; the others finish."""

    def flaky(row: MemberRow, *args: Any, **kwargs: Any) -> RowPlan:
        if row.line == 2:
            raise RuntimeError("boom")
        return plan_row(row, *args, **kwargs)

    monkeypatch.setattr("coursepath_async.bulk._import.plan_row", flaky)
    report = await _import(academy, MappingRows(_people(3)), tmp_path / "j.sqlite", PlanOptions())
    outcomes = sorted((r.line, r.outcome) for r in report.rows)
    assert outcomes == [(1, "created"), (2, "failed"), (3, "created")]
    failed = next(r for r in report.rows if r.line == 2)
    assert failed.reason == "unexpected error: RuntimeError: boom"
    assert report.consistent

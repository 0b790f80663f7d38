"""The sync job end to end against the sandbox academy over loopback HTTP."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from contextlib import AbstractAsyncContextManager
from pathlib import Path
from typing import Any

import pytest
from attrs import evolve
from conftest import academy_and_client

from coursepath_async import CoursepathClient, RetryPolicy
from coursepath_async.bulk import (
    AddToGroup,
    CsvRows,
    EnrollProgram,
    MappingRows,
    PlanOptions,
    RemoveFromGroup,
    RowPlan,
    RowReport,
    SyncOptions,
    SyncResult,
    UnenrollCourse,
    open_journal,
    sync_members,
)
from coursepath_async.bulk._pipeline import RowPipeline
from coursepath_async.testing import Faults, SandboxAcademy
from coursepath_async.testing._faults import normalize_path

WRITES = ("POST", "DELETE")


def serving(
    *, attempts: int = 4, **options: Any
) -> AbstractAsyncContextManager[tuple[SandboxAcademy, CoursepathClient]]:
    """A seeded academy and an admin client with instant retries; both closed afterwards."""
    settings = {"members": 40, "courses": 4, "programs": 2, "groups": 3, "seed": 8, **options}
    retry = RetryPolicy(max_attempts=attempts, base_delay=0.0, max_delay=0.0)
    return academy_and_client(client={"retry": retry}, **settings)


async def sync(
    client: CoursepathClient,
    rows: Sequence[object],
    journal: Path | None,
    plan: PlanOptions | None = None,
    *,
    stop: asyncio.Event | None = None,
    on_row: Callable[[RowReport], None] | None = None,
    on_plan: Callable[[RowPlan], None] | None = None,
    concurrency: int | None = None,
) -> SyncResult:
    """Sync ``rows`` (mappings); a dry run when ``journal`` is None."""
    source = MappingRows(rows)
    plan = plan or PlanOptions()
    options = SyncOptions(plan=plan, dry_run=journal is None, concurrency=concurrency)
    if journal is None:
        return await sync_members(
            client, source, journal=None, options=options, on_row=on_row, on_plan=on_plan
        )
    with open_journal(str(journal), source, kind="sync", options=plan) as opened:
        return await sync_members(
            client, source, journal=opened, options=options, stop=stop, on_row=on_row
        )


def writes(academy: SandboxAcademy) -> Counter[str]:
    """Write requests the academy answered, by route (placeholders as ``{}``)."""
    return Counter(
        f"{r.method} {normalize_path(r.route or '?')}"
        for r in academy.recorder.requests
        if r.method in WRITES
    )


def groups_of(academy: SandboxAcademy, member_id: int) -> set[str]:
    state = academy.state
    return {g.name for g in state.groups() if member_id in state.group_member_ids(g.id)}


def courses_of(academy: SandboxAcademy, member_id: int) -> set[int]:
    return set(academy.state.member_course_ids(member_id))


def desired_rows(academy: SandboxAcademy) -> list[dict[str, object]]:
    """Three seeded members (one changed) and three new people, with groups and courses."""
    seeded = academy.state.members()[1:4]
    rows: list[dict[str, object]] = [
        {
            "email": member.email,
            "name": member.name,
            "groups": sorted(groups_of(academy, member.id)),
            "courses": sorted(courses_of(academy, member.id)),
        }
        for member in seeded
    ]
    have = courses_of(academy, seeded[0].id)
    missing = min({1, 2, 3, 4} - have)  # seeded learners have at most two of the four
    rows[0] = {
        **rows[0],
        "company": "Renamed Ltd",
        "groups": ["Sync Team"],
        "courses": sorted(have | {missing}),
    }
    rows.extend(
        {"email": f"new{i}@sync.test", "name": f"New {i}", "groups": "Sync Team", "courses": "3"}
        for i in range(3)
    )
    return rows


def assert_converged(academy: SandboxAcademy, rows: Sequence[Mapping[str, Any]]) -> None:
    """Every desired member exists with the row's fields, groups and courses (at least)."""
    for row in rows:
        member = academy.state.member_by_email(str(row["email"]))
        assert member is not None, row["email"]
        assert member.name == row["name"]
        if "company" in row:
            assert member.company == row["company"]
        groups = row["groups"]
        wanted = {groups} if isinstance(groups, str) else set(groups)
        assert wanted <= groups_of(academy, member.id)
        courses = row["courses"]
        enrolled = {int(courses)} if isinstance(courses, str) else set(courses)
        assert enrolled <= courses_of(academy, member.id)


# -- dry run and minimal plans ------------------------------------------------------------


async def test_dry_run_writes_nothing_and_describes_the_plan() -> None:
    """A dry run lists in parallel, plans creates/updates/adds/enrolments, and never writes."""
    planned: list[RowPlan] = []
    async with serving(members=1_200) as (academy, client):
        rows = desired_rows(academy)
        before = academy.dump()
        result = await sync(client, rows, None, PlanOptions(programs=(2,)), on_plan=planned.append)
        recorder = academy.recorder
        assert writes(academy) == Counter()
        assert academy.dump() == before
        # 1,200 members: at least three pages of 500; every group and course listed.
        assert recorder.count("GET", "/members") >= 3
        listed = {r.path for r in recorder.requests if r.method == "GET"}
        assert {f"/api/v1/groups/{g.id}/members" for g in academy.state.groups()} <= listed
        assert {f"/api/v1/courses/{c.id}/members" for c in academy.state.courses()} <= listed
    counts = result.plan.counts
    assert (counts.creates, counts.updates, counts.unchanged, counts.conflicts) == (3, 1, 2, 0)
    assert (counts.group_adds, counts.course_enrolments, counts.program_enrolments) == (4, 4, 6)
    assert planned == list(result.plan.rows)
    text = "\n".join(result.plan.describe())
    assert "create member new0@sync.test (name='New 0')" in text
    assert "update company" in text
    assert "'Renamed Ltd'" in text
    assert "add to group 'Sync Team'" in text
    assert "enrol in course 3" in text
    assert "0 destructive" in text
    assert "DESTRUCTIVE" not in text
    report = result.report
    assert report.dry_run
    assert report.kind == "sync"
    assert report.consistent
    assert [row.outcome for row in report.rows] == [
        "updated",
        "unchanged",
        "unchanged",
        "created",
        "created",
        "created",
    ]


async def test_a_second_sync_plans_only_program_ensures(tmp_path: Path) -> None:
    """After a sync, the same rows plan nothing but the idempotent program "ensure" steps."""
    plan = PlanOptions(programs=(1,))
    async with serving() as (academy, client):
        rows = desired_rows(academy)
        first = await sync(client, rows, tmp_path / "first.sqlite", plan)
        assert first.report.exit_code == 0, first.report.summary()
        assert_converged(academy, rows)
        academy.recorder.reset()
        second = await sync(client, rows, tmp_path / "second.sqlite", plan)
        assert writes(academy) == Counter({"POST /api/v1/programs/{}/members/{}/programmember": 6})
    steps = [step for row in second.plan.rows for step in row.steps]
    assert steps == [EnrollProgram(1)] * 6
    assert {row.outcome for row in second.report.rows} == {"unchanged"}
    assert first.report.totals.created == 3
    assert first.report.totals.updated == 1


# -- destructive steps ----------------------------------------------------------------------


async def test_destructive_steps_only_with_their_flags(tmp_path: Path) -> None:
    """Group removals and unenrolments are planned and applied only when asked for."""
    async with serving() as (academy, client):
        state = academy.state
        target, bystander = state.members()[5], state.members()[6]
        for member in (target, bystander):
            state.join_group(member.id, "Old Group")
            state.join_group(member.id, "Keep")
            for course in (1, 2):
                state.enrol(course, member.id)
        academy.complete_course(1, target.id, score=50.0, success=False)
        rows = [{"email": target.email, "groups": "keep", "courses": "2"}]  # case ignored

        gentle = await sync(client, rows, None)
        assert gentle.plan.counts.destructive == 0
        assert not any(
            isinstance(s, RemoveFromGroup | UnenrollCourse) for s in gentle.plan.rows[0].steps
        )

        flags = PlanOptions(remove_groups=True, unenroll=True)
        preview = await sync(client, rows, None, flags)
        lines = preview.plan.describe()
        assert writes(academy) == Counter()
        assert preview.plan.counts.group_removals == len(groups_of(academy, target.id)) - 1
        assert any("DESTRUCTIVE: remove from group 'Old Group'" in line for line in lines)
        assert any("DESTRUCTIVE: unenroll from course 1 (deletes" in line for line in lines)
        assert preview.plan.rows[0].destructive

        applied = await sync(client, rows, tmp_path / "j.sqlite", flags)
        assert applied.report.exit_code == 0
        assert applied.report.rows[0].outcome == "updated"
        assert groups_of(academy, target.id) == {"Keep"}
        assert courses_of(academy, target.id) == {2}
        assert state.enrolment(1, target.id) is None  # its result is gone, as documented
        assert {"Old Group", "Keep"} <= groups_of(academy, bystander.id)  # not in the rows
        assert {1, 2} <= courses_of(academy, bystander.id)


# -- resume, invalid rows, faults -----------------------------------------------------------


async def test_resume_skips_rows_the_journal_finished(tmp_path: Path) -> None:
    """A stopped sync resumes: finished rows are skipped, each new member invited once."""
    rows = [
        {"email": f"person{i}@sync.test", "name": f"Person {i}", "groups": "Night"}
        for i in range(24)
    ]
    plan = PlanOptions(programs=(2,), invite="new")
    journal = tmp_path / "j.sqlite"
    stop = asyncio.Event()
    seen: list[RowReport] = []

    def stop_after_six(row: RowReport) -> None:
        seen.append(row)
        if len(seen) == 6:
            stop.set()  # like Ctrl-C: rows in flight finish, the rest wait for the re-run

    async with serving() as (academy, client):
        first = await sync(
            client, rows, journal, plan, stop=stop, on_row=stop_after_six, concurrency=3
        )
        finished = {row.line for row in first.report.rows if row.outcome != "interrupted"}
        interrupted = len(rows) - len(finished)
        assert first.report.consistent
        assert 6 <= len(finished) < len(rows)
        assert first.report.totals.interrupted == interrupted
        assert first.report.exit_code == 1

        mark = academy.recorder.total
        second = await sync(client, rows, journal, plan)
        routes = Counter(
            f"{r.method} {normalize_path(r.route or '?')}"
            for r in list(academy.recorder.requests)[mark:]
            if r.method in WRITES
        )
        invitations = academy.recorder.invitations
    assert second.report.exit_code == 0, second.report.summary()
    assert {row.line for row in second.report.rows if row.resumed} == finished
    assert routes["POST /api/v1/programs/{}/members/{}/programmember"] == interrupted
    assert routes["POST /api/v1/members"] == interrupted
    assert len(invitations) == 24
    assert set(invitations.values()) == {1}
    with open_journal(str(journal), MappingRows(rows), kind="sync", options=plan) as reopened:
        assert reopened.counts() == {"done": 24, "invite_sent": 24}


async def test_resume_retries_failed_invites_but_never_uncertain_ones(tmp_path: Path) -> None:
    """On resume a refused invitation is sent once; one that may have gone out is not re-sent."""
    rows = [{"email": f"invitee{i}@sync.test", "name": f"Invitee {i}"} for i in range(8)]
    plan = PlanOptions(invite="new")
    journal = tmp_path / "j.sqlite"
    async with serving() as (academy, client):
        academy.script("POST", "/members/{id}/invite", 400, "applied_then_502")
        first = await sync(client, rows, journal, plan)
        by_invitation = {row.invitation: row.email for row in first.report.rows}
        assert Counter(row.invitation for row in first.report.rows) == Counter(
            {"sent": 6, "failed": 1, "uncertain": 1}
        )
        second = await sync(client, rows, journal, plan)
        invitations = academy.recorder.invitations
        emails = {academy.state.member(i).email: n for i, n in invitations.items()}
    again = {row.email: row.invitation for row in second.report.rows}
    assert again[by_invitation["failed"]] == "sent"
    assert again[by_invitation["uncertain"]] == "uncertain"
    assert second.report.totals.resumed == 6
    assert second.report.exit_code == 1  # the uncertain one still needs a human
    assert emails == {str(row["email"]): 1 for row in rows}  # nobody emailed twice


async def test_invalid_and_conflicting_rows_are_reported(tmp_path: Path) -> None:
    """Bad rows and conflicts are reported with line and reason; the good rows are synced."""
    async with serving() as (academy, client):
        academy.state.add_member("a@sync.test", external_id="HR-1")
        academy.state.add_member("b@sync.test", external_id="HR-2")
        rows: list[object] = [
            {"email": "good@sync.test", "name": "Good"},
            {"email": "not-an-email"},
            {"email": "GOOD@sync.test"},
            "not a mapping",
            {"email": "b@sync.test", "externalId": "HR-1"},
        ]
        result = await sync(client, rows, tmp_path / "j.sqlite")
        assert academy.state.member_by_email("good@sync.test") is not None
    report = result.report
    assert report.consistent
    assert report.total_rows == 5
    assert report.exit_code == 1
    outcomes = {row.line: (row.outcome, row.reason or "") for row in report.rows}
    assert outcomes[1] == ("created", "")
    assert outcomes[2][0] == "skipped_invalid"
    assert "email" in outcomes[2][1]
    assert outcomes[3][0] == "skipped_invalid"
    assert "duplicate of line 1" in outcomes[3][1]
    assert outcomes[4][0] == "skipped_invalid"
    assert "not a mapping" in outcomes[4][1]
    assert outcomes[5][0] == "failed"
    assert "HR-1" in outcomes[5][1]
    assert result.plan.counts.conflicts == 1


async def test_converges_under_injected_faults(tmp_path: Path) -> None:
    """With 5% of requests failing (seeded), one sync still reaches the desired state."""
    rows = [
        {
            "email": f"staff{i}@sync.test",
            "name": f"Staff {i}",
            "department": ("Ops", "Sales")[i % 2],
            "groups": ["Faulty", ("Ops", "Sales")[i % 2]],
            "courses": [1 + i % 4],
        }
        for i in range(60)
    ]
    plan = PlanOptions(programs=(1,))
    async with serving(attempts=8, faults=Faults(seed=21, error_rate=0.05)) as (academy, client):
        result = await sync(client, rows, tmp_path / "j.sqlite", plan)
        assert academy.recorder.fault_counts  # faults did fire
        assert result.report.exit_code == 0, result.report.summary()
        again = await sync(client, rows, None, plan)
    assert_converged(academy, rows)
    assert all(isinstance(step, EnrollProgram) for row in again.plan.rows for step in row.steps)


async def test_stop_before_the_plan_and_journal_rules(tmp_path: Path) -> None:
    """Stopped while listing, nothing is planned or written; a writing sync needs a journal."""
    stop = asyncio.Event()
    stop.set()
    async with serving() as (academy, client):
        rows = desired_rows(academy)
        result = await sync(client, rows, tmp_path / "j.sqlite", stop=stop)
        assert writes(academy) == Counter()
        with pytest.raises(ValueError, match="journal"):
            await sync_members(client, MappingRows(rows), journal=None, options=SyncOptions())
    assert result.plan.rows == ()
    assert result.report.consistent
    assert result.report.totals.interrupted == len(rows)


async def test_resume_updates_a_member_that_drifted_after_a_failed_step(tmp_path: Path) -> None:
    """A resumed sync re-applies field updates a fresh listing asks for, whatever ran before."""
    async with serving() as (academy, client):
        right = academy.state.add_member("right@sync.test", name="Ann Right")
        renamed = academy.state.add_member("renamed@sync.test", name="Old Name")
        rows = [
            {"email": "right@sync.test", "name": "Ann Right", "groups": "G"},  # matched as is
            {"email": "renamed@sync.test", "name": "New Name", "groups": "G"},  # updated
        ]
        academy.script("POST", "/members/{id}/groups", 400, 400)
        first = await sync(client, rows, tmp_path / "j.sqlite")
        assert [row.outcome for row in first.report.rows] == ["failed", "failed"]
        for member in (right, renamed):  # edited by someone between the runs
            academy.state.update_member(member.id, name="Drifted")
        second = await sync(client, rows, tmp_path / "j.sqlite")
    assert second.report.exit_code == 0, second.report.summary()
    assert academy.state.member(right.id).name == "Ann Right"
    assert academy.state.member(renamed.id).name == "New Name"


# -- group names, unusable data, missing columns ---------------------------------------------


async def test_a_group_in_another_case_is_named_as_the_academy_spells_it(tmp_path: Path) -> None:
    """A row naming an existing group in another case joins it instead of creating a twin."""
    async with serving() as (academy, client):
        state = academy.state
        catalogue = [g.name for g in state.groups()]
        target = catalogue[0]
        member = next(m for m in state.members()[1:] if target not in groups_of(academy, m.id))
        rows = [{"email": member.email, "groups": f"  {target.upper()} "}]
        result = await sync(client, rows, tmp_path / "j.sqlite")
        assert result.plan.rows[0].steps == (AddToGroup(target),)
        assert [g.name for g in state.groups()] == catalogue
        assert target in groups_of(academy, member.id)


async def test_remove_groups_removes_every_spelling_the_row_does_not_want(tmp_path: Path) -> None:
    """A member in both "Sales" and "SALES" whose row wants only "Trainers" leaves both."""
    async with serving() as (academy, client):
        member = academy.state.members()[5]
        academy.state.leave_all_groups(member.id)
        academy.state.join_group(member.id, "Sales")
        academy.state.join_group(member.id, "SALES")
        rows = [{"email": member.email, "groups": "Trainers"}]
        flags = PlanOptions(remove_groups=True)
        result = await sync(client, rows, tmp_path / "j.sqlite", flags)
        assert result.report.exit_code == 0, result.report.summary()
        assert result.plan.counts.group_removals == 2
        assert groups_of(academy, member.id) == {"Trainers"}


async def test_group_names_compare_trimmed_and_removals_keep_the_exact_name() -> None:
    """A group listed as 'Sales ' is the row's 'sales'; a removal names it exactly as listed."""
    async with serving() as (academy, client):
        state = academy.state
        member = state.members()[5]
        state.leave_all_groups(member.id)
        state.add_group("Sales ")
        state.join_group(member.id, "Sales ")
        flags = PlanOptions(remove_groups=True)
        kept = await sync(client, [{"email": member.email, "groups": "sales"}], None, flags)
        left = await sync(client, [{"email": member.email, "groups": "Team Z"}], None, flags)
        assert kept.plan.rows[0].steps == ()
        assert RemoveFromGroup("Sales ") in left.plan.rows[0].steps
        assert groups_of(academy, member.id) == {"Sales "}


async def test_a_blank_academy_group_is_ignored_not_fatal(tmp_path: Path) -> None:
    """A catalogue group named only with spaces is skipped; every row is still applied."""
    async with serving() as (academy, client):
        members = academy.state.members()[3:6]
        academy.state.add_group("  ")
        academy.state.join_group(members[-1].id, "  ")
        rows = [{"email": m.email, "groups": "Team Z"} for m in members]
        flags = PlanOptions(remove_groups=True)
        result = await sync(client, rows, tmp_path / "j.sqlite", flags, concurrency=1)
        assert result.report.exit_code == 0, result.report.summary()
        assert all(not isinstance(s, RemoveFromGroup) for r in result.plan.rows for s in r.steps)
        assert all("Team Z" in groups_of(academy, m.id) for m in members)


async def test_an_unexpected_row_error_fails_only_its_row(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A non-API exception in one row is a failed line naming the error; the rest finish."""
    run = RowPipeline.run

    async def flaky(self: RowPipeline, *args: Any, **kwargs: Any) -> RowReport:
        if args[0].line == 2:
            raise RuntimeError("boom")
        return await run(self, *args, **kwargs)

    monkeypatch.setattr(RowPipeline, "run", flaky)
    async with serving() as (academy, client):
        rows = [{"email": m.email, "groups": "Team Z"} for m in academy.state.members()[3:6]]
        result = await sync(client, rows, tmp_path / "j.sqlite", concurrency=1)
    outcomes = [(r.line, r.outcome) for r in result.report.rows]
    assert sorted(outcomes) == [(1, "updated"), (2, "failed"), (3, "updated")]
    failed = next(r for r in result.report.rows if r.line == 2)
    assert failed.reason == "unexpected error: RuntimeError: boom"
    assert result.report.consistent


async def test_destructive_flags_refuse_rows_without_the_column(tmp_path: Path) -> None:
    """unenroll/remove_groups without a courses/groups column (or option) send nothing."""
    csv = tmp_path / "people.csv"
    csv.write_text("email,name,groups\nada@x.test,Ada,Team Z\n", encoding="utf-8")
    unenroll = SyncOptions(plan=PlanOptions(unenroll=True), dry_run=True)
    remove = SyncOptions(plan=PlanOptions(remove_groups=True), dry_run=True)
    rows: list[dict[str, object]] = [{"email": "ada@x.test", "courses": "1"}, {"email": "b@x.test"}]
    async with serving() as (academy, client):
        with CsvRows(csv) as source, pytest.raises(ValueError, match="no 'courses' column"):
            await sync_members(client, source, journal=None, options=unenroll)
        with pytest.raises(ValueError, match="line 2 has no 'courses' key"):
            await sync_members(client, MappingRows(rows), journal=None, options=unenroll)
        with pytest.raises(ValueError, match="remove_groups refused: line 1 has no 'groups'"):
            await sync_members(client, MappingRows(rows), journal=None, options=remove)
        with pytest.raises(ValueError, match="cannot be checked"):
            await sync_members(client, MappingRows(iter(rows)), journal=None, options=unenroll)
        assert academy.recorder.total == 0
        allowed: list[tuple[CsvRows | MappingRows, SyncOptions]] = [
            (CsvRows(csv), remove),
            (MappingRows(rows), SyncOptions(plan=PlanOptions(unenroll=True, courses=[2]))),
            (MappingRows(iter(rows)), evolve(unenroll, missing_means_none=True)),
        ]
        for allowed_rows, options in allowed:
            options = evolve(options, dry_run=True)
            result = await sync_members(client, allowed_rows, journal=None, options=options)
            assert result.report.consistent

"""Safe bulk jobs in the library: preflight, bounded removals, the report contract, actions."""

from __future__ import annotations

from contextlib import AbstractAsyncContextManager
from pathlib import Path
from typing import get_args

import orjson
import pytest
from conftest import academy_and_client

from coursepath_async import CoursepathClient, RetryPolicy
from coursepath_async.bulk import (
    ActionKind,
    ImportOptions,
    Invitation,
    MappingRows,
    PlanOptions,
    PreflightError,
    RemovalsRefusedError,
    RowOutcome,
    SyncOptions,
    import_members,
    open_journal,
    preflight,
    removal_limit,
    sync_members,
)
from coursepath_async.bulk._ledger import OWED_REASON
from coursepath_async.testing import SandboxAcademy

#: The JSON report's contract, written out: renaming or dropping any of these is breaking.
ROW_KEYS = {
    "line",
    "email",
    "outcome",
    "invitation",
    "invitation_reason",
    "member_id",
    "reason",
    "resumed",
    "actions",
}
OUTCOMES = {"created", "updated", "unchanged", "failed", "skipped_invalid", "interrupted"}
INVITATIONS = {
    "sent",
    "uncertain",
    "withheld",
    "not_requested",
    "failed",
    "skipped_already_sent",
    "would_send",
    "acknowledged",
}
ACTION_KINDS = {
    "create",
    "update",
    "add_group",
    "remove_group",
    "enroll",
    "unenroll",
    "enroll_program",
    "invite",
}
TOTALS = {
    "rows",
    "succeeded",
    "created",
    "updated",
    "unchanged",
    "failed",
    "skipped_invalid",
    "interrupted",
    "resumed",
    "invitations_sent",
    "invitations_uncertain",
    "invitations_withheld",
    "invitations_failed",
    "invitations_skipped_already_sent",
    "invitations_acknowledged",
    "invitations_would_send",
    "unenrolled",
    "left_groups",
}
DOCUMENT = {
    "kind",
    "source",
    "dry_run",
    "total_rows",
    "accounted_for",
    "consistent",
    "exit_code",
    "blank_lines",
    "ignored_columns",
    "totals",
    "rows",
}


def serving(
    *, members: int = 6
) -> AbstractAsyncContextManager[tuple[SandboxAcademy, CoursepathClient]]:
    """A small seeded academy and an admin client with instant retries."""
    retry = RetryPolicy(max_attempts=2, base_delay=0.0, max_delay=0.0)
    return academy_and_client(
        client={"retry": retry}, members=members, courses=3, groups=2, seed=11
    )


def _writes(academy: SandboxAcademy) -> int:
    return sum(1 for r in academy.recorder.requests if r.method != "GET")


def test_the_contract_names_match_the_code() -> None:
    """The pinned outcomes, invitations and action kinds are exactly the code's literals."""
    assert set(get_args(RowOutcome)) == OUTCOMES
    assert set(get_args(Invitation)) == INVITATIONS
    assert set(get_args(ActionKind)) == ACTION_KINDS


async def test_the_json_report_keeps_its_contract(tmp_path: Path) -> None:
    """A real import's JSON report has every pinned key, and only pinned values."""
    async with serving() as (academy, client):
        existing = academy.state.members()[2]
        rows = MappingRows(
            [
                {"email": "new@x.test", "groups": "Crew", "courses": "1"},
                {"email": existing.email, "name": "Renamed Person"},
                {"email": "not-an-email"},
                {"email": academy.state.members()[3].email, "invite": "yes"},
            ]
        )
        plan = PlanOptions(invite="new", programs=(1,))
        with open_journal(str(tmp_path / "j.sqlite"), rows, kind="import", options=plan) as j:
            report = await import_members(client, rows, journal=j, options=ImportOptions(plan=plan))
    document = orjson.loads(report.to_json())
    assert set(document) >= DOCUMENT
    assert set(document["totals"]) >= TOTALS
    assert document["exit_code"] == 1  # the invalid row
    for entry in document["rows"]:
        assert set(entry) >= ROW_KEYS
        assert entry["outcome"] in OUTCOMES
        assert entry["invitation"] in INVITATIONS
        for action in entry["actions"]:
            assert set(action) == {"kind", "target", "at"}
            assert action["kind"] in ACTION_KINDS
    new, renamed, _, asked = document["rows"]
    assert [(a["kind"], a["target"]) for a in new["actions"]] == [
        ("create", "new@x.test"),
        ("add_group", "Crew"),
        ("enroll", 1),
        ("enroll_program", 1),
        ("invite", None),
    ]
    assert all(a["at"] for a in new["actions"])
    assert new["invitation_reason"] == OWED_REASON
    assert next((a["kind"], a["target"]) for a in renamed["actions"]) == ("update", "name")
    assert renamed["invitation"] == "not_requested"
    assert renamed["invitation_reason"].startswith("existing member")
    assert asked["invitation_reason"] == "the row's invite column says yes"


async def test_a_missing_course_stops_the_import_before_any_write(tmp_path: Path) -> None:
    """PreflightError names the course; no member, no journal row, no academy binding."""
    async with serving() as (academy, client):
        rows = MappingRows([{"email": "a@x.test"}, {"email": "b@x.test", "courses": "42"}])
        plan = PlanOptions(courses=(999,), invite="new")
        with open_journal(str(tmp_path / "j.sqlite"), rows, kind="import", options=plan) as j:
            with pytest.raises(PreflightError) as caught:
                await import_members(client, rows, journal=j, options=ImportOptions(plan=plan))
            assert not j.has_rows()
        assert caught.value.problems == (
            "course 42 does not exist (named by line 2 of the rows)",
            "course 999 does not exist (named by PlanOptions.courses)",
        )
        assert _writes(academy) == 0
        assert academy.recorder.count("GET", "/members/me") == 1


async def test_preflight_false_lets_rows_fail_one_by_one(tmp_path: Path) -> None:
    """``preflight=False`` skips the checks: the missing course fails each row instead."""
    async with serving() as (academy, client):
        rows = MappingRows([{"email": "a@x.test", "courses": "42"}])
        plan = PlanOptions()
        with open_journal(str(tmp_path / "j.sqlite"), rows, kind="import", options=plan) as j:
            report = await import_members(
                client, rows, journal=j, options=ImportOptions(plan=plan), preflight=False
            )
        assert academy.recorder.count("GET", "/members/me") == 0
    assert report.rows[0].outcome == "failed"
    assert "404" in (report.rows[0].reason or "")


async def test_a_learner_cannot_run_a_sync() -> None:
    """Acting as a learner, the preflight says admin endpoints are needed (a 403)."""
    async with serving() as (academy, client):
        learner = client.as_user(academy.state.members()[1].email)
        with pytest.raises(PreflightError, match="may not use the admin endpoints"):
            await preflight(learner, MappingRows([]), options=PlanOptions())


async def _enrolled(academy: SandboxAcademy, count: int) -> list[dict[str, str]]:
    """``count`` new learners in courses 1 and 2, as rows that want them in none."""
    rows = []
    for i in range(count):
        member = academy.state.add_member(f"l{i}@school.test", name=f"L {i}")
        academy.state.enrol(1, member.id)
        academy.state.enrol(2, member.id)
        rows.append({"email": member.email, "courses": ""})
    return rows


async def test_a_sync_over_its_removal_bound_writes_nothing(tmp_path: Path) -> None:
    """40 planned unenrolments: refused by max_removals=5 and by the default bound of 20 rows."""
    async with serving(members=1) as (academy, client):
        wanted = await _enrolled(academy, 20)
        plan = PlanOptions(unenroll=True)
        for limit in (5, None):
            rows = MappingRows(wanted)
            with open_journal(str(tmp_path / "j.sqlite"), rows, kind="sync", options=plan) as j:
                with pytest.raises(RemovalsRefusedError) as caught:
                    await sync_members(
                        client, rows, journal=j, options=SyncOptions(plan=plan), max_removals=limit
                    )
                assert not j.has_rows()
            assert (caught.value.planned, caught.value.limit) == (40, limit or removal_limit(20))
            assert len(caught.value.sample) == 5
        assert _writes(academy) == 0
        assert removal_limit(20) == 10
        assert removal_limit(1000) == 50


async def test_declined_removals_write_nothing_and_confirmed_ones_are_logged(
    tmp_path: Path,
) -> None:
    """A confirmation callback saying no refuses; saying yes applies, and the journal logs each."""
    async with serving(members=1) as (academy, client):
        wanted = await _enrolled(academy, 3)
        plan = PlanOptions(unenroll=True)
        seen: list[int] = []

        def decline(plan_seen: object) -> bool:
            seen.append(1)
            return False

        rows = MappingRows(wanted)
        options = SyncOptions(plan=plan)
        with (
            open_journal(str(tmp_path / "j.sqlite"), rows, kind="sync", options=plan) as j,
            pytest.raises(RemovalsRefusedError, match="not confirmed"),
        ):
            await sync_members(client, rows, journal=j, options=options, confirm_removals=decline)
        assert seen == [1]
        assert _writes(academy) == 0
        rows = MappingRows(wanted)
        with open_journal(str(tmp_path / "j.sqlite"), rows, kind="sync", options=plan) as j:
            result = await sync_members(
                client,
                rows,
                journal=j,
                options=SyncOptions(plan=plan),
                confirm_removals=lambda _: True,
            )
            j.finish_run()
            logged = list(j.removals)
        assert result.report.totals.unenrolled == 6
        assert sorted((r.email, r.target) for r in logged) == sorted(
            (row["email"], course) for row in wanted for course in ("1", "2")
        )
        assert {r.kind for r in logged} == {"unenroll"}
        # The next night's run forgets rows and steps, never the removal log.
        rows = MappingRows(wanted)
        with open_journal(str(tmp_path / "j.sqlite"), rows, kind="sync", options=plan) as j:
            await sync_members(client, rows, journal=j, options=SyncOptions(plan=plan))
            assert len(list(j.removals)) == 6


async def test_a_dry_run_counts_would_send_and_is_never_refused() -> None:
    """A dry run plans removals over the bound without refusing, and counts would-invite."""
    async with serving(members=1) as (academy, client):
        wanted = await _enrolled(academy, 20)
        wanted.append({"email": "fresh@school.test", "invite": "yes", "courses": ""})
        result = await sync_members(
            client,
            MappingRows(wanted),
            journal=None,
            options=SyncOptions(plan=PlanOptions(unenroll=True), dry_run=True),
            max_removals=0,
        )
        assert _writes(academy) == 0
    totals = result.report.totals
    assert (totals.unenrolled, totals.invitations_would_send, totals.invitations_sent) == (40, 1, 0)
    assert "removals: would unenroll 40" in result.report.summary()

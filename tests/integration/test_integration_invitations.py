"""Invitations at most once, through real HTTP: ownership known never guessed, ledger by member.

Every test asserts the sandbox's per-member invitation count is at most one, and that
each invitation this job could not prove it owed is in the report, withheld, with why.
"""

from __future__ import annotations

import asyncio
import os
from collections import Counter
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from conftest import make_client, sandbox

from coursepath_async import BadRequestError, CoursepathClient, RetryPolicy
from coursepath_async.bulk import (
    ImportOptions,
    ImportReport,
    JournalGoneError,
    MappingRows,
    PlanOptions,
    SyncOptions,
    import_members,
    open_journal,
    sync_members,
)
from coursepath_async.testing import Faults, SandboxAcademy
from coursepath_async.testing import _records as records

NEW = PlanOptions(invite="new")
ALL = PlanOptions(invite="all")
WITHHELD = "could not tell whether this run created the member"


def _client(academy: SandboxAcademy) -> CoursepathClient:
    return make_client(academy, retry=RetryPolicy(max_attempts=12, base_delay=0.0, max_delay=0.0))


async def _import(
    academy: SandboxAcademy,
    rows: Sequence[Mapping[str, object]],
    journal: Path,
    plan: PlanOptions,
    **options: Any,
) -> ImportReport:
    async with _client(academy) as client:
        source = MappingRows(rows)
        with open_journal(str(journal), source, kind="import", options=plan) as opened:
            return await import_members(
                client, source, journal=opened, options=ImportOptions(plan=plan, **options)
            )


def _assert_at_most_once(
    academy: SandboxAcademy, *reports: ImportReport, alone: bool = True
) -> None:
    """No member got two emails; every withheld invitation says why (and, alone, went nowhere).

    With concurrent jobs a member one job withheld may rightly be invited by the job
    whose create was answered 2xx.
    """
    counts = academy.recorder.invitations
    assert max(counts.values(), default=0) <= 1, counts
    for report in reports:
        for row in report.rows:
            if row.invitation == "withheld":
                assert WITHHELD in (row.invitation_reason or "")
                assert row.member_id is not None
                assert counts[row.member_id] == 0 or not alone


async def test_concurrent_imports_of_overlapping_files_under_5xx_invite_each_new_member_once(
    tmp_path: Path,
) -> None:
    """Two imports sharing 120 people, 5xx everywhere: nobody twice, nobody silently left out."""
    faults = Faults(seed=2026, error_rate=0.15, applied_then_fail_rate=0.05)
    shared = [{"email": f"shared{i}@jobs.test"} for i in range(120)]
    first = [*shared, *({"email": f"a{i}@jobs.test"} for i in range(40))]
    second = [*({"email": f"b{i}@jobs.test"} for i in range(40)), *reversed(shared)]
    async with sandbox(members=3, seed=5, faults=faults) as academy:
        reports = await asyncio.gather(
            _import(academy, first, tmp_path / "a.sqlite", NEW),
            _import(academy, second, tmp_path / "b.sqlite", NEW),
        )
        _assert_at_most_once(academy, *reports, alone=False)
        emails = Counter(m.email for m in academy.state.members())
        assert max(emails.values()) == 1
        assert len(emails) == 3 + 200
        # Every new person was invited by one job, or is listed as uncertain or withheld.
        accounted: set[str] = set()
        for report in reports:
            assert report.totals.failed == 0, report.summary()
            accounted |= {
                row.email or ""
                for row in report.rows
                if row.invitation in ("sent", "uncertain", "withheld")
            }
        assert accounted == {row["email"] for row in [*first, *second]}
        # The loser of each shared create says why it did not invite.
        existing = [r for report in reports for r in report.rows if r.invitation == "not_requested"]
        assert existing
        assert all("existing member" in (r.invitation_reason or "") for r in existing)


@pytest.mark.parametrize("created_date", ["present", "absent"])
async def test_a_member_someone_created_minutes_earlier_is_withheld_after_an_unknown_create(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, created_date: str
) -> None:
    """503, then "exists" for a member made 40 s earlier by someone else: withheld, not guessed."""
    if created_date == "absent":
        plain = records.member_json
        monkeypatch.setattr(
            records,
            "member_json",
            lambda m: {k: v for k, v in plain(m).items() if k != "createdDate"},
        )
    async with sandbox(members=3, seed=5) as academy:
        earlier = datetime.now(UTC) - timedelta(seconds=40)
        other = academy.state.add_member("hired@jobs.test", created=earlier)
        academy.script("POST", "/members", 503)  # then the real answer: it exists
        report = await _import(academy, [{"email": "hired@jobs.test"}], tmp_path / "j", NEW)
        (row,) = report.rows
        assert (row.outcome, row.invitation, row.member_id) == ("unchanged", "withheld", other.id)
        assert report.exit_code == 1
        assert "--release-withheld" in report.summary()
        _assert_at_most_once(academy, report)
        released = await _import(
            academy,
            [{"email": "hired@jobs.test"}],
            tmp_path / "j",
            NEW,
            release_withheld=True,
        )
        assert released.rows[0].invitation == "sent"
        assert academy.recorder.invitations[other.id] == 1


async def test_a_create_confirmed_2xx_is_ours_and_invited_once_with_or_without_created_date(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A 2xx create is the only proof of ownership: enough, even with no createdDate at all."""
    plain = records.member_json
    monkeypatch.setattr(
        records, "member_json", lambda m: {k: v for k, v in plain(m).items() if k != "createdDate"}
    )
    async with sandbox(members=3, seed=5) as academy:
        rows = [{"email": f"new{i}@jobs.test"} for i in range(5)]
        report = await _import(academy, rows, tmp_path / "j", NEW)
        assert [r.invitation for r in report.rows] == ["sent"] * 5
        assert report.exit_code == 0
        _assert_at_most_once(academy, report)


async def _sync_night(
    academy: SandboxAcademy, rows: list[dict[str, object]], journal: Path
) -> ImportReport:
    """One night's ``sync --invite all`` on the shared journal, finished as the CLI does."""
    async with _client(academy) as client:
        source = MappingRows(rows)
        with open_journal(str(journal), source, kind="sync", options=ALL) as opened:
            result = await sync_members(
                client, source, journal=opened, options=SyncOptions(plan=ALL)
            )
            opened.finish_run()
    return result.report


async def test_sync_nights_whose_key_columns_change_never_invite_again(tmp_path: Path) -> None:
    """An externalId added, half-filled, then dropped between nights: one email per member."""
    async with sandbox(members=3, seed=5) as academy:
        journal = tmp_path / "nightly.sqlite"
        people = [f"night{i}@jobs.test" for i in range(6)]
        nights: list[list[dict[str, object]]] = [
            [{"email": e} for e in people],
            [{"email": e, "externalId": f"HR-{i}"} for i, e in enumerate(people)],
            [
                {"email": e, "externalId": f"HR-{i}" if i % 2 else None}
                for i, e in enumerate(people)
            ],
            [{"email": e} for e in people],
        ]
        reports = [await _sync_night(academy, rows, journal) for rows in nights]
        assert [r.invitation for r in reports[0].rows] == ["sent"] * 6
        for later in reports[1:]:
            assert {r.invitation for r in later.rows} == {"skipped_already_sent"}
            assert later.exit_code == 0, later.summary()
        _assert_at_most_once(academy, *reports)
        assert sum(academy.recorder.invitations.values()) == 6


async def test_changed_input_on_an_import_journal_never_invites_again(tmp_path: Path) -> None:
    """``allow_changed_input`` with a key column added resends nothing the ledger has."""
    async with sandbox(members=3, seed=5) as academy:
        journal = tmp_path / "j.sqlite"
        rows: list[dict[str, object]] = [{"email": f"x{i}@jobs.test"} for i in range(4)]
        first = await _import(academy, rows, journal, ALL)
        keyed: list[dict[str, object]] = [
            {**row, "externalId": f"E{i}"} for i, row in enumerate(rows)
        ]
        async with _client(academy) as client:
            source = MappingRows(keyed)
            with open_journal(
                str(journal), source, kind="import", options=ALL, allow_changed_input=True
            ) as opened:
                second = await import_members(
                    client, source, journal=opened, options=ImportOptions(plan=ALL)
                )
        assert {r.invitation for r in second.rows} == {"skipped_already_sent"}
        _assert_at_most_once(academy, first, second)


async def test_a_journal_deleted_mid_run_stops_that_run_and_a_second_job_invites_nobody_twice(
    tmp_path: Path,
) -> None:
    """Unlinked under a running import, the journal stops it; a new job on the path is alone."""
    rows: list[dict[str, object]] = [{"email": f"del{i}@jobs.test"} for i in range(80)]
    journal = tmp_path / "j.sqlite"
    async with sandbox(members=3, seed=5, faults=Faults(latency=0.01)) as academy:
        reached = asyncio.Event()
        seen = 0

        def on_row(_: object) -> None:
            nonlocal seen
            seen += 1
            if seen == 5:
                reached.set()

        async def first_job() -> None:
            async with make_client(academy, max_concurrency=4) as client:
                source = MappingRows(rows)
                with open_journal(str(journal), source, kind="import", options=NEW) as opened:
                    await import_members(
                        client,
                        source,
                        journal=opened,
                        options=ImportOptions(plan=NEW, concurrency=4),
                        on_row=on_row,
                    )

        task = asyncio.create_task(first_job())
        await reached.wait()
        os.unlink(journal)
        second = await _import(academy, rows, journal, NEW)
        with pytest.raises(JournalGoneError, match="deleted"):
            await task
        assert second.totals.failed == 0
        assert seen < len(rows)  # it stopped instead of running to the end
        _assert_at_most_once(academy, second, alone=False)
        assert sum(academy.recorder.invitations.values()) > 0


async def test_a_server_answering_400_for_a_taken_email_imports_existing_people(
    tmp_path: Path,
) -> None:
    """A 400 on a create is "maybe exists": found by email, the row updates instead of failing."""
    async with sandbox(members=3, seed=5) as academy:
        existing = academy.state.members()[1]
        academy.script("POST", "/members", 400)  # this server's way of saying "email in use"
        rows = [{"email": existing.email, "name": "Renamed Person"}]
        report = await _import(academy, rows, tmp_path / "j", NEW)
        (row,) = report.rows
        assert (row.outcome, row.member_id, row.invitation) == (
            "updated",
            existing.id,
            "not_requested",
        )
        assert academy.state.member(existing.id).name == "Renamed Person"
        assert academy.recorder.invitations[existing.id] == 0


async def test_members_create_resolves_a_400_after_an_applied_attempt() -> None:
    """Created, then 502, then 400 "already in use" on the retry: create returns the member."""
    async with sandbox(members=3, seed=5) as academy:
        academy.script("POST", "/members", "applied_then_502", 400)
        async with _client(academy) as client:
            member = await client.members.create("twice@jobs.test", name="Twice")
        assert academy.state.member_by_email("twice@jobs.test") is not None
        assert member.email == "twice@jobs.test"
        unknown = "nobody@jobs.test"
        academy.script("POST", "/members", 503, 400)  # 400 and not found: the 400 stands
        async with _client(academy) as client:
            with pytest.raises(BadRequestError):
                await client.members.create(unknown)

"""The dialect matrix: the SDK's defaults against every sandbox dialect, alone and all at once.

For each preset of ``DIALECTS`` (``default`` and ``all`` included), through real HTTP
with a client on its defaults (``body_format="auto"``, the clock learnt from ``Date``):
the member API, an import of new and existing people with invitations under injected
faults in one run with no failed row and every invitation sent once, a complete listing
and export, and a sync.
"""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
from conftest import make_client, sandbox

from coursepath_async import CoursepathClient, NotFoundError, RetryPolicy
from coursepath_async.bulk import (
    ImportOptions,
    MappingRows,
    PlanOptions,
    SyncOptions,
    export_members,
    export_results,
    import_members,
    open_journal,
    sync_members,
)
from coursepath_async.testing import DIALECTS, Faults, SandboxAcademy

#: More members than the smallest page cap (100), so a capped listing takes pages.
MEMBERS = 130
#: During the import, 429 bursts (refusals: nothing applied) on any request, seeded.
FAULTS = Faults(seed=13, rate_limit_rate=0.03, rate_limit_burst=2, retry_after=0.01)
RETRY = RetryPolicy(max_attempts=6, base_delay=0.0, max_delay=0.0)
NEW_PEOPLE, EXISTING_PEOPLE = 12, 6


def _academy(dialect: str) -> SandboxAcademy:
    return sandbox(
        dialect=dialect,
        members=MEMBERS,
        courses=2,
        programs=1,
        groups=3,
        seed=5,
        completion_rate=0.5,
    )


def _client(academy: SandboxAcademy) -> CoursepathClient:
    return make_client(academy, retry=RETRY, max_concurrency=8)


async def _member_api(academy: SandboxAcademy, client: CoursepathClient, dialect: str) -> None:
    """The member API: get, list, create, update, invite, group and course writes, DELETEs."""
    email = f"api.person@{dialect.replace('_', '-')}.test"
    created = await client.members.create(email, name="Api Person")
    assert (await client.members.get(created.id)).email == email
    assert await client.members.find_by_email(email.upper()) == created
    updated = await client.members.update(created.id, company="Dialects & Co")
    assert updated.company == "Dialects & Co"
    await client.members.invite(created.id, subject="Welcome [to] the academy", body="a=b&c")
    await client.members.add_to_group(created.id, "Matrix")
    assert [g.name for g in await client.members.groups(created.id)] == ["Matrix"]
    await client.members.remove_from_group(created.id, "Matrix")
    with pytest.raises(NotFoundError):  # the dialect's error body, JSON or text
        await client.members.remove_from_group(created.id, "Matrix")
    course = (await client.courses.list())[0]
    await client.courses.enroll(course.id, created.id)
    assert (await client.courses.result(course.id, created.id)).member_id == created.id
    await client.courses.unenroll(course.id, created.id)
    invitation = academy.recorder.invitation_log[-1]
    assert (invitation.email, invitation.subject, invitation.body) == (
        email,
        "Welcome [to] the academy",
        "a=b&c",
    )


async def _import(academy: SandboxAcademy, client: CoursepathClient, tmp_path: Path) -> None:
    """New and existing people, ``invite="new"``, under faults: one run, nothing failed.

    ``client`` is the import's own, as a CLI run's would be: the rate it learns from
    the 429s would slow the rest of the test.
    """
    existing = [m.email for m in academy.state.members()[1 : 1 + EXISTING_PEOPLE]]
    new = [f"new{i}@import.test" for i in range(NEW_PEOPLE)]
    rows = [{"email": e, "department": "Imported", "groups": "Imported"} for e in existing + new]
    # Faults on the writes too: creates and updates refused by a proxy (not applied) or
    # applied then answered 502; invitations only see the random 429 bursts.
    academy.script("POST", "/members", 503, "ok", 502, "ok", 500)
    academy.script("POST", "/members/{memberId}", "applied_then_502", "ok", 503)
    plan = PlanOptions(invite="new", groups=("Imported",))
    before = set(academy.recorder.invitations)
    source = MappingRows(rows)
    journal = tmp_path / "import.journal.sqlite"
    academy.faults = FAULTS
    with open_journal(str(journal), source, kind="import", options=plan) as opened:
        report = await import_members(
            client, source, journal=opened, options=ImportOptions(plan=plan)
        )
    academy.faults = Faults()
    assert academy.recorder.fault_counts["rate_limit"] > 0
    totals = report.totals
    assert (totals.rows, totals.failed, totals.interrupted) == (len(rows), 0, 0), report.summary()
    assert (totals.created, totals.invitations_sent) == (NEW_PEOPLE, NEW_PEOPLE)
    assert totals.invitations_uncertain == totals.invitations_failed == 0
    # An existing person whose create met a 5xx may have been created by it, as far as
    # the job can tell: its (unwanted) invitation is withheld, never sent.
    withheld = {row.email for row in report.rows if row.invitation == "withheld"}
    assert withheld <= set(existing)
    invited = {i: n for i, n in academy.recorder.invitations.items() if i not in before}
    assert sorted(academy.state.member(i).email for i in invited) == sorted(new)
    assert set(invited.values()) == {1}
    for email in existing + new:
        member = academy.state.member_by_email(email)
        assert member is not None
        assert member.department == "Imported"


async def _listing_and_export(
    academy: SandboxAcademy, client: CoursepathClient, tmp_path: Path
) -> None:
    """Every member listed once and exported; every enrolment's result exported."""
    listed = [m.id async for m in client.members.list()]
    assert listed == [m.id for m in academy.state.members()]
    out = tmp_path / "members.csv"
    stats = await export_members(client, out, format="csv")
    with out.open(newline="") as handle:
        exported = [int(row["id"]) for row in csv.DictReader(handle)]
    assert stats.records == len(exported) == academy.state.member_count
    assert sorted(exported) == listed
    course = academy.state.courses()[0]
    out = tmp_path / "results.csv"
    results = await export_results(client, out, format="csv", course_ids=[course.id])
    enrolled = [e for e in academy.state.enrolments() if e.course_id == course.id]
    assert results.records == len(enrolled) > 0


async def _sync(academy: SandboxAcademy, client: CoursepathClient, tmp_path: Path) -> None:
    """A sync of a few members into a group and a course: applied, nothing failed."""
    course = academy.state.courses()[-1]
    targets = academy.state.members()[10:14]
    rows = [{"email": m.email, "country": "NL"} for m in targets]
    plan = PlanOptions(groups=("Synced",), courses=(course.id,))
    source = MappingRows(rows)
    journal = tmp_path / "sync.journal.sqlite"
    with open_journal(str(journal), source, kind="sync", options=plan) as opened:
        result = await sync_members(client, source, journal=opened, options=SyncOptions(plan=plan))
    assert result.report.totals.failed == 0, result.report.summary()
    for member in targets:
        assert academy.state.member(member.id).country == "NL"
        assert academy.state.enrolment(course.id, member.id) is not None
        group = academy.state.group_by_name("Synced")
        assert group is not None
        assert member.id in academy.state.group_member_ids(group.id)


@pytest.mark.parametrize("dialect", list(DIALECTS))
async def test_the_sdk_on_its_defaults_works_against_the_dialect(
    dialect: str, tmp_path: Path
) -> None:
    """Member API, an import with invitations under faults, listing, export and sync all pass."""
    async with _academy(dialect) as academy, _client(academy) as client:
        await _member_api(academy, client, dialect)
        async with _client(academy) as importer:
            await _import(academy, importer, tmp_path)
        await _listing_and_export(academy, client, tmp_path)
        await _sync(academy, client, tmp_path)
        assert not academy.recorder.duplicate_jtis
        assert academy.pending_script() == {}
        rejected = academy.recorder.rejected_tokens
    # A clock minutes off costs each client's first call one 401 (two clients here);
    # no other token is ever refused.
    skewed = academy.dialect.clock_offset != 0
    assert sum(rejected.values()) == (2 if skewed else 0), rejected

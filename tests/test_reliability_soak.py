"""The fault soak of issue 6: a big import under every fault at once converges, exactly once.

Rows (``COURSEPATH_SOAK_ROWS``, default 2,000; the issue's full figure is 5,000, run by
``scripts/soak.py``) are imported against a sandbox with 10% 5xx answers, 3% connection
resets, 4% writes applied and then answered 502, and 429 bursts with ``Retry-After``.
Afterwards every valid member exists exactly once, in every group and course the row
and the job asked for, no member got two invitations, and the report accounts for every
row. :func:`run_soak` does the work and returns the figures; the script prints them.
"""

from __future__ import annotations

import os
import time
from collections import Counter
from pathlib import Path

from attrs import frozen
from conftest import make_client, sandbox

from coursepath_async import RetryPolicy
from coursepath_async.bulk import (
    CsvRows,
    ImportOptions,
    MappingRows,
    MemberRow,
    PlanOptions,
    import_members,
    open_journal,
)
from coursepath_async.testing import Faults
from coursepath_async.testing._people import write_people_csv

#: Rows of the in-CI soak; the issue's 5,000 take about 40 s, so the script runs those.
DEFAULT_ROWS = 2_000
SEEDED = 60
JOB_GROUP = "Soak"
JOB_COURSE = 2


def soak_faults(seed: int) -> Faults:
    """The issue's fault mix: 10% 5xx, 3% resets, 4% applied-then-502 writes, 429 bursts."""
    return Faults(
        seed=seed,
        latency=0.001,
        latency_jitter=0.002,
        error_rate=0.10,
        reset_rate=0.03,
        applied_then_fail_rate=0.04,
        rate_limit_rate=0.01,
        rate_limit_burst=3,
        retry_after=0.02,
    )


@frozen(kw_only=True)
class SoakFigures:
    """What a soak did and what it left behind; every ``*_lost``/``duplicate_*`` must be 0."""

    rows: int
    valid_rows: int
    invalid_rows: int
    new_members: int
    requests: int
    faults: dict[str, int]
    rows_lost: int
    stale_rows: int
    failed_rows: int
    duplicate_members: int
    duplicate_invitations: int
    invitations_sent: int
    invitations_uncertain: int
    #: New members whose create had an unknown outcome: listed with why, never guessed.
    invitations_withheld: int
    uninvited_new_members: int
    invited_existing_members: int
    duplicate_jtis: int
    peak_in_flight: int
    elapsed: float
    #: The first few failed rows' lines and reasons, to say why when one fails.
    failures: tuple[str, ...] = ()

    @property
    def clean(self) -> bool:
        """Nothing lost, nothing doubled, every row reported, every new member invited."""
        return not (
            self.rows_lost
            or self.stale_rows
            or self.failed_rows
            or self.duplicate_members
            or self.duplicate_invitations
            or self.uninvited_new_members
            or self.invited_existing_members
            or self.duplicate_jtis
        )

    def lines(self) -> list[str]:
        """The figures as text, one per line."""
        injected = sum(self.faults.values())
        kinds = ", ".join(f"{kind} {n:,}" for kind, n in sorted(self.faults.items()))
        return [
            f"rows                    {self.rows:,} ({self.valid_rows:,} valid, "
            f"{self.invalid_rows:,} planted bad; {self.new_members:,} new members)",
            f"requests                {self.requests:,} (peak {self.peak_in_flight} in flight)",
            f"faults injected         {injected:,}: {kinds}",
            f"rows lost               {self.rows_lost:,}",
            f"rows with stale fields  {self.stale_rows:,}",
            f"failed rows             {self.failed_rows:,}",
            f"duplicate members       {self.duplicate_members:,}",
            f"duplicate invitations   {self.duplicate_invitations:,}",
            f"invitations             {self.invitations_sent:,} sent, "
            f"{self.invitations_uncertain:,} uncertain (listed, not re-sent), "
            f"{self.invitations_withheld:,} withheld (ownership unknown, listed)",
            f"new members uninvited   {self.uninvited_new_members:,}",
            f"old members invited     {self.invited_existing_members:,}",
            f"duplicate token ids     {self.duplicate_jtis:,}",
            f"elapsed                 {self.elapsed:.1f}s",
            *(f"  failed: {failure}" for failure in self.failures),
        ]


async def run_soak(rows: int, folder: Path, *, seed: int = 2026) -> SoakFigures:
    """Import ``rows`` generated people under the soak's faults; measure the outcome."""
    async with sandbox(
        members=SEEDED,
        courses=3,
        groups=3,
        seed=seed,
        faults=soak_faults(seed),
        max_log=1_000,
    ) as academy:
        state = academy.state
        existing = [m.email for m in state.members()[1:SEEDED]]
        people = write_people_csv(
            folder / "soak.csv",
            rows=rows,
            seed=seed,
            existing_emails=existing,
            course_ids=(1, 3),
            groups=3,
        )
        with CsvRows(people.path) as reader:
            valid = [row for row in reader if isinstance(row, MemberRow)]
        new_emails = {r.email_key for r in valid if state.member_by_email(r.email) is None}
        plan = PlanOptions(groups=(JOB_GROUP,), courses=(JOB_COURSE,), invite="new")
        # About 1 attempt in 5 meets a fault, so 8 attempts ran out for one call in ~30 runs
        # of 12,000 writes (a genuine exhaustion, reported as a failed row); 12 make it
        # about 1 in 20,000 runs, so the soak tests what it is about: nothing lost or doubled.
        retry = RetryPolicy(max_attempts=12, base_delay=0.001, max_delay=0.01)
        started = time.monotonic()
        async with make_client(
            academy,
            retry=retry,
            max_concurrency=16,
        ) as client:
            with (
                CsvRows(people.path) as reader,
                open_journal(
                    str(folder / "soak.journal.sqlite"), reader, kind="import", options=plan
                ) as journal,
            ):
                report = await import_members(
                    client, reader, journal=journal, options=ImportOptions(plan=plan)
                )
        elapsed = time.monotonic() - started

        recorder = academy.recorder
        by_line = {r.line: r for r in report.rows}
        unreported = (report.total_rows or 0) - report.accounted_for
        incomplete = 0  # valid rows whose member is missing, or not grouped/enrolled as asked
        uninvited = invited_existing = stale = 0
        for row in valid:
            member = state.member_by_email(row.email)
            if member is None or by_line.get(row.line) is None:
                incomplete += 1
                continue
            groups = [state.group_by_name(name) for name in (JOB_GROUP, *row.groups)]
            courses = (JOB_COURSE, *row.courses)
            if (
                any(g is None or member.id not in state.group_member_ids(g.id) for g in groups)
                or any(state.enrolment(c, member.id) is None for c in courses)
                or by_line[row.line].member_id != member.id
            ):
                incomplete += 1
            if any(getattr(member, k) != v for k, v in row.member_fields().items()):
                stale += 1
            invitation = by_line[row.line].invitation
            if row.email_key in new_emails:
                sent_once = invitation == "sent" and recorder.invitations[member.id] == 1
                withheld = invitation == "withheld" and recorder.invitations[member.id] == 0
                if not (sent_once or withheld or invitation == "uncertain"):
                    uninvited += 1
            elif recorder.invitations[member.id]:
                invited_existing += 1
        emails = Counter(m.email.lower() for m in state.members())
        totals = report.totals
        return SoakFigures(
            rows=report.total_rows or 0,
            valid_rows=len(valid),
            invalid_rows=totals.skipped_invalid,
            new_members=len(new_emails),
            requests=recorder.total,
            faults=dict(recorder.fault_counts),
            rows_lost=unreported + incomplete,
            stale_rows=stale,
            failed_rows=totals.failed + totals.interrupted,
            duplicate_members=sum(n - 1 for n in emails.values() if n > 1),
            duplicate_invitations=sum(n - 1 for n in recorder.invitations.values() if n > 1),
            invitations_sent=totals.invitations_sent,
            invitations_uncertain=totals.invitations_uncertain,
            invitations_withheld=totals.invitations_withheld,
            uninvited_new_members=uninvited,
            invited_existing_members=invited_existing,
            duplicate_jtis=sum(recorder.duplicate_jtis.values()),
            peak_in_flight=recorder.peak_in_flight,
            elapsed=elapsed,
            failures=tuple(
                f"line {r.line}: {r.reason}"
                for r in report.rows
                if r.outcome in ("failed", "interrupted")
            )[:5],
        )


def soak_rows() -> int:
    """How many rows the in-CI soak imports: ``COURSEPATH_SOAK_ROWS``, else 2,000."""
    return int(os.environ.get("COURSEPATH_SOAK_ROWS", DEFAULT_ROWS))


async def test_fault_soak_loses_nothing_and_invites_nobody_twice(tmp_path: Path) -> None:
    """Every valid row lands exactly once, grouped and enrolled; nobody is invited twice."""
    rows = soak_rows()
    figures = await run_soak(rows, tmp_path)
    report = "\n".join(figures.lines())
    assert figures.rows == rows, report
    assert figures.invalid_rows == 6, report  # the planted bad rows, all reported
    assert figures.rows_lost == 0, report
    assert figures.stale_rows == 0, report
    assert figures.failed_rows == 0, report
    assert figures.duplicate_members == 0, report
    assert figures.duplicate_invitations == 0, report
    assert figures.uninvited_new_members == 0, report
    assert figures.invited_existing_members == 0, report
    assert figures.duplicate_jtis == 0, report
    invitations = figures.invitations_sent + figures.invitations_uncertain
    # Withheld: new members whose create's answer was lost, and old members behind a 5xx
    # then "exists" (the client cannot tell the two apart); neither is ever sent.
    assert invitations <= figures.new_members <= invitations + figures.invitations_withheld
    # Every kind of fault the issue names really happened, in proportion.
    requests = figures.requests
    faults = figures.faults
    assert sum(n for k, n in faults.items() if k.startswith("status:5")) > 0.07 * requests
    assert faults["reset"] > 0.015 * requests
    assert faults["applied_then:502"] > 0
    assert faults["rate_limit"] > 0
    assert figures.clean


async def test_existing_member_behind_a_5xx_then_409_is_updated_not_taken_for_new(
    tmp_path: Path,
) -> None:
    """A row for a member who existed before, whose create hit a 502 then a 409, updates them.

    Found by the soak. The first create attempt is refused by a proxy (502, nothing
    applied); the retry answers 409. The client cannot tell that from "my first attempt
    created it" and resolves the member by lookup; the import updates its fields and,
    with ``invite="new"``, withholds its invitation (never sends it).
    """
    async with sandbox(members=5, seed=3) as academy:
        existing = academy.state.members()[2]
        assert existing.company != "Renamed Ltd"
        academy.script("POST", "/members", 502)  # before the app: nothing is created
        rows = [{"email": existing.email, "company": "Renamed Ltd"}]
        plan = PlanOptions(invite="new")
        retry = RetryPolicy(max_attempts=4, base_delay=0.0, max_delay=0.0)
        async with make_client(
            academy,
            retry=retry,
        ) as client:
            with open_journal(
                str(tmp_path / "j.sqlite"), MappingRows(rows), kind="import", options=plan
            ) as journal:
                report = await import_members(
                    client, MappingRows(rows), journal=journal, options=ImportOptions(plan=plan)
                )
        (row,) = report.rows
        company = academy.state.member(existing.id).company
        assert academy.state.member_count == 5
        assert academy.recorder.status_counts[409] == 1  # the scenario really happened
        outcome = (row.outcome, company, row.invitation, academy.recorder.invitations[existing.id])
        # The client cannot tell this 409 from "my first attempt created it": withheld.
        assert outcome == ("updated", "Renamed Ltd", "withheld", 0), row

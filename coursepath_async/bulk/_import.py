"""The import job: create or update every member a file lists, then groups, enrolments, invites.

Rows run concurrently through the client's scheduler at bulk priority, pulled lazily
from the reader so memory stays flat. Each row is journaled (resume after a crash
skips finished work and never re-sends an invitation that may have gone out) and
gets exactly one line in the report, bad rows included.

A row keyed by email alone goes "create first": most imported people are new, so the
create is tried straight away and an "already exists" falls back to lookup and
update. A row with an externalId is looked up first, since its email may have moved.
Two rows of one run never act on the same member or email: the row that claims it
second fails, naming the other line, as a sync's planner does.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime

from attrs import evolve, field, frozen

from .._client import ClientView, _Base
from .._config import Priority
from .._exceptions import ConflictError, CoursepathError, UnprocessableEntityError
from .._models import Member
from ._apply import (
    ApplyOptions,
    OnRow,
    apply_plan,
    create_member,
    failed_report,
    invalid_report,
    keep_invite_intent,
    plan_member_outcome,
    resumed_report,
    row_failure,
    run_reported,
    usable_group_names,
    wants_invite,
)
from ._journal import MEMBER_STEP, InputFingerprint, JobKind, Journal
from ._plan import (
    AcademyIndex,
    CurrentMember,
    MemberClaims,
    PlanOptions,
    RowPlan,
    plan_row,
)
from ._report import ImportReport, RowReport
from ._rows import CsvRows, MappingRows, MemberRow, RowError

Rows = CsvRows | MappingRows


@frozen(kw_only=True)
class ImportOptions:
    """What an import does to every row, on top of the row's own columns."""

    plan: PlanOptions = field(factory=PlanOptions)
    #: Re-send invitations an earlier run left uncertain (may email someone twice).
    resend_uncertain: bool = False
    #: Plan and report without writing anything, journal included (lookups still run).
    dry_run: bool = False
    #: Rows in flight; default: twice the client's budget.
    concurrency: int | None = None


async def import_members(
    client: _Base,
    rows: Rows,
    *,
    journal: Journal | None,
    options: ImportOptions = ImportOptions(),
    stop: asyncio.Event | None = None,
    on_row: OnRow | None = None,
    on_plan: Callable[[RowPlan], None] | None = None,
) -> ImportReport:
    """Import ``rows``; returns a finished report that accounts for every row.

    ``journal`` is required unless ``dry_run``; a dry run neither writes nor touches a
    journal given to it. ``remove_groups`` and ``unenroll`` are refused (ValueError):
    an import never reads members' current groups and courses; a sync does. Setting
    ``stop`` drains: rows in flight finish, the rest are reported as interrupted (a
    re-run with the journal resumes).
    """
    if journal is None and not options.dry_run:
        raise ValueError("an import that writes needs a journal")
    _refuse_destructive(options.plan)
    bulk = client.with_options(priority=Priority.BULK)
    job = _ImportJob(bulk, None if options.dry_run else journal, options, on_plan)
    report = ImportReport(source=source_label(rows), kind="import", dry_run=options.dry_run)
    await run_rows(
        bulk, rows, job.row, report, concurrency=options.concurrency, stop=stop, on_row=on_row
    )
    return report


async def run_rows(
    client: ClientView,
    rows: Rows,
    process: Callable[[MemberRow], Awaitable[RowReport]],
    report: ImportReport,
    *,
    concurrency: int | None,
    stop: asyncio.Event | None,
    on_row: OnRow | None,
) -> None:
    """Feed every reader item to ``process`` with bounded concurrency; report each one."""

    async def handle(item: MemberRow | RowError) -> RowReport:
        if isinstance(item, RowError):
            return invalid_report(item)
        return await process(item)

    await run_reported(
        client,
        iter(rows),
        handle,
        lambda item: item,
        report,
        concurrency=concurrency,
        stop=stop,
        on_row=on_row,
    )
    finish_report(report, rows)


def _refuse_destructive(options: PlanOptions) -> None:
    """Refuse, before anything is sent, the destructive options only a sync can honour."""
    given = [name for name in ("remove_groups", "unenroll") if getattr(options, name)]
    if given:
        raise ValueError(
            f"import_members cannot {' or '.join(given)}: an import never reads members' "
            "current groups and courses; use sync_members for that"
        )


def finish_report(report: ImportReport, rows: Rows) -> None:
    """Close the report with the reader's counts, so it can prove every row is there."""
    report.finish(
        total_rows=rows.stats.rows,
        blank_lines=rows.stats.blank_lines if isinstance(rows, CsvRows) else 0,
        ignored_columns=rows.ignored_columns,
    )


class _ImportJob:
    """Per-row logic of one import run."""

    def __init__(
        self,
        client: ClientView,
        journal: Journal | None,
        options: ImportOptions,
        on_plan: Callable[[RowPlan], None] | None,
    ) -> None:
        self._client = client
        self._journal = journal
        self._catalogue: list[str] | None = None
        self._catalogue_lock = asyncio.Lock()
        self._options = options
        self._apply = ApplyOptions(resend_uncertain=options.resend_uncertain)
        self._on_plan = on_plan
        # Decided once, before any row: a journal that knows no row yet (a new one, or
        # one whose runs never began a row) lets rows skip the query for their state.
        # Not ``journal.resumed``: an earlier call may have filled this open journal.
        self._journal_has_rows = journal is not None and journal.has_rows()
        self._job_started = datetime.now(UTC) if journal is None else journal.created_at
        self._claims = MemberClaims()

    async def row(self, row: MemberRow) -> RowReport:
        """Import one valid row; any failure becomes a failed report line, never lost."""
        try:
            return await self._row(row)
        except Exception as exc:
            reason = row_failure(self._journal, row.natural_key, row.line, exc)
            return RowReport(line=row.line, email=row.email, outcome="failed", reason=reason)

    async def _groups(self, row: MemberRow) -> Sequence[str]:
        """The academy's group names, as it spells them, for a row that names groups.

        Listed once per run, on first need, so a row naming "SALES" joins the academy's
        "Sales" instead of creating a twin; a run whose rows name no group never asks.
        """
        if not (row.groups or self._options.plan.groups):
            return ()
        if self._catalogue is None:
            async with self._catalogue_lock:  # one listing, not one per row in flight
                if self._catalogue is None:  # a failed listing fails this row; the next retries
                    groups = await self._client.groups.list().collect()
                    self._catalogue = usable_group_names(groups)
        return self._catalogue

    async def _row(self, row: MemberRow) -> RowReport:
        journal = self._journal
        # The reader drops duplicate rows, so a journal that had no row knows none now.
        prior = (
            journal.get(row.natural_key) if journal is not None and self._journal_has_rows else None
        )
        if prior is not None and prior.complete:
            return resumed_report(prior, row.line)
        if journal is not None and prior is None and row.external_id is None:
            conflict = self._claims.take(row.line, emails=(row.email,))
            if conflict is not None:
                return RowReport(line=row.line, email=row.email, outcome="failed", reason=conflict)
            created = await self._create_first(journal, row)
            if created is not None:
                return created
        academy = await self._lookup(row)
        plan = self._claim(plan_row(row, academy, self._options.plan), academy)
        if self._on_plan is not None:
            self._on_plan(plan)
        if plan.conflict is not None:
            return RowReport(line=row.line, email=row.email, outcome="failed", reason=plan.conflict)
        if journal is None:  # dry run
            return RowReport(
                line=row.line,
                email=row.email,
                outcome=plan_member_outcome(plan),
                member_id=plan.member_id,
            )
        plan = keep_invite_intent(
            plan,
            row,
            prior,
            self._options.plan.invite,
            member=academy.member(plan.member_id),
            job_started=self._job_started,
        )
        state = journal.begin_row(
            plan.key, line=row.line, email=row.email, invite=wants_invite(plan)
        )
        return await apply_plan(self._client, journal, plan, state, options=self._apply)

    def _claim(self, plan: RowPlan, academy: AcademyIndex) -> RowPlan:
        """Claim the member a plan acts on, its email and the row's; losing is a conflict."""
        member = academy.member(plan.member_id)
        # The member's email too: an email change frees it for no other row.
        return self._claims.claim(plan, also=() if member is None else (member.email,))

    async def _create_first(self, journal: Journal, row: MemberRow) -> RowReport | None:
        """Try the create straight away; ``None`` when the member turned out to exist."""
        plan = plan_row(row, AcademyIndex((), await self._groups(row)), self._options.plan)
        invite = wants_invite(plan)
        begun = journal.begin_new_row(plan.key, line=row.line, email=row.email, invite=invite)
        if invite:
            # The intent to invite must survive a crash right after the create, or a
            # resumed run would find an existing member and never invite them.
            journal.commit()
        try:
            member, ours = await create_member(self._client, row.email, row.member_fields())
        except (ConflictError, UnprocessableEntityError):
            self._existed(journal, plan, row)
            return None
        except CoursepathError as exc:
            reason = f"create member {row.email}: {exc}"
            journal.finish_row(plan.key, error=reason)
            return failed_report(plan, reason)
        if not ours:
            # "Exists" after an uncertain attempt, and the member is older than this row:
            # someone else's, so update it like any existing member, and invite per policy.
            self._existed(journal, plan, row)
            return None
        if self._on_plan is not None:
            self._on_plan(plan)
        journal.record_member(plan.key, member_id=member.id, outcome="created")
        state = evolve(
            begun,
            member_id=member.id,
            outcome="created",
            steps_done=begun.steps_done | {MEMBER_STEP},
        )
        return await apply_plan(self._client, journal, plan, state, options=self._apply)

    @staticmethod
    def _existed(journal: Journal, plan: RowPlan, row: MemberRow) -> None:
        """The member was already there: withdraw the invite intent, durably, then look up."""
        if wants_invite(plan):
            journal.begin_row(plan.key, line=row.line, email=row.email, invite=False)
            journal.commit()  # a crash now must not read "pending" as "we created it"

    async def _lookup(self, row: MemberRow) -> AcademyIndex:
        """The academy's members this row could be: by email and by externalId."""
        members = self._client.members
        by_id: list[Member] = []
        if row.external_id is None:
            by_email = await members.find_by_email(row.email)
        else:
            by_email, by_id = await asyncio.gather(
                members.find_by_email(row.email), members.find_by_external_id(row.external_id)
            )
        found: dict[int, Member] = {m.id: m for m in by_id}
        if by_email is not None:
            found.setdefault(by_email.id, by_email)
        current = [CurrentMember(member=m) for m in found.values()]
        return AcademyIndex(current, await self._groups(row))


def source_label(rows: Rows) -> str:
    """How the report names the input."""
    return str(rows.path) if isinstance(rows, CsvRows) else "rows"


def fingerprint_options(options: PlanOptions) -> dict[str, object]:
    """The settings that change a job's effects: a resumed run must use the same ones."""
    return {
        "groups": list(options.groups),
        "courses": list(options.courses),
        "programs": list(options.programs),
        "invite": options.invite,
        "remove_groups": options.remove_groups,
        "unenroll": options.unenroll,
    }


def open_journal(
    path: str,
    rows: Rows,
    *,
    kind: JobKind,
    options: PlanOptions,
    allow_changed_input: bool = False,
    label: str | None = None,
) -> Journal:
    """Open (or resume) the journal of a job over ``rows`` with these effects.

    A journal resumes only the input it was made for. A file is fingerprinted by its
    content, and so are mapping rows given as a list or tuple. Rows from any other
    iterable cannot be read ahead: they need ``label``, a name that identifies this
    data set (an export id, a date), and resume only under the same label. A label
    given for a list just names it in messages.
    """
    return Journal.open(
        path,
        kind=kind,
        fingerprint=input_fingerprint(rows, label),
        options=fingerprint_options(options),
        allow_changed_input=allow_changed_input,
    )


def input_fingerprint(rows: Rows, label: str | None = None) -> InputFingerprint:
    """What identifies ``rows`` to a journal (see :func:`open_journal`); checks ``label``."""
    if isinstance(rows, CsvRows):
        if label is not None:
            raise ValueError("label is for in-memory rows; a file is fingerprinted by content")
        return InputFingerprint.of_file(rows.path)
    if rows.items is not None:
        return InputFingerprint.of_items(rows.items, source=label or "rows")
    if not label:
        raise ValueError(
            "a journal over rows from an iterator needs label= naming this data set (an "
            "export id, a date): they cannot be read ahead to fingerprint their content, "
            "so nothing else stops the journal resuming different data; or pass a list"
        )
    return InputFingerprint.of_label(label)

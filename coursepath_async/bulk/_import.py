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

import attrs
from attrs import field, frozen

from .._client import ClientView, CoursepathAPI
from .._config import Priority, check_positive_int
from .._exceptions import InvalidInputError
from .._models import Member
from .._validation import positive_or_none
from ._academy import AcademyIndex, CurrentMember
from ._apply import (
    OnRow,
    invalid_report,
    planned_report,
    resumed_report,
    row_failure,
    run_reported,
    usable_group_names,
    writing,
)
from ._claims import MemberClaims
from ._journal import InputFingerprint, JobKind, Journal, JournalGoneError
from ._ledger import ApplyOptions
from ._pipeline import RowPipeline
from ._plan import (
    PlanOptions,
    RowPlan,
    plan_row,
)
from ._preflight import preflight as run_preflight
from ._report import ImportReport, RowReport
from ._rows import CsvRows, MappingRows, MemberRow, RowError

Rows = CsvRows | MappingRows


@frozen(kw_only=True)
class ImportOptions:
    """What an import does to every row, on top of the row's own columns."""

    plan: PlanOptions = field(factory=PlanOptions)
    #: Re-send invitations an earlier run left uncertain (may email someone twice).
    resend_uncertain: bool = False
    #: Send the invitations withheld because a run could not tell it created the member.
    release_withheld: bool = False
    #: Settle uncertain and withheld invitations as they are (recorded in the journal,
    #: never sent, no longer failing the run): for a nightly job that cannot know.
    acknowledge_uncertain: bool = False
    #: Plan and report without writing anything, journal included (lookups still run).
    dry_run: bool = False
    #: Rows in flight; default: twice the client's budget.
    concurrency: int | None = field(default=None, validator=positive_or_none)


async def import_members(
    client: CoursepathAPI,
    rows: Rows,
    *,
    journal: Journal | None,
    options: ImportOptions = ImportOptions(),
    stop: asyncio.Event | None = None,
    on_row: OnRow | None = None,
    on_plan: Callable[[RowPlan], None] | None = None,
    preflight: bool = True,
) -> ImportReport:
    """Import ``rows``; returns a finished report that accounts for every row.

    Before any write, :func:`~coursepath_async.bulk.preflight` checks the academy, the
    key, admin access and every course id the options or rows name (PreflightError);
    ``preflight=False`` skips it (e.g. when the caller ran it already).

    ``journal`` is required unless ``dry_run``; a dry run neither writes nor touches a
    journal given to it. ``remove_groups`` and ``unenroll`` are refused (ValueError):
    an import never reads members' current groups and courses; a sync does. Setting
    ``stop`` drains: rows in flight finish, the rest are reported as interrupted (a
    re-run with the journal resumes).
    """
    if journal is None and not options.dry_run:
        raise InvalidInputError("an import that writes needs a journal", argument="journal")
    _refuse_destructive(options.plan)
    if options.concurrency is not None:  # refused before the preflight sends anything
        check_positive_int("concurrency", options.concurrency)
    bulk = client.with_options(priority=Priority.BULK)
    report = ImportReport(source=source_label(rows), kind="import", dry_run=options.dry_run)
    with client._observe_job("import", lambda: attrs.asdict(report.totals)):
        if preflight:  # the job's first calls: in its span and on its lane
            await run_preflight(bulk, rows, options=options.plan)
        if journal is not None and not options.dry_run:
            journal.bind_academy(client.base_url)
        job = _ImportJob(bulk, None if options.dry_run else journal, options, on_plan)
        async with writing(None if options.dry_run else journal):
            await run_rows(
                bulk,
                rows,
                job.row,
                report,
                concurrency=options.concurrency,
                stop=stop,
                on_row=on_row,
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
        raise InvalidInputError(
            f"import_members cannot {' or '.join(given)}: an import never reads members' "
            "current groups and courses; use sync_members for that",
            argument="options",
        )


def finish_report(report: ImportReport, rows: Rows) -> None:
    """Close the report with the reader's counts, so it can prove every row is there."""
    report.finish(
        total_rows=rows.stats.rows,
        blank_lines=rows.stats.blank_lines if isinstance(rows, CsvRows) else 0,
        ignored_columns=rows.ignored_columns,
    )


class _ImportJob:
    """Per-row logic of one import run: plan each row, then hand it to the pipeline."""

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
        self._on_plan = on_plan
        # Decided once, before any row: a journal that knows no row yet (a new one, or
        # one whose runs never began a row) lets rows skip the query for their state.
        # Not ``journal.resumed``: an earlier call may have filled this open journal.
        self._journal_has_rows = journal is not None and journal.has_rows()
        self._claims = MemberClaims()
        self._pipeline = None
        if journal is not None:
            apply = ApplyOptions(
                invite=options.plan.invite,
                resend_uncertain=options.resend_uncertain,
                release_withheld=options.release_withheld,
                acknowledge_uncertain=options.acknowledge_uncertain,
            )
            self._pipeline = RowPipeline(client, journal, apply, self._replan)

    async def row(self, row: MemberRow) -> RowReport:
        """Import one valid row; any failure becomes a failed report line, never lost.

        A journal deleted or replaced under the job stops the whole run instead.
        """
        try:
            return await self._row(row)
        except JournalGoneError:
            raise
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
            await journal.fetch(row.natural_key)
            if journal is not None and self._journal_has_rows
            else None
        )
        if self._pipeline is not None and self._pipeline.skip(prior):
            assert prior is not None
            return resumed_report(prior, row.line)
        if self._pipeline is not None and prior is None and row.external_id is None:
            # Create first: most imported people are new. One who exists is re-planned
            # by the pipeline (``_replan``) inside the same row.
            conflict = self._claims.take(row.line, emails=(row.email,))
            if conflict is not None:
                return RowReport(line=row.line, email=row.email, outcome="failed", reason=conflict)
            academy = AcademyIndex((), await self._groups(row))
            return await self._pipeline.run(row, self._planned(row, academy), prior)
        academy = await self._lookup(row)
        plan = self._planned(row, academy)
        if plan.conflict is not None:
            return RowReport(line=row.line, email=row.email, outcome="failed", reason=plan.conflict)
        if self._pipeline is None:  # dry run
            return planned_report(plan)
        return await self._pipeline.run(row, plan, prior)

    def _planned(self, row: MemberRow, academy: AcademyIndex, *, show: bool = True) -> RowPlan:
        """The row's plan against ``academy``, its member claimed, shown to ``on_plan``."""
        plan = plan_row(row, academy, self._options.plan)
        member = academy.member(plan.member_id)
        # The member's email too: an email change frees it for no other row.
        plan = self._claims.claim(plan, also=() if member is None else (member.email,))
        if show and self._on_plan is not None:
            self._on_plan(plan)
        return plan

    async def _replan(self, row: MemberRow, member: Member) -> RowPlan:
        """Plan the row again for the member its create found already there.

        Not shown to ``on_plan``: that saw the row's plan before its first write.
        """
        current = [CurrentMember(member=member)]
        return self._planned(row, AcademyIndex(current, await self._groups(row)), show=False)

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
            raise InvalidInputError(
                "label is for in-memory rows; a file is fingerprinted by content", argument="label"
            )
        return InputFingerprint.of_file(rows.path)
    if rows.items is not None:
        return InputFingerprint.of_items(rows.items, source=label or "rows")
    if not label:
        raise InvalidInputError(
            "a journal over rows from an iterator needs label= naming this data set (an "
            "export id, a date): they cannot be read ahead to fingerprint their content, "
            "so nothing else stops the journal resuming different data; or pass a list",
            argument="label",
        )
    return InputFingerprint.of_label(label)

"""The sync job: make the academy's members match the desired rows with the fewest calls.

Unlike an import, a sync reads the whole input first, lists what the academy has (in
parallel, at bulk priority), plans every row against it with :func:`plan_sync` and only
then writes. The plan is returned, so a dry run shows every step, destructive ones
flagged, without a single write. Applying reuses the import's machinery: each row's plan
runs through :func:`apply_plan` with the journal (resume skips finished rows and never
re-sends an invitation that may have gone out), rows run concurrently through
``client.map``, and setting ``stop`` drains. Members the rows do not mention are listed
but never touched, and only the ones the rows mention are kept in memory.

Re-running with a journal resumes its run (finished rows are skipped). Once a run has
reached every row, call :meth:`Journal.finish_run`: the next sync over that journal starts
a new run that re-plans every row but keeps the invitation history, so a nightly sync
can reuse one journal without ever re-sending an invitation (the CLI does this).
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping, Sequence
from contextlib import aclosing
from functools import partial
from itertools import islice

import attrs
from attrs import field, frozen

from .._client import ClientView, CoursepathAPI
from .._config import Priority, check_positive_int
from .._exceptions import InvalidInputError
from .._models import Member
from .._pagination import Paginator
from .._validation import positive_or_none
from ._academy import AcademyIndex, CurrentMember
from ._apply import (
    OnRow,
    failed_report,
    interrupted_report,
    invalid_report,
    planned_report,
    record,
    resumed_report,
    row_failure,
    run_reported,
    usable_group_names,
)
from ._errors import RemovalsRefusedError
from ._import import Rows, finish_report, source_label
from ._journal import Journal, JournalGoneError
from ._ledger import ApplyOptions
from ._memberrow import field_for
from ._pipeline import RowPipeline
from ._plan import (
    Plan,
    PlanOptions,
    RowPlan,
    plan_row,
    plan_sync,
)
from ._preflight import preflight as run_preflight
from ._report import ImportReport, RowReport
from ._rows import CsvRows, MemberRow, RowError

__all__ = [
    "SyncOptions",
    "SyncResult",
    "check_removals",
    "load_academy",
    "removal_limit",
    "removal_sample",
    "sync_members",
]

#: Member pages fetched in parallel while listing the academy.
MEMBER_WINDOW = 8


@frozen(kw_only=True)
class SyncOptions:
    """What a sync wants on top of the rows, and how it runs."""

    plan: PlanOptions = field(factory=PlanOptions)
    #: Re-send invitations an earlier run left uncertain (may email someone twice).
    resend_uncertain: bool = False
    #: Send the invitations withheld because a run could not tell it created the member.
    release_withheld: bool = False
    #: Settle uncertain and withheld invitations as they are (recorded in the journal,
    #: never sent, no longer failing the run): for a nightly job that cannot know.
    acknowledge_uncertain: bool = False
    #: List and plan, but write nothing (no journal needed).
    dry_run: bool = False
    #: Rows (and listings) in flight; default: twice the client's budget.
    concurrency: int | None = field(default=None, validator=positive_or_none)
    #: Let ``remove_groups``/``unenroll`` run on rows that cannot be shown to carry a
    #: groups/courses column (e.g. MappingRows over a generator): a missing one then
    #: means "none", so every listed member leaves every group / course.
    missing_means_none: bool = False


@frozen(kw_only=True)
class SyncResult:
    """The plan a sync made and the report of what it did (or would do, in a dry run)."""

    plan: Plan
    report: ImportReport


async def sync_members(
    client: CoursepathAPI,
    rows: Rows,
    *,
    journal: Journal | None,
    options: SyncOptions = SyncOptions(),
    stop: asyncio.Event | None = None,
    on_row: OnRow | None = None,
    on_plan: Callable[[RowPlan], None] | None = None,
    preflight: bool = True,
    max_removals: int | None = None,
    confirm_removals: Callable[[Plan], bool] | None = None,
) -> SyncResult:
    """Sync the academy to ``rows``; the report accounts for every input row.

    ``journal`` is required unless ``dry_run``. ``on_plan`` sees each row's plan before
    anything is written. Setting ``stop`` drains: listing stops between pages, rows in
    flight finish, the rest are reported as interrupted (re-run with the journal).

    Before any write: :func:`~coursepath_async.bulk.preflight` (unless
    ``preflight=False``) raises PreflightError for an unreachable academy, a refused
    key, a non-admin or an unknown course. A plan with more removals (group removals
    plus unenrolments) than ``max_removals`` (default: :func:`removal_limit` of the
    input's rows) raises RemovalsRefusedError, and so does ``confirm_removals`` (called
    with the plan when it removes anything) returning False. A dry run is never refused.

    ``remove_groups`` (``unenroll``) is refused with ValueError, before any request,
    unless the rows carry a groups (courses) column, the options name groups (courses)
    to keep, or ``missing_means_none`` is set: a missing column is not "no groups".
    CsvRows are judged by their header; MappingRows over a list or tuple need the key
    in every mapping; other MappingRows cannot be checked without consuming them.
    """
    if journal is None and not options.dry_run:
        raise InvalidInputError("a sync that writes needs a journal", argument="journal")
    _check_destructive(rows, options)
    if options.concurrency is not None:  # refused before the preflight sends anything
        check_positive_int("concurrency", options.concurrency)
    if max_removals is not None and max_removals < 0:
        raise InvalidInputError(
            f"max_removals must be 0 or more, got {max_removals}", argument="max_removals"
        )
    bulk = client.with_options(priority=Priority.BULK)
    report = ImportReport(source=source_label(rows), kind="sync", dry_run=options.dry_run)
    with client._observe_job("sync", lambda: attrs.asdict(report.totals)):
        if preflight:  # the job's first calls: in its span and on its lane
            await run_preflight(bulk, rows, options=options.plan)
        if journal is not None and not options.dry_run:
            journal.bind_academy(client.base_url)
        plan = await _sync(
            bulk,
            rows,
            report,
            journal,
            options,
            stop,
            on_row,
            on_plan,
            removals=(max_removals, confirm_removals),
        )
    return SyncResult(plan=plan, report=report)


async def _sync(
    bulk: ClientView,
    rows: Rows,
    report: ImportReport,
    journal: Journal | None,
    options: SyncOptions,
    stop: asyncio.Event | None,
    on_row: OnRow | None,
    on_plan: Callable[[RowPlan], None] | None,
    *,
    removals: tuple[int | None, Callable[[Plan], bool] | None],
) -> Plan:
    """The sync itself: read, list the academy, plan, then run every row's plan."""
    desired = _read(rows, report, on_row)
    academy = await load_academy(bulk, desired, concurrency=options.concurrency, stop=stop)
    if stop is not None and stop.is_set():
        # Stopped while listing: the picture is incomplete, so nothing is planned.
        plan = Plan(())
        for row in desired:
            record(report, interrupted_report(row), on_row)
    else:
        plan = plan_sync(desired, academy, options.plan)
        if not options.dry_run:
            max_removals, confirm = removals
            limit = removal_limit(rows.stats.rows) if max_removals is None else max_removals
            check_removals(plan, limit=limit, confirm=confirm)
        if on_plan is not None:
            for row_plan in plan.rows:
                on_plan(row_plan)
        items = list(zip(desired, plan.rows, strict=True))
        if options.dry_run or journal is None:
            for _, row_plan in items:
                record(report, planned_report(row_plan), on_row)
        else:
            job = _SyncJob(bulk, journal, options, academy)
            async with journal.writing():
                await run_reported(
                    bulk,
                    iter(items),
                    job.row,
                    lambda item: item[0],
                    report,
                    concurrency=options.concurrency,
                    stop=stop,
                    on_row=on_row,
                )
    finish_report(report, rows)
    return plan


def removal_limit(rows: int) -> int:
    """The default bound on one sync's removals: 5% of the input's rows, at least 10."""
    return max(10, rows // 20)


def removal_sample(plan: Plan, *, limit: int = 5) -> list[str]:
    """The first few removals a plan holds, one line each."""
    lines = (
        f"line {row.line} {row.email}: {step.describe()}"
        for row in plan.rows
        for step in row.steps
        if step.destructive
    )
    return list(islice(lines, limit))


def check_removals(plan: Plan, *, limit: int, confirm: Callable[[Plan], bool] | None) -> None:
    """Refuse a plan removing more than ``limit`` things, or whose removals ``confirm`` declines."""
    counts = plan.counts
    planned = counts.destructive
    if not planned:
        return
    what = (
        f"{planned} removals ({counts.course_unenrolments} course unenrolments, which delete "
        f"learning results, and {counts.group_removals} group removals)"
    )
    sample = removal_sample(plan)
    if planned > limit:
        raise RemovalsRefusedError(
            f"refused before any write: the plan has {what}, more than max_removals={limit}; "
            "first: " + "; ".join(sample),
            planned=planned,
            limit=limit,
            sample=sample,
        )
    if confirm is not None and not confirm(plan):
        raise RemovalsRefusedError(
            f"refused before any write: the {what} were not confirmed",
            planned=planned,
            limit=None,
            sample=sample,
        )


def _check_destructive(rows: Rows, options: SyncOptions) -> None:
    """Refuse a removal whose "wanted" list would be empty only because a column is missing."""
    plan = options.plan
    checks = (
        (plan.remove_groups, "remove_groups", "groups", bool(plan.groups), "group"),
        (plan.unenroll, "unenroll", "courses", bool(plan.courses), "course"),
    )
    for asked, flag, column, explicit, noun in checks:
        if not asked or explicit or options.missing_means_none:
            continue
        missing = _missing_column(rows, column)
        if missing is not None:
            raise InvalidInputError(
                f"{flag} refused: {missing}, so every listed member would leave every "
                f"{noun}; add a {column!r} column (an empty cell means none) or name the "
                f"{column} to keep (--{noun}, PlanOptions.{column})",
                argument="options",
            )


def _missing_column(rows: Rows, column: str) -> str | None:
    """Why the rows cannot be shown to carry ``column`` (a field name), or None if they do."""
    if isinstance(rows, CsvRows):
        return None if column in rows.columns else f"{rows.path} has no {column!r} column"
    items = rows.items
    if items is None:
        return f"the rows (not a list or tuple) cannot be checked for a {column!r} key"
    for line, item in enumerate(items, start=1):
        if isinstance(item, Mapping) and not any(
            isinstance(key, str) and field_for(key) == column for key in item
        ):
            return f"line {line} has no {column!r} key"
    return None


def _read(rows: Rows, report: ImportReport, on_row: OnRow | None) -> list[MemberRow]:
    """The whole input: valid rows returned, invalid ones reported straight away."""
    desired: list[MemberRow] = []
    for item in rows:
        if isinstance(item, RowError):
            record(report, invalid_report(item), on_row)
        else:
            desired.append(item)
    return desired


async def load_academy(
    client: ClientView,
    rows: Sequence[MemberRow],
    *,
    concurrency: int | None = None,
    stop: asyncio.Event | None = None,
) -> AcademyIndex:
    """The academy's current members that ``rows`` could match, with their groups and courses.

    Lists every member (``MEMBER_WINDOW`` pages in parallel), every group's and every
    course's members, all concurrently. Only members whose email or externalId a row
    names are kept: the others cannot be matched, so they cannot change the plan.
    """
    wanted = _Wanted(rows)
    catalogue: list[str] = []
    members: dict[int, Member] = {}
    groups: defaultdict[int, set[str]] = defaultdict(set)
    courses: defaultdict[int, set[int]] = defaultdict(set)

    async def list_members() -> None:
        async for member in _listed(client.members.list(window=MEMBER_WINDOW), wanted, stop):
            members[member.id] = member

    async def list_group(name: str, group_id: int) -> None:
        async for member in _listed(client.groups.members(group_id), wanted, stop):
            groups[member.id].add(name)

    async def list_course(course_id: int) -> None:
        async for member in _listed(client.courses.members(course_id), wanted, stop):
            courses[member.id].add(course_id)

    async def list_groups() -> None:
        found = await client.groups.list().collect()  # the catalogue: small
        catalogue.extend(usable_group_names(found))
        usable = set(catalogue)
        listings = [partial(list_group, g.name, g.id) for g in found if g.name in usable]
        await _run_all(client, listings, concurrency=concurrency, stop=stop)

    async def list_courses() -> None:
        found = await client.courses.list().collect()  # the catalogue: small
        listings = [partial(list_course, c.id) for c in found]
        await _run_all(client, listings, concurrency=concurrency, stop=stop)

    await _run_all(client, (list_members, list_groups, list_courses), concurrency=3)
    current = (
        CurrentMember(
            member=member,
            groups=groups.get(member_id, ()),
            courses=courses.get(member_id, ()),
        )
        for member_id, member in members.items()
    )
    return AcademyIndex(current, groups=catalogue)


class _Wanted:
    """The keys the desired rows match members by: lowercase emails and externalIds."""

    def __init__(self, rows: Iterable[MemberRow]) -> None:
        self._emails: set[str] = set()
        self._external_ids: set[str] = set()
        for row in rows:
            self._emails.add(row.email_key)
            if row.external_id is not None:
                self._external_ids.add(row.external_id)

    def __contains__(self, member: Member) -> bool:
        return member.email.lower() in self._emails or (
            member.external_id is not None and member.external_id in self._external_ids
        )


async def _listed(
    listing: Paginator[Member], wanted: _Wanted, stop: asyncio.Event | None
) -> AsyncIterator[Member]:
    """The members of a listing that the rows could match; stops between pages on ``stop``."""
    async with aclosing(listing.pages()) as pages:
        async for page in pages:
            for member in page:
                if member in wanted:
                    yield member
            if stop is not None and stop.is_set():
                return


async def _run_all(
    client: ClientView,
    jobs: Iterable[Callable[[], Awaitable[None]]],
    *,
    concurrency: int | None,
    stop: asyncio.Event | None = None,
) -> None:
    """Run ``jobs`` with bounded concurrency; the first error cancels the rest and is raised."""
    async with aclosing(client.map(_call, jobs, concurrency=concurrency, stop=stop)) as done:
        async for _ in done:
            pass


def _call(job: Callable[[], Awaitable[None]]) -> Awaitable[None]:
    return job()


class _SyncJob:
    """Per-row logic of one sync run that writes: each planned row goes to the pipeline."""

    def __init__(
        self, client: ClientView, journal: Journal, options: SyncOptions, academy: AcademyIndex
    ) -> None:
        self._client = client
        self._journal = journal
        self._plan_options = options.plan
        self._academy = academy
        apply = ApplyOptions(
            invite=options.plan.invite,
            resend_uncertain=options.resend_uncertain,
            release_withheld=options.release_withheld,
            acknowledge_uncertain=options.acknowledge_uncertain,
        )
        self._pipeline = RowPipeline(client, journal, apply, self._replan)

    async def row(self, item: tuple[MemberRow, RowPlan]) -> RowReport:
        """Apply one row's plan; any failure becomes a failed report line, never lost.

        An unexpected error (a bug, bad data from the academy) fails only its row, named
        by its line, instead of cancelling the rows in flight and losing the report. A
        journal deleted or replaced under the job stops the whole run instead.
        """
        row, plan = item
        try:
            return await self._row(row, plan)
        except JournalGoneError:
            raise
        except Exception as exc:
            return failed_report(plan, row_failure(self._journal, plan.key, row.line, exc))

    async def _row(self, row: MemberRow, plan: RowPlan) -> RowReport:
        prior = await self._journal.fetch(plan.key)
        if self._pipeline.skip(prior):
            assert prior is not None
            return resumed_report(prior, row.line)
        if plan.conflict is not None:
            return failed_report(plan, plan.conflict)
        return await self._pipeline.run(row, plan, prior)

    async def _replan(self, row: MemberRow, member: Member) -> RowPlan:
        """Plan the row for a member the listing missed (created meanwhile, by anyone).

        Its groups and courses are listed when a destructive option needs them.
        """
        groups: list[str] | None = None
        courses: list[int] | None = None
        if self._plan_options.remove_groups:
            listed = await self._client.members.groups(member.id).collect()
            groups = [g.name for g in listed if g.name is not None]
        if self._plan_options.unenroll:
            courses = [c.id for c in await self._client.members.courses(member.id).collect()]
        current = CurrentMember(member=member, groups=groups, courses=courses)
        catalogue = self._academy.group_names()
        return plan_row(row, AcademyIndex([current], catalogue), self._plan_options)

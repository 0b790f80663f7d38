"""Shared pieces of the import and sync jobs: row reports and the concurrent row runner.

What a row does to the academy is :mod:`._pipeline`'s; this module turns rows into
report lines (finished, failed, invalid, interrupted) and runs them with bounded
concurrency so that every input row gets exactly one line.
"""

from __future__ import annotations

import asyncio
import logging
import traceback
from collections.abc import Awaitable, Callable, Iterable, Iterator
from contextlib import AbstractAsyncContextManager, aclosing, nullcontext
from typing import TypeVar

from .._client import ClientView
from .._exceptions import CoursepathError
from .._models import Group
from .._redact import REDACT
from ._journal import Journal, JournalError, RowState
from ._plan import RowPlan
from ._report import ImportReport, Invitation, RowReport
from ._rows import MemberRow, RowError
from ._steps import SendInvite, action, changes_member, journaled_actions

T = TypeVar("T")
OnRow = Callable[[RowReport], None]

log = logging.getLogger("coursepath_async.bulk")


def writing(journal: Journal | None) -> AbstractAsyncContextManager[object]:
    """A job's journal writing off the event loop (:meth:`Journal.writing`), if it has one."""
    return nullcontext() if journal is None else journal.writing()


def journal_failure(
    journal: Journal | None, key: str, exc: Exception, *, reason: str | None = None
) -> None:
    """Mark a row failed by an error that escaped it; a journal error is only reported.

    Writing after the journal itself refused could overwrite what an earlier run
    finished (a done row), so a JournalError leaves the journal as it is. ``reason``
    defaults to the error's text.
    """
    if journal is None or isinstance(exc, JournalError) or journal.get(key) is None:
        return
    journal.finish_row(key, error=str(exc) if reason is None else reason)


def row_failure(journal: Journal | None, key: str, line: int, exc: Exception) -> str:
    """Why a row failed by an error that escaped it, journaled (unless the journal refused).

    An unexpected error (a bug, odd data from the academy) is logged with its traceback
    and fails only its row, named by its line, instead of cancelling the rows in flight
    and losing the report. Its text may quote what the academy answered, so the
    traceback is logged as redacted text rather than as ``exc_info``.
    """
    if isinstance(exc, CoursepathError):
        reason = str(exc)
    else:
        trace = "".join(traceback.format_exception(exc)).rstrip()
        log.error("line %d: unexpected error\n%s", line, REDACT(trace))
        reason = REDACT(f"unexpected error: {type(exc).__name__}: {exc}")
    journal_failure(journal, key, exc, reason=reason)
    return reason


def usable_group_names(groups: Iterable[Group]) -> list[str]:
    """The academy's group names a request can name; blank ones are logged and left out."""
    names = []
    for group in groups:
        if group.name and group.name.strip():
            names.append(group.name)
        else:  # cannot be named in a request: neither matched nor removed
            log.warning("ignoring group %d: its name %r is blank", group.id, group.name)
    return names


def resumed_report(state: RowState, line: int) -> RowReport:
    """The report line of a row an earlier run already finished."""
    invitation: Invitation = "not_requested"
    if state.invite == "sent":
        invitation = "skipped_already_sent"
    elif state.invite == "withheld":
        invitation = "withheld"
    # A member found by lookup has no outcome: its other steps say whether it changed.
    changed = changes_member(state.steps_done)
    return RowReport(
        line=line,
        email=state.email,
        outcome=state.outcome or ("updated" if changed else "unchanged"),
        invitation=invitation,
        invitation_reason=(
            state.invite_error if invitation == "withheld" else "finished by an earlier run"
        ),
        member_id=state.member_id,
        resumed=True,
        actions=journaled_actions(state.steps_done),
    )


def failed_report(plan: RowPlan, reason: str) -> RowReport:
    """The report line of a row that could not be applied at all."""
    return RowReport(
        line=plan.line, email=plan.email, outcome="failed", reason=reason, member_id=plan.member_id
    )


def planned_report(plan: RowPlan) -> RowReport:
    """The dry-run report line of a planned row: what it would do to its member, undated."""
    outcome = plan.outcome
    if plan.conflict is not None or outcome == "conflict":
        return failed_report(plan, plan.conflict or "conflict")
    steps = [step for step in plan.steps if not isinstance(step, SendInvite)]
    invites = len(steps) < len(plan.steps)
    return RowReport(
        line=plan.line,
        email=plan.email,
        outcome=outcome,
        member_id=plan.member_id,
        invitation="would_send" if invites else "not_requested",
        invitation_reason="dry run: planned, not sent" if invites else None,
        actions=tuple(action(step) for step in plan.steps),
    )


def invalid_report(error: RowError) -> RowReport:
    """The report line of a row the reader rejected."""
    return RowReport(
        line=error.line, email=error.email, outcome="skipped_invalid", reason=error.reason
    )


def interrupted_report(row: MemberRow) -> RowReport:
    """The report line of a row never started because the run was stopped."""
    return RowReport(
        line=row.line,
        email=row.email,
        outcome="interrupted",
        reason="not reached: the run was stopped",
    )


def record(report: ImportReport, outcome: RowReport, on_row: OnRow | None) -> None:
    """Add one row's outcome to the report and tell the progress callback."""
    report.add(outcome)
    if on_row is not None:
        on_row(outcome)


async def run_reported(
    client: ClientView,
    items: Iterator[T],
    process: Callable[[T], Awaitable[RowReport]],
    row_of: Callable[[T], MemberRow | RowError],
    report: ImportReport,
    *,
    concurrency: int | None,
    stop: asyncio.Event | None,
    on_row: OnRow | None,
) -> None:
    """Process items concurrently, reporting each; after a stop, report the rest unreached.

    Items are pulled lazily (bounded memory); setting ``stop`` lets the ones in flight
    finish, then every item never started gets an "interrupted" (or "invalid") line.
    """
    async with aclosing(client.map(process, items, concurrency=concurrency, stop=stop)) as done:
        async for outcome in done:
            record(report, outcome, on_row)
    for item in items:
        row = row_of(item)
        record(
            report,
            invalid_report(row) if isinstance(row, RowError) else interrupted_report(row),
            on_row,
        )

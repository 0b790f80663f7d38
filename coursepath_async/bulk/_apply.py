"""Carry out one row's plan through the client, journaling each step as it finishes.

Shared by import and sync. Steps already done in an earlier run are skipped (but a
member update, planned only when a fresh lookup shows a difference, always runs); a
failed member step ends the row; other failures are collected and the row reported failed
(a re-run retries just those steps). The invitation goes last, only when every other
step succeeded, and follows the journal's at-most-once protocol: durably marked
"attempting" before the request, "sent", "failed" or "uncertain" after it.
"""

from __future__ import annotations

import asyncio
import logging
import traceback
from collections.abc import Awaitable, Callable, Iterable, Iterator, Mapping
from contextlib import aclosing
from datetime import UTC, datetime, timedelta
from typing import TypeVar, cast

from attrs import evolve, frozen

from .._client import ClientView
from .._exceptions import (
    APIConnectionError,
    APIStatusError,
    CoursepathError,
    UncertainOutcomeError,
)
from .._models import Group, Member
from .._redact import REDACT
from .._resources._base import MemberFields, new_member_body
from .._resources._members import create_member_at
from ._journal import MEMBER_STEP, Journal, JournalError, MemberOutcome, RowState
from ._plan import (
    AddToGroup,
    CreateMember,
    EnrollCourse,
    EnrollProgram,
    InvitePolicy,
    RemoveFromGroup,
    RowPlan,
    SendInvite,
    Step,
    UnenrollCourse,
    UpdateMember,
    changes_member,
)
from ._report import ImportReport, Invitation, RowReport
from ._rows import MemberRow, RowError

T = TypeVar("T")
OnRow = Callable[[RowReport], None]


@frozen(kw_only=True)
class ApplyOptions:
    """Switches that change how (not what) a plan is applied."""

    resend_uncertain: bool = False


log = logging.getLogger("coursepath_async.bulk")

#: How far a server clock may lag ours when telling "created by this job" from older.
CLOCK_SKEW = timedelta(minutes=2)


def created_since(member: Member, started: datetime) -> bool:
    """Whether the member was created after ``started`` (allowing clock skew)."""
    return member.created_date is not None and member.created_date >= started - CLOCK_SKEW


class _CreatedBefore(CoursepathError):
    """A create found an older member by email after an uncertain attempt: not ours."""


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
    invitation: Invitation = "skipped_already_sent" if state.invite == "sent" else "not_requested"
    # A member found by lookup has no outcome: its other steps say whether it changed.
    changed = changes_member(state.steps_done)
    return RowReport(
        line=line,
        email=state.email,
        outcome=state.outcome or ("updated" if changed else "unchanged"),
        invitation=invitation,
        member_id=state.member_id,
        resumed=True,
    )


def failed_report(plan: RowPlan, reason: str) -> RowReport:
    """The report line of a row that could not be applied at all."""
    return RowReport(
        line=plan.line, email=plan.email, outcome="failed", reason=reason, member_id=plan.member_id
    )


async def apply_plan(
    client: ClientView,
    journal: Journal,
    plan: RowPlan,
    state: RowState,
    *,
    options: ApplyOptions,
) -> RowReport:
    """Apply ``plan`` (its row already begun in the journal) and report the outcome."""
    key = plan.key
    member_id = plan.member_id if state.member_id is None else state.member_id
    outcome = state.outcome or plan_member_outcome(plan)
    errors: list[str] = []
    invite: SendInvite | None = None
    if any(isinstance(step, SendInvite) for step in plan.steps) and any(
        isinstance(step, CreateMember) for step in plan.steps
    ):
        # The intent to invite must survive a crash right after the create, or a resumed
        # run would find an existing member and, inviting only new ones, never invite.
        journal.commit()
    if (
        member_id is not None
        and state.member_id is None
        and not any(isinstance(step, CreateMember | UpdateMember) for step in plan.steps)
    ):
        # Matched by lookup, fields already right: record who it is, so a resumed run
        # (and its report) still knows the member. No outcome: no member step ran.
        journal.record_member_id(key, member_id)
    for step in plan.steps:
        if isinstance(step, SendInvite):
            invite = step
            continue
        # An update is planned only when a fresh lookup shows a difference, and is
        # idempotent: never skipped. A create done by an earlier run must not repeat.
        if not isinstance(step, UpdateMember) and state.step_done(step.key):
            continue
        try:
            if isinstance(step, CreateMember | UpdateMember):
                member_id = await _member_step(client, step)
                journal.record_member(key, member_id=member_id, outcome=plan_outcome(step))
                continue
            if member_id is None:  # pragma: no cover - plans put the member step first
                raise RuntimeError("no member id for a step after the member step")
            await _step(client, step, member_id)
        except JournalError:
            raise  # not the step's failure: the row's caller reports it, journal untouched
        except CoursepathError as exc:
            reason = f"{step.describe()}: {exc}"
            if isinstance(step, CreateMember | UpdateMember):
                journal.finish_row(key, error=reason)
                return failed_report(plan, reason)
            journal.record_step(key, step.key, error=reason)
            errors.append(reason)
        else:
            journal.record_step(key, step.key)
    journal.finish_row(key, error=errors[0] if errors else None)
    invitation: Invitation = "not_requested"
    if invite is not None and member_id is not None:
        if errors:
            invitation = "not_requested"  # sent on the re-run that completes the row
        elif state.invite == "sent":
            invitation = "skipped_already_sent"
        elif not state.may_send_invite(resend_uncertain=options.resend_uncertain):
            invitation = "uncertain"  # attempted by an earlier run: never re-sent silently
        else:
            invitation = await _send_invite(
                client, journal, key, member_id, resend_uncertain=options.resend_uncertain
            )
    return RowReport(
        line=plan.line,
        email=plan.email,
        outcome="failed" if errors else outcome,
        invitation=invitation,
        reason=errors[0] if errors else None,
        member_id=member_id,
    )


def plan_member_outcome(plan: RowPlan) -> MemberOutcome:
    """What the plan does to the member (a conflict never reaches apply_plan)."""
    outcome = plan.outcome
    if outcome == "conflict":  # pragma: no cover - callers report conflicts themselves
        raise ValueError(f"line {plan.line}: cannot apply a conflicting plan")
    return outcome


def plan_outcome(step: CreateMember | UpdateMember) -> MemberOutcome:
    """The journal's member outcome for a member step."""
    return "created" if isinstance(step, CreateMember) else "updated"


async def _member_step(client: ClientView, step: CreateMember | UpdateMember) -> int:
    if isinstance(step, CreateMember):
        return await _create_member(client, step)
    changes = step.fields()
    email = changes.pop("email", None)
    fields = cast(MemberFields, changes)
    return (await client.members.update(step.member_id, email=email, **fields)).id


async def create_member(
    client: ClientView, email: str, fields: Mapping[str, object]
) -> tuple[Member, bool]:
    """Create a member; returns it and whether it is ours (created by this call).

    A create answering "exists" after an uncertain attempt resolves to the member found
    by email, which is ours only if it is no older than the call: accepting an older one
    would invite (under ``invite="new"``) someone who was there before.
    """
    started = datetime.now(UTC)
    body = new_member_body(email, fields)
    member, confirmed = await create_member_at(client.members, "/members", body)
    return member, confirmed or created_since(member, started)


async def _create_member(client: ClientView, step: CreateMember) -> int:
    """Create the member; one found older than the attempt fails the row (a re-run updates)."""
    member, ours = await create_member(client, step.email, dict(step.fields))
    if not ours:
        raise _CreatedBefore(
            f"{step.email} already existed as member {member.id} (created "
            f"{member.created_date}), not created by this run; re-run to update it"
        )
    return member.id


async def _step(client: ClientView, step: Step, member_id: int) -> None:
    match step:
        case AddToGroup(group=name):
            await client.members.add_to_group(member_id, name)
        case RemoveFromGroup(group=name):
            await client.members.remove_from_group(member_id, name)
        case EnrollCourse(course_id=course_id):
            await client.courses.enroll(course_id, member_id)
        case UnenrollCourse(course_id=course_id):
            await client.courses.unenroll(course_id, member_id)
        case EnrollProgram(program_id=program_id):
            await client.programs.enroll(program_id, member_id)
        case _:  # pragma: no cover - the member and invite steps are handled by the caller
            raise TypeError(f"unexpected step {step!r}")


async def _send_invite(
    client: ClientView, journal: Journal, key: str, member_id: int, *, resend_uncertain: bool
) -> Invitation:
    """Send once: durable "attempting" mark first, then the request, then the outcome."""
    journal.mark_invite_attempting(key, resend_uncertain=resend_uncertain)
    try:
        await client.members.invite(member_id)
    except UncertainOutcomeError as exc:
        journal.mark_invite_uncertain(key, str(exc))
        return "uncertain"
    except APIConnectionError as exc:  # a timeout too: ``sent`` says whether it went out
        if exc.sent:
            journal.mark_invite_uncertain(key, str(exc))
            return "uncertain"
        journal.mark_invite_failed(key, str(exc))
        return "failed"
    except APIStatusError as exc:
        journal.mark_invite_failed(key, str(exc))
        return "failed"
    journal.mark_invite_sent(key)
    return "sent"


def wants_invite(plan: RowPlan) -> bool:
    """Whether the plan ends with an invitation."""
    return any(isinstance(step, SendInvite) for step in plan.steps)


def keep_invite_intent(
    plan: RowPlan,
    row: MemberRow,
    prior: RowState | None,
    policy: InvitePolicy,
    *,
    member: Member | None,
    job_started: datetime,
) -> RowPlan:
    """On resume, a member this job created still gets the invitation "new" promised.

    The re-run finds the member existing, so the planner alone would not invite it.
    ``member`` is the one the plan acts on, as just found; when an earlier run's create
    ended without an answer, only a member created since the job started is ours.
    """
    if prior is None or wants_invite(plan) or row.invite is False:
        return plan
    # Attempted before (sent, uncertain, failed, or cut off mid-send): keep the step so
    # the journal, not the planner, decides; it never sends twice.
    attempted = prior.invite in ("attempting", "sent", "uncertain", "failed")
    created_by_us = policy == "new" and (
        prior.outcome == "created"
        or (
            prior.invite == "pending"
            and not prior.step_done(MEMBER_STEP)
            and member is not None
            and created_since(member, job_started)
        )
    )
    if not (attempted or created_by_us):
        return plan
    return evolve(plan, steps=(*plan.steps, SendInvite()))


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

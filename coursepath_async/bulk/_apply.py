"""Carry out one row's plan through the client, journaling each step as it finishes.

Shared by import and sync. Steps already done in an earlier run are skipped; a failed
member step ends the row; other failures are collected and the row reported failed
(a re-run retries just those steps). The invitation goes last, only when every other
step succeeded, and follows the journal's at-most-once protocol: durably marked
"attempting" before the request, "sent", "failed" or "uncertain" after it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterator
from contextlib import aclosing
from typing import TypeVar, cast

from attrs import evolve, frozen

from .._client import ClientView
from .._exceptions import (
    APIConnectionError,
    APIStatusError,
    APITimeoutError,
    CoursepathError,
    UncertainOutcomeError,
)
from .._resources._base import MemberFields
from ._journal import Journal, MemberOutcome, RowState
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
)
from ._report import ImportReport, Invitation, RowReport
from ._rows import MemberRow, RowError

T = TypeVar("T")
OnRow = Callable[[RowReport], None]


@frozen(kw_only=True)
class ApplyOptions:
    """Switches that change how (not what) a plan is applied."""

    resend_uncertain: bool = False


def resumed_report(state: RowState, line: int) -> RowReport:
    """The report line of a row an earlier run already finished."""
    invitation: Invitation = "skipped_already_sent" if state.invite == "sent" else "not_requested"
    return RowReport(
        line=line,
        email=state.email,
        outcome=state.outcome or "unchanged",
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
        # (and its report) still knows the member.
        journal.record_member(key, member_id=member_id, outcome=outcome)
    for step in plan.steps:
        if isinstance(step, SendInvite):
            invite = step
            continue
        if state.step_done(step.key):
            continue
        try:
            if isinstance(step, CreateMember | UpdateMember):
                member_id = await _member_step(client, step)
                journal.record_member(key, member_id=member_id, outcome=plan_outcome(step))
                continue
            if member_id is None:  # pragma: no cover - plans put the member step first
                raise RuntimeError("no member id for a step after the member step")
            await _step(client, step, member_id)
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
        fields = cast(MemberFields, dict(step.fields))
        return (await client.members.create(step.email, **fields)).id
    changes = step.fields()
    email = changes.pop("email", None)
    fields = cast(MemberFields, changes)
    return (await client.members.update(step.member_id, email=email, **fields)).id


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
    except (UncertainOutcomeError, APITimeoutError) as exc:
        journal.mark_invite_uncertain(key, str(exc))
        return "uncertain"
    except APIConnectionError as exc:
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
    plan: RowPlan, row: MemberRow, prior: RowState | None, policy: InvitePolicy
) -> RowPlan:
    """On resume, a member this job created still gets the invitation "new" promised.

    The re-run finds the member existing, so the planner alone would not invite it.
    """
    if prior is None or wants_invite(plan) or row.invite is False:
        return plan
    # Attempted before (sent, uncertain, failed, or cut off mid-send): keep the step so
    # the journal, not the planner, decides; it never sends twice.
    attempted = prior.invite in ("attempting", "sent", "uncertain", "failed")
    created_by_us = policy == "new" and (
        prior.outcome == "created" or (prior.invite == "pending" and not prior.step_done("member"))
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

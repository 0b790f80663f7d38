"""The one row pipeline of import and sync: resume → begin → apply → invitation → report.

A row's plan runs step by step, each journaled as it finishes. Steps an earlier run
finished are skipped (a member update, planned only when a fresh lookup shows a
difference, always runs); a failed member step ends the row; other failures are
collected and the row reported failed (a re-run retries just those steps).

A create that finds the member already there (a concurrent job, a person, or this job's
own earlier attempt) falls back to the job's ``replan`` for that member, inside the same
row, so an import's "create first" and a sync's stale listing take one path.

Ownership is known, never guessed: a member counts as created by this job only when one
of its creates was answered 2xx. The invitation goes last, only when every other step
succeeded; the journal's ledger decides whether it may go and sends it at most once.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from functools import partial
from typing import cast

from attrs import evolve

from .._client import ClientView
from .._exceptions import CoursepathError
from .._models import Member
from .._resources._base import MemberFields, new_member_body
from .._resources._members import create_member_at
from ._journal import Journal, JournalError, MemberOutcome, RowState
from ._ledger import WITHHELD_REASON, ApplyOptions, decide_invitation
from ._plan import RowPlan
from ._report import Action, RowReport
from ._rows import MemberRow
from ._stamp import utc_now
from ._steps import (
    AddToGroup,
    CreateMember,
    EnrollCourse,
    EnrollProgram,
    RemoveFromGroup,
    SendInvite,
    Step,
    UnenrollCourse,
    UpdateMember,
    action,
)

__all__ = ["RowPipeline", "create_member"]

#: Why a row whose steps failed has no invitation yet.
WAITS_FOR_ROW = "not sent: the row failed; a re-run that completes it sends what is owed"

#: Plans the row again for a member a create found existing (claims it, or a conflict).
Replan = Callable[[MemberRow, Member], Awaitable[RowPlan]]


def _ownership(prior: bool | None, now: bool | None) -> bool | None:
    """Who created the member, from an earlier run's knowledge and this run's create."""
    if prior is True or now is True:
        return True
    if prior is None or now is None:
        return None
    return False


async def create_member(
    client: ClientView, email: str, fields: Mapping[str, object]
) -> tuple[Member, bool | None]:
    """Create a member, or find it; returns it and whether this call created it (None: unknown).

    True only for a 2xx answer. An "exists" answer (400, 409 or 422) is looked up: False
    when no earlier attempt of this call may have been applied, None when one may have.
    """
    body = new_member_body(email, fields)
    return await create_member_at(client.members, "/members", body, resolve_existing=True)


class _Existed(Exception):
    """A planned create found the member already there: re-plan the row for it."""

    def __init__(self, member: Member, created: bool | None) -> None:
        super().__init__(member.id)
        self.member = member
        self.created = created


class RowPipeline:
    """Applies rows' plans for one job: the only path from a plan to the academy."""

    def __init__(
        self, client: ClientView, journal: Journal, options: ApplyOptions, replan: Replan
    ) -> None:
        self._client = client
        self._journal = journal
        self._options = options
        self._replan = replan

    def skip(self, prior: RowState | None) -> bool:
        """Whether an earlier run finished this row.

        A withheld one reopens to be released or acknowledged, and once acknowledged.
        """
        if prior is None or not prior.complete:
            return False
        if prior.invite != "withheld":
            return True
        if self._options.release_withheld or self._options.acknowledge_uncertain:
            return False
        entry = None if prior.member_id is None else self._journal.invitations.get(prior.member_id)
        return entry is None or entry.acknowledged_at is None

    async def run(self, row: MemberRow, plan: RowPlan, prior: RowState | None) -> RowReport:
        """Apply ``plan`` for ``row`` (``prior``: its journal state) and report the outcome."""
        journal = self._journal
        earlier = False if prior is None else prior.created_here
        if earlier is None and plan.member_id is not None:
            await self._withhold_if_owed(row, plan.member_id)
        # A row with no earlier state (the common case) is begun with one write, no read.
        state = await journal.begin(
            plan.key,
            line=row.line,
            email=row.email,
            invite=_wants_invite(plan),
            member_id=plan.member_id,
            new=prior is None,
        )
        if self._may_invite(row) and any(isinstance(s, CreateMember) for s in plan.steps):
            # Durable before the create is sent: a resumed run must know a create of
            # ours may have made the member, or it would take it for an existing one.
            # Rows in flight share this commit (group commit, off the event loop).
            await journal.durable()
        try:
            return await self._apply(row, plan, state, earlier)
        except _Existed as existed:
            created = _ownership(earlier, existed.created)
            if created is None:
                await self._withhold_if_owed(row, existed.member.id)
            replanned = await self._replan(row, existed.member)
            if replanned.conflict is not None:
                journal.finish_row(plan.key, error=replanned.conflict)
                return _failed(replanned, replanned.conflict)
            # Recorded after any withholding, in the same batch or a later one: a resumed
            # run reading "found existing" then also finds the withheld invitation.
            journal.record_member_id(plan.key, existed.member.id)
            state = await journal.begin(
                plan.key, line=row.line, email=row.email, invite=_wants_invite(replanned), new=False
            )
            return await self._apply(row, replanned, state, created)

    async def _withhold_if_owed(self, row: MemberRow, member_id: int) -> None:
        """Withhold the invitation a row meant for a member it may have created.

        Written as soon as ownership is known to be unknown, before the row records the
        member's id (which a resumed run would read as "found existing, not ours"); the
        queue keeps that order into every commit.
        """
        ledger = self._journal.invitations
        entry = await ledger.fetch(member_id)
        decision = decide_invitation(
            row_wants=row.invite, created=None, entry=entry, options=self._options
        )
        if entry is None and decision.invitation == "withheld":
            ledger.withhold(member_id, email=row.email, reason=decision.reason or WITHHELD_REASON)

    async def _apply(
        self, row: MemberRow, plan: RowPlan, state: RowState, created: bool | None
    ) -> RowReport:
        journal = self._journal
        key = plan.key
        member_id = plan.member_id if state.member_id is None else state.member_id
        outcome: MemberOutcome = state.outcome or _plan_outcome(plan)
        errors: list[str] = []
        #: Finished steps (name, error), written with the row's finish: one statement.
        steps: list[tuple[str, str | None]] = []
        fresh = False  # this very row's create was answered 2xx: no history to read
        actions: list[Action] = []
        waits = WAITS_FOR_ROW if self._may_invite(row) else None
        for step in plan.steps:
            # An update is planned only when a fresh lookup shows a difference, and is
            # idempotent: never skipped. A create done by an earlier run must not repeat.
            if isinstance(step, SendInvite):
                continue
            if not isinstance(step, UpdateMember) and state.step_done(step.key):
                actions.append(action(step))  # applied by an earlier run: undated
                continue
            try:
                member_id = await self._run_step(key, row, step, member_id)
                if isinstance(step, CreateMember):
                    created = fresh = True
                elif not isinstance(step, UpdateMember):
                    steps.append((step.key, None))
            except (JournalError, _Existed):
                raise  # not the step's failure: handled by the caller, journal untouched
            except CoursepathError as exc:
                reason = f"{step.describe()}: {exc}"
                if isinstance(step, CreateMember | UpdateMember):
                    journal.finish_row(key, error=reason, steps=steps)
                    return evolve(_failed(plan, reason, actions), invitation_reason=waits)
                steps.append((step.key, reason))
                errors.append(reason)
                continue
            done = action(step, at=utc_now())
            actions.append(done)
            if isinstance(step, RemoveFromGroup | UnenrollCourse) and member_id is not None:
                self._record_removal(row, step, member_id, done)
        if member_id is None:  # pragma: no cover - every plan names or creates its member
            raise RuntimeError("a row's plan ended without a member")
        finished = RowReport(
            line=plan.line,
            email=plan.email,
            outcome=outcome,
            member_id=member_id,
            actions=tuple(actions),
        )
        if errors:  # the invitation waits for the re-run that completes the row
            journal.finish_row(key, error=errors[0], steps=steps)
            return evolve(finished, outcome="failed", reason=errors[0], invitation_reason=waits)
        return await self._invite(row, key, finished, steps, created=created, fresh=fresh)

    def _record_removal(
        self, row: MemberRow, step: RemoveFromGroup | UnenrollCourse, member_id: int, done: Action
    ) -> None:
        """Log an applied removal in the journal's removal log, kept across runs."""
        self._journal.removals.record(
            member_id=member_id,
            email=row.email,
            kind="unenroll" if isinstance(step, UnenrollCourse) else "remove_group",
            target=step.target,
            at=cast(str, done.at),
        )

    async def _run_step(self, key: str, row: MemberRow, step: Step, member_id: int | None) -> int:
        """Send one step; returns the member's id (a create's or an update's, or the same)."""
        if isinstance(step, CreateMember):
            return await self._create(key, row, step)
        if isinstance(step, UpdateMember):
            updated = await _update(self._client, step)
            self._journal.record_member(key, member_id=updated, outcome="updated")
            return updated
        if member_id is None:  # pragma: no cover - plans put the member step first
            raise RuntimeError("no member id for a step after the member step")
        await _step(self._client, step, member_id)
        return member_id

    async def _invite(
        self,
        row: MemberRow,
        key: str,
        finished: RowReport,
        steps: list[tuple[str, str | None]],
        *,
        created: bool | None,
        fresh: bool,
    ) -> RowReport:
        """Finish a row whose steps all succeeded: decide, record and send its invitation.

        (An unknown ``created`` was withheld by ``run`` before the member id was recorded.)
        A member this row just created has no history but what it wrote (owed, which
        decides as no entry does), so only other rows read the ledger.
        """
        journal = self._journal
        member_id = cast(int, finished.member_id)
        entry = None if fresh else await journal.invitations.fetch(member_id)
        decision = decide_invitation(
            row_wants=row.invite, created=created, entry=entry, options=self._options
        )
        if decision.invitation == "acknowledged" and entry and entry.acknowledged_at is None:
            journal.invitations.acknowledge(entry)
        journal.finish_row(key, invite=decision.send, steps=steps)
        invitation, invitation_reason = decision.invitation, decision.reason
        actions = finished.actions
        if decision.send:
            sent = await journal.invitations.send_once(
                member_id,
                email=row.email,
                request=partial(self._client.members.invite, member_id),
                options=self._options,
            )
            invitation = sent.invitation
            if invitation == "sent":  # why it was sent: the decision's reason
                actions = (*actions, Action(kind="invite", at=utc_now()))
            else:
                invitation_reason = sent.reason
        return evolve(
            finished,
            actions=actions,
            invitation=invitation,
            invitation_reason=invitation_reason,
        )

    async def _create(self, key: str, row: MemberRow, step: CreateMember) -> int:
        """Create the member; one found existing raises _Existed for the caller to re-plan."""
        member, created = await create_member(self._client, step.email, dict(step.fields))
        if not created:
            raise _Existed(member, created)
        journal = self._journal
        journal.record_member(key, member_id=member.id, outcome="created")
        if self._may_invite(row):
            # Owed from now on: a failed step must not strand a new hire. Durable with the
            # next commit; a crash before it leaves the invitation withheld, not lost.
            journal.invitations.owe(member.id, email=row.email)
        return member.id

    def _may_invite(self, row: MemberRow) -> bool:
        """Whether the row's member could get an invitation from this job at all."""
        return row.invite is True or (row.invite is None and self._options.invite != "none")


def _wants_invite(plan: RowPlan) -> bool:
    return any(isinstance(step, SendInvite) for step in plan.steps)


def _plan_outcome(plan: RowPlan) -> MemberOutcome:
    """What the plan does to the member (a conflict never reaches the pipeline)."""
    outcome = plan.outcome
    if outcome == "conflict":  # pragma: no cover - callers report conflicts themselves
        raise ValueError(f"line {plan.line}: cannot apply a conflicting plan")
    return outcome


def _failed(plan: RowPlan, reason: str, actions: Sequence[Action] = ()) -> RowReport:
    return RowReport(
        line=plan.line,
        email=plan.email,
        outcome="failed",
        reason=reason,
        member_id=plan.member_id,
        actions=tuple(actions),
    )


async def _update(client: ClientView, step: UpdateMember) -> int:
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

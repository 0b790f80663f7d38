"""The sync planner: the fewest calls that turn what the academy has into what the rows want.

Pure: it compares desired :class:`~coursepath_async.bulk.MemberRow` objects with the
academy's current members and returns typed steps; the async job executes them and the
``--dry-run`` prints :meth:`Plan.describe`. Rules:

- A row is matched to a member by externalId when it has one, else by email (case
  ignored). A match that contradicts itself (the externalId is one member, the email
  another) is a conflict: reported, never guessed.
- Only fields the row gives and that differ are updated; ``None`` means "leave it".
- Group names compare ignoring case and surrounding spaces, so "sales" does not create
  a twin of "Sales". An existing group is always named as the academy spells it (the
  API matches names exactly); removals name every spelling the member has that the row
  does not want.
- Programs cannot be listed per member, so program enrolment is always "ensure"
  (idempotent) and does not count as a change.
- Destructive steps happen only when asked: group removals with ``remove_groups``,
  course unenrolments (which delete learning results) with ``unenroll``. Both need the
  member's current groups/courses; the planner refuses to guess them.
- Members the rows do not mention are never touched.
"""

from __future__ import annotations

from collections.abc import Iterable

from attrs import field, frozen

from .._exceptions import InvalidInputError
from .._models import Member
from .._validation import check_choice, short_repr, validate_group_name, validate_id
from ._academy import AcademyIndex, CurrentMember, MatchConflict, group_key
from ._claims import MemberClaims
from ._ledger import InvitePolicy
from ._rows import MemberRow
from ._steps import (
    AddToGroup,
    CreateMember,
    EnrollCourse,
    EnrollProgram,
    FieldChange,
    RemoveFromGroup,
    RowPlan,
    SendInvite,
    Step,
    UnenrollCourse,
    UpdateMember,
)

__all__ = [
    "InvitePolicy",
    "Plan",
    "PlanCounts",
    "PlanOptions",
    "RowPlan",
    "plan_row",
    "plan_sync",
]


def _items(value: object, field: str) -> Iterable[object]:
    """A collection option's items; a lone string (iterated by letter) or int is refused."""
    if isinstance(value, str | bytes) or not isinstance(value, Iterable):
        raise InvalidInputError(
            f"{field} must be a tuple or list, got {short_repr(value)}", argument=field
        )
    return value


def _group_names(value: Iterable[str]) -> tuple[str, ...]:
    return tuple(validate_group_name(name, field="groups") for name in _items(value, "groups"))


def _course_ids(value: Iterable[int]) -> tuple[int, ...]:
    return tuple(validate_id(course, field="courses") for course in _items(value, "courses"))


def _program_ids(value: Iterable[int]) -> tuple[int, ...]:
    return tuple(validate_id(program, field="programs") for program in _items(value, "programs"))


def _invite_policy(_instance: object, _attribute: object, value: object) -> None:
    check_choice(value, field="invite", choices=("none", "new", "all"))


@frozen(kw_only=True)
class PlanOptions:
    """Job-wide wishes added to every row, and the switches for destructive steps.

    ``invite``: "none" (only rows whose invite column says yes), "new" (members this
    run creates) or "all" (every row; re-sends to existing members). A row's own invite
    column, when filled, wins.
    """

    groups: tuple[str, ...] = field(default=(), converter=_group_names)
    courses: tuple[int, ...] = field(default=(), converter=_course_ids)
    programs: tuple[int, ...] = field(default=(), converter=_program_ids)
    invite: InvitePolicy = field(default="none", validator=_invite_policy)
    remove_groups: bool = False
    unenroll: bool = False


@frozen(kw_only=True)
class PlanCounts:
    """How many rows and steps of each kind a plan holds."""

    rows: int
    creates: int
    updates: int
    unchanged: int
    conflicts: int
    group_adds: int
    group_removals: int
    course_enrolments: int
    course_unenrolments: int
    program_enrolments: int
    invites: int

    @property
    def destructive(self) -> int:
        """Steps that delete something."""
        return self.group_removals + self.course_unenrolments


@frozen
class Plan:
    """The plan for a whole sync, row by row."""

    rows: tuple[RowPlan, ...]

    @property
    def counts(self) -> PlanCounts:
        """Totals by row outcome and step kind."""
        outcomes = [row.outcome for row in self.rows]
        steps = [type(step) for row in self.rows for step in row.steps]
        return PlanCounts(
            rows=len(self.rows),
            creates=outcomes.count("created"),
            updates=outcomes.count("updated"),
            unchanged=outcomes.count("unchanged"),
            conflicts=outcomes.count("conflict"),
            group_adds=steps.count(AddToGroup),
            group_removals=steps.count(RemoveFromGroup),
            course_enrolments=steps.count(EnrollCourse),
            course_unenrolments=steps.count(UnenrollCourse),
            program_enrolments=steps.count(EnrollProgram),
            invites=steps.count(SendInvite),
        )

    def describe(self) -> list[str]:
        """Every planned step and conflict as a line, then a summary line."""
        lines = [line for row in self.rows for line in row.describe()]
        c = self.counts
        summary = (
            f"plan: {c.rows} rows: {c.creates} to create, {c.updates} to update, "
            f"{c.unchanged} unchanged, {c.conflicts} conflicts; "
            f"{c.group_adds} group adds, {c.course_enrolments} course enrolments, "
            f"{c.program_enrolments} program enrolments, {c.invites} invitations; "
            f"{c.destructive} destructive "
            f"({c.group_removals} group removals, {c.course_unenrolments} course unenrolments)"
        )
        return [*lines, summary]


def _wanted_groups(names: Iterable[str], academy: AcademyIndex) -> dict[str, str]:
    """The wanted groups by :func:`group_key`, each as the academy spells it (first kept)."""
    wanted: dict[str, str] = {}
    for name in names:
        wanted.setdefault(group_key(name), academy.group_name(name))
    return wanted


def _field_changes(row: MemberRow, member: Member) -> tuple[FieldChange, ...]:
    changes = []
    if row.email_key != member.email.lower():  # matched by externalId, email moved
        changes.append(FieldChange("email", member.email, row.email))
    for name, new in row.member_fields().items():
        old = getattr(member, name)
        if old != new:
            changes.append(FieldChange(name, old, new))
    return tuple(changes)


def plan_row(row: MemberRow, academy: AcademyIndex, options: PlanOptions) -> RowPlan:
    """Plan one row against the academy (for an import, an index of the looked-up members)."""
    try:
        current = academy.match(row)
    except MatchConflict as exc:
        return RowPlan(
            line=row.line, key=row.natural_key, email=row.email, member_id=None, conflict=str(exc)
        )
    groups = _wanted_groups((*row.groups, *options.groups), academy)
    courses = dict.fromkeys((*row.courses, *options.courses))
    programs = dict.fromkeys((*row.programs, *options.programs))
    steps: list[Step] = []
    if current is None:
        steps.append(CreateMember(email=row.email, fields=tuple(row.member_fields().items())))
        steps.extend(AddToGroup(name) for name in groups.values())
        steps.extend(EnrollCourse(course) for course in courses)
    else:
        changes = _field_changes(row, current.member)
        if changes:
            steps.append(UpdateMember(member_id=current.member.id, changes=changes))
        steps.extend(_group_steps(groups, current, options))
        steps.extend(_course_steps(courses, current, options))
    steps.extend(EnrollProgram(program) for program in programs)
    created = current is None
    invite = row.invite
    if invite is None:
        invite = options.invite == "all" or (options.invite == "new" and created)
    if invite:
        steps.append(SendInvite())
    return RowPlan(
        line=row.line,
        key=row.natural_key,
        email=row.email,
        member_id=None if current is None else current.member.id,
        steps=tuple(steps),
    )


def _group_steps(
    wanted: dict[str, str], current: CurrentMember, options: PlanOptions
) -> list[AddToGroup | RemoveFromGroup]:
    if current.groups is None:
        if options.remove_groups:
            raise InvalidInputError(
                "remove_groups needs each member's current groups (groups=None)", argument="current"
            )
        return [AddToGroup(name) for name in wanted.values()]  # adding twice is harmless
    have = {group_key(name) for name in current.groups}
    steps: list[AddToGroup | RemoveFromGroup] = [
        AddToGroup(name) for key, name in wanted.items() if key not in have
    ]
    if options.remove_groups:
        # Every spelling the member has ("Sales" and "SALES"), exactly as listed.
        steps.extend(
            RemoveFromGroup(name)
            for name in sorted(current.groups)
            if group_key(name) not in wanted
        )
    return steps


def _course_steps(
    wanted: dict[int, None], current: CurrentMember, options: PlanOptions
) -> list[EnrollCourse | UnenrollCourse]:
    if current.courses is None:
        if options.unenroll:
            raise InvalidInputError(
                "unenroll needs each member's current courses (courses=None)", argument="current"
            )
        return [EnrollCourse(course) for course in wanted]  # enrolling twice is idempotent
    steps: list[EnrollCourse | UnenrollCourse] = [
        EnrollCourse(course) for course in wanted if course not in current.courses
    ]
    if options.unenroll:
        steps.extend(UnenrollCourse(course) for course in sorted(current.courses - wanted.keys()))
    return steps


def plan_sync(rows: Iterable[MemberRow], academy: AcademyIndex, options: PlanOptions) -> Plan:
    """Plan every row; two rows that would act on the same member are conflicts.

    The claims live for this call only, so planning stays a function of its inputs.
    """
    claims = MemberClaims()
    return Plan(tuple(claims.claim(plan_row(row, academy, options)) for row in rows))

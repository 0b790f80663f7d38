"""The typed steps a plan holds, a row's plan, and how steps read back from the journal.

Each step is a frozen value saying what it does (``kind``, ``target``), whether it
changes the member as we can see it (``changes_member``: "ensure" steps and invitations do
not), whether it deletes something (``destructive``) and its journal step name
(``key``); the async job executes them and the dry run prints :meth:`describe`.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import ClassVar, Final, Literal, Protocol, Self

from attrs import frozen

from ._journal import MEMBER_STEP
from ._report import Action, ActionKind

__all__ = [
    "AddToGroup",
    "CreateMember",
    "EnrollCourse",
    "EnrollProgram",
    "FieldChange",
    "RemoveFromGroup",
    "RowPlan",
    "SendInvite",
    "Step",
    "UnenrollCourse",
    "UpdateMember",
    "action",
    "changes_member",
    "journaled_actions",
    "journaled_steps",
]


def _quote(value: str | None) -> str:
    if value is None:
        return "(none)"
    return repr(value if len(value) <= 60 else value[:60] + "...")


@frozen
class FieldChange:
    """One member field to change: its snake_case name, the current and the wanted value."""

    field: str
    old: str | None
    new: str


@frozen(kw_only=True)
class CreateMember:
    """Create the member with the row's email and given fields."""

    destructive: ClassVar[bool] = False
    changes_member: ClassVar[bool] = True
    key: ClassVar[str] = MEMBER_STEP
    kind: ClassVar[ActionKind] = "create"

    email: str
    fields: tuple[tuple[str, str], ...] = ()

    @property
    def target(self) -> str:
        """What the report's action names: the new member's email."""
        return self.email

    def describe(self) -> str:
        """One line for a dry run."""
        shown = ", ".join(f"{name}={_quote(value)}" for name, value in self.fields)
        return f"create member {self.email}" + (f" ({shown})" if shown else "")


@frozen(kw_only=True)
class UpdateMember:
    """Change the fields of an existing member that differ from the row."""

    destructive: ClassVar[bool] = False
    changes_member: ClassVar[bool] = True
    key: ClassVar[str] = MEMBER_STEP
    kind: ClassVar[ActionKind] = "update"

    member_id: int
    changes: tuple[FieldChange, ...]

    @property
    def target(self) -> str:
        """What the report's action names: the changed fields, comma-separated."""
        return ",".join(change.field for change in self.changes)

    def fields(self) -> dict[str, str]:
        """The new values by snake_case name (``email`` included), as update() takes them."""
        return {change.field: change.new for change in self.changes}

    def describe(self) -> str:
        """One line for a dry run."""
        changes = ", ".join(f"{c.field} {_quote(c.old)} -> {_quote(c.new)}" for c in self.changes)
        return f"update {changes}"


@frozen
class _GroupStep:
    """A step on one group membership, journaled as its prefix and the group's name."""

    journal_prefix: ClassVar[str]
    group: str

    @property
    def key(self) -> str:
        """The journal step name."""
        return f"{self.journal_prefix}{self.group}"

    @classmethod
    def from_journal(cls, target: str) -> Self:
        """The step a journal step name (less its prefix) records."""
        return cls(target)

    @property
    def target(self) -> str:
        """What the report's action names: the group."""
        return self.group


@frozen
class AddToGroup(_GroupStep):
    """Add the member to a group (by name)."""

    destructive: ClassVar[bool] = False
    changes_member: ClassVar[bool] = True
    journal_prefix: ClassVar[str] = "group+:"
    kind: ClassVar[ActionKind] = "add_group"

    def describe(self) -> str:
        """One line for a dry run."""
        return f"add to group {_quote(self.group)}"


@frozen
class RemoveFromGroup(_GroupStep):
    """Remove the member from a group the rows no longer list (only with remove_groups)."""

    destructive: ClassVar[bool] = True
    changes_member: ClassVar[bool] = True
    journal_prefix: ClassVar[str] = "group-:"
    kind: ClassVar[ActionKind] = "remove_group"

    def describe(self) -> str:
        """One line for a dry run."""
        return f"remove from group {_quote(self.group)}"


@frozen
class _CourseStep:
    """A step on one course enrolment, journaled as its prefix and the course id."""

    journal_prefix: ClassVar[str]
    course_id: int

    @property
    def key(self) -> str:
        """The journal step name."""
        return f"{self.journal_prefix}{self.course_id}"

    @classmethod
    def from_journal(cls, target: str) -> Self:
        """The step a journal step name (less its prefix) records."""
        return cls(int(target))

    @property
    def target(self) -> int:
        """What the report's action names: the course."""
        return self.course_id


@frozen
class EnrollCourse(_CourseStep):
    """Enrol the member in a course as learner."""

    destructive: ClassVar[bool] = False
    changes_member: ClassVar[bool] = True
    journal_prefix: ClassVar[str] = "course+:"
    kind: ClassVar[ActionKind] = "enroll"

    def describe(self) -> str:
        """One line for a dry run."""
        return f"enrol in course {self.course_id}"


@frozen
class UnenrollCourse(_CourseStep):
    """Remove the member from a course, deleting their learning results (only with unenroll)."""

    destructive: ClassVar[bool] = True
    changes_member: ClassVar[bool] = True
    journal_prefix: ClassVar[str] = "course-:"
    kind: ClassVar[ActionKind] = "unenroll"

    def describe(self) -> str:
        """One line for a dry run."""
        return f"unenroll from course {self.course_id} (deletes the member's learning results)"


@frozen
class EnrollProgram:
    """Make sure the member is enrolled in a program (cannot be checked, so always planned)."""

    destructive: ClassVar[bool] = False
    changes_member: ClassVar[bool] = False
    journal_prefix: ClassVar[str] = "program+:"
    kind: ClassVar[ActionKind] = "enroll_program"
    program_id: int

    @property
    def key(self) -> str:
        """The journal step name."""
        return f"{self.journal_prefix}{self.program_id}"

    @classmethod
    def from_journal(cls, target: str) -> Self:
        """The step a journal step name (less its prefix) records."""
        return cls(int(target))

    @property
    def target(self) -> int:
        """What the report's action names: the program."""
        return self.program_id

    def describe(self) -> str:
        """One line for a dry run."""
        return f"ensure enrolled in program {self.program_id}"


@frozen
class SendInvite:
    """Send the invitation email (at most once: the journal guards it)."""

    destructive: ClassVar[bool] = False
    changes_member: ClassVar[bool] = False
    key: ClassVar[str] = "invite"
    kind: ClassVar[ActionKind] = "invite"
    target: ClassVar[None] = None

    def describe(self) -> str:
        """One line for a dry run."""
        return "send invitation"


Step = (
    CreateMember
    | UpdateMember
    | AddToGroup
    | RemoveFromGroup
    | EnrollCourse
    | UnenrollCourse
    | EnrollProgram
    | SendInvite
)


class _Journaled(Protocol):
    """A step journaled under a name of its own: a prefix and its target."""

    journal_prefix: ClassVar[str]

    @classmethod
    def from_journal(cls, target: str) -> Step: ...


#: The steps journaled under their own name (the member step's is an outcome of its own).
_JOURNALED: Final[tuple[type[_Journaled], ...]] = (
    AddToGroup,
    RemoveFromGroup,
    EnrollCourse,
    UnenrollCourse,
    EnrollProgram,
)


def action(step: Step, *, at: str | None = None) -> Action:
    """The report's action for a step (``at``: when it was applied; None when planned)."""
    return Action(kind=step.kind, target=step.target, at=at)


def journaled_steps(step_keys: Iterable[str]) -> list[Step]:
    """The steps an earlier run's finished steps (journal names) record, by name."""
    found: list[Step] = []
    for key in sorted(step_keys):
        for kind in _JOURNALED:
            if key.startswith(kind.journal_prefix):
                found.append(kind.from_journal(key.removeprefix(kind.journal_prefix)))
    return found


def journaled_actions(step_keys: Iterable[str]) -> tuple[Action, ...]:
    """The actions an earlier run's finished steps (journal names) applied, undated."""
    return tuple(action(step) for step in journaled_steps(step_keys))


def changes_member(step_keys: Iterable[str]) -> bool:
    """Whether these finished steps (journal names) changed the member, as their types say."""
    return any(step.changes_member for step in journaled_steps(step_keys))


RowPlanOutcome = Literal["created", "updated", "unchanged", "conflict"]


@frozen(kw_only=True)
class RowPlan:
    """The steps for one row, in execution order, or why the row cannot be planned."""

    line: int
    key: str
    email: str
    member_id: int | None
    steps: tuple[Step, ...] = ()
    conflict: str | None = None

    @property
    def outcome(self) -> RowPlanOutcome:
        """What the row will do to its member, as the report names it."""
        if self.conflict is not None:
            return "conflict"
        if any(isinstance(step, CreateMember) for step in self.steps):
            return "created"
        if any(step.changes_member for step in self.steps):
            return "updated"
        return "unchanged"

    @property
    def destructive(self) -> bool:
        """Whether any step deletes something (group membership, learning results)."""
        return any(step.destructive for step in self.steps)

    def describe(self) -> list[str]:
        """Dry-run lines, destructive steps flagged in capitals."""
        who = f"line {self.line} {self.email}"
        if self.member_id is not None:
            who += f" (member {self.member_id})"
        if self.conflict is not None:
            return [f"{who}: CONFLICT, skipped: {self.conflict}"]
        return [
            f"{who}: {'DESTRUCTIVE: ' if step.destructive else ''}{step.describe()}"
            for step in self.steps
        ]

"""Plan steps say what they change, and read back from their journal step names."""

from __future__ import annotations

import pytest

from coursepath_async.bulk import Action
from coursepath_async.bulk._steps import changes_member, journaled_actions, journaled_steps
from coursepath_async.bulk.steps import (
    AddToGroup,
    EnrollCourse,
    EnrollProgram,
    RemoveFromGroup,
    Step,
    UnenrollCourse,
)

JOURNALED: list[Step] = [
    AddToGroup("Sales"),
    RemoveFromGroup("Old Team"),
    EnrollCourse(7),
    UnenrollCourse(8),
    EnrollProgram(9),
]


@pytest.mark.parametrize("step", JOURNALED, ids=lambda step: type(step).__name__)
def test_a_journaled_step_reads_back_from_its_key(step: Step) -> None:
    """A step's journal name parses back into an equal step with the same action."""
    assert journaled_steps({step.key}) == [step]
    assert journaled_actions({step.key}) == (Action(kind=step.kind, target=step.target),)


@pytest.mark.parametrize("step", JOURNALED, ids=lambda step: type(step).__name__)
def test_whether_a_finished_step_changed_the_member_is_its_type_s_word(step: Step) -> None:
    """``changes_member`` of a journal name is the class's own ``changes_member``."""
    assert changes_member({step.key}) is type(step).changes_member


def test_ensure_steps_and_other_journal_names_change_nothing() -> None:
    """Program enrolment, the member step and the invitation do not count as changes."""
    assert not changes_member({EnrollProgram(3).key, "member", "invite"})
    assert changes_member({EnrollProgram(3).key, EnrollCourse(4).key})
    assert journaled_steps({"member", "invite"}) == []

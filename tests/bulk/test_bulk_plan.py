"""The sync planner: minimal steps, no guessing on conflicts, destructive steps only if flagged."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import pytest
from attrs import evolve
from hypothesis import given, settings
from hypothesis import strategies as st

from coursepath_async import Member
from coursepath_async.bulk import (
    AcademyIndex,
    AddToGroup,
    CreateMember,
    CurrentMember,
    EnrollCourse,
    EnrollProgram,
    FieldChange,
    MemberRow,
    Plan,
    PlanOptions,
    RemoveFromGroup,
    RowPlan,
    SendInvite,
    UnenrollCourse,
    UpdateMember,
    plan_row,
    plan_sync,
)

DETERMINISTIC = settings(derandomize=True, database=None, deadline=None, max_examples=200)


def current(
    member_id: int,
    email: str,
    *,
    groups: Iterable[str] | None = (),
    courses: Iterable[int] | None = (),
    **fields: str | None,
) -> CurrentMember:
    return CurrentMember(
        member=Member(id=member_id, email=email, **fields),  # type: ignore[arg-type]
        groups=groups,
        courses=courses,
    )


def row(email: str, line: int = 2, **fields: object) -> MemberRow:
    return MemberRow(line=line, email=email, **fields)  # type: ignore[arg-type]


def plan_one(desired: MemberRow, *members: CurrentMember, **options: object) -> RowPlan:
    return plan_row(desired, AcademyIndex(members), PlanOptions(**options))  # type: ignore[arg-type]


def test_new_member_gets_create_groups_courses_programs() -> None:
    """An unknown email is created, then grouped and enrolled, job-wide extras included."""
    plan = plan_one(
        row("new@x.org", name="New", groups=("A",), courses=(3,), programs=(9,)),
        groups=("Staff",),
        courses=(4,),
        invite="new",
    )
    assert plan.steps == (
        CreateMember(email="new@x.org", fields=(("name", "New"),)),
        AddToGroup("A"),
        AddToGroup("Staff"),
        EnrollCourse(3),
        EnrollCourse(4),
        EnrollProgram(9),
        SendInvite(),
    )
    assert (plan.outcome, plan.member_id, plan.key) == ("created", None, "email:new@x.org")


def test_existing_member_in_desired_state_is_unchanged() -> None:
    """No step is planned when fields, groups and courses already match."""
    plan = plan_one(
        row("A@x.org", name="Ann", groups=("sales",), courses=(1,)),
        current(5, "a@x.org", name="Ann", groups={"Sales"}, courses={1, 2}),
        invite="new",
    )
    assert plan.steps == ()
    assert plan.outcome == "unchanged"


def test_only_differing_fields_are_updated_and_none_means_leave() -> None:
    """Changed fields are updated; equal fields and fields the row leaves empty are not."""
    plan = plan_one(
        row("a@x.org", name="Ann", company="New Co", department=None),
        current(5, "a@x.org", name="Ann", company="Old Co", department="Sales"),
    )
    assert plan.steps == (
        UpdateMember(member_id=5, changes=(FieldChange("company", "Old Co", "New Co"),)),
    )
    step = plan.steps[0]
    assert isinstance(step, UpdateMember)
    assert step.fields() == {"company": "New Co"}


def test_email_change_found_by_external_id() -> None:
    """A row matched by externalId updates the member's email when it changed."""
    plan = plan_one(
        row("new@x.org", external_id="E1"),
        current(5, "old@x.org", external_id="E1"),
    )
    assert plan.member_id == 5
    assert plan.steps == (
        UpdateMember(member_id=5, changes=(FieldChange("email", "old@x.org", "new@x.org"),)),
    )


def test_external_id_is_set_on_an_email_match_without_one() -> None:
    """A member found by email that has no externalId gets the row's."""
    plan = plan_one(row("a@x.org", external_id="E1"), current(5, "a@x.org"))
    assert plan.steps == (
        UpdateMember(member_id=5, changes=(FieldChange("external_id", None, "E1"),)),
    )


@pytest.mark.parametrize(
    ("desired", "members", "conflict"),
    [
        (
            row("b@x.org", external_id="E1"),
            [current(5, "a@x.org", external_id="E1"), current(6, "b@x.org")],
            "externalId 'E1' is member 5 (a@x.org) but b@x.org is member 6",
        ),
        (
            row("a@x.org", external_id="E2"),
            [current(5, "a@x.org", external_id="E1")],
            "a@x.org is member 5 with externalId 'E1', not 'E2'",
        ),
        (
            row("c@x.org", external_id="E1"),
            [current(5, "a@x.org", external_id="E1"), current(6, "b@x.org", external_id="E1")],
            "externalId 'E1' is shared by members 5, 6",
        ),
    ],
)
def test_contradictory_matches_are_conflicts(
    desired: MemberRow, members: list[CurrentMember], conflict: str
) -> None:
    """When externalId and email point at different members, the row is a conflict with no steps."""
    plan = plan_one(desired, *members)
    assert (plan.conflict, plan.steps, plan.outcome) == (conflict, (), "conflict")
    assert plan.describe() == [f"line 2 {desired.email}: CONFLICT, skipped: {conflict}"]


def test_group_removal_only_with_remove_groups() -> None:
    """Groups the row does not list stay unless remove_groups, and then they are destructive."""
    member = current(5, "a@x.org", groups={"Old", "Keep"})
    desired = row("a@x.org", groups=("keep", "New"))
    assert plan_one(desired, member).steps == (AddToGroup("New"),)
    plan = plan_one(desired, member, remove_groups=True)
    assert plan.steps == (AddToGroup("New"), RemoveFromGroup("Old"))
    assert plan.destructive
    assert "line 2 a@x.org (member 5): DESTRUCTIVE: remove from group 'Old'" in plan.describe()


def test_unenroll_only_with_unenroll() -> None:
    """Courses the row does not list are unenrolled only with unenroll, marked destructive."""
    member = current(5, "a@x.org", courses={1, 2})
    desired = row("a@x.org", courses=(1, 3))
    assert plan_one(desired, member).steps == (EnrollCourse(3),)
    plan = plan_one(desired, member, unenroll=True)
    assert plan.steps == (EnrollCourse(3), UnenrollCourse(2))
    assert any("DESTRUCTIVE: unenroll from course 2 (deletes" in line for line in plan.describe())


def test_destructive_flags_need_known_state() -> None:
    """remove_groups/unenroll refuse to run on members whose groups/courses were not fetched."""
    unknown = current(5, "a@x.org", groups=None, courses=None)
    with pytest.raises(ValueError, match="remove_groups needs"):
        plan_one(row("a@x.org"), unknown, remove_groups=True)
    with pytest.raises(ValueError, match="unenroll needs"):
        plan_one(row("a@x.org"), unknown, unenroll=True)
    plan = plan_one(row("a@x.org", groups=("G",), courses=(1,)), unknown)
    assert plan.steps == (AddToGroup("G"), EnrollCourse(1))


def test_programs_are_ensured_but_not_a_change() -> None:
    """Program enrolment is always planned (it cannot be checked) and leaves the row 'unchanged'."""
    plan = plan_one(row("a@x.org", programs=(9,)), current(5, "a@x.org"))
    assert plan.steps == (EnrollProgram(9),)
    assert plan.outcome == "unchanged"


@pytest.mark.parametrize(
    ("policy", "row_flag", "existing", "invited"),
    [
        ("none", None, False, False),
        ("new", None, False, True),
        ("new", None, True, False),
        ("all", None, True, True),
        ("all", False, False, False),
        ("none", True, True, True),
    ],
)
def test_invitation_policy(
    policy: str, row_flag: bool | None, existing: bool, invited: bool
) -> None:
    """The row's invite column wins; otherwise the policy decides (new members, all, none)."""
    members = [current(5, "a@x.org")] if existing else []
    plan = plan_one(row("a@x.org", invite=row_flag), *members, invite=policy)
    assert (SendInvite() in plan.steps) == invited


def test_bad_options_are_refused() -> None:
    """Options are validated: ids, group names and the invite policy."""
    with pytest.raises(ValueError, match="courses must be a positive integer"):
        PlanOptions(courses=(0,))
    with pytest.raises(ValueError, match="group"):
        PlanOptions(groups=(" ",))
    with pytest.raises(ValueError, match="invite"):
        PlanOptions(invite="sometimes")  # type: ignore[arg-type]


def test_two_rows_on_one_member_conflict() -> None:
    """A second row that lands on a member an earlier row already planned is a conflict."""
    academy = AcademyIndex([current(5, "a@x.org", external_id="E1")])
    plan = plan_sync(
        [row("a@x.org", line=2), row("b@x.org", line=3, external_id="E1")], academy, PlanOptions()
    )
    assert plan.rows[0].conflict is None
    assert plan.rows[1].conflict == "acts on the same member or email as line 2"
    assert plan.rows[1].steps == ()


def test_plan_counts_and_summary() -> None:
    """Counts add up by kind, and the dry-run ends with a summary naming destructive steps."""
    academy = AcademyIndex([current(5, "a@x.org", groups={"Old"}, courses={7})])
    plan = plan_sync(
        [row("a@x.org", line=2, courses=(8,)), row("n@x.org", line=3, groups=("G",))],
        academy,
        PlanOptions(remove_groups=True, unenroll=True, invite="new"),
    )
    c = plan.counts
    assert (c.rows, c.creates, c.updates, c.unchanged, c.conflicts) == (2, 1, 1, 0, 0)
    assert (c.group_adds, c.group_removals, c.course_enrolments, c.course_unenrolments) == (
        1,
        1,
        1,
        1,
    )
    assert (c.invites, c.destructive) == (1, 2)
    assert plan.describe()[-1].endswith("2 destructive (1 group removals, 1 course unenrolments)")


# -- property: applying a plan reaches the desired state, and re-planning finds nothing ------

EMAILS = st.sampled_from(["a@x.org", "b@x.org", "c@x.org", "d@x.org"])
GROUPS = st.lists(st.sampled_from(["Sales", "sales", "Ops", "HR"]), max_size=3)
COURSES = st.lists(st.integers(1, 4), max_size=3)
NAMES = st.one_of(st.none(), st.sampled_from(["Ann", "Bob"]))


@st.composite
def academies(draw: st.DrawFn) -> list[CurrentMember]:
    emails = draw(st.lists(EMAILS, unique=True, max_size=4))
    return [
        current(i + 1, e, name=draw(NAMES), groups=draw(GROUPS), courses=draw(COURSES))
        for i, e in enumerate(emails)
    ]


@st.composite
def desired_rows(draw: st.DrawFn) -> list[MemberRow]:
    emails = draw(st.lists(EMAILS, unique=True, max_size=4))
    return [
        row(
            e,
            line=i + 2,
            name=draw(NAMES),
            groups=tuple(dict.fromkeys(draw(GROUPS))),
            courses=tuple(draw(COURSES)),
        )
        for i, e in enumerate(emails)
    ]


def apply(plan: Plan, members: list[CurrentMember]) -> list[CurrentMember]:
    """Play the plan against an in-memory academy, as the job would against the API."""
    by_id = {m.member.id: m for m in members}
    for planned in plan.rows:
        target = by_id.get(planned.member_id) if planned.member_id is not None else None
        for step in planned.steps:
            if isinstance(step, CreateMember):
                new_id = max(by_id, default=0) + 1
                created: dict[str, Any] = dict(step.fields)
                member = Member(id=new_id, email=step.email, **created)
                target = CurrentMember(member=member, groups=(), courses=())
                by_id[new_id] = target
                continue
            assert target is not None
            groups, courses = set(target.groups or ()), set(target.courses or ())
            if isinstance(step, UpdateMember):
                changes: dict[str, Any] = step.fields()
                target = evolve(target, member=evolve(target.member, **changes))
            elif isinstance(step, AddToGroup):
                groups.add(step.group)
            elif isinstance(step, RemoveFromGroup):
                groups.discard(step.group)
            elif isinstance(step, EnrollCourse):
                courses.add(step.course_id)
            elif isinstance(step, UnenrollCourse):
                courses.discard(step.course_id)
            target = evolve(target, groups=groups, courses=courses)
            by_id[target.member.id] = target
    return list(by_id.values())


@DETERMINISTIC
@given(academies(), desired_rows(), st.booleans())
def test_plan_is_sufficient_and_minimal(
    members: list[CurrentMember], rows: list[MemberRow], destructive: bool
) -> None:
    """After applying a plan, re-planning finds no change; and no planned step was redundant."""
    options = PlanOptions(remove_groups=destructive, unenroll=destructive)
    plan = plan_sync(rows, AcademyIndex(members), options)
    by_id = {m.member.id: m for m in members}
    for planned in plan.rows:
        before = by_id.get(planned.member_id) if planned.member_id is not None else None
        for step in planned.steps:
            if before is None:
                continue
            if isinstance(step, AddToGroup):
                assert step.group.casefold() not in {g.casefold() for g in before.groups or ()}
            elif isinstance(step, EnrollCourse):
                assert step.course_id not in (before.courses or ())
            elif isinstance(step, UpdateMember):
                assert all(getattr(before.member, c.field) != c.new for c in step.changes)
            assert not step.destructive or destructive
    after = plan_sync(rows, AcademyIndex(apply(plan, members)), options)
    assert [p.outcome for p in after.rows] == ["unchanged"] * len(rows)

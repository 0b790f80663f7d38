"""Every endpoint of every resource over real HTTP, checked against the sandbox's state."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Literal

import pytest
from _support import serving

from coursepath_async import (
    ConflictError,
    Course,
    CourseMember,
    Group,
    Member,
    NotFoundError,
    PermissionDeniedError,
    ProgramMember,
)
from coursepath_async.testing import MemberRecord, SandboxAcademy

BodyFormat = Literal["json", "form"]

# Member-list filter keyword → MemberRecord attribute (the same names, by design).
FILTERS = (
    "email",
    "company",
    "department",
    "country",
    "external_id",
    "association",
    "identification",
    "registration",
)


def assert_same_member(member: Member, record: MemberRecord) -> None:
    """The decoded member carries every documented field of the academy's record."""
    assert isinstance(member, Member)
    assert member.id == record.id
    assert member.email == record.email
    assert member.name == record.name
    assert member.company == record.company
    assert member.department == record.department
    assert member.country == record.country
    assert member.external_id == record.external_id
    assert member.association == record.association
    assert member.identification == record.identification
    assert member.registration == record.registration
    assert member.created_date == record.created
    assert member.created_date is not None
    assert member.created_date.tzinfo is not None


def a_learner_with_course_and_group(academy: SandboxAcademy) -> MemberRecord:
    """A seeded learner enrolled in at least one course and in at least one group."""
    state = academy.state
    for record in state.members():
        courses, groups = state.member_course_ids(record.id), state.member_group_ids(record.id)
        if record.role == "learner" and courses and groups:
            return record
    raise AssertionError("the seed has no learner with both a course and a group")


# -- members: reads -----------------------------------------------------------------------


async def test_me_is_the_acting_admin() -> None:
    """``members.me()`` decodes the admin's own record."""
    async with serving() as (academy, client):
        me = await client.members.me()
        admin = academy.state.member_by_email(academy.admin_email)
        assert admin is not None
        assert_same_member(me, admin)
        assert academy.recorder.count("GET", "/members/me") == 1


async def test_get_returns_the_member_record() -> None:
    """``members.get(id)`` returns the typed member the academy stores under that id."""
    async with serving() as (academy, client):
        for record in academy.state.members()[:5]:
            assert_same_member(await client.members.get(record.id), record)


async def test_get_unknown_member_is_not_found_and_not_retried() -> None:
    """A 404 is a typed ``NotFoundError`` after exactly one request."""
    async with serving() as (academy, client):
        with pytest.raises(NotFoundError) as caught:
            await client.members.get(987_654)
        assert caught.value.status_code == 404
        assert academy.recorder.count("GET", "/members/{id}") == 1


async def test_list_members_returns_every_member_in_id_order() -> None:
    """``members.list()`` streams every member of the academy, each decoded in full."""
    async with serving() as (academy, client):
        members = [m async for m in client.members.list()]
        records = academy.state.members()
        assert [m.id for m in members] == [r.id for r in records]
        for member, record in zip(members, records, strict=True):
            assert_same_member(member, record)


@pytest.mark.parametrize("name", FILTERS)
async def test_list_members_with_each_filter(name: str) -> None:
    """Each member-list filter returns exactly the members whose field matches."""
    async with serving(members=60) as (academy, client):
        records = academy.state.members()
        value = next(getattr(r, name) for r in records[1:] if getattr(r, name) is not None)
        expected = [r.id for r in records if getattr(r, name) == value]
        assert expected
        query = value.upper() if name == "email" else value  # email matches case-insensitively
        found = await client.members.list(**{name: query})
        assert [m.id for m in found] == expected
        sent = [r for r in academy.recorder.requests if r.route == "/api/v1/members"]
        assert sent
        assert all(r.status == 200 for r in sent)


async def test_member_courses_and_groups() -> None:
    """``members.courses`` and ``members.groups`` list what the academy says the member has."""
    async with serving() as (academy, client):
        record = a_learner_with_course_and_group(academy)
        courses = await client.members.courses(record.id)
        assert all(isinstance(c, Course) for c in courses)
        assert [c.id for c in courses] == academy.state.member_course_ids(record.id)
        groups = await client.members.groups(record.id)
        assert all(isinstance(g, Group) for g in groups)
        assert [g.id for g in groups] == academy.state.member_group_ids(record.id)
        names = {g.id: g.name for g in academy.state.groups()}
        assert all(g.name == names[g.id] for g in groups)


# -- members: writes (JSON and form bodies) ------------------------------------------------


@pytest.mark.parametrize("body_format", ["json", "form"])
async def test_create_member_with_every_field(body_format: BodyFormat) -> None:
    """``members.create`` stores every given field and returns the new member."""
    async with serving(client={"body_format": body_format}) as (academy, client):
        before = academy.state.member_count
        member = await client.members.create(
            "new.hire@example.org",
            name="New Hire",
            company="Initech",
            department="QA",
            country="BE",
            external_id="X-1",
            association="Guild",
            identification="ID-9",
            registration="R-7",
        )
        record = academy.state.member_by_email("new.hire@example.org")
        assert record is not None
        assert_same_member(member, record)
        assert member.company == "Initech"
        assert member.external_id == "X-1"
        assert academy.state.member_count == before + 1


@pytest.mark.parametrize("body_format", ["json", "form"])
async def test_create_member_without_name_derives_it(body_format: BodyFormat) -> None:
    """Without ``name`` the academy derives one from the email, and the client returns it."""
    async with serving(client={"body_format": body_format}) as (_, client):
        member = await client.members.create("jane.doe@example.org")
        assert member.name == "Jane Doe"


async def test_create_existing_email_is_a_conflict_after_one_request() -> None:
    """Creating a member whose email exists is a ``ConflictError``, not retried, not looked up."""
    async with serving() as (academy, client):
        existing = academy.state.members()[3]
        with pytest.raises(ConflictError) as caught:
            await client.members.create(existing.email)
        assert caught.value.after_unknown_outcome is False
        assert academy.recorder.count("POST", "/members") == 1
        assert academy.recorder.count("GET", "/members") == 0


@pytest.mark.parametrize("body_format", ["json", "form"])
async def test_update_member_changes_only_given_fields(body_format: BodyFormat) -> None:
    """``members.update`` changes the given fields, leaves the rest, returns the new state."""
    async with serving(client={"body_format": body_format}) as (academy, client):
        before = academy.state.members()[4]
        updated = await client.members.update(
            before.id, company="Umbrella", email="moved@example.org"
        )
        after = academy.state.member(before.id)
        assert_same_member(updated, after)
        assert after.company == "Umbrella"
        assert after.email == "moved@example.org"
        assert after.department == before.department
        assert after.name == before.name


@pytest.mark.parametrize("body_format", ["json", "form"])
async def test_invite_member_with_mail_overrides(body_format: BodyFormat) -> None:
    """``members.invite`` sends one invitation carrying the subject/body/action overrides."""
    async with serving(client={"body_format": body_format}) as (academy, client):
        record = academy.state.members()[2]
        await client.members.invite(record.id, subject="Hi", body="Join us", action="Start")
        await client.members.invite(record.id)
        log = academy.recorder.invitation_log
        assert [(i.member_id, i.scope, i.scope_id) for i in log] == [
            (record.id, "member", None),
            (record.id, "member", None),
        ]
        assert (log[0].subject, log[0].body, log[0].action) == ("Hi", "Join us", "Start")
        assert (log[1].subject, log[1].body, log[1].action) == (None, None, None)


@pytest.mark.parametrize("body_format", ["json", "form"])
async def test_group_membership_changes(body_format: BodyFormat) -> None:
    """add_to_group / remove_from_group / remove_from_all_groups change the academy's groups."""
    async with serving(client={"body_format": body_format}) as (academy, client):
        state = academy.state
        member_id = state.members()[5].id
        await client.members.remove_from_all_groups(member_id)
        assert state.member_group_ids(member_id) == []

        await client.members.add_to_group(member_id, "Night Owls")
        await client.members.add_to_group(member_id, "Night Owls")  # already in it: fine
        await client.members.add_to_group(member_id, "Day Larks")
        owls = state.group_by_name("Night Owls")
        larks = state.group_by_name("Day Larks")
        assert owls is not None
        assert larks is not None
        assert state.member_group_ids(member_id) == sorted([owls.id, larks.id])
        assert member_id in state.group_member_ids(owls.id)

        await client.members.remove_from_group(member_id, "Night Owls")
        assert state.member_group_ids(member_id) == [larks.id]
        with pytest.raises(NotFoundError):
            await client.members.remove_from_group(member_id, "Night Owls")
        assert academy.recorder.count("DELETE", "/members/{id}/groups") == 3  # the 404 once

        await client.members.remove_from_all_groups(member_id)
        assert state.member_group_ids(member_id) == []
        assert state.group_member_ids(larks.id) == []


# -- courses -----------------------------------------------------------------------------


async def test_course_get_and_list() -> None:
    """``courses.get`` and ``courses.list`` decode the academy's courses."""
    async with serving(courses=7) as (academy, client):
        records = academy.state.courses()
        courses = await client.courses.list()
        assert [c.id for c in courses] == [r.id for r in records]
        for course, record in zip(courses, records, strict=True):
            assert isinstance(course, Course)
            assert (course.name, course.description) == (record.name, record.description)
            assert course.created_date == record.created
        one = await client.courses.get(records[2].id)
        assert one == courses[2]
        with pytest.raises(NotFoundError):
            await client.courses.get(999)


async def test_course_members_with_and_without_filter() -> None:
    """``courses.members`` lists the course's learners, and filters them like ``members.list``."""
    async with serving(members=60) as (academy, client):
        state = academy.state
        course = max(state.courses(), key=lambda c: len(state.enrolments(c.id)))
        enrolled = [e.member_id for e in state.enrolments(course.id)]
        members = await client.courses.members(course.id)
        assert [m.id for m in members] == enrolled
        department = state.member(enrolled[0]).department
        assert department is not None
        filtered = await client.courses.members(course.id, department=department)
        expected = [i for i in enrolled if state.member(i).department == department]
        assert [m.id for m in filtered] == expected


@pytest.mark.parametrize("body_format", ["json", "form"])
async def test_course_create_member_creates_and_enrolls(body_format: BodyFormat) -> None:
    """``courses.create_member`` creates the member and enrols them in the course."""
    async with serving(client={"body_format": body_format}) as (academy, client):
        course_id = academy.state.courses()[1].id
        member = await client.courses.create_member(
            course_id, "learner.one@example.org", company="C"
        )
        record = academy.state.member_by_email("learner.one@example.org")
        assert record is not None
        assert_same_member(member, record)
        assert academy.state.enrolment(course_id, member.id) is not None


@pytest.mark.parametrize("body_format", ["json", "form"])
async def test_enroll_result_unenroll(body_format: BodyFormat) -> None:
    """``courses.enroll`` twice (idempotent), ``result``, then ``unenroll``, which deletes it."""
    async with serving(client={"body_format": body_format}) as (academy, client):
        state = academy.state
        course_id = state.courses()[0].id
        member_id = next(r.id for r in state.members() if state.enrolment(course_id, r.id) is None)
        enrolment = await client.courses.enroll(course_id, member_id)
        assert isinstance(enrolment, CourseMember)
        assert (enrolment.course_id, enrolment.member_id) == (course_id, member_id)
        assert enrolment.completed is False
        assert enrolment.created_date is not None
        assert enrolment.created_date.tzinfo is not None
        again = await client.courses.enroll(course_id, member_id)
        assert again == enrolment
        assert len([e for e in state.enrolments(course_id) if e.member_id == member_id]) == 1

        result = await client.courses.result(course_id, member_id)
        assert result == enrolment

        await client.courses.unenroll(course_id, member_id)
        assert state.enrolment(course_id, member_id) is None
        with pytest.raises(NotFoundError):
            await client.courses.result(course_id, member_id)
        with pytest.raises(NotFoundError):
            await client.courses.unenroll(course_id, member_id)
        assert academy.recorder.count("DELETE", "/courses/{c}/members/{m}/coursemember") == 2


@pytest.mark.parametrize("body_format", ["json", "form"])
async def test_completed_result_decodes(body_format: BodyFormat) -> None:
    """A completed result has an aware completed_date, the score, success and certificate URL."""
    async with serving(client={"body_format": body_format}) as (academy, client):
        state = academy.state
        course_id = state.courses()[0].id
        member_id = state.members()[1].id
        await client.courses.enroll(course_id, member_id)
        finished = datetime(2024, 3, 5, 14, 30, 15, tzinfo=UTC)
        academy.complete_course(
            course_id, member_id, score=87.5, success=True, completed_at=finished
        )
        result = await client.courses.result(course_id, member_id)
        assert result.completed
        assert result.completed_date == finished
        assert result.completed_date is not None
        assert result.completed_date.utcoffset() is not None
        assert result.score == 87.5
        assert result.success is True
        assert result.certificate == state.certificate_url(course_id, member_id)
        assert result.certificate is not None
        assert result.certificate.startswith("https://")

        other = state.members()[2].id
        await client.courses.enroll(course_id, other)
        academy.complete_course(course_id, other, score=12.0, success=False)
        failed = await client.courses.result(course_id, other)
        assert (failed.success, failed.score, failed.certificate) == (False, 12.0, None)
        assert failed.completed


@pytest.mark.parametrize("body_format", ["json", "form"])
async def test_course_invite(body_format: BodyFormat) -> None:
    """``courses.invite`` sends one course-scoped invitation with the overrides."""
    async with serving(client={"body_format": body_format}) as (academy, client):
        state = academy.state
        enrolment = state.enrolments()[0]
        await client.courses.invite(
            enrolment.course_id, enrolment.member_id, subject="Course", action="Go"
        )
        [invitation] = academy.recorder.invitation_log
        assert (invitation.member_id, invitation.scope, invitation.scope_id) == (
            enrolment.member_id,
            "course",
            enrolment.course_id,
        )
        assert (invitation.subject, invitation.body, invitation.action) == ("Course", None, "Go")


# -- programs ----------------------------------------------------------------------------


@pytest.mark.parametrize("body_format", ["json", "form"])
async def test_program_endpoints(body_format: BodyFormat) -> None:
    """``programs.create_member``/``enroll``/``invite``/``unenroll`` act on program enrolments."""
    async with serving(client={"body_format": body_format}) as (academy, client):
        state = academy.state
        program_id = state.programs()[0].id

        created = await client.programs.create_member(
            program_id, "prog.one@example.org", name="P One"
        )
        assert created.name == "P One"
        assert state.program_enrolment(program_id, created.id) is not None

        member_id = next(
            r.id for r in state.members() if state.program_enrolment(program_id, r.id) is None
        )
        enrolment = await client.programs.enroll(program_id, member_id)
        assert isinstance(enrolment, ProgramMember)
        assert (enrolment.program_id, enrolment.member_id) == (program_id, member_id)
        assert enrolment.created_date is not None
        assert await client.programs.enroll(program_id, member_id) == enrolment

        await client.programs.invite(program_id, member_id, subject="Program", body="B")
        [invitation] = academy.recorder.invitation_log
        assert (invitation.scope, invitation.scope_id, invitation.member_id) == (
            "program",
            program_id,
            member_id,
        )
        assert (invitation.subject, invitation.body, invitation.action) == ("Program", "B", None)

        await client.programs.unenroll(program_id, member_id)
        assert state.program_enrolment(program_id, member_id) is None
        with pytest.raises(NotFoundError):
            await client.programs.unenroll(program_id, member_id)


# -- groups ------------------------------------------------------------------------------


async def test_groups_list_and_members() -> None:
    """``groups.list`` and ``groups.members`` match the academy's groups and memberships."""
    async with serving(members=40, groups=5) as (academy, client):
        state = academy.state
        groups = await client.groups.list()
        assert [(g.id, g.name) for g in groups] == [(r.id, r.name) for r in state.groups()]
        for group in groups:
            members = await client.groups.members(group.id)
            assert [m.id for m in members] == state.group_member_ids(group.id)
        with pytest.raises(NotFoundError):
            await client.groups.members(999)


# -- acting as another member ---------------------------------------------------------------


async def test_learner_view_reads_itself_and_is_refused_admin_calls() -> None:
    """A learner view gets its own ``me()`` and record, and 403 on admin calls, each once."""
    async with serving() as (academy, client):
        learner = academy.state.members()[3]
        other = academy.state.members()[4]
        view = client.as_user(learner.email)
        assert view.user == learner.email

        assert_same_member(await view.members.me(), learner)
        assert_same_member(await view.members.get(learner.id), learner)

        refused: list[Callable[[], Awaitable[object]]] = [
            lambda: view.members.list().collect(),
            lambda: view.members.get(other.id),
            lambda: view.members.create("sneaky@example.org"),
            lambda: view.members.update(learner.id, company="Mine"),
            lambda: view.members.invite(other.id),
            lambda: view.courses.list().collect(),
            lambda: view.groups.list().collect(),
            lambda: view.members.add_to_group(learner.id, "Admins"),
        ]
        for call in refused:
            with pytest.raises(PermissionDeniedError) as caught:
                await call()
            assert caught.value.status_code == 403
        assert academy.state.member_by_email("sneaky@example.org") is None
        assert academy.recorder.invitation_log == []
        assert academy.recorder.status_counts[403] == len(refused)  # none retried

        # The admin client is unaffected, and every token named the member it acted for.
        assert (await client.members.me()).email == academy.admin_email
        emails = [r.email for r in academy.recorder.requests]
        assert emails[:-1] == [learner.email] * (len(emails) - 1)
        assert emails[-1] == academy.admin_email

"""Writes of unknown outcome: invites at most once, creates resolved by lookup, safe retries."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Literal

import pytest
from _support import serving

from coursepath_async import (
    APIConnectionError,
    CoursepathClient,
    ServerError,
    UncertainOutcomeError,
)
from coursepath_async.testing import SandboxAcademy, ScriptedFault

InviteCall = Callable[[CoursepathClient, SandboxAcademy], Awaitable[tuple[int, str]]]


async def invite_member(client: CoursepathClient, academy: SandboxAcademy) -> tuple[int, str]:
    member_id = academy.state.members()[2].id
    await client.members.invite(member_id, subject="Welcome")
    return member_id, "member"


async def invite_course(client: CoursepathClient, academy: SandboxAcademy) -> tuple[int, str]:
    enrolment = academy.state.enrolments()[0]
    await client.courses.invite(enrolment.course_id, enrolment.member_id)
    return enrolment.member_id, "course"


async def invite_program(client: CoursepathClient, academy: SandboxAcademy) -> tuple[int, str]:
    enrolment = academy.state.program_enrolments()[0]
    await client.programs.invite(enrolment.program_id, enrolment.member_id)
    return enrolment.member_id, "program"


INVITES: dict[str, tuple[str, InviteCall]] = {
    "member": ("/members/{m}/invite", invite_member),
    "course": ("/courses/{c}/members/{m}/invite", invite_course),
    "program": ("/programs/{p}/members/{m}/invite", invite_program),
}


# -- invitations: at most once ----------------------------------------------------------------


@pytest.mark.parametrize("scope", sorted(INVITES))
@pytest.mark.parametrize("fault", ["applied_then_502", "reset"])
async def test_invite_that_may_have_been_sent_is_uncertain_and_not_repeated(
    scope: str, fault: str
) -> None:
    """An invite applied then answered 502 (or cut off) is ``UncertainOutcomeError``, sent once."""
    route, call = INVITES[scope]
    async with serving() as (academy, client):
        academy.script("POST", route, fault)
        with pytest.raises(UncertainOutcomeError) as caught:
            await call(client, academy)
        assert isinstance(caught.value.__cause__, ServerError | APIConnectionError)
        assert academy.recorder.count("POST", route) == 1
        [invitation] = academy.recorder.invitation_log
        assert invitation.scope == scope
        assert academy.recorder.invitations[invitation.member_id] == 1


@pytest.mark.parametrize("scope", sorted(INVITES))
async def test_invite_after_a_proxy_5xx_is_uncertain_and_not_repeated(scope: str) -> None:
    """A 503 on an invite may have come after the email: not retried, never two invitations."""
    route, call = INVITES[scope]
    async with serving() as (academy, client):
        academy.script("POST", route, 503)
        with pytest.raises(UncertainOutcomeError):
            await call(client, academy)
        assert academy.recorder.count("POST", route) == 1
        assert academy.recorder.invitation_log == []  # a proxy 5xx applies nothing


@pytest.mark.parametrize("scope", sorted(INVITES))
async def test_invite_refused_with_429_is_retried_and_sent_once(scope: str) -> None:
    """A 429 is a refusal before any work: the invite is retried and sent exactly once."""
    route, call = INVITES[scope]
    async with serving() as (academy, client):
        academy.script("POST", route, ScriptedFault.rate_limit(0.01))
        member_id, _ = await call(client, academy)
        assert academy.recorder.count("POST", route) == 2
        assert academy.recorder.invitations[member_id] == 1
        assert len(academy.recorder.invitation_log) == 1


# -- member creation: retried, then resolved by lookup -----------------------------------------


@pytest.mark.parametrize("duplicate_status", [409, 422])
@pytest.mark.parametrize("fault", ["applied_then_502", "reset"])
async def test_create_applied_then_failed_returns_the_one_member(
    fault: str, duplicate_status: Literal[409, 422]
) -> None:
    """A create applied then failed is retried, answers "exists", and resolves to the member."""
    async with serving(duplicate_status=duplicate_status) as (academy, client):
        before = academy.state.member_count
        academy.script("POST", "/members", fault)
        member = await client.members.create("once@example.org", company="Once")
        record = academy.state.member_by_email("once@example.org")
        assert record is not None
        assert (member.id, member.email, member.company) == (record.id, record.email, "Once")
        assert academy.state.member_count == before + 1
        assert [m.id for m in await client.members.list(email="once@example.org")] == [record.id]
        statuses = [r.status for r in academy.recorder.requests if r.method == "POST"]
        assert statuses[1] == duplicate_status
        assert len(statuses) == 2


async def test_course_create_member_applied_then_failed_is_created_once_and_enrolled() -> None:
    """``courses.create_member`` after applied-then-502: one member, enrolled in the course."""
    async with serving() as (academy, client):
        course_id = academy.state.courses()[2].id
        before = academy.state.member_count
        academy.script("POST", "/courses/{c}/members", "applied_then_502")
        member = await client.courses.create_member(course_id, "c.once@example.org")
        assert academy.state.member_count == before + 1
        assert academy.state.enrolment(course_id, member.id) is not None
        assert academy.recorder.count("POST", "/courses/{c}/members") == 2


async def test_program_create_member_applied_then_failed_is_created_once_and_enrolled() -> None:
    """``programs.create_member`` after applied-then-502: one member, enrolled in the program."""
    async with serving() as (academy, client):
        program_id = academy.state.programs()[1].id
        before = academy.state.member_count
        academy.script("POST", "/programs/{p}/members", "applied_then_502")
        member = await client.programs.create_member(program_id, "p.once@example.org")
        assert academy.state.member_count == before + 1
        assert academy.state.program_enrolment(program_id, member.id) is not None


# -- idempotent writes: retried to the same end state --------------------------------------------


async def test_update_and_enroll_applied_then_failed_are_retried() -> None:
    """An update and an enrolment answered 502 after being applied are retried and succeed."""
    async with serving() as (academy, client):
        state = academy.state
        academy.script("POST", "/members/{m}", "applied_then_502")
        updated = await client.members.update(3, department="Retried")
        assert updated.department == "Retried" == state.member(3).department

        course_id = state.courses()[0].id
        member_id = next(m.id for m in state.members() if state.enrolment(course_id, m.id) is None)
        academy.script("POST", "/courses/{c}/members/{m}/coursemember", "applied_then_502")
        enrolment = await client.courses.enroll(course_id, member_id)
        assert (enrolment.course_id, enrolment.member_id) == (course_id, member_id)
        assert len([e for e in state.enrolments(course_id) if e.member_id == member_id]) == 1

        academy.script("POST", "/members/{m}/groups", "applied_then_502")
        await client.members.add_to_group(member_id, "Retry Club")
        group = state.group_by_name("Retry Club")
        assert group is not None
        assert state.group_member_ids(group.id) == [member_id]


async def test_removals_applied_then_failed_succeed_despite_the_404_on_retry() -> None:
    """Removals applied then answered 502: the retry's 404 means "done", not an error."""
    async with serving() as (academy, client):
        state = academy.state
        enrolment = state.enrolments()[0]
        academy.script("DELETE", "/courses/{c}/members/{m}/coursemember", "applied_then_502")
        await client.courses.unenroll(enrolment.course_id, enrolment.member_id)
        assert state.enrolment(enrolment.course_id, enrolment.member_id) is None

        program = state.program_enrolments()[0]
        academy.script("DELETE", "/programs/{p}/members/{m}/programmember", "applied_then_502")
        await client.programs.unenroll(program.program_id, program.member_id)
        assert state.program_enrolment(program.program_id, program.member_id) is None

        member_id = next(m.id for m in state.members() if state.member_group_ids(m.id))
        group = state.find_group(state.member_group_ids(member_id)[0])
        assert group is not None
        academy.script("DELETE", "/members/{m}/groups", "applied_then_502")
        await client.members.remove_from_group(member_id, group.name)
        assert group.id not in state.member_group_ids(member_id)

        statuses = [r.status for r in academy.recorder.requests]
        assert statuses == [502, 404] * 3

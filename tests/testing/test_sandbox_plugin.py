"""The pytest plugin users opt into, and the public names of the testing package."""

from __future__ import annotations

import importlib
from typing import Any

import pytest
from sandbox_raw import RawApi, one_attempt_session

import coursepath_async.testing
from coursepath_async.testing import SandboxAcademy

# The plugin is enabled by tests/conftest.py, exactly as a user enables it.


async def test_sandbox_fixture_is_a_running_seeded_academy(
    coursepath_sandbox: SandboxAcademy,
) -> None:
    """``coursepath_sandbox`` is a running academy with the plugin's small seed."""
    assert coursepath_sandbox.state.member_count == 25
    async with one_attempt_session() as session:
        response = await RawApi(coursepath_sandbox, session).get("/members/me")
    assert response.status == 200


async def test_client_fixture_talks_to_the_sandbox(
    coursepath_sandbox: SandboxAcademy, coursepath_client: Any
) -> None:
    """``coursepath_client`` is the SDK's client, signed in as the sandbox's admin."""
    sdk = importlib.import_module("coursepath_async")
    assert isinstance(coursepath_client, sdk.CoursepathClient)
    me = await coursepath_client.members.me()
    assert me.email == coursepath_sandbox.admin_email
    assert coursepath_sandbox.recorder.count("GET", "/members/me") == 1


class TestOverriddenOptions:
    @pytest.fixture
    def coursepath_sandbox_options(self) -> dict[str, Any]:
        return {"members": 3, "courses": 1, "seed": 5}

    async def test_sandbox_options_can_be_overridden(
        self, coursepath_sandbox: SandboxAcademy
    ) -> None:
        """Overriding ``coursepath_sandbox_options`` changes the academy the fixture builds."""
        assert coursepath_sandbox.state.member_count == 3
        assert len(coursepath_sandbox.state.courses()) == 1


def test_public_names_are_pinned_and_sorted() -> None:
    """The testing package exports exactly these names, in sorted order."""
    names = coursepath_async.testing.__all__
    assert names == sorted(names)
    assert set(names) == {
        "DEFAULT_ADMIN_EMAIL",
        "DIALECTS",
        "Dialect",
        "REJECTION_REASONS",
        "AcademyState",
        "CourseEvent",
        "CourseRecord",
        "DuplicateEmailError",
        "Enrolment",
        "Faults",
        "FixtureError",
        "GroupRecord",
        "Invitation",
        "MemberRecord",
        "ProgramEnrolment",
        "ProgramRecord",
        "Recorder",
        "RequestRecord",
        "SandboxAcademy",
        "SandboxStateError",
        "ScriptedFault",
        "UnknownRecordError",
        "WebhookDelivery",
        "leaked_credentials",
        "printed_forms",
    }
    assert all(hasattr(coursepath_async.testing, name) for name in names)

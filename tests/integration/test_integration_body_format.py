"""Body formats over real HTTP: auto switches to form on a 415, fixed formats do not."""

from __future__ import annotations

import logging

import pytest
from _support import serving

from coursepath_async import APIStatusError, RetryPolicy
from coursepath_async.testing import SandboxAcademy, ScriptedFault

_SWITCH = "sending form-encoded bodies from now on"


def _statuses(academy: SandboxAcademy) -> list[int | None]:
    return [r.status for r in academy.recorder.requests]


async def test_auto_switches_the_whole_client_to_form_after_one_415(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A form-only academy: the first create is resent as form at once; views then send form."""
    caplog.set_level(logging.INFO, logger="coursepath_async")
    # One attempt for faults: the 415 resend must not spend it.
    retry = RetryPolicy(max_attempts=1, base_delay=0.0, max_delay=0.0)
    async with serving(dialect="form_only", client={"retry": retry}) as (academy, client):
        assert client.body_format == "json"
        created = await client.members.create("formal@dialect.test", name="Formal One")
        assert _statuses(academy) == [415, 201]
        view = client.as_user(academy.admin_email)
        assert view.body_format == "form"
        updated = await view.members.update(created.id, company="Acme & Co")
        await client.members.invite(created.id, subject="Hi [you]", body="a=b&c")
        assert _statuses(academy) == [415, 201, 200, 200]
    assert updated.company == "Acme & Co"
    invitation = academy.recorder.invitation_log[-1]
    assert (invitation.subject, invitation.body) == ("Hi [you]", "a=b&c")
    switches = [r for r in caplog.records if _SWITCH in r.getMessage()]
    assert len(switches) == 1
    assert switches[0].levelno == logging.WARNING


async def test_a_415_to_both_formats_fails_clearly_after_two_requests() -> None:
    """An academy refusing JSON and form alike: one resend, then a 415 APIStatusError."""
    async with serving() as (academy, client):
        refused = ScriptedFault.status(415)
        academy.script("POST", "/members", refused, refused, refused)
        with pytest.raises(APIStatusError) as caught:
            await client.members.create("nobody@dialect.test")
        assert caught.value.status_code == 415
        assert academy.recorder.count("POST", "/api/v1/members") == 2
        assert academy.pending_script() == {"POST /api/v1/members": 1}


@pytest.mark.parametrize(("dialect", "body_format"), [("form_only", "json"), ("json_only", "form")])
async def test_a_fixed_format_is_never_switched(dialect: str, body_format: str) -> None:
    """body_format='json' (or 'form') against an academy refusing it: one 415, raised."""
    async with serving(dialect=dialect, client={"body_format": body_format}) as (academy, client):
        with pytest.raises(APIStatusError) as caught:
            await client.members.create("fixed@dialect.test")
        assert caught.value.status_code == 415
        assert len(academy.recorder.requests) == 1


async def test_a_get_answered_415_is_not_resent() -> None:
    """A 415 to a call without a body switches nothing and is raised after one request."""
    async with serving() as (academy, client):
        academy.script("GET", "/members/me", ScriptedFault.status(415))
        with pytest.raises(APIStatusError):
            await client.members.me()
        assert len(academy.recorder.requests) == 1
        await client.members.create("still-json@dialect.test")
        assert _statuses(academy) == [415, 201]

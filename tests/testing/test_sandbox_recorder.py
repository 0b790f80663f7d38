"""The sandbox academy's recorder: request log, in-flight peak, counters, reset."""

from __future__ import annotations

import asyncio

import aiohttp
from sandbox_raw import running, until_in_flight

from coursepath_async.testing import Recorder, ScriptedFault


async def test_requests_are_logged_with_token_details() -> None:
    """Each request is logged with route template, status, email, jti, iat and id."""
    async with running() as (academy, api):
        token = api.token(jti="jti-under-test", iat=1_700_000_000 + 0.0)
        learner = academy.state.members()[1]
        await api.get(f"/members/{learner.id}")
        await api.get("/members/me", token=token)
        records = list(academy.recorder.requests)
    first, second = records
    assert (first.method, first.path, first.status) == ("GET", f"/api/v1/members/{learner.id}", 200)
    assert first.route == "/api/v1/members/{memberId}"
    assert first.email == academy.admin_email
    assert first.request_id == "sbx-1"
    assert first.ended >= first.started
    assert (second.status, second.rejection) == (401, "expired")
    assert (second.jti, second.iat) == ("jti-under-test", 1_700_000_000.0)


async def test_request_id_header_matches_the_log() -> None:
    """Responses carry X-Request-Id, the id the log uses."""
    async with running() as (academy, api):
        response = await api.get("/members/me")
    assert response.headers["X-Request-Id"] == academy.recorder.requests[-1].request_id


async def test_counts_per_route_template() -> None:
    """Counts are per ``METHOD template``; ``count`` ignores placeholder names and prefix."""
    async with running() as (academy, api):
        for member_id in (1, 2, 3):
            await api.get(f"/members/{member_id}")
        await api.get("/members/me")
        await api.get("/nowhere")
    recorder = academy.recorder
    assert recorder.route_counts["GET /api/v1/members/{memberId}"] == 3
    assert recorder.count("GET", "/members/{id}") == 3
    assert recorder.count("get", "/api/v1/members/me") == 1
    assert recorder.route_counts["GET <unmatched>"] == 1
    assert recorder.status_counts == {200: 4, 404: 1}
    assert recorder.total == 5


async def test_peak_in_flight_is_exact() -> None:
    """Five hung requests are five in flight; cancelling them brings it back to zero."""
    async with running() as (academy, api):
        academy.script("GET", "/members/me", *["hang"] * 5)
        tasks = [asyncio.create_task(api.get("/members/me")) for _ in range(5)]
        await until_in_flight(academy, 5)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await until_in_flight(academy, 0)
        assert (await api.get("/members/me")).status == 200
    assert academy.recorder.peak_in_flight == 5
    assert [r.status for r in academy.recorder.requests] == [None] * 5 + [200]


async def test_jtis_and_duplicates_are_recorded() -> None:
    """Every jti presented is kept; presenting one again counts as a duplicate."""
    async with running() as (academy, api):
        token = api.token(jti="same")
        await api.get("/members/me", token=token)
        await api.get("/members/me", token=token)
        await api.get("/members/me", token=api.token(jti=42))
    assert academy.recorder.jtis == {"same", 42}
    assert academy.recorder.duplicate_jtis == {"same": 1}


async def test_aiohttp_hidden_retry_shows_up_as_a_replay() -> None:
    """Plain aiohttp resends a dropped DELETE with the same token: the academy sees a replay."""
    # Why a client must sign per attempt AND keep aiohttp from retrying on its own.
    async with running() as (academy, _), aiohttp.ClientSession() as plain:
        member = academy.state.add_member("twice@x.com")
        academy.state.enrol(2, member.id)
        path = f"/api/v1/courses/2/members/{member.id}/coursemember"
        academy.script("DELETE", path, ScriptedFault.reset())
        headers = {"Authorization": f"Bearer {academy.sign_token()}"}
        async with plain.delete(academy.url + path, headers=headers) as response:
            status = response.status
    assert status == 401
    assert academy.recorder.rejected_tokens == {"replay": 1}
    assert sum(academy.recorder.duplicate_jtis.values()) == 1
    assert academy.state.enrolment(2, member.id) is None


async def test_invitations_are_counted_per_member() -> None:
    """Invitations are counted per member id, each with its record."""
    async with running() as (academy, api):
        await api.post("/members/2/invite")
        await api.post("/members/2/invite")
        await api.post("/members/3/invite", json={"mail": {"subject": "Hello"}})
    assert academy.recorder.invitations == {2: 2, 3: 1}
    assert academy.recorder.invitation_log[-1].subject == "Hello"
    assert academy.recorder.invitation_log[-1].email == academy.state.member(3).email


async def test_reset_starts_a_fresh_tally() -> None:
    """``reset`` forgets requests, counts, rejections, jtis and invitations."""
    async with running() as (academy, api):
        await api.post("/members/2/invite")
        await api.get("/members/me", authorization="")
        academy.recorder.reset()
        await api.get("/members/me")
    recorder = academy.recorder
    assert recorder.total == 1
    assert len(recorder.requests) == 1
    assert recorder.invitations == {}
    assert recorder.rejected_tokens == {}
    assert len(recorder.jtis) == 1
    assert recorder.peak_in_flight == 1


async def test_the_log_can_be_bounded_while_counters_stay_complete() -> None:
    """``max_log`` keeps only the newest records; totals and counts see everything."""
    async with running(max_log=3, record_jtis=False) as (academy, api):
        for _ in range(10):
            await api.get("/members/me")
    assert len(academy.recorder.requests) == 3
    assert academy.recorder.requests[-1].request_id == "sbx-10"
    assert academy.recorder.total == 10
    assert academy.recorder.count("GET", "/members/me") == 10
    assert academy.recorder.jtis == set()


def test_recorder_repr_is_a_summary() -> None:
    """The repr shows totals, not the log."""
    assert repr(Recorder()) == "<Recorder total=0 in_flight=0 peak_in_flight=0 rejected=0>"

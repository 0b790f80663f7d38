"""Fault injection of the sandbox academy: random from a seed, scripted per route."""

from __future__ import annotations

import asyncio
import base64
from typing import Literal

import aiohttp
import pytest
from conftest import API_KEY
from sandbox_raw import RawApi, running, until_in_flight

from coursepath_async.testing import Faults, SandboxAcademy, ScriptedFault
from coursepath_async.testing._faults import FaultInjector, as_scripted_fault

HTML_502 = b"<html><body><h1>502 Bad Gateway</h1></body></html>"


def _labels(faults: Faults, n: int, *, write: bool = False) -> list[str | None]:
    injector = FaultInjector(faults)
    decisions = [injector.decide(write=write) for _ in range(n)]
    return [None if d.fault is None else d.fault.label for d in decisions]


async def _statuses(api: RawApi, n: int) -> list[int]:
    return [(await api.get("/members/me")).status for _ in range(n)]


# -- the injector on its own -------------------------------------------------------------


def test_same_seed_same_decisions() -> None:
    """Two injectors with the same seed decide the same sequence; another seed differs."""
    faults = Faults(seed=11, error_rate=0.3, reset_rate=0.1, slow_body_rate=0.1)
    first = _labels(faults, 200)
    assert first == _labels(faults, 200)
    other = Faults(seed=12, error_rate=0.3, reset_rate=0.1, slow_body_rate=0.1)
    assert first != _labels(other, 200)
    assert {"status:500", "status:502", "status:503", "reset", "slow_body", None} == set(first)


def test_latency_is_fixed_plus_seeded_jitter() -> None:
    """Latency is ``latency`` plus a seeded uniform jitter below ``latency_jitter``."""
    injector = FaultInjector(Faults(seed=3, latency=0.5, latency_jitter=0.25))
    again = FaultInjector(Faults(seed=3, latency=0.5, latency_jitter=0.25))
    latencies = [injector.decide(write=False).latency for _ in range(50)]
    assert latencies == [again.decide(write=False).latency for _ in range(50)]
    assert all(0.5 <= value < 0.75 for value in latencies)
    assert len(set(latencies)) == 50


def test_rate_limits_come_in_bursts() -> None:
    """A 429 burst is ``rate_limit_burst`` consecutive requests long."""
    labels = _labels(Faults(seed=5, rate_limit_rate=0.05, rate_limit_burst=4), 400)
    runs: list[int] = []
    length = 0
    for label in [*labels, None]:
        if label == "rate_limit":
            length += 1
        elif length:
            runs.append(length)
            length = 0
    assert runs
    assert all(run % 4 == 0 for run in runs)


def test_applied_then_fail_only_hits_writes() -> None:
    """``applied_then_fail_rate`` never fires for reads."""
    faults = Faults(seed=1, applied_then_fail_rate=1.0)
    assert _labels(faults, 20, write=False) == [None] * 20
    assert _labels(faults, 20, write=True) == ["applied_then:502"] * 20


def test_faults_validate_their_settings() -> None:
    """Rates outside [0, 1], non-5xx error statuses and empty bursts are refused."""
    with pytest.raises(ValueError, match="error_rate"):
        Faults(error_rate=1.5)
    with pytest.raises(ValueError, match="5xx"):
        Faults(error_statuses=(404,))
    with pytest.raises(ValueError, match="rate_limit_burst"):
        Faults(rate_limit_burst=0)


def test_script_shorthands() -> None:
    """Ints are statuses; names map to the ScriptedFault constructors; typos are refused."""
    assert as_scripted_fault(503) == ScriptedFault.status(503)
    assert as_scripted_fault("applied_then_504") == ScriptedFault.applied_then(504)
    assert as_scripted_fault("reset") == ScriptedFault.reset()
    assert as_scripted_fault("ok").kind == "ok"
    with pytest.raises(ValueError, match="unknown scripted fault"):
        as_scripted_fault("explode")
    with pytest.raises(ValueError, match="4xx or 5xx"):
        ScriptedFault.status(200)


# -- random faults over HTTP ---------------------------------------------------------------


async def test_same_seed_same_statuses_over_http() -> None:
    """Two academies with the same fault seed answer the same status sequence."""
    faults = Faults(seed=21, error_rate=0.4)
    async with running(faults=faults) as (_, api):
        first = await _statuses(api, 25)
    async with running(faults=faults) as (_, api):
        second = await _statuses(api, 25)
    async with running(faults=Faults(seed=22, error_rate=0.4)) as (_, api):
        other = await _statuses(api, 25)
    assert first == second
    assert first != other
    assert {200, 500, 502, 503} >= set(first) > {200}


async def test_injected_5xx_is_a_proxy_html_page_and_not_applied() -> None:
    """An injected 5xx carries an HTML body and the write is not applied."""
    async with running(faults=Faults(error_rate=1.0, error_statuses=(502,))) as (academy, api):
        count = academy.state.member_count
        response = await api.post("/members", json={"email": "never@x.com"})
        assert response.status == 502
        assert response.headers["Content-Type"] == "text/html"
        assert response.body == HTML_502
        assert academy.state.member_count == count


async def test_rate_limit_burst_over_http() -> None:
    """429s carry Retry-After (whole seconds, rounded up) and retry-after-ms, JSON body."""
    faults = Faults(rate_limit_rate=1.0, rate_limit_burst=2, retry_after=0.05)
    async with running(faults=faults) as (academy, api):
        response = await api.get("/members/me")
        academy.faults = Faults()
        after = await api.get("/members/me")
    assert response.status == 429
    assert response.headers["Retry-After"] == "1"
    assert response.headers["retry-after-ms"] == "50"
    assert response.json()["error"] == "rate_limited"
    assert after.status == 200


async def test_reset_breaks_the_response_but_applies_the_write() -> None:
    """A reset leaves the client with a payload error, yet the member was created."""
    async with running(faults=Faults(reset_rate=1.0)) as (academy, api):
        with pytest.raises(aiohttp.ClientPayloadError):
            await api.post("/members", json={"email": "maybe@x.com"})
        assert academy.state.member_by_email("maybe@x.com") is not None
        assert academy.recorder.requests[-1].fault == "reset"


async def test_reset_of_an_empty_response_disconnects() -> None:
    """A reset of a bodiless 204 drops the connection before any response."""
    async with running() as (academy, api):
        member = academy.state.add_member("dropped@x.com")
        academy.state.enrol(1, member.id)
        academy.script("DELETE", f"/courses/1/members/{member.id}/coursemember", "reset")
        with pytest.raises(aiohttp.ServerDisconnectedError):
            await api.delete(f"/courses/1/members/{member.id}/coursemember")
        assert academy.state.enrolment(1, member.id) is None


async def test_applied_then_fail_applies_the_write() -> None:
    """``applied_then_fail_rate`` stores the write, then answers 502 HTML; reads pass."""
    async with running(faults=Faults(applied_then_fail_rate=1.0)) as (academy, api):
        response = await api.post("/members", json={"email": "stored@x.com"})
        read = await api.get("/members/me")
        assert response.status == 502
        assert response.body == HTML_502
        assert academy.state.member_by_email("stored@x.com") is not None
        assert read.status == 200


async def test_slow_body_arrives_whole_but_late() -> None:
    """A slow body is streamed in chunks with delays and still decodes."""
    async with running() as (academy, api):
        academy.script("GET", "/members", ScriptedFault.slow_body(chunks=4, delay=0.05))
        response = await api.get("/members")
        assert len(response.json()) == 12
        record = academy.recorder.requests[-1]
    assert record.fault == "slow_body"
    assert record.duration >= 0.15


async def test_latency_delays_every_request() -> None:
    """A fixed latency is spent before each request is answered, proxy faults included."""
    async with running(faults=Faults(latency=0.05)) as (academy, api):
        await api.get("/members/me")
        academy.script("GET", "/members/me", ScriptedFault.status(503))
        failed = await api.get("/members/me")
    assert failed.status == 503
    assert [record.duration >= 0.05 for record in academy.recorder.requests] == [True, True]


async def test_the_app_sees_a_request_half_way_through_the_latency() -> None:
    """A write is applied half-way through the latency; its answer leaves after all of it."""
    async with running(faults=Faults(latency=0.4)) as (academy, api):
        post = asyncio.create_task(api.post("/members", json={"email": "midway@x.com"}))
        async with asyncio.timeout(5):
            # The state has no change event to wait on; poll it.
            while academy.state.member_by_email("midway@x.com") is None:  # noqa: ASYNC110
                await asyncio.sleep(0.005)
        answered_early = post.done()
        response = await post
    assert (answered_early, response.status) == (False, 201)
    assert academy.recorder.requests[-1].duration >= 0.4


async def test_hang_until_the_client_gives_up() -> None:
    """A hung request never answers; when the client times out the academy lets go."""
    async with running() as (academy, api):
        academy.script("GET", "/members/me", ScriptedFault.hang())
        with pytest.raises(TimeoutError):
            await api.get("/members/me", time_limit=0.2)
        await until_in_flight(academy, 0)
        record = academy.recorder.requests[-1]
        assert (record.fault, record.status) == ("hang", None)
        assert (await api.get("/members/me")).status == 200


async def test_closing_the_academy_releases_hung_requests() -> None:
    """Closing the academy disconnects a hung request instead of waiting for it."""
    async with running() as (academy, api):
        academy.script("GET", "/members/me", "hang")
        task = asyncio.create_task(api.get("/members/me", time_limit=30))
        await until_in_flight(academy, 1)
        await academy.close()
        with pytest.raises(aiohttp.ServerDisconnectedError):
            await task


# -- scripted faults ---------------------------------------------------------------------


async def test_scripted_faults_are_consumed_in_order() -> None:
    """``script(GET, /members/me, 503, 502)``: the next two calls fail, then normal service."""
    async with running() as (academy, api):
        academy.script("GET", "/api/v1/members/me", 503, ScriptedFault.status(502))
        academy.script("GET", "/api/v1/members/me", ScriptedFault.rate_limit(0.05))
        assert academy.pending_script() == {"GET /api/v1/members/me": 3}
        statuses = await _statuses(api, 4)
        assert academy.pending_script() == {}
    assert statuses == [503, 502, 429, 200]


async def test_script_matches_templates_and_exact_paths_first() -> None:
    """A template key matches any id; an exact path key is used before it."""
    async with running() as (academy, api):
        academy.script("GET", "/members/{id}", 500, 501)
        academy.script("GET", "/members/3", 504)
        third = await api.get("/members/3")
        second = await api.get("/members/2")
        me = await api.get("/members/me")
        again = await api.get("/members/3")
        last = await api.get("/members/3")
    assert [third.status, second.status, me.status, again.status, last.status] == [
        504,
        500,
        200,
        501,
        200,
    ]


async def test_script_any_method() -> None:
    """Method ``*`` scripts whichever request reaches the path first."""
    async with running() as (academy, api):
        academy.script("*", "/members", 503)
        response = await api.post("/members", json={"email": "later@x.com"})
        assert response.status == 503
        assert academy.state.member_by_email("later@x.com") is None


async def test_scripted_fault_takes_precedence_over_random() -> None:
    """A scripted ``ok`` lets one request through a 100% error rate."""
    async with running(faults=Faults(error_rate=1.0)) as (academy, api):
        academy.script("GET", "/members/me", "ok")
        assert await _statuses(api, 2) == [200, 500]


async def test_scripted_applied_then_and_delay() -> None:
    """``applied_then(503)`` applies then fails; ``delay`` only slows the request down."""
    async with running() as (academy, api):
        academy.script(
            "POST", "/members", ScriptedFault.applied_then(503), ScriptedFault.delay(0.05)
        )
        failed = await api.post("/members", json={"email": "one@x.com"})
        slow = await api.post("/members", json={"email": "two@x.com"})
        assert failed.status == 503
        assert slow.status == 201
        assert academy.state.member_by_email("one@x.com") is not None
        assert academy.recorder.requests[-1].duration >= 0.05
        assert academy.recorder.requests[-1].fault == "delay"


async def test_scripted_status_with_retry_after() -> None:
    """A scripted 503 can carry Retry-After, as Part B allows."""
    async with running() as (academy, api):
        academy.script("GET", "/members/me", ScriptedFault.status(503, retry_after=2.5))
        response = await api.get("/members/me")
    assert response.status == 503
    assert response.headers["Retry-After"] == "3"
    assert response.headers["retry-after-ms"] == "2500"


async def test_clear_script() -> None:
    """``clear_script`` drops queued faults."""
    async with running() as (academy, api):
        academy.script("GET", "/members/me", 503)
        academy.clear_script()
        assert (await api.get("/members/me")).status == 200


# -- faults and tokens -------------------------------------------------------------------


async def test_proxy_faults_do_not_consume_the_token() -> None:
    """A request failed before the app leaves its jti unused (nothing reached the app)."""
    async with running() as (academy, api):
        academy.script("GET", "/members/me", 503)
        token = api.token()
        assert (await api.get("/members/me", token=token)).status == 503
        assert (await api.get("/members/me", token=token)).status == 200
        assert sum(academy.recorder.rejected_tokens.values()) == 0


async def test_post_app_faults_consume_the_token() -> None:
    """After an applied-then-failed request its jti is spent: reusing it is a replay."""
    async with running() as (academy, api):
        academy.script("GET", "/members/me", "applied_then_502")
        token = api.token()
        assert (await api.get("/members/me", token=token)).status == 502
        assert (await api.get("/members/me", token=token)).status == 401
        assert academy.recorder.rejected_tokens["replay"] == 1


async def test_faults_can_change_at_run_time() -> None:
    """``set_faults`` evolves the config and restarts its seeded sequence."""
    async with running() as (academy, api):
        assert await _statuses(api, 2) == [200, 200]
        changed = academy.set_faults(error_rate=1.0, error_statuses=(503,))
        assert changed is academy.faults
        assert await _statuses(api, 2) == [503, 503]
        academy.faults = Faults()
        assert await _statuses(api, 1) == [200]


async def test_fault_counts_are_recorded(monkeypatch: pytest.MonkeyPatch) -> None:
    """The recorder counts injected faults by label."""
    async with running() as (academy, api):
        academy.script("GET", "/members/me", 503, 503, "applied_then_502")
        await _statuses(api, 4)
    assert academy.recorder.fault_counts == {"status:503": 2, "applied_then:502": 1}
    assert isinstance(academy, SandboxAcademy)


# -- echo faults -------------------------------------------------------------------------


def test_echo_request_keeps_the_seeded_statuses_and_varies_the_layout() -> None:
    """``echo_request`` turns each ``error_rate`` answer into an echo of the same status."""
    plain = Faults(seed=13, error_rate=0.5)
    echoing = Faults(seed=13, error_rate=0.5, echo_request=True)
    injector = FaultInjector(echoing)
    decisions = [injector.decide(write=False).fault for _ in range(200)]
    labels = [None if f is None else f.label.replace("echo", "status") for f in decisions]
    assert labels == _labels(plain, 200)
    echoes = [f for f in decisions if f is not None]
    assert {f.kind for f in echoes} == {"echo"}
    assert {f.echo_format for f in echoes} == {"json", "text", "html"}


def test_echo_shorthand_and_validation() -> None:
    """``"echo_<code>"`` is :meth:`ScriptedFault.echo`; odd codes and layouts are refused."""
    assert as_scripted_fault("echo_400") == ScriptedFault.echo(400)
    assert ScriptedFault.echo(200, body="text").label == "echo:200"
    with pytest.raises(ValueError, match="200 to 599"):
        ScriptedFault.echo(100)
    with pytest.raises(ValueError, match="json, text, html"):
        ScriptedFault.echo(503, body="xml")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("layout", "content_type"),
    [("json", "application/json"), ("text", "text/plain"), ("html", "text/html")],
)
async def test_echo_reflects_the_credentials_and_applies_nothing(
    layout: Literal["json", "text", "html"], content_type: str
) -> None:
    """An echo puts the token and the key in the body, a header and the reason; no write."""
    async with running() as (academy, api):
        count = academy.state.member_count
        academy.script("POST", "/members", ScriptedFault.echo(503, body=layout))
        token = api.token()
        url = academy.url + "/api/v1/members"
        async with api.session.post(
            url, json={"email": "never@x.com"}, headers={"Authorization": f"Bearer {token}"}
        ) as response:
            body = (await response.read()).decode()
            status, reason, headers = response.status, response.reason, response.headers
        assert academy.state.member_count == count
        assert (await api.get("/members/me", token=token)).status == 200  # jti unused
    assert status == 503
    assert headers["Content-Type"].startswith(content_type)
    assert headers["X-Request-Id"] == f"Bearer {token}"
    assert reason == f"Refused Bearer {token}"
    assert token in body
    assert "Bearer%20" + token in body
    assert "Bearer+" + token in body
    assert token.replace(".", "%2E") in body
    assert API_KEY in body
    assert base64.b64encode(API_KEY.encode()).decode() in body
    assert academy.recorder.fault_counts == {"echo:503": 1}
    assert academy.recorder.echoed_tokens == [token]

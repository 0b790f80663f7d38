"""``coursepath-async doctor`` as a real subprocess against sandboxes and small loopback servers."""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator
from typing import Any

import orjson
import pytest
from aiohttp import web
from cli_env import run_cli
from conftest import API_KEY, sandbox

from coursepath_async.testing import SandboxAcademy, ScriptedFault, leaked_credentials


async def doctor(academy: SandboxAcademy | None, *args: str, **env: str) -> tuple[int, str, str]:
    """Run ``coursepath-async doctor *args``: exit code, stdout, stderr."""
    return await run_cli(academy, "doctor", *args, **env)


async def doctor_json(academy: SandboxAcademy | None, *args: str, **env: str) -> tuple[int, Any]:
    """Run ``doctor --json``: exit code and the one JSON object it printed."""
    code, out, err = await doctor(academy, "--json", *args, **env)
    assert out.strip(), err
    return code, orjson.loads(out)


def learner_email(academy: SandboxAcademy) -> str:
    """The email of a seeded learner (every seeded member but the admin is one)."""
    return next(m.email for m in academy.state.members() if m.email != academy.admin_email)


@pytest.fixture
async def academy() -> AsyncIterator[SandboxAcademy]:
    async with sandbox(members=30, seed=5) as a:
        yield a


async def test_a_plain_sandbox_is_usable_and_nothing_is_written(academy: SandboxAcademy) -> None:
    """Exit 0, a human report naming the acting admin, and only GETs reached the academy."""
    code, out, err = await doctor(academy)
    assert code == 0, out + err
    assert "auth          ok: member 1 admin@sandbox.test" in out
    assert "/members                 at least 30" in out
    assert "verdict: usable (exit 0)" in out
    methods = {record.method for record in academy.recorder.requests}
    assert methods == {"GET"}


async def test_caps_and_a_skewed_clock_are_measured() -> None:
    """A sandbox capping members at 100 and 90 s ahead: cap 100, skew about +90, exit 1."""
    async with sandbox(
        members=250, courses=3, seed=6, member_page_size=100, clock_offset=90
    ) as academy:
        code, data = await doctor_json(academy)
    assert code == 1, data
    assert data["auth"] == "ok"
    assert data["acting_member"]["email"] == academy.admin_email
    assert data["page_caps"]["/members"] == 100
    assert data["page_caps"]["/courses"] is None
    assert data["page_caps_at_least"]["/courses"] == 3
    assert 85 <= data["clock_skew_s"] <= 95
    assert data["list_shape"] == "bare"
    assert data["created_date"] == "offset"
    assert data["body_format"] == "unknown"
    assert len(data["warnings"]) == 1
    assert "clock" in data["warnings"][0]


async def test_an_undocumented_cap_is_a_warning_the_sdk_would_stop_at() -> None:
    """Groups capped at 3 (not 100, 250 or 500): the cap is found and named as ending listings."""
    async with sandbox(members=10, groups=7, seed=2, group_page_size=3) as a:
        code, data = await doctor_json(a)
    assert code == 1
    assert data["page_caps"]["/groups"] == 3
    assert data["lists"]["/groups"]["sdk_lists_all"] is False
    assert any("end after 3 records" in warning for warning in data["warnings"])


async def test_a_learner_is_not_usable(academy: SandboxAcademy) -> None:
    """A learner's email: tokens work, admin endpoints answer 403, exit 2 saying so."""
    email = learner_email(academy)
    code, data = await doctor_json(academy, COURSEPATH_USER=email)
    assert code == 2
    assert data["auth"] == "learner"
    assert data["acting_member"]["email"] == email
    assert "/members, /courses, /groups answered 403" in data["auth_detail"]


async def test_a_wrong_key_is_refused_and_never_printed(academy: SandboxAcademy) -> None:
    """A wrong API key exits 2 blaming the key (the clocks agree); no key or token is printed."""
    wrong = "wrong-key-0123456789abcdefghijklmnopqrstuv"
    code, out, err = await doctor(academy, COURSEPATH_API_KEY=wrong)
    assert code == 2
    assert "auth          refused" in out
    assert "API key is wrong" in out
    assert leaked_credentials(out + err, api_key=wrong) == []
    assert leaked_credentials(out + err, api_key=API_KEY) == []


async def test_an_echoed_credential_is_blanked(academy: SandboxAcademy) -> None:
    """A 401 page echoing the token and the key shows neither in the report."""
    academy.script("GET", "/members/me", ScriptedFault.echo(401, body="text"))
    code, out, err = await doctor(academy)
    assert code == 2
    assert academy.recorder.echoed_tokens
    tokens = academy.recorder.echoed_tokens
    assert leaked_credentials(out + err, api_key=API_KEY, tokens=tokens) == []


async def test_a_clock_far_ahead_is_learnt_and_named_as_a_warning() -> None:
    """600 s ahead: our first token is refused, the resend on its clock works; exit 1, NTP named."""
    async with sandbox(members=5, clock_offset=600) as academy:
        code, data = await doctor_json(academy)
    assert code == 1
    assert data["auth"] == "ok"
    assert 595 <= data["clock_skew_s"] <= 605
    (warning,) = data["warnings"]
    assert "refused (401)" in warning
    assert "NTP" in warning
    assert sum(academy.recorder.rejected_tokens.values()) == 1


async def test_every_dialect_at_once_is_usable_through_the_command() -> None:
    """``--dialect all`` (clock 300 s ahead, forms only, wrapped lists): exit 1, not 2."""
    async with sandbox(members=30, seed=5, dialect="all") as academy:
        code, out, err = await doctor(academy, "--write-check")
    assert code == 1, out + err
    assert "auth          ok" in out
    assert "body format" in out
    assert "verdict: usable, with warnings (exit 1)" in out


async def test_an_unreachable_academy_is_not_usable() -> None:
    """A closed loopback port: exit 2, auth 'unreachable', the address named."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = {
        "COURSEPATH_URL": f"http://127.0.0.1:{port}",
        "COURSEPATH_API_KEY": API_KEY,
        "COURSEPATH_USER": "admin@sandbox.test",
        "COURSEPATH_ALLOW_HTTP": "1",
    }
    code, data = await doctor_json(None, **env)
    assert code == 2
    assert data["auth"] == "unreachable"
    assert f"127.0.0.1:{port}" in data["auth_detail"]


async def test_a_refusal_for_the_rate_is_waited_out_and_reported(academy: SandboxAcademy) -> None:
    """A 429 with Retry-After on /members is waited out: the list is judged, the refusal counted."""
    academy.script("GET", "/members", ScriptedFault.status(429, retry_after=0.05))
    code, data = await doctor_json(academy)
    assert code == 0, data
    assert data["rate_limit"]["refusals"] == 1
    assert data["rate_limit"]["headers"]["retry-after"] == "1"
    assert data["page_caps_at_least"]["/members"] == 30
    assert academy.recorder.count("GET", "/api/v1/members") == 3  # the 429, the page, the next


async def test_a_rate_limited_sandbox_gets_through_and_its_refusals_are_counted() -> None:
    """Behind a 5/s gateway every probe gets an answer; the refusals reported are those sent."""
    async with sandbox(
        members=12, seed=3, rate_limit=5, rate_limit_style="503-retry-after"
    ) as academy:
        code, data = await doctor_json(academy)
        refused = academy.recorder.status_counts[503]
    assert code == 0, data
    assert data["rate_limit"]["refusals"] == refused
    assert all(item["problem"] is None for item in data["lists"].values())


async def test_the_write_check_updates_the_admin_with_its_own_name(academy: SandboxAcademy) -> None:
    """--write-check: one POST of the acting member's own name, accepted as JSON."""
    before = academy.state.member_by_email(academy.admin_email)
    code, data = await doctor_json(academy, "--write-check")
    assert code == 0, data
    assert data["body_format"] == "json"
    assert academy.recorder.count("POST", "/api/v1/members/{memberId}") == 1
    after = academy.state.member_by_email(academy.admin_email)
    assert before is not None
    assert after is not None
    assert after.name == before.name


# -- a different academy: wrapped lists, naive dates, form-only writes, quota headers ----

_QUOTA = {"RateLimit-Policy": "600;w=60", "X-RateLimit-Remaining": "99"}
_PEOPLE = [
    {"id": i, "email": f"p{i}@form.test", "name": f"P {i}", "createdDate": "2026-12-02 07:31:05"}
    for i in range(1, 301)
]


async def _form_only(request: web.Request) -> web.Response:
    """A Coursepath-like API of another dialect: every list wrapped, members capped at 250."""
    path = request.path.removeprefix("/api/v1")
    if request.method == "POST":
        if request.content_type == "application/json":
            return web.json_response({"error": "unsupported_media_type"}, status=415)
        form = await request.post()
        return web.json_response({**_PEOPLE[6], "name": form["name"]}, headers=_QUOTA)
    if path == "/members/me":
        return web.json_response(_PEOPLE[6], headers=_QUOTA)
    offset, limit = int(request.query.get("offset", 0)), int(request.query.get("limit", 500))
    records: list[dict[str, Any]] = _PEOPLE if path == "/members" else []
    page = records[offset : offset + min(limit, 250)]
    return web.json_response({"data": page, "total": len(records)}, headers=_QUOTA)


@pytest.fixture
async def form_server() -> AsyncIterator[str]:
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", _form_only)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        await runner.cleanup()


async def test_another_dialect_is_reported_as_it_is(form_server: str) -> None:
    """Wrapped lists, a 250 cap, zone-less dates, quota headers, 415 → a form write: all named."""
    env = {
        "COURSEPATH_URL": form_server,
        "COURSEPATH_API_KEY": API_KEY,
        "COURSEPATH_USER": "p7@form.test",
        "COURSEPATH_ALLOW_HTTP": "1",
    }
    code, data = await doctor_json(None, "--write-check", **env)
    assert code == 0, data
    assert data["list_shape"] == "wrapped"
    assert data["page_caps"]["/members"] == 250
    assert data["lists"]["/members"]["total"] == 300
    assert data["created_date"] == "naive"
    assert data["fields"]["members"]["present"]["externalId"] == 0
    assert data["body_format"] == "form"
    assert data["rate_limit"]["headers"]["ratelimit-policy"] == "600;w=60"
    assert data["rate_limit"]["policy_rate"] == 10.0
    assert any("body_format='form'" in line for line in data["sdk"])

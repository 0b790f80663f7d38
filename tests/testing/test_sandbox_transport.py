"""The sandbox academy over TLS, its webhook deliveries, and its lifecycle."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import aiohttp
import pytest
import trustme
from aiohttp import web
from conftest import client_context, sandbox, server_context
from sandbox_raw import RawApi, one_attempt_session, running

from coursepath_async.testing import SandboxAcademy

# -- TLS -------------------------------------------------------------------------------


async def test_serves_https_with_a_trusted_certificate(ca: trustme.CA) -> None:
    """With ``ssl=`` the academy serves https and a client trusting the CA gets through."""
    async with (
        sandbox(members=3, ssl=server_context(ca)) as academy,
        one_attempt_session(connector=aiohttp.TCPConnector(ssl=client_context(ca))) as session,
    ):
        assert academy.url.startswith("https://127.0.0.1:")
        response = await RawApi(academy, session).get("/members/me")
    assert response.status == 200
    assert response.json()["email"] == academy.admin_email


async def test_untrusted_certificates_are_refused(ca: trustme.CA) -> None:
    """A client that does not trust the CA fails the TLS handshake."""
    async with (
        sandbox(members=3, ssl=server_context(ca)) as academy,
        one_attempt_session() as session,
    ):
        with pytest.raises(aiohttp.ClientConnectorCertificateError):
            await RawApi(academy, session).get("/members/me")
    assert academy.recorder.total == 0


# -- webhooks --------------------------------------------------------------------------


class Receiver:
    """A tiny webhook endpoint that keeps every form it is sent."""

    def __init__(self, status: int = 200) -> None:
        self.status = status
        self.forms: list[dict[str, str]] = []
        self.content_types: list[str] = []

    async def handle(self, request: web.Request) -> web.Response:
        """Store the form and answer ``status``."""
        form = await request.post()
        self.forms.append({key: str(value) for key, value in form.items()})
        self.content_types.append(request.content_type)
        return web.Response(status=self.status)


@pytest.fixture
async def receiver() -> AsyncIterator[tuple[Receiver, str]]:
    target = Receiver()
    app = web.Application()
    app.router.add_post("/hook", target.handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    yield target, f"http://127.0.0.1:{port}/hook"
    await runner.cleanup()


async def test_webhooks_are_posted_as_forms(receiver: tuple[Receiver, str]) -> None:
    """Enrol, complete and unenrol each POST one form with courseId, memberId and event."""
    target, url = receiver
    async with running(webhook_url=url) as (academy, api):
        member = academy.state.add_member("hooked@x.com")
        path = f"/courses/2/members/{member.id}/coursemember"
        # Deliveries run concurrently, as Coursepath's may; wait after each step so
        # the receiver sees them in a known order.
        await api.post(path)
        await api.post(path)  # already enrolled: no new event
        await academy.wait_webhooks()
        academy.complete_course(2, member.id, score=70)
        await academy.wait_webhooks()
        await api.delete(path)
        await academy.wait_webhooks()
        created = await api.post("/courses/3/members", json={"email": "fresh@x.com"})
        await academy.wait_webhooks()
    fresh = created.json()["id"]
    assert target.forms == [
        {"courseId": "2", "memberId": str(member.id), "event": "COURSEMEMBER_CREATED"},
        {"courseId": "2", "memberId": str(member.id), "event": "COURSEMEMBER_COMPLETED"},
        {"courseId": "2", "memberId": str(member.id), "event": "COURSEMEMBER_DELETED"},
        {"courseId": "3", "memberId": str(fresh), "event": "COURSEMEMBER_CREATED"},
    ]
    assert set(target.content_types) == {"application/x-www-form-urlencoded"}
    deliveries = academy.recorder.webhook_deliveries
    assert [(d.event, d.status, d.error) for d in deliveries] == [
        ("COURSEMEMBER_CREATED", 200, None),
        ("COURSEMEMBER_COMPLETED", 200, None),
        ("COURSEMEMBER_DELETED", 200, None),
        ("COURSEMEMBER_CREATED", 200, None),
    ]


async def test_webhook_failures_are_recorded_not_raised(receiver: tuple[Receiver, str]) -> None:
    """A receiver answering 500 is tried once; the outcome lands in the recorder."""
    target, url = receiver
    target.status = 500
    async with running(webhook_url=url) as (academy, api):
        member = academy.state.add_member("fails@x.com")
        response = await api.post(f"/courses/1/members/{member.id}/coursemember")
        await academy.wait_webhooks()
    assert response.status == 201
    assert len(target.forms) == 1
    assert [(d.status, d.error) for d in academy.recorder.webhook_deliveries] == [(500, None)]


async def test_unreachable_webhook_is_an_error_record() -> None:
    """A receiver that cannot be reached leaves an error in the recorder, nothing else."""
    probe = await asyncio.start_server(lambda r, w: None, "127.0.0.1", 0)
    port = probe.sockets[0].getsockname()[1]
    probe.close()
    await probe.wait_closed()
    async with running(webhook_url=f"http://127.0.0.1:{port}/hook") as (academy, api):
        member = academy.state.add_member("lost@x.com")
        await api.post(f"/courses/1/members/{member.id}/coursemember")
        await academy.wait_webhooks()
    (delivery,) = academy.recorder.webhook_deliveries
    assert delivery.status is None
    assert delivery.error is not None
    assert delivery.error.startswith("ClientConnectorError")


async def test_webhooks_over_https(ca: trustme.CA) -> None:
    """``webhook_ssl`` lets the academy deliver to an HTTPS receiver with a private CA."""
    target = Receiver()
    app = web.Application()
    app.router.add_post("/hook", target.handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=server_context(ca))
    await site.start()
    url = f"https://127.0.0.1:{runner.addresses[0][1]}/hook"
    try:
        async with running(webhook_url=url, webhook_ssl=client_context(ca)) as (academy, _):
            member = academy.state.add_member("secure@x.com")
            academy.state.enrol(1, member.id)
            await academy.wait_webhooks()
    finally:
        await runner.cleanup()
    assert target.forms == [
        {"courseId": "1", "memberId": str(member.id), "event": "COURSEMEMBER_CREATED"}
    ]


# -- lifecycle ---------------------------------------------------------------------------


async def test_url_and_port_only_while_running() -> None:
    """``url`` is the bound loopback address while running and an error otherwise."""
    academy = SandboxAcademy(members=1)
    with pytest.raises(RuntimeError):
        _ = academy.url
    async with academy:
        assert academy.url == f"http://127.0.0.1:{academy.port}"
        with pytest.raises(RuntimeError):
            await academy.start()
    with pytest.raises(RuntimeError):
        _ = academy.port


async def test_serve_forever_runs_until_cancelled() -> None:
    """``serve_forever`` keeps a started academy serving and closes it when cancelled."""
    academy = sandbox(members=2)
    await academy.start()
    task = asyncio.create_task(academy.serve_forever())
    async with one_attempt_session() as session:
        assert (await RawApi(academy, session).get("/members/me")).status == 200
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    with pytest.raises(RuntimeError):
        _ = academy.url


def test_the_api_key_stays_out_of_reprs() -> None:
    """Neither the academy's repr nor its state's shows the API key."""
    academy = SandboxAcademy(members=2, api_key="super-secret-key-value-0123456789")
    assert "super-secret" not in repr(academy)
    assert "super-secret" not in repr(academy.state)
    assert "super-secret" not in repr(academy.recorder)
    assert "not started" in repr(academy)

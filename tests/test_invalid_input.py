"""One error family: every invalid argument to the public API is an InvalidInputError naming it."""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import math
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest
from conftest import API_KEY, BASE_URL, USER, make_client, offline_client

from coursepath_async import (
    ClientStateError,
    CoursepathClient,
    CoursepathError,
    InvalidInputError,
    Paginator,
    RetryPolicy,
)
from coursepath_async.bulk import (
    CsvRows,
    ImportOptions,
    MappingRows,
    PlanOptions,
    SyncOptions,
    export_members,
    export_results,
    import_members,
    open_journal,
    sync_members,
)
from coursepath_async.testing import Faults, SandboxAcademy, ScriptedFault
from coursepath_async.webhooks import WebhookEvent, WebhookReceiver, webhook_app


async def _on_event(_event: object) -> None:
    """A webhook callback that does nothing."""


Call = Callable[[CoursepathClient, Path], object]

#: (what is called, the call, the argument it must name). ``c`` is a client that never
#: connects (nothing is sent: every refusal comes first), ``d`` a scratch directory.
BAD_INPUTS: list[tuple[str, Call, str]] = [
    # CoursepathClient options
    (
        "base_url scheme",
        lambda c, d: CoursepathClient("ftp://x.example.com", api_key=API_KEY, user=USER),
        "base_url",
    ),
    ("base_url type", lambda c, d: CoursepathClient(5, api_key=API_KEY, user=USER), "base_url"),  # type: ignore[arg-type]
    ("api_key type", lambda c, d: CoursepathClient(BASE_URL, api_key=5, user=USER), "api_key"),  # type: ignore[arg-type]
    ("api_key blank", lambda c, d: CoursepathClient(BASE_URL, api_key="  ", user=USER), "api_key"),
    ("user", lambda c, d: CoursepathClient(BASE_URL, api_key=API_KEY, user="nobody"), "user"),
    ("max_concurrency", lambda c, d: offline_client(max_concurrency=0), "max_concurrency"),
    (
        "interactive_reserve",
        lambda c, d: offline_client(interactive_reserve=-1),
        "interactive_reserve",
    ),
    ("timeout", lambda c, d: offline_client(timeout=math.nan), "timeout"),
    ("deadline", lambda c, d: offline_client(deadline=-1), "deadline"),
    ("allow_http", lambda c, d: offline_client(allow_http="yes"), "allow_http"),
    ("ssl", lambda c, d: offline_client(ssl="/etc/ssl/cert.pem"), "ssl"),
    ("body_format", lambda c, d: offline_client(body_format="xml"), "body_format"),
    ("retry", lambda c, d: offline_client(retry=3), "retry"),
    ("page_window", lambda c, d: offline_client(page_window=0), "page_window"),
    (
        "max_listing_records",
        lambda c, d: offline_client(max_listing_records=0),
        "max_listing_records",
    ),
    ("priority", lambda c, d: offline_client(priority=7), "priority"),
    ("max_rate", lambda c, d: offline_client(max_rate=0), "max_rate"),
    # RetryPolicy
    ("max_attempts", lambda c, d: RetryPolicy(max_attempts=0), "max_attempts"),
    ("base_delay", lambda c, d: RetryPolicy(base_delay=-1), "base_delay"),
    ("max_delay", lambda c, d: RetryPolicy(max_delay=math.inf), "max_delay"),
    ("max_retry_after", lambda c, d: RetryPolicy(max_retry_after="x"), "max_retry_after"),  # type: ignore[arg-type]
    ("max_refusal_wait", lambda c, d: RetryPolicy(max_refusal_wait=math.nan), "max_refusal_wait"),
    # views, fan-out and resources (more in test_client's BAD_CALLS)
    ("as_user", lambda c, d: c.as_user("x@y"), "user"),
    ("with_options deadline", lambda c, d: c.with_options(deadline=0), "deadline"),
    ("with_options priority", lambda c, d: c.with_options(priority="high"), "priority"),  # type: ignore[arg-type]
    ("map concurrency", lambda c, d: c.map(_on_event, [], concurrency=0), "concurrency"),
    ("members.get", lambda c, d: c.members.get(0), "member_id"),
    ("members.list window", lambda c, d: c.members.list(window=65), "window"),
    ("members.list filter", lambda c, d: c.members.list(nickname="x"), "nickname"),  # type: ignore[call-arg]
    ("members.create email", lambda c, d: c.members.create("a@b"), "email"),
    ("members.find_by_external_id", lambda c, d: c.members.find_by_external_id(""), "external_id"),
    ("members.update nothing", lambda c, d: c.members.update(7), "email"),
    ("members.add_to_group", lambda c, d: c.members.add_to_group(7, " "), "name"),
    ("courses.enroll", lambda c, d: c.courses.enroll(-1, 7), "course_id"),
    ("programs.invite", lambda c, d: c.programs.invite(5, 7, subject=3), "subject"),  # type: ignore[arg-type]
    # bulk
    ("PlanOptions courses", lambda c, d: PlanOptions(courses=(0,)), "courses"),
    ("PlanOptions programs", lambda c, d: PlanOptions(programs=("x",)), "programs"),  # type: ignore[arg-type]
    ("PlanOptions groups str", lambda c, d: PlanOptions(groups="Sales"), "groups"),
    ("PlanOptions invite", lambda c, d: PlanOptions(invite="sometimes"), "invite"),  # type: ignore[arg-type]
    ("ImportOptions concurrency", lambda c, d: ImportOptions(concurrency=0), "concurrency"),
    ("SyncOptions concurrency", lambda c, d: SyncOptions(concurrency=-2), "concurrency"),
    ("CsvRows delimiter", lambda c, d: CsvRows(d / "p.csv", delimiter=";;"), "delimiter"),
    (
        "CsvRows max_field_bytes",
        lambda c, d: CsvRows(d / "p.csv", max_field_bytes=0),
        "max_field_bytes",
    ),
    (
        "import_members journal",
        lambda c, d: import_members(c, MappingRows([]), journal=None),
        "journal",
    ),
    (
        "sync_members journal",
        lambda c, d: sync_members(c, MappingRows([]), journal=None),
        "journal",
    ),
    (
        "open_journal label",
        lambda c, d: open_journal(
            str(d / "j"), MappingRows(iter([])), kind="import", options=PlanOptions()
        ),
        "label",
    ),
    ("export_members format", lambda c, d: export_members(c, d / "m.x", format="xlsx"), "format"),  # type: ignore[arg-type]
    (
        "export_members window",
        lambda c, d: export_members(c, d / "m.csv", format="csv", window=0),
        "window",
    ),
    (
        "export_results course_ids",
        lambda c, d: export_results(c, d / "r.csv", format="csv", course_ids=[0]),
        "course_ids",
    ),
    # the sandbox academy
    ("SandboxAcademy members", lambda c, d: SandboxAcademy(members=-1), "members"),
    ("SandboxAcademy port", lambda c, d: SandboxAcademy(port=70000), "port"),
    ("SandboxAcademy page size", lambda c, d: SandboxAcademy(group_page_size=0), "group_page_size"),
    ("SandboxAcademy admin_email", lambda c, d: SandboxAcademy(admin_email="admin"), "admin_email"),
    ("SandboxAcademy faults", lambda c, d: SandboxAcademy(faults="none"), "faults"),  # type: ignore[arg-type]
    ("SandboxAcademy webhook_url", lambda c, d: SandboxAcademy(webhook_url="hooks"), "webhook_url"),
    ("SandboxAcademy rate_limit", lambda c, d: SandboxAcademy(rate_limit=0), "rate_limit"),
    (
        "SandboxAcademy rate_limit_style",
        lambda c, d: SandboxAcademy(rate_limit=5, rate_limit_style="teapot"),  # type: ignore[arg-type]
        "rate_limit_style",
    ),
    (
        "SandboxAcademy clock_offset",
        lambda c, d: SandboxAcademy(clock_offset=math.inf),
        "clock_offset",
    ),
    ("SandboxAcademy token_max_age", lambda c, d: SandboxAcademy(token_max_age=0), "token_max_age"),
    ("SandboxAcademy fixture", lambda c, d: SandboxAcademy(fixture=d / "missing.json"), "fixture"),
    (
        "SandboxAcademy duplicate_status",
        lambda c, d: SandboxAcademy(duplicate_status=418),  # type: ignore[arg-type]
        "duplicate_status",
    ),
    ("Faults error_rate", lambda c, d: Faults(error_rate=2), "error_rate"),
    ("Faults latency", lambda c, d: Faults(latency=-1), "latency"),
    ("Faults rate_limit_burst", lambda c, d: Faults(rate_limit_burst=0), "rate_limit_burst"),
    ("Faults error_statuses", lambda c, d: Faults(error_statuses=(404,)), "error_statuses"),
    (
        "Faults applied_then",
        lambda c, d: Faults(applied_then_fail_status=404),
        "applied_then_fail_status",
    ),
    ("ScriptedFault.status", lambda c, d: ScriptedFault.status(200), "code"),
    ("ScriptedFault.echo", lambda c, d: ScriptedFault.echo(503, body="xml"), "body"),  # type: ignore[arg-type]
    ("ScriptedFault.applied_then", lambda c, d: ScriptedFault.applied_then(404), "code"),
    # webhooks
    ("WebhookReceiver path", lambda c, d: WebhookReceiver(c, _on_event, path="hooks"), "path"),
    (
        "WebhookReceiver secret",
        lambda c, d: WebhookReceiver(c, _on_event, secret="short"),
        "secret",
    ),
    ("WebhookReceiver workers", lambda c, d: WebhookReceiver(c, _on_event, workers=0), "workers"),
    (
        "WebhookReceiver max_body",
        lambda c, d: WebhookReceiver(c, _on_event, max_body=10),
        "max_body",
    ),
    (
        "WebhookReceiver dedupe_ttl",
        lambda c, d: WebhookReceiver(c, _on_event, dedupe_ttl=-1),
        "dedupe_ttl",
    ),
    ("WebhookReceiver on_event", lambda c, d: WebhookReceiver(c, None), "on_event"),  # type: ignore[arg-type]
    (
        "webhook_app read_timeout",
        lambda c, d: webhook_app(c, _on_event, read_timeout=0),
        "read_timeout",
    ),
    (
        "WebhookEvent course_id",
        lambda c, d: WebhookEvent(course_id=0, member_id=1, event="COURSEMEMBER_CREATED"),
        "course_id",
    ),
    (
        "WebhookEvent event",
        lambda c, d: WebhookEvent(course_id=1, member_id=1, event="BOGUS"),
        "event",
    ),
]


async def _invoke(call: Call, client: CoursepathClient, folder: Path) -> None:
    """Make the call, then start what it returned: await it, iterate it or enter it."""
    result = call(client, folder)
    if inspect.isasyncgen(result):
        await result.__anext__()
    elif inspect.isawaitable(result):
        await result
    elif isinstance(result, contextlib.AbstractContextManager):
        with result:
            pass


@pytest.fixture
async def client() -> AsyncIterator[CoursepathClient]:
    async with offline_client() as c:
        yield c


@pytest.mark.parametrize(
    ("call", "argument"), [pytest.param(call, arg, id=name) for name, call, arg in BAD_INPUTS]
)
async def test_every_bad_argument_is_an_invalid_input_error_naming_it(
    client: CoursepathClient, tmp_path: Path, call: Call, argument: str
) -> None:
    """The refusal is a CoursepathError and a ValueError, whose message and .argument name it."""
    with pytest.raises(CoursepathError) as raised:
        await _invoke(call, client, tmp_path)
    error = raised.value
    assert isinstance(error, InvalidInputError)
    assert isinstance(error, ValueError)  # ``except ValueError`` keeps working
    assert error.argument == argument
    assert argument in str(error)
    assert client.scheduler_stats().active == 0  # nothing was sent


def test_allow_http_is_read_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """COURSEPATH_ALLOW_HTTP=1 lets the library take a plain-http URL; unset or 0 refuses it."""
    monkeypatch.delenv("COURSEPATH_ALLOW_HTTP", raising=False)
    with pytest.raises(InvalidInputError, match="COURSEPATH_ALLOW_HTTP=1") as refused:
        CoursepathClient("http://127.0.0.1:9", api_key=API_KEY, user=USER)
    assert refused.value.argument == "base_url"
    monkeypatch.setenv("COURSEPATH_ALLOW_HTTP", "0")
    with pytest.raises(InvalidInputError):
        CoursepathClient("http://127.0.0.1:9", api_key=API_KEY, user=USER)
    monkeypatch.setenv("COURSEPATH_ALLOW_HTTP", "1")
    client = CoursepathClient("http://127.0.0.1:9", api_key=API_KEY, user=USER)
    assert client.base_url == "http://127.0.0.1:9"
    with pytest.raises(InvalidInputError, match="allow_http"):  # an explicit False wins
        CoursepathClient("http://127.0.0.1:9", api_key=API_KEY, user=USER, allow_http=False)
    monkeypatch.setenv("COURSEPATH_ALLOW_HTTP", "maybe")
    with pytest.raises(InvalidInputError, match="COURSEPATH_ALLOW_HTTP must be 1 or 0"):
        CoursepathClient("http://127.0.0.1:9", api_key=API_KEY, user=USER)


def test_a_client_used_from_a_second_event_loop_says_so() -> None:
    """Called from another loop than its first call's, a client raises ClientStateError."""

    async def me(client: CoursepathClient) -> str:
        return (await client.members.me()).email

    async def scenario() -> None:
        async with SandboxAcademy(members=3, seed=1) as academy:
            client = make_client(academy)
            try:
                assert await me(client) == academy.admin_email

                def in_second_loop() -> BaseException | None:
                    try:
                        asyncio.run(me(client))
                    except BaseException as exc:
                        return exc
                    return None

                raised = await asyncio.to_thread(in_second_loop)
                assert isinstance(raised, ClientStateError)
                assert isinstance(raised, RuntimeError)
                assert "event loop" in str(raised)
                assert await me(client) == academy.admin_email  # its own loop still works
            finally:
                await client.aclose()
            with pytest.raises(ClientStateError, match="closed"):
                await me(client)

    asyncio.run(scenario())


async def test_paginator_aclose_cancels_its_open_iteration() -> None:
    """contextlib.aclosing(paginator) works: leaving it cancels the pages still in flight."""
    records = list(range(10))
    hanging: set[int] = set()
    cancelled: list[int] = []

    async def fetch(offset: int, limit: int) -> list[int]:
        if offset <= 2:  # the first two pages answer; the prefetched ones never do
            return records[offset : offset + limit]
        hanging.add(offset)
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            cancelled.append(offset)
            raise
        raise AssertionError("unreachable")

    listing = Paginator(fetch, page_size=2, cap=2, window=3, key=None)
    async with contextlib.aclosing(listing) as paginator:
        async for record in paginator:
            if record == 2:  # page 2 arrived, pages at offsets 4 and 6 are in flight
                break
        await asyncio.sleep(0)  # let the prefetches start
        assert hanging == {4, 6}
        assert cancelled == []  # a break alone leaves them running until garbage collection
    assert sorted(cancelled) == [4, 6]
    assert await listing.first_page() == [0, 1]  # the paginator stays usable

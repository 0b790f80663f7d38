"""The client surface (aioresponses): every endpoint, argument checks, views and lifecycle."""

from __future__ import annotations

import asyncio
import gc
import inspect
import warnings
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import Any
from urllib.parse import parse_qsl

import aiohttp
import pytest
from aiohttp.client_reqrep import ConnectionKey
from aioresponses import aioresponses
from conftest import API_KEY, BASE_URL, FAST_RETRY, USER, offline_client
from fake_api import FakeAPI, settle

from coursepath_async import (
    APIResponseValidationError,
    ClientView,
    ConfigurationError,
    ConflictError,
    Course,
    CourseMember,
    CoursepathClient,
    Group,
    InvalidInputError,
    Member,
    NotFoundError,
    Priority,
    ProgramMember,
    UnprocessableEntityError,
)
from coursepath_async._resources import Courses, Groups, Members, Programs

API = BASE_URL + "/api/v1"
NEW = "new@acme.example.com"


def member(member_id: int, email: str = NEW, **fields: Any) -> dict[str, Any]:
    return {"id": member_id, "email": email, **fields}


@pytest.fixture
def api() -> Iterator[FakeAPI]:
    with aioresponses() as mock:
        yield FakeAPI(mock, API, API_KEY)


@pytest.fixture
async def client() -> AsyncIterator[CoursepathClient]:
    async with offline_client(retry=FAST_RETRY) as c:
        yield c


# --- every endpoint: method, URL and body ---------------------------------------------------

Call = Callable[[CoursepathClient], Awaitable[object]]

COURSE_MEMBER = {"courseId": 3, "memberId": 7, "score": 80, "success": True}
PROGRAM_MEMBER = {"programId": 5, "memberId": 7}

ENDPOINTS: list[tuple[str, Call, str, Any, Any, int, Any]] = [
    # (id, call, "METHOD /path?sorted-query", JSON body sent, answer payload, status, result)
    (
        "members.me",
        lambda c: c.members.me(),
        "GET /members/me",
        None,
        member(1, USER),
        200,
        Member(id=1, email=USER),
    ),
    (
        "members.get",
        lambda c: c.members.get(7),
        "GET /members/7",
        None,
        member(7),
        200,
        Member(id=7, email=NEW),
    ),
    (
        "members.list",
        lambda c: c.members.list(company="Acme", external_id="E1").collect(),
        "GET /members?company=Acme&externalId=E1&limit=500&offset=0",
        None,
        [member(7)],
        200,
        [Member(id=7, email=NEW)],
    ),
    (
        "members.find_by_email",
        lambda c: c.members.find_by_email("New@Acme.example.com"),
        "GET /members?email=New@Acme.example.com&limit=500&offset=0",
        None,
        [member(7)],
        200,
        Member(id=7, email=NEW),
    ),
    (
        "members.find_by_external_id",
        lambda c: c.members.find_by_external_id("E1"),
        "GET /members?externalId=E1&limit=500&offset=0",
        None,
        [member(7, externalId="E1"), member(8, externalId="E10")],
        200,
        [Member(id=7, email=NEW, external_id="E1")],
    ),
    (
        "members.create",
        lambda c: c.members.create(
            NEW, name="New Person", external_id="E1", extra={"language": "nl"}
        ),
        "POST /members",
        {"language": "nl", "name": "New Person", "externalId": "E1", "email": NEW},
        member(7, name="New Person"),
        200,
        Member(id=7, email=NEW, name="New Person"),
    ),
    (
        "members.update",
        lambda c: c.members.update(7, email="moved@acme.example.com", department="R&D"),
        "POST /members/7",
        {"department": "R&D", "email": "moved@acme.example.com"},
        member(7, "moved@acme.example.com", department="R&D"),
        200,
        Member(id=7, email="moved@acme.example.com", department="R&D"),
    ),
    (
        "members.invite",
        lambda c: c.members.invite(7, subject="Welcome", body="Hello", action="Start"),
        "POST /members/7/invite",
        {"mail": {"subject": "Welcome", "body": "Hello", "action": "Start"}},
        None,
        204,
        None,
    ),
    (
        "members.invite-plain",
        lambda c: c.members.invite(7),
        "POST /members/7/invite",
        None,
        None,
        204,
        None,
    ),
    (
        "members.courses",
        lambda c: c.members.courses(7).collect(),
        "GET /members/7/courses?limit=250&offset=0",
        None,
        [{"id": 3, "name": "Safety"}],
        200,
        [Course(id=3, name="Safety")],
    ),
    (
        "members.groups",
        lambda c: c.members.groups(7).collect(),
        "GET /members/7/groups?limit=100&offset=0",
        None,
        [{"id": 9, "name": "Sales"}],
        200,
        [Group(id=9, name="Sales")],
    ),
    (
        "members.add_to_group",
        lambda c: c.members.add_to_group(7, " Sales "),
        "POST /members/7/groups",
        {"name": "Sales"},
        None,
        204,
        None,
    ),
    (
        "members.remove_from_group",
        lambda c: c.members.remove_from_group(7, "Sales EU"),
        "DELETE /members/7/groups?name=Sales EU",
        None,
        None,
        204,
        None,
    ),
    (
        "members.remove_from_all_groups",
        lambda c: c.members.remove_from_all_groups(7),
        "DELETE /members/7/groups",
        None,
        None,
        204,
        None,
    ),
    (
        "courses.get",
        lambda c: c.courses.get(3),
        "GET /courses/3",
        None,
        {"id": 3, "name": "Safety"},
        200,
        Course(id=3, name="Safety"),
    ),
    (
        "courses.list",
        lambda c: c.courses.list().collect(),
        "GET /courses?limit=250&offset=0",
        None,
        [],
        200,
        [],
    ),
    (
        "courses.members",
        lambda c: c.courses.members(3, country="BE").collect(),
        "GET /courses/3/members?country=BE&limit=500&offset=0",
        None,
        [member(7)],
        200,
        [Member(id=7, email=NEW)],
    ),
    (
        "courses.create_member",
        lambda c: c.courses.create_member(3, NEW, company="Acme"),
        "POST /courses/3/members",
        {"company": "Acme", "email": NEW},
        member(7, company="Acme"),
        200,
        Member(id=7, email=NEW, company="Acme"),
    ),
    (
        "courses.enroll",
        lambda c: c.courses.enroll(3, 7),
        "POST /courses/3/members/7/coursemember",
        None,
        COURSE_MEMBER,
        200,
        CourseMember(course_id=3, member_id=7, score=80.0, success=True),
    ),
    (
        "courses.result",
        lambda c: c.courses.result(3, 7),
        "GET /courses/3/members/7/coursemember",
        None,
        COURSE_MEMBER,
        200,
        CourseMember(course_id=3, member_id=7, score=80.0, success=True),
    ),
    (
        "courses.unenroll",
        lambda c: c.courses.unenroll(3, 7),
        "DELETE /courses/3/members/7/coursemember",
        None,
        None,
        204,
        None,
    ),
    (
        "courses.invite",
        lambda c: c.courses.invite(3, 7, subject="Join"),
        "POST /courses/3/members/7/invite",
        {"mail": {"subject": "Join"}},
        None,
        204,
        None,
    ),
    (
        "programs.create_member",
        lambda c: c.programs.create_member(5, NEW),
        "POST /programs/5/members",
        {"email": NEW},
        member(7),
        201,
        Member(id=7, email=NEW),
    ),
    (
        "programs.enroll",
        lambda c: c.programs.enroll(5, 7),
        "POST /programs/5/members/7/programmember",
        None,
        PROGRAM_MEMBER,
        200,
        ProgramMember(program_id=5, member_id=7),
    ),
    (
        "programs.unenroll",
        lambda c: c.programs.unenroll(5, 7),
        "DELETE /programs/5/members/7/programmember",
        None,
        None,
        204,
        None,
    ),
    (
        "programs.invite",
        lambda c: c.programs.invite(5, 7, action="Go"),
        "POST /programs/5/members/7/invite",
        {"mail": {"action": "Go"}},
        None,
        204,
        None,
    ),
    (
        "groups.list",
        lambda c: c.groups.list().collect(),
        "GET /groups?limit=100&offset=0",
        None,
        [{"id": 9, "name": "Sales"}],
        200,
        [Group(id=9, name="Sales")],
    ),
    (
        "groups.members",
        lambda c: c.groups.members(9).collect(),
        "GET /groups/9/members?limit=500&offset=0",
        None,
        [member(7)],
        200,
        [Member(id=7, email=NEW)],
    ),
]


@pytest.mark.parametrize(
    ("call", "target", "body", "payload", "status", "result"),
    [pytest.param(*row[1:], id=row[0]) for row in ENDPOINTS],
)
async def test_endpoint(
    api: FakeAPI,
    client: CoursepathClient,
    call: Call,
    target: str,
    body: Any,
    payload: Any,
    status: int,
    result: Any,
) -> None:
    """Each endpoint sends exactly one request with its method, URL and JSON body."""
    method, _, rest = target.partition(" ")
    api.add(method, rest.partition("?")[0], status=status, payload=payload)
    assert await call(client) == result
    assert api.targets == [target]
    sent = api.sent[0]
    assert str(sent.url).startswith(API + "/")
    assert sent.json() == body
    if body is None:
        assert "Content-Type" not in sent.headers
    else:
        assert sent.headers["Content-Type"] == "application/json"
    assert sent.claims()["email"] == USER


def test_endpoint_table_covers_every_public_method() -> None:
    """The endpoint table exercises every public method of every resource."""
    public = {
        f"{prefix}.{name}"
        for prefix, cls in (
            ("members", Members),
            ("courses", Courses),
            ("programs", Programs),
            ("groups", Groups),
        )
        for name, _ in inspect.getmembers(cls, inspect.isfunction)
        if not name.startswith("_")
    }
    assert public == {row[0].split("-")[0] for row in ENDPOINTS}


async def test_form_body_format(api: FakeAPI) -> None:
    """With body_format="form", invitations send ``mail[subject]`` form fields."""
    api.add("POST", "/members/7/invite", status=204)
    api.add("POST", "/members", payload=member(7))
    async with offline_client(retry=FAST_RETRY, body_format="form") as client:
        await client.members.invite(7, subject="Hi there", body="Welcome & go")
        await client.members.create(NEW, external_id="E1")
    invite, create = api.sent
    assert invite.headers["Content-Type"] == "application/x-www-form-urlencoded"
    assert invite.data is not None
    assert parse_qsl(invite.data.decode()) == [
        ("mail[subject]", "Hi there"),
        ("mail[body]", "Welcome & go"),
    ]
    assert create.data is not None
    assert parse_qsl(create.data.decode()) == [("externalId", "E1"), ("email", NEW)]


async def test_form_body_refuses_a_list_before_any_request(api: FakeAPI) -> None:
    """A list in ``extra`` under body_format="form" raises ValueError and sends nothing."""
    async with offline_client(retry=FAST_RETRY, body_format="form") as client:
        with pytest.raises(ValueError, match="'tags'"):
            await client.members.create(NEW, extra={"tags": ["x", "y"]})
    assert api.sent == []


@pytest.mark.parametrize("priority", [True, False, 7, -1, "BULK", 1.0])
async def test_with_options_refuses_a_bad_priority(priority: object) -> None:
    """A bool, unknown int or other value is a ConfigurationError, not a silent lane."""
    async with offline_client(retry=FAST_RETRY) as client:
        with pytest.raises(ConfigurationError, match="priority"):
            client.with_options(priority=priority)  # type: ignore[arg-type]
        assert client.with_options(priority=2).priority is Priority.BULK  # type: ignore[arg-type]


# --- bad arguments fail before any request ---------------------------------------------------

BAD_CALLS: list[tuple[str, Callable[[CoursepathClient], object], type[Exception]]] = [
    ("member_id path", lambda c: c.members.get("../1"), ValueError),  # type: ignore[arg-type]
    ("member_id negative", lambda c: c.members.get(-1), ValueError),
    ("member_id zero", lambda c: c.members.get(0), ValueError),
    ("member_id bool", lambda c: c.members.get(True), ValueError),
    ("member_id str", lambda c: c.members.get("x"), ValueError),  # type: ignore[arg-type]
    ("member_id float", lambda c: c.members.get(1.0), ValueError),  # type: ignore[arg-type]
    ("bad email", lambda c: c.members.create("not-an-email"), ValueError),
    ("email no dot", lambda c: c.members.create("a@b"), ValueError),
    ("field not str", lambda c: c.members.create(NEW, name=5), ValueError),  # type: ignore[arg-type]
    ("unknown field", lambda c: c.members.create(NEW, nickname="x"), InvalidInputError),  # type: ignore[call-arg]
    ("extra not mapping", lambda c: c.members.create(NEW, extra="x"), ValueError),  # type: ignore[arg-type]
    ("update nothing", lambda c: c.members.update(7), ValueError),
    ("update bad email", lambda c: c.members.update(7, email="x"), ValueError),
    ("unknown filter", lambda c: c.members.list(foo="x"), InvalidInputError),  # type: ignore[call-arg]
    ("filter not str", lambda c: c.members.list(company=5), ValueError),  # type: ignore[arg-type]
    ("name filter", lambda c: c.members.list(name="x"), InvalidInputError),  # type: ignore[call-arg]
    ("page_size 0", lambda c: c.members.list(page_size=0), ValueError),
    ("page_size neg", lambda c: c.courses.list(page_size=-5), ValueError),
    ("window 0", lambda c: c.groups.list(window=0), ValueError),
    ("window 1e6", lambda c: c.members.list(window=1_000_000), ValueError),
    ("window 65", lambda c: c.courses.members(3, window=65), ValueError),
    ("course filter", lambda c: c.courses.members(3, bogus="x"), InvalidInputError),  # type: ignore[call-arg]
    ("course_id", lambda c: c.courses.members("3"), ValueError),  # type: ignore[arg-type]
    ("group_id", lambda c: c.groups.members(-2), ValueError),
    ("member courses", lambda c: c.members.courses(0), ValueError),
    ("member groups", lambda c: c.members.groups(True), ValueError),
    ("group name", lambda c: c.members.add_to_group(7, "  "), ValueError),
    ("group name type", lambda c: c.members.remove_from_group(7, None), ValueError),  # type: ignore[arg-type]
    ("remove all id", lambda c: c.members.remove_from_all_groups(-7), ValueError),
    ("enroll member", lambda c: c.courses.enroll(3, "../7"), ValueError),  # type: ignore[arg-type]
    ("result course", lambda c: c.courses.result(0, 7), ValueError),
    ("unenroll", lambda c: c.courses.unenroll(3, -1), ValueError),
    ("course invite", lambda c: c.courses.invite(3.5, 7), ValueError),  # type: ignore[arg-type]
    ("course create email", lambda c: c.courses.create_member(3, "x@"), ValueError),
    ("program create id", lambda c: c.programs.create_member(0, NEW), ValueError),
    ("program enroll", lambda c: c.programs.enroll(5, 0), ValueError),
    ("program unenroll", lambda c: c.programs.unenroll("5", 7), ValueError),  # type: ignore[arg-type]
    ("program invite", lambda c: c.programs.invite(5, False), ValueError),
    ("as_user", lambda c: c.as_user("nobody"), ValueError),
    ("with_options user", lambda c: c.with_options(user="x@y"), ValueError),
    ("find_by_email", lambda c: c.members.find_by_email("nope"), ValueError),
]


async def _invoke(call: Callable[[CoursepathClient], object], client: CoursepathClient) -> None:
    """Make the call and, when it returned something awaitable, await it."""
    result = call(client)
    if inspect.isawaitable(result):
        await result


@pytest.mark.parametrize(("call", "error"), [pytest.param(c, e, id=i) for i, c, e in BAD_CALLS])
async def test_bad_arguments_fail_before_any_request(
    api: FakeAPI,
    client: CoursepathClient,
    call: Callable[[CoursepathClient], object],
    error: type[Exception],
) -> None:
    """Invalid ids, emails, fields, filters and sizes raise InvalidInputError before any send."""
    with pytest.raises(error) as raised:
        await _invoke(call, client)
    assert isinstance(raised.value, InvalidInputError)
    assert raised.value.argument is not None
    assert raised.value.argument in str(raised.value)
    assert api.sent == []


# --- writes with unknown outcome -----------------------------------------------------------


async def test_create_after_uncertain_attempt_resolves_by_lookup(
    api: FakeAPI, client: CoursepathClient
) -> None:
    """A create retried after a 502 that answers 409 returns the member found by email."""
    api.add("POST", "/members", status=502)
    api.add("POST", "/members", status=409, payload={"error": "email exists"})
    api.add("GET", "/members", payload=[member(8, "other@acme.example.com"), member(7)])
    created = await client.members.create("New@Acme.example.com", name="New")
    assert created == Member(id=7, email=NEW)
    assert api.targets == [
        "POST /members",
        "POST /members",
        "GET /members?email=New@Acme.example.com&limit=500&offset=0",
    ]


async def test_create_422_after_uncertain_attempt_resolves_by_lookup(
    api: FakeAPI, client: CoursepathClient
) -> None:
    """A 422 "already in use" after an uncertain attempt resolves the same way."""
    api.add("POST", "/members", exception=aiohttp.ServerDisconnectedError())
    api.add("POST", "/members", status=422, payload={"error": "email in use"})
    api.add("GET", "/members", payload=[member(7)])
    assert (await client.members.create(NEW)).id == 7
    assert len(api.sent) == 3


async def test_create_conflict_on_first_attempt_is_an_error(
    api: FakeAPI, client: CoursepathClient
) -> None:
    """A 409 on the first attempt means the member already existed: ConflictError."""
    api.add("POST", "/members", status=409, payload={"error": "email exists"})
    with pytest.raises(ConflictError) as info:
        await client.members.create(NEW)
    assert info.value.after_unknown_outcome is False
    assert api.targets == ["POST /members"]


async def test_create_conflict_after_refused_connection_is_an_error(
    api: FakeAPI, client: CoursepathClient
) -> None:
    """A refused connection created nothing, so a following 409 is a real conflict."""
    key = ConnectionKey("acme.example.com", 443, True, True, None, None, None)
    refused = aiohttp.ClientConnectorError(key, ConnectionRefusedError(111, "refused"))
    api.add("POST", "/members", exception=refused)
    api.add("POST", "/members", status=422, payload={"error": "email in use"})
    with pytest.raises(UnprocessableEntityError):
        await client.members.create(NEW)
    assert api.targets == ["POST /members", "POST /members"]


async def test_create_conflict_without_lookup_match_is_an_error(
    api: FakeAPI, client: CoursepathClient
) -> None:
    """If the lookup finds nobody, the conflict is raised, flagged as after an unknown outcome."""
    api.add("POST", "/members", status=503)
    api.add("POST", "/members", status=409)
    api.add("GET", "/members", payload=[])
    with pytest.raises(ConflictError) as info:
        await client.members.create(NEW)
    assert info.value.after_unknown_outcome is True


async def test_course_create_member_after_uncertain_attempt_enrols_found_member(
    api: FakeAPI, client: CoursepathClient
) -> None:
    """Create-and-enrol resolves "exists" by lookup and then (idempotently) enrols."""
    api.add("POST", "/courses/3/members", status=500)
    api.add("POST", "/courses/3/members", status=409)
    api.add("GET", "/members", payload=[member(7)])
    api.add("POST", "/courses/3/members/7/coursemember", payload=COURSE_MEMBER)
    assert (await client.courses.create_member(3, NEW)).id == 7
    assert api.targets[-1] == "POST /courses/3/members/7/coursemember"
    assert len(api.sent) == 4


async def test_program_create_member_after_uncertain_attempt_enrols_found_member(
    api: FakeAPI, client: CoursepathClient
) -> None:
    """The program variant enrols the found member in the program."""
    api.add("POST", "/programs/5/members", status=502)
    api.add("POST", "/programs/5/members", status=409)
    api.add("GET", "/members", payload=[member(7)])
    api.add("POST", "/programs/5/members/7/programmember", payload=PROGRAM_MEMBER)
    assert (await client.programs.create_member(5, NEW)).id == 7
    assert api.targets[-1] == "POST /programs/5/members/7/programmember"


REMOVALS: list[tuple[str, Call, str, str]] = [
    ("group", lambda c: c.members.remove_from_group(7, "Sales"), "DELETE", "/members/7/groups"),
    (
        "course",
        lambda c: c.courses.unenroll(3, 7),
        "DELETE",
        "/courses/3/members/7/coursemember",
    ),
    (
        "program",
        lambda c: c.programs.unenroll(5, 7),
        "DELETE",
        "/programs/5/members/7/programmember",
    ),
]


@pytest.mark.parametrize(
    ("call", "method", "path"), [pytest.param(*r[1:], id=r[0]) for r in REMOVALS]
)
async def test_removal_404_after_uncertain_attempt_is_success(
    api: FakeAPI, client: CoursepathClient, call: Call, method: str, path: str
) -> None:
    """A removal retried after a 502 that answers 404 was done by the first attempt."""
    api.add(method, path, status=502)
    api.add(method, path, status=404)
    assert await call(client) is None
    assert len(api.sent) == 2


@pytest.mark.parametrize(
    ("call", "method", "path"), [pytest.param(*r[1:], id=r[0]) for r in REMOVALS]
)
async def test_removal_404_on_first_attempt_is_not_found(
    api: FakeAPI, client: CoursepathClient, call: Call, method: str, path: str
) -> None:
    """A removal answering 404 straight away is NotFoundError."""
    api.add(method, path, status=404, payload={"error": "not a member"})
    with pytest.raises(NotFoundError):
        await call(client)
    assert len(api.sent) == 1


# --- listings through the client -------------------------------------------------------------


async def test_listing_survives_a_silent_cap(api: FakeAPI, client: CoursepathClient) -> None:
    """Asking for 1000 sends the endpoint's cap (500); a full capped page does not end it."""
    api.add("GET", "/members", payload=[member(i, f"m{i}@x.co") for i in range(1, 501)])
    api.add("GET", "/members", payload=[member(501, "m501@x.co"), member(502, "m502@x.co")])
    records = [m async for m in client.members.list(page_size=1000, window=1)]
    assert [m.id for m in records] == list(range(1, 503))
    assert api.targets == [
        "GET /members?limit=500&offset=0",
        "GET /members?limit=500&offset=500",
    ]


async def test_find_by_email_tries_the_lower_case_form_only_when_needed(
    api: FakeAPI, client: CoursepathClient
) -> None:
    """An exact-match email filter finds the email as given; lower case is the fallback."""
    api.add("GET", "/members", payload=[])
    api.add("GET", "/members", payload=[member(7)])
    found = await client.members.find_by_email("New@Acme.example.com")
    assert found == Member(id=7, email=NEW)
    assert api.targets == [
        "GET /members?email=New@Acme.example.com&limit=500&offset=0",
        "GET /members?email=new@acme.example.com&limit=500&offset=0",
    ]


async def test_find_by_external_id_refuses_none(api: FakeAPI, client: CoursepathClient) -> None:
    """None would drop the filter and match every member without one: it is refused."""
    with pytest.raises(ValueError, match="external_id must be a non-empty string"):
        await client.members.find_by_external_id(None)  # type: ignore[arg-type]
    assert api.sent == []


async def test_listing_accepts_wrapped_pages_and_drops_repeats(
    api: FakeAPI, client: CoursepathClient
) -> None:
    """Pages wrapped in an object are unwrapped; a record repeated by drift is yielded once."""
    api.add("GET", "/groups", payload={"data": [{"id": 1}, {"id": 2}]})
    api.add("GET", "/groups", payload={"items": [{"id": 2}, {"id": 3}]})
    api.add("GET", "/groups", payload=[])
    groups = await client.groups.list(page_size=2, window=1)
    assert [g.id for g in groups] == [1, 2, 3]
    assert api.targets == [
        "GET /groups?limit=2&offset=0",
        "GET /groups?limit=2&offset=2",
        "GET /groups?limit=2&offset=4",
    ]


async def test_listing_bad_shape_raises(api: FakeAPI, client: CoursepathClient) -> None:
    """A list endpoint answering with something other than an array raises a typed error."""
    api.add("GET", "/courses", payload={"error": "weird"})
    with pytest.raises(APIResponseValidationError, match="expected a JSON array"):
        await client.courses.list().collect()


async def test_listing_bad_record_raises(api: FakeAPI, client: CoursepathClient) -> None:
    """A record that is not a valid model raises a typed error naming the model."""
    api.add("GET", "/courses", payload=[{"id": 1}, {"name": "no id"}])
    with pytest.raises(APIResponseValidationError, match="not a valid Course"):
        await client.courses.list().collect()


# --- views, lanes and lifecycle --------------------------------------------------------------


async def test_as_user_signs_for_the_other_member(api: FakeAPI, client: CoursepathClient) -> None:
    """A view from ``as_user`` sends tokens for its member; the client keeps its own."""
    api.add("GET", "/members/me", payload=member(2, "other@acme.example.com"), repeat=True)
    view = client.as_user("other@acme.example.com")
    assert isinstance(view, ClientView)
    assert view.user == "other@acme.example.com"
    await view.members.me()
    await client.members.me()
    await view.as_user("third@acme.example.com").members.me()
    assert [s.claims()["email"] for s in api.sent] == [
        "other@acme.example.com",
        USER,
        "third@acme.example.com",
    ]


async def test_views_share_one_budget(api: FakeAPI) -> None:
    """A view's call holds a slot of the client's single budget; the client's call queues."""
    gate = asyncio.Event()
    api.add("GET", "/members/1", payload=member(1), before=gate.wait)
    api.add("GET", "/members/2", payload=member(2))
    async with offline_client(retry=FAST_RETRY, max_concurrency=1) as client:
        view = client.as_user("other@acme.example.com")
        first = asyncio.create_task(view.members.get(1))
        await settle()
        second = asyncio.create_task(client.members.get(2))
        await settle()
        assert client.scheduler_stats().active == 1
        assert client.scheduler_stats().pending["normal"] == 1
        assert view.scheduler_stats() == client.scheduler_stats()
        assert len(api.sent) == 1
        gate.set()
        await asyncio.gather(first, second)
        assert view.scheduler_stats() == client.scheduler_stats()
        assert client.scheduler_stats().active == 0
    assert [s.claims()["email"] for s in api.sent] == ["other@acme.example.com", USER]


async def test_interactive_view_overtakes_bulk_backlog(api: FakeAPI) -> None:
    """Calls from an INTERACTIVE view are sent before an earlier queued BULK backlog."""
    gate = asyncio.Event()
    api.add("GET", "/members/1", payload=member(1), before=gate.wait)
    for i in (10, 11, 12, 20):
        api.add("GET", f"/members/{i}", payload=member(i))
    async with offline_client(retry=FAST_RETRY, max_concurrency=1, interactive_reserve=0) as client:
        bulk = client.with_options(priority=Priority.BULK)
        web = client.with_options(priority=Priority.INTERACTIVE)
        assert (bulk.priority, web.priority) == (Priority.BULK, Priority.INTERACTIVE)
        tasks = [asyncio.create_task(client.members.get(1))]
        await settle()
        tasks += [asyncio.create_task(bulk.members.get(i)) for i in (10, 11, 12)]
        await settle()
        tasks.append(asyncio.create_task(web.members.get(20)))
        await settle()
        assert client.scheduler_stats().pending == {"interactive": 1, "normal": 0, "bulk": 3}
        gate.set()
        await asyncio.gather(*tasks)
    assert [s.url.path.rsplit("/", 1)[1] for s in api.sent] == ["1", "20", "10", "11", "12"]


async def test_interactive_calls_use_their_reserve_without_waiting(api: FakeAPI) -> None:
    """With every slot busy, INTERACTIVE calls go out at once on the reserve; bulk never does."""
    gate = asyncio.Event()
    for i in (1, 10, 11, 20, 21, 22):
        api.add("GET", f"/members/{i}", payload=member(i), before=gate.wait)
    async with offline_client(retry=FAST_RETRY, max_concurrency=1, interactive_reserve=2) as client:
        bulk = client.with_options(priority=Priority.BULK)
        web = client.with_options(priority=Priority.INTERACTIVE)
        tasks = [asyncio.create_task(client.members.get(1))]
        tasks += [asyncio.create_task(bulk.members.get(i)) for i in (10, 11)]
        await settle()
        tasks += [asyncio.create_task(web.members.get(i)) for i in (20, 21, 22)]
        await settle()
        stats = client.scheduler_stats()
        assert (stats.limit, stats.interactive_reserve, stats.active) == (1, 2, 3)
        assert stats.pending == {"interactive": 1, "normal": 0, "bulk": 2}
        assert [s.url.path.rsplit("/", 1)[1] for s in api.sent] == ["1", "20", "21"]
        gate.set()
        await asyncio.gather(*tasks)
        assert client.scheduler_stats().peak_active == 3
    assert sorted(s.url.path.rsplit("/", 1)[1] for s in api.sent[3:]) == ["10", "11", "22"]


@pytest.mark.parametrize("bad", [-1, 1.5, True, "2", None])
async def test_interactive_reserve_is_validated(bad: object) -> None:
    """A reserve that is not a whole number >= 0 is refused before anything starts."""
    with pytest.raises(ConfigurationError, match="interactive_reserve must be an integer >= 0"):
        offline_client(interactive_reserve=bad)


async def test_with_options_validates() -> None:
    """``with_options`` refuses a bad deadline and keeps unspecified options."""
    async with offline_client(deadline=9) as client:
        view = client.with_options(priority=Priority.BULK)
        assert view.user == USER
        with pytest.raises(ConfigurationError, match="deadline"):
            client.with_options(deadline=-1)
        assert repr(view) == f"<ClientView {BASE_URL} user={USER!r} priority=BULK>"


async def test_closed_client_refuses_calls(api: FakeAPI) -> None:
    """After ``aclose`` the client and its views raise RuntimeError instead of reconnecting."""
    api.add("GET", "/members/1", payload=member(1), repeat=True)
    client = offline_client(retry=FAST_RETRY)
    view = client.as_user("other@acme.example.com")
    await client.members.get(1)
    await client.aclose()
    await client.aclose()  # idempotent
    with pytest.raises(RuntimeError, match="closed"):
        await client.members.get(1)
    with pytest.raises(RuntimeError, match="closed"):
        await view.members.get(1)
    with pytest.raises(RuntimeError, match="closed"):
        await client.groups.list().collect()
    assert len(api.sent) == 1


async def test_async_with_returns_the_client_and_closes_it(api: FakeAPI) -> None:
    """``async with`` yields the client itself and closes it on exit."""
    api.add("GET", "/members/me", payload=member(1, USER))
    client = offline_client()
    async with client as entered:
        assert entered is client
        await client.members.me()
    with pytest.raises(RuntimeError):
        await client.members.me()


async def _leak_a_used_client() -> None:
    with aioresponses() as mock:
        FakeAPI(mock, API, API_KEY).add("GET", "/members/me", payload=member(1, USER))
        client = offline_client()
        await client.members.me()


async def test_unclosed_client_warns() -> None:
    """A client that opened connections and is dropped unclosed emits a ResourceWarning."""
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        await _leak_a_used_client()
        gc.collect()
        messages = [str(w.message) for w in record]
        # The recorded warning holds the client (``source=``); drop it so the client's
        # aiohttp session is collected, and warns, inside this block too.
        record.clear()
        gc.collect()
    assert any(issubclass(w.category, ResourceWarning) for w in record), (
        "the dropped client's aiohttp session was not collected"
    )
    assert any(
        m.startswith("unclosed <CoursepathClient https://acme.example.com") for m in messages
    )


async def test_unused_client_does_not_warn() -> None:
    """A client that never sent a request holds no sockets, so dropping it is silent."""
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        client = offline_client()
        del client
        gc.collect()
    assert [w for w in record if issubclass(w.category, ResourceWarning)] == []


async def test_client_properties_and_repr() -> None:
    """The client exposes its origin, user and lane; the repr shows no secret."""
    async with CoursepathClient(BASE_URL + "/api/v1/", api_key=API_KEY, user=USER) as client:
        assert client.base_url == BASE_URL
        assert client.user == USER
        assert client.priority is Priority.NORMAL
        assert repr(client) == f"<CoursepathClient {BASE_URL} user={USER!r}>"
        assert API_KEY not in repr(client)
        stats = client.scheduler_stats()
        assert (stats.limit, stats.active) == (16, 0)

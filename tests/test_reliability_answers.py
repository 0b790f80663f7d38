"""Bad server answers, end to end: a real client over loopback HTTP against scripted raw answers.

A tiny aiohttp server started in the test (127.0.0.1, port 0) answers every request with
whatever the test scripted: an HTML page, truncated JSON, wrong types, an object where a
list belongs, a page bigger than ``MAX_RESPONSE_BYTES`` (chunked, with a Content-Length,
or gzip-compressed). Each must end as a typed ``CoursepathError`` (or, where the model
rules are lenient, a correct model), never a crash, a hang or a raw aiohttp, cattrs or
orjson exception.
"""

from __future__ import annotations

import asyncio
import gzip
import json
import zlib
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import orjson
import pytest
from answer_server import (
    CALL_LIMIT,
    AnswerServer,
    answering_client,
    chunked,
    plain,
    serve_answers,
)
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

import coursepath_async._transport as transport_module
from coursepath_async import (
    APIConnectionError,
    APIResponseValidationError,
    CoursepathClient,
    CoursepathError,
    Member,
    UncertainOutcomeError,
)

#: The response cap the oversize tests patch in (the real one is 64 MiB).
SMALL_CAP = 64 * 1024

T = TypeVar("T")


server = pytest.fixture(serve_answers, name="server")
client = pytest.fixture(answering_client, name="client")


async def get_member(client: CoursepathClient) -> Member:
    """``GET /members/7``, bounded so a hang fails the test instead of stalling it."""
    async with asyncio.timeout(CALL_LIMIT * 2):
        return await client.members.get(7)


async def list_members(client: CoursepathClient) -> list[Member]:
    """``GET /members`` (every page), bounded."""
    async with asyncio.timeout(CALL_LIMIT * 2):
        return await client.members.list().collect()


async def settle(call: Awaitable[T]) -> T | APIResponseValidationError:
    """The call's result, or the validation error it raised (any other exception propagates)."""
    try:
        return await call
    except APIResponseValidationError as exc:
        return exc


def member_json(member_id: int = 7, **fields: object) -> dict[str, object]:
    """A valid member record, with fields overridden."""
    return {"id": member_id, "email": f"m{member_id}@answers.test", **fields}


def dumps(value: object) -> bytes:
    """Any JSON value as bytes (the stdlib also writes integers beyond 64 bits)."""
    return json.dumps(value).encode()


HTML_PAGE = (
    b"<!DOCTYPE html>\n<html><head><title>Maintenance</title></head>"
    b"<body><h1>We'll be back soon</h1></body></html>"
)

# -- one member: GET /members/{id} -----------------------------------------------------------

# (id, body, message fragment): a 200 answer that is not a member.
BAD_MEMBER_BODIES: list[tuple[str, bytes, str]] = [
    ("html page", HTML_PAGE, "expected JSON"),
    ("empty body", b"", "not a valid Member"),
    ("whitespace body", b"  \r\n ", "not a valid Member"),
    ("truncated object", b'{"id": 7, "email": "m7@ans', "expected JSON"),
    ("truncated after key", b'{"id": 7, "email"', "expected JSON"),
    ("trailing garbage", b'{"id": 7, "email": "m7@answers.test"}}', "expected JSON"),
    ("byte order mark", b'\xef\xbb\xbf{"id": 7, "email": "m7@answers.test"}', "expected JSON"),
    ("not utf-8", b'{"id": 7, "email": "\xff\xfe@answers.test"}', "expected JSON"),
    ("NaN literal", b'{"id": NaN, "email": "m7@answers.test"}', "expected JSON"),
    ("infinite number", b'{"id": 1e999, "email": "m7@answers.test"}', "expected JSON"),
    ("nested too deep", b"[" * 5000 + b"]" * 5000, "expected JSON"),
    ("a list", dumps([member_json()]), "not a valid Member"),
    ("a string", dumps("member 7"), "not a valid Member"),
    ("a number", b"7", "not a valid Member"),
    ("null", b"null", "not a valid Member"),
    ("empty object", b"{}", "not a valid Member"),
    ("id as word", dumps(member_json(id="abc")), "not a valid Member"),
    ("id negative string", dumps(member_json(id="-7")), "not a valid Member"),
    ("id fraction", dumps(member_json(id=7.5)), "not a valid Member"),
    ("id boolean", dumps(member_json(id=True)), "not a valid Member"),
    ("id null", dumps(member_json(id=None)), "not a valid Member"),
    ("id object", dumps(member_json(id={"value": 7})), "not a valid Member"),
    ("id missing", dumps({"email": "m7@answers.test"}), "not a valid Member"),
    ("email missing", dumps({"id": 7}), "not a valid Member"),
    ("email null", dumps(member_json(email=None)), "not a valid Member"),
    ("email boolean", dumps(member_json(email=False)), "not a valid Member"),
    ("email list", dumps(member_json(email=["m7@answers.test"])), "not a valid Member"),
    ("name object", dumps(member_json(name={"first": "Ann"})), "not a valid Member"),
    ("date words", dumps(member_json(createdDate="last Tuesday")), "not a valid Member"),
    ("date boolean", dumps(member_json(createdDate=True)), "not a valid Member"),
    ("date out of range", dumps(member_json(createdDate=10**20)), "not a valid Member"),
]


@pytest.mark.parametrize(
    ("body", "fragment"), [pytest.param(b, f, id=i) for i, b, f in BAD_MEMBER_BODIES]
)
async def test_bad_member_answer_is_a_typed_validation_error(
    server: AnswerServer, client: CoursepathClient, body: bytes, fragment: str
) -> None:
    """A 200 answer to GET /members/{id} that is no member raises APIResponseValidationError."""
    server.answer = plain(
        body, content_type="text/html" if body is HTML_PAGE else "application/json"
    )
    with pytest.raises(APIResponseValidationError, match=fragment) as info:
        await get_member(client)
    error = info.value
    assert (error.method, error.url) == ("GET", f"{server.url}/api/v1/members/7")
    assert error.body == body
    assert len(str(error)) < 1000  # an excerpt, never the whole (maybe huge) body
    assert server.targets == ["GET /api/v1/members/7"]  # a bad shape is not retried


# (id, record, what the lenient model rules make of it)
LENIENT_MEMBERS: list[tuple[str, dict[str, object], Member]] = [
    ("id as digits", member_json(id="7"), Member(id=7, email="m7@answers.test")),
    ("id padded digits", member_json(id=" 7 "), Member(id=7, email="m7@answers.test")),
    ("id whole float", member_json(id=7.0), Member(id=7, email="m7@answers.test")),
    ("email as number", member_json(email=42), Member(id=7, email="42")),
    (
        "external id as number",
        member_json(externalId=1234),
        Member(id=7, email="m7@answers.test", external_id="1234"),
    ),
    ("explicit nulls", member_json(name=None, company=None), Member(id=7, email="m7@answers.test")),
]


@pytest.mark.parametrize(
    ("record", "expected"), [pytest.param(r, m, id=i) for i, r, m in LENIENT_MEMBERS]
)
async def test_lenient_member_fields_decode_as_documented(
    server: AnswerServer, client: CoursepathClient, record: dict[str, object], expected: Member
) -> None:
    """Numbers for strings and digit strings for ids decode, per the _models rules."""
    server.answer = plain(dumps(record))
    assert await get_member(client) == expected


async def test_an_id_beyond_64_bits_is_never_silently_changed(
    server: AnswerServer, client: CoursepathClient
) -> None:
    """An id JSON cannot carry exactly is refused, not rounded into another member's id."""
    huge = 2**64 + 1  # orjson reads it as a float: 18446744073709551616.0
    server.answer = plain(dumps(member_json(huge)))
    try:
        member = await get_member(client)
    except APIResponseValidationError:
        return
    assert member.id == huge, f"the server said {huge}, the SDK returned {member.id}"


# -- listings: GET /members ------------------------------------------------------------------

WRAPPED_PAGES: list[tuple[str, object]] = [
    ("bare array", [member_json(1), member_json(2)]),
    ("data", {"data": [member_json(1), member_json(2)], "total": 2}),
    ("items", {"items": [member_json(1), member_json(2)]}),
    ("members", {"members": [member_json(1), member_json(2)], "next": None}),
    ("results", {"count": 2, "results": [member_json(1), member_json(2)]}),
]


@pytest.mark.parametrize("page", [pytest.param(p, id=i) for i, p in WRAPPED_PAGES])
async def test_listing_accepts_an_array_bare_or_wrapped(
    server: AnswerServer, client: CoursepathClient, page: object
) -> None:
    """A page as a bare array or wrapped in {"data": [...]} (and kin) lists its members."""
    server.answer = plain(dumps(page))
    assert [m.id for m in await list_members(client)] == [1, 2]


@pytest.mark.parametrize("body", [b"[]", b'{"data": []}'])
async def test_listing_of_nothing_is_empty(
    server: AnswerServer, client: CoursepathClient, body: bytes
) -> None:
    """[] or an empty wrapped array is an empty listing."""
    server.answer = plain(body)
    assert await list_members(client) == []


@pytest.mark.parametrize(
    ("body", "status"), [(b"", 204), (b"", 200), (b"null", 200)], ids=["204", "empty", "null"]
)
async def test_a_first_page_without_an_array_is_refused(
    server: AnswerServer, client: CoursepathClient, body: bytes, status: int
) -> None:
    """A 204, an empty body or null is no page, even first: refused, never an empty listing."""
    server.answer = plain(body, status=status)
    with pytest.raises(APIResponseValidationError, match="got no records at all") as info:
        await list_members(client)
    assert info.value.url.startswith(f"{server.url}/api/v1/members?offset=0&limit=500")


BAD_PAGES: list[tuple[str, bytes, str]] = [
    ("html page", HTML_PAGE, "expected JSON"),
    ("truncated array", b'[{"id": 1, "email": "m1@answers.test"}, {"id": 2', "expected JSON"),
    ("object without a list", dumps({"foo": 1}), "expected a JSON array of records, got dict"),
    ("wrapped non-list", dumps({"data": member_json(1)}), "expected a JSON array"),
    ("wrapped null", dumps({"data": None}), "expected a JSON array"),
    ("a string", dumps("members"), "expected a JSON array of records, got str"),
    ("a number", b"500", "expected a JSON array of records, got int"),
    ("list of numbers", dumps([1, 2, 3]), "not a valid Member"),
    ("list of strings", dumps(["m1@answers.test"]), "not a valid Member"),
    ("list of nulls", dumps([None, None]), "not a valid Member"),
    ("list of lists", dumps([[member_json(1)]]), "not a valid Member"),
    ("one bad record", dumps([member_json(1), member_json(id="abc")]), "not a valid Member"),
    ("wrapped bad records", dumps({"data": [1, "two"]}), "not a valid Member"),
]


@pytest.mark.parametrize(("body", "fragment"), [pytest.param(b, f, id=i) for i, b, f in BAD_PAGES])
async def test_bad_page_is_a_typed_validation_error(
    server: AnswerServer, client: CoursepathClient, body: bytes, fragment: str
) -> None:
    """A listing page that is not an array of member records raises APIResponseValidationError."""
    server.answer = plain(body)
    with pytest.raises(APIResponseValidationError, match=fragment) as info:
        await list_members(client)
    assert info.value.method == "GET"
    assert info.value.url.startswith(f"{server.url}/api/v1/members?")
    assert len(server.targets) == 1


async def test_other_models_refuse_bad_shapes_too(
    server: AnswerServer, client: CoursepathClient
) -> None:
    """Course, group, enrolment and the calling member get the same typed errors."""
    checks: list[tuple[bytes, Callable[[], Awaitable[object]], str]] = [
        (dumps({"name": "no id"}), lambda: client.courses.get(3), "not a valid Course"),
        (dumps([{"id": "x"}]), lambda: client.groups.list().collect(), "not a valid Group"),
        (dumps({"groups": "Sales"}), lambda: client.groups.list().collect(), "JSON array"),
        (dumps([1]), lambda: client.courses.enroll(3, 7), "not a valid CourseMember"),
        (dumps({"score": True}), lambda: client.courses.result(3, 7), "not a valid CourseMember"),
        (HTML_PAGE, lambda: client.members.me(), "expected JSON"),
        (b'{"id": 9, "email"', lambda: client.members.create("new@answers.test"), "expected JSON"),
        (dumps({"data": 5}), lambda: client.courses.members(3).collect(), "JSON array"),
    ]
    for body, call, fragment in checks:
        server.answer = plain(body)
        with pytest.raises(APIResponseValidationError, match=fragment):
            async with asyncio.timeout(CALL_LIMIT * 2):
                await call()


async def test_answers_without_a_body_to_read_are_not_decoded(
    server: AnswerServer, client: CoursepathClient
) -> None:
    """Calls that need nothing back (invite, group changes) succeed whatever a 200 carries."""
    for body in (HTML_PAGE, b"", b'{"trunc', b"\xff\xfe"):
        server.answer = plain(body)
        async with asyncio.timeout(CALL_LIMIT * 2):
            await client.members.invite(7)
            await client.members.add_to_group(7, "Sales")


async def test_a_101_to_an_invite_is_an_uncertain_outcome_not_a_sent_email(
    server: AnswerServer, client: CoursepathClient
) -> None:
    """101 Switching Protocols is no answer: the invite may have gone out and is not repeated."""
    server.answer = plain(b"", status=101, headers={"Connection": "Upgrade", "Upgrade": "h2c"})
    with pytest.raises(UncertainOutcomeError, match="101"):
        async with asyncio.timeout(CALL_LIMIT * 2):
            await client.members.invite(7)
    assert server.targets == ["POST /api/v1/members/7/invite"]


async def test_a_101_to_a_read_is_a_connection_error_after_retries(
    server: AnswerServer, client: CoursepathClient
) -> None:
    """A read answered 101 is retried like a dropped connection, then fails as one."""
    server.answer = plain(b"", status=101, headers={"Connection": "Upgrade", "Upgrade": "h2c"})
    with pytest.raises(APIConnectionError, match=r"answered 101 \(informational\)") as info:
        await get_member(client)
    assert info.value.sent
    assert server.targets == ["GET /api/v1/members/7"] * 2  # the client's two attempts


async def test_corrupt_compressed_body_is_a_typed_error(
    server: AnswerServer, client: CoursepathClient
) -> None:
    """A body labelled gzip that does not inflate is a typed error, not an aiohttp one."""
    server.answer = plain(b"this is not gzip at all", headers={"Content-Encoding": "gzip"})
    with pytest.raises(CoursepathError) as info:
        await get_member(client)
    assert isinstance(info.value, APIConnectionError | APIResponseValidationError)


# -- enormous pages: MAX_RESPONSE_BYTES ------------------------------------------------------


@pytest.fixture
def small_cap(monkeypatch: pytest.MonkeyPatch) -> int:
    """Lower the response cap to 64 KiB so oversize answers stay cheap to produce."""
    monkeypatch.setattr(transport_module, "MAX_RESPONSE_BYTES", SMALL_CAP)
    return SMALL_CAP


def page_of_size(size: int) -> bytes:
    """A valid one-member JSON page of exactly ``size`` bytes (padded with spaces)."""
    head, tail = b"[" + dumps(member_json(1)), b"]"
    assert size >= len(head) + len(tail)
    return head + b" " * (size - len(head) - len(tail)) + tail


def enormous_page(members: int) -> bytes:
    """A real, valid listing page that is simply far too big."""
    return dumps([member_json(i, name="x" * 200) for i in range(1, members + 1)])


@pytest.mark.parametrize("framing", ["content-length", "chunked"])
async def test_page_above_the_cap_is_refused(
    server: AnswerServer, client: CoursepathClient, small_cap: int, framing: str
) -> None:
    """A page over MAX_RESPONSE_BYTES, with or without Content-Length, is a typed error."""
    body = enormous_page(2000)  # about 480 KB, over seven times the cap
    assert len(body) > 7 * small_cap
    server.answer = plain(body) if framing == "content-length" else chunked(body)
    with pytest.raises(APIResponseValidationError, match="larger than") as info:
        await list_members(client)
    assert info.value.body == b""  # nothing of the oversize answer is kept
    assert len(server.targets) == 1  # refused, not retried

    # The refused answer's connection was dropped, not returned half-read to the pool.
    server.answer = plain(dumps([member_json(1)]))
    assert [m.id for m in await list_members(client)] == [1]


@pytest.mark.parametrize("framing", ["content-length", "chunked"])
async def test_page_exactly_at_the_cap_is_accepted(
    server: AnswerServer, client: CoursepathClient, small_cap: int, framing: str
) -> None:
    """The cap is inclusive: an answer of exactly MAX_RESPONSE_BYTES bytes is read whole."""
    body = page_of_size(small_cap)
    server.answer = plain(body) if framing == "content-length" else chunked(body, chunk=4096)
    assert [m.id for m in await list_members(client)] == [1]


@pytest.mark.parametrize("framing", ["content-length", "chunked"])
async def test_page_one_byte_over_the_cap_is_refused(
    server: AnswerServer, client: CoursepathClient, small_cap: int, framing: str
) -> None:
    """One byte more than MAX_RESPONSE_BYTES is refused, however the body is framed."""
    body = page_of_size(small_cap + 1)
    server.answer = plain(body) if framing == "content-length" else chunked(body, chunk=4096)
    with pytest.raises(APIResponseValidationError, match="larger than"):
        await list_members(client)


@pytest.mark.parametrize("framing", ["content-length", "chunked"])
async def test_compressed_page_that_inflates_past_the_cap_is_refused(
    server: AnswerServer, client: CoursepathClient, small_cap: int, framing: str
) -> None:
    """A gzip answer a few KB on the wire that inflates far past the cap is refused too.

    The cap guards memory, so it must count the bytes aiohttp hands over after
    decompression, not the Content-Length of the compressed body.
    """
    inflated = page_of_size(64 * small_cap)  # 4 MiB of JSON...
    wire = gzip.compress(inflated)  # ...about 4 KB compressed
    assert len(wire) < small_cap // 8
    headers = {"Content-Encoding": "gzip"}
    server.answer = (
        plain(wire, headers=headers)
        if framing == "content-length"
        else chunked(wire, chunk=1024, headers=headers)
    )
    with pytest.raises(APIResponseValidationError, match="larger than"):
        await list_members(client)


async def test_deflated_page_within_the_cap_is_read(
    server: AnswerServer, client: CoursepathClient, small_cap: int
) -> None:
    """Compressed answers that stay under the cap after inflating are read as usual."""
    body = dumps([member_json(1), member_json(2)])
    server.answer = plain(zlib.compress(body), headers={"Content-Encoding": "deflate"})
    assert [m.id for m in await list_members(client)] == [1, 2]


# -- property: any bytes as a 200 body --------------------------------------------------------

_JSON_LEAVES = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=12),
)
_JSON = st.recursive(
    _JSON_LEAVES,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=10,
)
_FIELD_VALUES = st.one_of(
    _JSON,
    st.text(max_size=30),
    st.integers(min_value=1, max_value=10**6),
    st.integers(min_value=1, max_value=10**6).map(str),
    st.datetimes().map(lambda d: d.isoformat()),
    st.emails().map(str),
)


def mostly(usual: st.SearchStrategy[Any], other: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """``usual`` three times out of four, else ``other`` (``one_of`` would weigh every branch)."""
    return st.integers(min_value=0, max_value=3).flatmap(lambda n: other if n == 0 else usual)


_TEXT = st.one_of(st.none(), st.text(max_size=30))
_DATES = st.one_of(
    st.datetimes().map(lambda d: d.isoformat()),
    st.integers(min_value=0, max_value=2_000_000_000_000),
)
_MEMBER_LIKE = st.fixed_dictionaries(
    {
        "id": mostly(st.integers(min_value=1, max_value=10**6), _FIELD_VALUES),
        "email": mostly(st.emails().map(str), _FIELD_VALUES),
    },
    optional={
        name: mostly(_TEXT, _FIELD_VALUES)
        for name in (
            "name",
            "company",
            "department",
            "country",
            "externalId",
            "association",
            "identification",
            "registration",
            "somethingNew",
        )
    }
    | {"createdDate": mostly(_DATES, _FIELD_VALUES)},
)
_DOCUMENTS = st.one_of(
    _MEMBER_LIKE,
    st.lists(_MEMBER_LIKE, max_size=6),
    st.dictionaries(
        st.sampled_from(["data", "items", "members", "foo"]),
        st.lists(_MEMBER_LIKE, max_size=4),
        max_size=2,
    ),
    _JSON,
)


@st.composite
def _bodies(draw: st.DrawFn) -> bytes:
    """Raw bytes, JSON documents (often member-shaped), or such a document cut short."""
    kind = draw(st.sampled_from(["bytes", "json", "truncated", "html", "member", "page"]))
    if kind == "member":
        return dumps(draw(_MEMBER_LIKE))
    if kind == "page":
        return dumps(draw(st.lists(_MEMBER_LIKE, max_size=5)))
    if kind == "bytes":
        return draw(st.binary(max_size=300))
    if kind == "html":
        return HTML_PAGE[: draw(st.integers(min_value=0, max_value=len(HTML_PAGE)))]
    document = dumps(draw(_DOCUMENTS))
    if kind == "json":
        return document
    return document[: draw(st.integers(min_value=0, max_value=max(len(document) - 1, 0)))]


@settings(
    max_examples=60,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(body=_bodies())
async def test_any_200_body_gives_models_or_a_typed_error(
    server: AnswerServer, client: CoursepathClient, body: bytes
) -> None:
    """For any bytes as a 200 body, get and list return Members or raise a CoursepathError."""
    server.answer = plain(body)
    member = await settle(get_member(client))
    event(f"get: {type(member).__name__}")
    if isinstance(member, APIResponseValidationError):
        assert member.body == body
    else:
        assert isinstance(member, Member)
        assert isinstance(orjson.loads(body), dict)
    members = await settle(list_members(client))
    event(f"list: {type(members).__name__}")
    if isinstance(members, APIResponseValidationError):
        assert members.body == body
    else:
        assert all(isinstance(m, Member) for m in members)
        assert len({m.id for m in members}) == len(members)

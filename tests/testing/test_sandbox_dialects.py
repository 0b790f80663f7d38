"""Sandbox dialects over raw HTTP: each preset answers its open point as documented."""

from __future__ import annotations

import re
import time
from email.utils import parsedate_to_datetime

import attrs
import pytest
from sandbox_raw import running

from coursepath_async.testing import DIALECTS, Dialect, SandboxAcademy


def test_presets_combine_in_order_and_unknown_names_list_the_valid_ones() -> None:
    """``named("a,b")`` applies both; later wins; an unknown name says which names exist."""
    both = Dialect.named("form_only,no_dates", "duplicate_422")
    assert both.changes() == {
        "duplicate_status": 422,
        "created_date": "absent",
        "body_encodings": "form",
    }
    assert Dialect.named("clock_ahead", "clock_behind").clock_offset == -300.0
    with pytest.raises(ValueError, match=r"unknown dialect 'spanish'; valid names: default, "):
        Dialect.named("spanish")


def test_all_differs_from_the_default_in_every_field_and_presets_in_one() -> None:
    """``all`` changes every field at once; every other preset (bar caps) changes one thing."""
    assert set(DIALECTS["all"].changes()) == {a.name for a in attrs.fields(Dialect)}
    assert DIALECTS["default"].changes() == {}
    for name, dialect in DIALECTS.items():
        if name not in ("all", "default", "swapped_caps"):
            assert len(dialect.changes()) == 1, name


def test_fields_are_validated() -> None:
    """A status, cap or clock a dialect cannot have is refused at construction."""
    with pytest.raises(ValueError, match="duplicate_status"):
        Dialect(duplicate_status=418)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="group_page_cap"):
        Dialect(group_page_cap=0)
    with pytest.raises(ValueError, match="clock_offset"):
        Dialect(clock_offset=float("nan"))


async def test_explicit_keywords_override_the_dialect() -> None:
    """``SandboxAcademy(dialect="all", duplicate_status=409)``: 409, the rest from ``all``."""
    academy = SandboxAcademy(dialect="all", duplicate_status=409, member_page_size=7)
    assert academy.dialect == attrs.evolve(DIALECTS["all"], duplicate_status=409, member_page_cap=7)
    with pytest.raises(TypeError, match="dialect"):
        SandboxAcademy(dialect=42)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("dialect", "status", "body"),
    [
        (
            "duplicate_400",
            400,
            {"error": "bad_request", "message": "The email address is already in use"},
        ),
        ("duplicate_422", 422, None),
        ("default", 409, None),
    ],
)
async def test_an_existing_email_is_answered_in_the_dialects_status(
    dialect: str, status: int, body: dict[str, str] | None
) -> None:
    """Creating an existing member: 400 with a message, 422 or 409."""
    async with running(dialect=dialect) as (academy, api):
        response = await api.post("/members", json={"email": academy.admin_email})
    assert response.status == status
    if body is not None:
        assert response.json() == body


@pytest.mark.parametrize(
    ("dialect", "pattern"),
    [
        ("default", r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ"),
        ("naive_dates", r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d"),
        ("offset_dates", r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\+01:00"),
        ("no_dates", None),
    ],
)
async def test_created_date_is_written_in_the_dialects_format(
    dialect: str, pattern: str | None
) -> None:
    """Members, courses and coursemembers carry createdDate as the dialect writes it, or not."""
    async with running(dialect=dialect) as (academy, api):
        member = (await api.get("/members/1")).json()
        course = (await api.get("/courses/1")).json()
        learner = academy.state.members()[3]
        enrolled = await api.post(f"/courses/1/members/{learner.id}/coursemember")
    for record in (member, course, enrolled.json()):
        if pattern is None:
            assert "createdDate" not in record
        else:
            assert re.fullmatch(pattern, record["createdDate"])


@pytest.mark.parametrize(
    ("dialect", "json_status", "form_status"),
    [("default", 201, 201), ("form_only", 415, 201), ("json_only", 201, 415)],
)
async def test_body_encodings_taken(dialect: str, json_status: int, form_status: int) -> None:
    """form_only answers a JSON body 415 (nothing created); json_only a form body."""
    async with running(dialect=dialect) as (academy, api):
        as_json = await api.post("/members", json={"email": "j@dialect.test"})
        as_form = await api.post("/members", data={"email": "f@dialect.test"})
        created = {m.email for m in academy.state.members()}
    assert (as_json.status, as_form.status) == (json_status, form_status)
    assert ("j@dialect.test" in created) == (json_status == 201)
    assert ("f@dialect.test" in created) == (form_status == 201)


async def test_wrapped_lists_carry_the_listings_total() -> None:
    """wrapped_lists: ``{"data": [...], "total": N}`` for members, courses and groups."""
    async with running(dialect="wrapped_lists", members=12) as (_, api):
        members = (await api.get("/members", params={"limit": "5"})).json()
        courses = (await api.get("/courses")).json()
        groups = (await api.get("/groups", params={"offset": "1"})).json()
    assert (len(members["data"]), members["total"]) == (5, 12)
    assert (len(courses["data"]), courses["total"]) == (4, 4)
    assert (len(groups["data"]), groups["total"]) == (2, 3)


@pytest.mark.parametrize(("dialect", "served"), [("swapped_caps", 100), ("limit_honoured", 150)])
async def test_page_caps_and_limits_above_them(dialect: str, served: int) -> None:
    """swapped_caps serves 100 members a page at most; limit_honoured serves the 150 asked."""
    async with running(dialect=dialect, members=160) as (_, api):
        page = (await api.get("/members", params={"limit": "150"})).json()
        default = (await api.get("/members")).json()
    assert len(page) == served
    assert len(default) == (100 if dialect == "swapped_caps" else 160)


@pytest.mark.parametrize(
    ("dialect", "create", "invite", "delete"),
    [
        ("default", (201, b"{"), (200, b'{"invited":true}'), (204, b"")),
        ("create_200", (200, b"{"), (200, b'{"invited":true}'), (204, b"")),
        ("invite_204", (201, b"{"), (204, b""), (204, b"")),
        ("invite_empty", (201, b"{"), (200, b""), (204, b"")),
        ("delete_json", (201, b"{"), (200, b'{"invited":true}'), (200, b'{"deleted":true}')),
    ],
)
async def test_write_statuses_and_bodies(
    dialect: str,
    create: tuple[int, bytes],
    invite: tuple[int, bytes],
    delete: tuple[int, bytes],
) -> None:
    """Creates answer 201/200; invites 200 JSON, 204 or 200 empty; DELETEs 204 or 200 JSON."""
    async with running(dialect=dialect) as (_, api):
        created = await api.post("/members", json={"email": "w@dialect.test"})
        member_id = created.json()["id"]
        await api.post(f"/members/{member_id}/groups", json={"name": "G"})
        invited = await api.post(f"/members/{member_id}/invite")
        removed = await api.delete(f"/members/{member_id}/groups")
    assert (created.status, created.body[:1]) == create
    assert (invited.status, invited.body) == invite
    assert (removed.status, removed.body) == delete


async def test_text_errors_are_plain_text_lines() -> None:
    """text_errors: a 404 (and a 401) is ``text/plain`` ``error: message``."""
    async with running(dialect="text_errors") as (_, api):
        missing = await api.get("/members/999")
        refused = await api.get("/members/me", authorization="Bearer nope")
    assert missing.status == 404
    assert missing.headers["Content-Type"].startswith("text/plain")
    assert missing.body == b"not_found: member 999 not found"
    assert refused.status == 401
    assert refused.body.startswith(b"unauthorized: ")


async def test_clock_behind_dates_answers_and_judges_tokens_on_its_clock() -> None:
    """clock_behind: Date 300 s behind ours; a token dated on our clock is from its future."""
    async with running(dialect="clock_behind") as (_, api):
        ours = await api.get("/members/me")
        theirs = await api.get("/members/me", token=api.token(iat=time.time() - 300))
    date = parsedate_to_datetime(ours.headers["Date"]).timestamp()
    assert -302 <= date - time.time() <= -298
    assert (ours.status, theirs.status) == (401, 200)

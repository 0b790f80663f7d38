"""Seeding, fixtures and state helpers of the sandbox academy."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from pathlib import Path

import orjson
import pytest
from sandbox_raw import running

from coursepath_async import InvalidInputError
from coursepath_async.testing import (
    AcademyState,
    CourseEvent,
    DuplicateEmailError,
    FixtureError,
    SandboxAcademy,
    UnknownRecordError,
)
from coursepath_async.testing._records import name_from_email


def test_seeding_is_deterministic() -> None:
    """The same seed builds the same academy; another seed builds another."""
    first = SandboxAcademy(members=60, courses=6, programs=3, groups=5, seed=9).dump()
    again = SandboxAcademy(members=60, courses=6, programs=3, groups=5, seed=9).dump()
    other = SandboxAcademy(members=60, courses=6, programs=3, groups=5, seed=10).dump()
    assert first == again
    assert first["members"] != other["members"]


def test_seeded_academy_shape() -> None:
    """``members`` counts the admin (id 1); learners have realistic, unique data."""
    academy = SandboxAcademy(members=200, courses=6, programs=3, groups=5, seed=2)
    state = academy.state
    members = state.members()
    assert len(members) == 200
    admin = members[0]
    assert (admin.id, admin.email, admin.role) == (1, "admin@sandbox.test", "admin")
    assert {m.role for m in members[1:]} == {"learner"}
    assert len({m.email.lower() for m in members}) == 200
    assert all(m.company and m.department and m.country for m in members[1:])
    assert [c.id for c in state.courses()] == [1, 2, 3, 4, 5, 6]
    assert len({g.name for g in state.groups()}) == 5
    assert len(state.programs()) == 3
    enrolments = state.enrolments()
    assert enrolments
    assert any(e.completed is not None for e in enrolments)
    assert any(e.completed is None for e in enrolments)
    assert all((e.certificate is not None) == bool(e.success) for e in enrolments)
    assert any(state.member_group_ids(m.id) for m in members)
    assert state.program_enrolments()


def test_an_academy_of_just_the_admin() -> None:
    """``members=0`` still seeds the admin, who is needed to sign in."""
    academy = SandboxAcademy(members=0, courses=0, programs=0, groups=0)
    assert [m.email for m in academy.state.members()] == ["admin@sandbox.test"]


def test_seeding_100k_members_is_fast_and_listable() -> None:
    """100,000 members seed in seconds (not minutes) and the last page is a slice."""
    started = time.perf_counter()
    academy = SandboxAcademy(members=100_000, courses=10, groups=8, seed=1)
    elapsed = time.perf_counter() - started
    last = academy.state.page_members(99_990, 500)
    assert [m.id for m in last] == list(range(99_991, 100_001))
    assert elapsed < 10.0  # catches quadratic regressions; typically 1-2 s


@pytest.mark.parametrize(
    ("email", "name"),
    [
        ("john.smith@x.com", "John Smith"),
        ("mary_jane-watson@x.com", "Mary Jane Watson"),
        ("bob+tag@x.com", "Bob"),
        ("X@y.z", "X"),
    ],
)
def test_names_are_derived_from_emails(email: str, name: str) -> None:
    """Without a name, the local part of the email becomes a capitalised name."""
    assert name_from_email(email) == name


def test_fixture_round_trip_from_a_dict() -> None:
    """Loading a dump and dumping again gives the same data."""
    original = SandboxAcademy(members=40, seed=3)
    original.complete_random(0.5, seed=1)
    data = original.dump()
    assert SandboxAcademy(fixture=data).dump() == data


def test_fixture_round_trip_through_a_file(tmp_path: Path) -> None:
    """``dump(path)`` writes JSON that ``fixture=path`` loads back identically."""
    path = tmp_path / "academy.json"
    data = SandboxAcademy(members=15, seed=4).dump(path)
    assert orjson.loads(path.read_bytes()) == data
    assert SandboxAcademy(fixture=path).dump() == data


async def test_a_fixture_serves_its_own_data() -> None:
    """An academy built from a small hand-written fixture serves exactly that data."""
    fixture = {
        "members": [
            {"id": 10, "email": "boss@corp.test", "role": "admin",
             "createdDate": "2024-01-01T00:00:00Z"},
            {"id": 11, "email": "ann.lee@corp.test", "company": "Corp"},
        ],
        "courses": [{"id": 5, "name": "Safety", "createdDate": "2024-01-02T00:00:00Z"}],
        "courseMembers": [
            {"courseId": 5, "memberId": 11, "createdDate": "2024-02-01T00:00:00Z", "score": 90,
             "success": True, "completedDate": "2024-02-03T10:00:00Z", "certificate": "https://c/1"},
        ],
    }  # fmt: skip
    async with running(fixture=fixture, admin_email="boss@corp.test") as (academy, api):
        members = (await api.get("/members")).json()
        result = (await api.get("/courses/5/members/11/coursemember")).json()
        created = await api.post("/members", json={"email": "new@corp.test"})
    assert [m["id"] for m in members] == [10, 11]
    assert members[1]["name"] == "Ann Lee"
    assert result["score"] == 90
    assert result["completedDate"] == "2024-02-03T10:00:00Z"
    assert created.json()["id"] == 12
    assert academy.state.member_count == 3


def test_a_fixture_without_the_admin_gets_one() -> None:
    """If the fixture lacks ``admin_email``, that admin is added so clients can sign in."""
    academy = SandboxAcademy(fixture={"members": [{"id": 1, "email": "a@b.c"}]})
    admin = academy.state.member_by_email("admin@sandbox.test")
    assert admin is not None
    assert (admin.id, admin.role) == (2, "admin")


@pytest.mark.parametrize(
    "fixture",
    [
        {"format": "something-else"},
        {"members": [{"id": 1}]},
        {"members": [{"id": 1, "email": "a@b.c"}, {"id": 1, "email": "d@e.f"}]},
        {"courseMembers": [{"courseId": 1, "memberId": 1, "createdDate": "2024-01-01"}]},
    ],
)
def test_invalid_fixtures_are_refused(fixture: dict[str, object]) -> None:
    """A fixture with a wrong format, missing fields or dangling ids is a FixtureError."""
    with pytest.raises(FixtureError):
        SandboxAcademy(fixture=fixture)


def test_fixture_file_must_be_json(tmp_path: Path) -> None:
    """A fixture file that is not JSON is a FixtureError."""
    path = tmp_path / "broken.json"
    path.write_text("{nope")
    with pytest.raises(FixtureError):
        SandboxAcademy(fixture=path)


def test_complete_course_records_a_result_and_an_event() -> None:
    """``complete_course`` sets score, success, date and certificate, and announces it."""
    academy = SandboxAcademy(members=3, courses=2, seed=1, completion_rate=0.0)
    member = academy.state.add_member("done@x.com")
    events: list[CourseEvent] = []
    academy.state.subscribe(events.append)
    academy.state.enrol(2, member.id)
    when = datetime(2024, 5, 6, 7, 8, 9, tzinfo=UTC)
    passed = academy.complete_course(2, member.id, score=75, completed_at=when)
    failed = academy.complete_course(2, member.id, score=10.0, success=False)
    assert (passed.score, passed.success, passed.completed) == (75, True, when)
    assert passed.certificate == f"https://certificates.sandbox.test/2/{member.id}.pdf"
    assert (failed.success, failed.certificate) == (False, None)
    assert [e.event for e in events] == [
        "COURSEMEMBER_CREATED",
        "COURSEMEMBER_COMPLETED",
        "COURSEMEMBER_COMPLETED",
    ]
    with pytest.raises(UnknownRecordError):
        academy.complete_course(1, member.id)


def test_complete_random_is_deterministic() -> None:
    """``complete_random(fraction, seed=)`` completes the same enrolments each time."""
    first = SandboxAcademy(members=80, seed=5, completion_rate=0.0)
    again = SandboxAcademy(members=80, seed=5, completion_rate=0.0)
    done = first.complete_random(0.5, seed=8)
    assert done == again.complete_random(0.5, seed=8)
    assert 0 < len(done) < len(first.state.enrolments())
    assert all(e.success == (e.score is not None and e.score >= 60) for e in done)
    with pytest.raises(ValueError, match="fraction"):
        first.complete_random(1.5)


def test_state_rules() -> None:
    """Emails are unique case-insensitively; unknown ids raise; unsubscribing stops events."""
    state = AcademyState()
    member = state.add_member("One@X.com")
    with pytest.raises(DuplicateEmailError):
        state.add_member("one@x.COM")
    with pytest.raises(UnknownRecordError):
        state.member(99)
    course = state.add_course("C")
    events: list[CourseEvent] = []
    unsubscribe = state.subscribe(events.append)
    unsubscribe()
    state.enrol(course.id, member.id)
    assert events == []
    assert state.update_member(member.id, name=None).name == "One"
    with pytest.raises(InvalidInputError, match="cannot update member fields"):
        state.update_member(member.id, id="7")


def test_constructor_validates_options() -> None:
    """Unsupported option values are refused at construction."""
    with pytest.raises(ValueError, match="duplicate_status"):
        SandboxAcademy(duplicate_status=418)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="list_order"):
        SandboxAcademy(list_order="random")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="member_page_size"):
        SandboxAcademy(member_page_size=0)

"""Lenient decoding of camelCase JSON into frozen attrs models."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import attrs
import orjson
import pytest
from cattrs.errors import BaseValidationError

from coursepath_async import (
    APIResponseValidationError,
    Course,
    CourseMember,
    Group,
    Member,
    ProgramMember,
)
from coursepath_async._core import decode_model
from coursepath_async._models import structure
from coursepath_async._sansio import ApiRequest

# What the converter may raise for a bad shape (the core maps all of them to one error).
DECODE_ERRORS = (TypeError, ValueError, BaseValidationError)

MEMBER_SAMPLE: dict[str, Any] = {
    "id": 508870138,
    "email": "john.smith@example.com",
    "name": "John Smith",
    "company": "Acme",
    "department": "Sales",
    "country": "BE",
    "externalId": "HR-42",
    "association": "A",
    "identification": "ID-1",
    "registration": "R-1",
    "createdDate": "2024-03-01T10:15:00Z",
}


def test_member_camel_case_to_snake_case() -> None:
    """Every documented camelCase field lands on its snake_case attribute."""
    member = structure(MEMBER_SAMPLE, Member)
    assert member.id == 508870138
    assert member.email == "john.smith@example.com"
    assert member.name == "John Smith"
    assert member.company == "Acme"
    assert member.department == "Sales"
    assert member.country == "BE"
    assert member.external_id == "HR-42"
    assert member.association == "A"
    assert member.identification == "ID-1"
    assert member.registration == "R-1"
    assert member.created_date == datetime(2024, 3, 1, 10, 15, tzinfo=UTC)
    assert member.extra == {}


def test_unknown_fields_are_kept_in_extra() -> None:
    """Fields the SDK does not know survive in ``extra``, nulls included."""
    data = {"id": 1, "email": "a@x.co", "avatarUrl": "https://x/a.png", "tags": [1], "foo": None}
    member = structure(data, Member)
    assert member.extra == {"avatarUrl": "https://x/a.png", "tags": [1], "foo": None}


def test_extra_is_not_in_repr() -> None:
    """``extra`` stays out of the repr to keep logs short."""
    member = structure({"id": 1, "email": "a@x.co", "bigBlob": "z" * 100}, Member)
    assert "bigBlob" not in repr(member)


def test_missing_optional_fields_are_none() -> None:
    """Only id and email are required for a member; the rest defaults to None."""
    member = structure({"id": 1, "email": "a@x.co"}, Member)
    assert member.name is None
    assert member.external_id is None
    assert member.created_date is None


def test_explicit_nulls_are_none() -> None:
    """A known field sent as null is simply not set."""
    member = structure({"id": 1, "email": "a@x.co", "name": None, "externalId": None}, Member)
    assert member.name is None
    assert member.external_id is None
    assert member.extra == {}


def test_models_are_frozen() -> None:
    """Models are immutable values."""
    member = structure({"id": 1, "email": "a@x.co"}, Member)
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        member.name = "x"  # type: ignore[misc]


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2024-03-01T10:15:00Z", datetime(2024, 3, 1, 10, 15, tzinfo=UTC)),
        ("2024-03-01T10:15:00.250Z", datetime(2024, 3, 1, 10, 15, 0, 250_000, tzinfo=UTC)),
        (
            "2024-03-01T12:15:00+02:00",
            datetime(2024, 3, 1, 12, 15, tzinfo=timezone(timedelta(hours=2))),
        ),
        ("2024-03-01T10:15:00", datetime(2024, 3, 1, 10, 15, tzinfo=UTC)),
        ("2024-03-01", datetime(2024, 3, 1, tzinfo=UTC)),
        (1_700_000_000, datetime(2023, 11, 14, 22, 13, 20, tzinfo=UTC)),
        (1_700_000_000_000, datetime(2023, 11, 14, 22, 13, 20, tzinfo=UTC)),
        ("", None),
    ],
)
def test_dates_are_aware(value: Any, expected: datetime | None) -> None:
    """Dates become aware datetimes: Z, offsets, naive (as UTC), epoch s/ms; "" is None."""
    result = structure({"courseId": 1, "memberId": 2, "completedDate": value}, CourseMember)
    assert result.completed_date == expected
    if expected is not None:
        assert result.completed_date is not None
        assert result.completed_date.tzinfo is not None
        assert result.completed_date.utcoffset() == expected.utcoffset()


@pytest.mark.parametrize("value", ["yesterday", "2024-13-45", True, [2024], {"y": 1}])
def test_bad_dates_raise(value: Any) -> None:
    """A date that is not ISO 8601 (or epoch) is a decoding error."""
    with pytest.raises(DECODE_ERRORS):
        structure({"completedDate": value}, CourseMember)


def test_course_member_result() -> None:
    """A coursemember decodes score, success, dates and certificate; ``completed`` follows."""
    result = structure(
        {
            "courseId": 3,
            "memberId": 7,
            "score": 87.5,
            "success": True,
            "completedDate": "2024-05-01T08:00:00Z",
            "certificate": "https://acme.example.com/cert/1.pdf",
            "createdDate": "2024-04-01T08:00:00Z",
        },
        CourseMember,
    )
    assert (result.course_id, result.member_id) == (3, 7)
    assert result.score == 87.5
    assert result.success is True
    assert result.certificate == "https://acme.example.com/cert/1.pdf"
    assert result.completed is True
    assert structure({"courseId": 3, "memberId": 7}, CourseMember).completed is False


@pytest.mark.parametrize(("value", "expected"), [("42", 42), (42, 42), (42.0, 42), (" 42 ", 42)])
def test_lenient_ints(value: Any, expected: int) -> None:
    """Ids sent as numeric strings or whole floats are accepted."""
    assert structure({"id": value, "email": "a@x.co"}, Member).id == expected


@pytest.mark.parametrize("value", [True, False, "4.5", 4.5, "abc", "-1", None, [1]])
def test_bad_ints_raise(value: Any) -> None:
    """Booleans, fractions, junk and missing ids are refused."""
    with pytest.raises(DECODE_ERRORS):
        structure({"id": value, "email": "a@x.co"}, Member)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (True, True),
        (False, False),
        (1, True),
        (0, False),
        ("true", True),
        ("FALSE", False),
        ("1", True),
        ("0", False),
    ],
)
def test_lenient_bools(value: Any, expected: bool) -> None:
    """Booleans sent as 0/1 or "true"/"false" strings are accepted."""
    assert structure({"success": value}, CourseMember).success is expected


@pytest.mark.parametrize("value", ["yes", 2, "maybe", [True]])
def test_bad_bools_raise(value: Any) -> None:
    """Other values are not guessed at."""
    with pytest.raises(DECODE_ERRORS):
        structure({"success": value}, CourseMember)


def test_lenient_strings_and_floats() -> None:
    """A numeric externalId becomes a string; a score sent as a string becomes a float."""
    member = structure({"id": 1, "email": "a@x.co", "externalId": 12345}, Member)
    assert member.external_id == "12345"
    assert structure({"score": "87.5"}, CourseMember).score == 87.5
    assert structure({"score": 90}, CourseMember).score == 90.0


def test_bool_score_is_refused() -> None:
    """A boolean is not a score."""
    with pytest.raises(DECODE_ERRORS):
        structure({"score": True}, CourseMember)


@pytest.mark.parametrize(
    "value",
    [
        [{"id": 1, "email": "a@x.co"}],
        "member",
        42,
        None,
        {"email": "a@x.co"},
        {"id": 1},
        {"id": 1, "email": {"x": 1}},
    ],
)
def test_bad_member_shapes_raise(value: Any) -> None:
    """Non-objects and objects missing id or email are decoding errors."""
    with pytest.raises(DECODE_ERRORS):
        structure(value, Member)


def test_course_group_and_program_member() -> None:
    """The other models decode with their own fields and keep unknown ones."""
    course = structure(
        {"id": 3, "name": "Safety", "description": "D", "createdDate": "2024-01-01", "x": 1},
        Course,
    )
    assert (course.id, course.name, course.description) == (3, "Safety", "D")
    assert course.created_date == datetime(2024, 1, 1, tzinfo=UTC)
    assert course.extra == {"x": 1}
    group = structure({"id": "9", "name": "Sales"}, Group)
    assert (group.id, group.name) == (9, "Sales")
    program = structure({"programId": 5, "memberId": 7, "status": "active"}, ProgramMember)
    assert (program.program_id, program.member_id) == (5, 7)
    assert program.extra == {"status": "active"}


def test_models_compare_by_value() -> None:
    """Two decodings of the same JSON are equal."""
    assert structure(MEMBER_SAMPLE, Member) == structure(dict(MEMBER_SAMPLE), Member)


@pytest.mark.parametrize(
    "raw",
    [
        b'{"id": 7, "email": "a@x.co", "externalId": 123456789012345678901234}',
        b'{"id": 7, "email": "a@x.co", "externalId": 1.5}',
        b'{"id": 7, "email": "a@x.co", "externalId": 1e300}',
    ],
)
def test_inexact_number_for_a_string_field_is_refused(raw: bytes) -> None:
    """A number orjson holds only as an inexact float never becomes altered text."""
    with pytest.raises(DECODE_ERRORS):
        structure(orjson.loads(raw), Member)


def test_inexact_number_for_a_string_field_is_a_validation_error() -> None:
    """Through the core, a too-big externalId is an APIResponseValidationError."""
    raw = b'{"id": 7, "email": "a@x.co", "externalId": 123456789012345678901234}'
    request = ApiRequest(method="GET", path="/members/7")
    with pytest.raises(APIResponseValidationError, match="not exact"):
        decode_model(request, "https://x/api/v1/members/7", orjson.loads(raw), raw, Member)


def test_a_shape_error_quoting_the_answer_is_redacted_and_unchained() -> None:
    """A value the model refuses may be an echoed token: blanked, and no cattrs error kept."""
    token = "eyJhbGciOiJIUzI1NiJ9.eyJlbWFpbCI6ImFAeC5jbyJ9.c2lnbmF0dXJl"
    raw = orjson.dumps({"id": f"Bearer {token}", "email": "a@x.co"})
    request = ApiRequest(method="GET", path="/members/7")
    with pytest.raises(APIResponseValidationError) as info:
        decode_model(request, "https://x/api/v1/members/7", orjson.loads(raw), raw, Member)
    assert "eyJ" not in str(info.value) + info.value.body.decode()
    assert info.value.__context__ is None


@pytest.mark.parametrize(
    ("value", "expected"),
    [(12345678901234567890, "12345678901234567890"), (2.0**53, "9007199254740992"), (-3, "-3")],
)
def test_exact_numbers_for_a_string_field_keep_their_digits(value: Any, expected: str) -> None:
    """Ints of any size and whole floats up to 2**53 become their exact digits."""
    assert structure({"id": 1, "email": "a@x.co", "externalId": value}, Member).external_id == (
        expected
    )


@pytest.mark.parametrize(
    ("cls", "data"),
    [
        (Member, {**MEMBER_SAMPLE, "unknown": [1, 2]}),
        (Course, {"id": 3, "tags": {"a": 1}}),
        (Group, {"id": 9, "name": "Sales"}),
        (CourseMember, {"courseId": 1, "memberId": 2, "x": [1]}),
        (ProgramMember, {"programId": 5, "memberId": 7, "status": "active"}),
    ],
)
def test_models_are_hashable_and_work_in_sets(cls: type[Any], data: dict[str, Any]) -> None:
    """Models hash (extra is left out of the hash) and equal ones collapse in a set."""
    first, second = structure(data, cls), structure(dict(data), cls)
    assert hash(first) == hash(second)
    assert {first, second} == {first}


def test_extra_still_takes_part_in_equality() -> None:
    """Two members differing only in extra are unequal, yet both fit in one set."""
    one = structure({"id": 1, "email": "a@x.co", "x": 1}, Member)
    two = structure({"id": 1, "email": "a@x.co", "x": 2}, Member)
    assert one != two
    assert len({one, two}) == 2


_CREATED = datetime(2026, 12, 2, 7, 31, 5, tzinfo=UTC)


@pytest.mark.parametrize(
    ("created", "expected"),
    [
        ("2026-12-02T07:31:05Z", _CREATED),
        ("2026-12-02 07:31:05", _CREATED),  # no zone: taken as UTC
        ("2026-12-02T08:31:05+01:00", _CREATED),
        (None, None),
    ],
)
@pytest.mark.parametrize("model", [Member, Course, CourseMember, ProgramMember])
def test_created_date_in_each_form_a_server_writes_it(
    created: str | None, expected: datetime | None, model: type[Any]
) -> None:
    """A createdDate with Z, zone-less (UTC), with an offset or absent decodes on both paths."""
    record: dict[str, Any] = {"id": 7, "email": "d@x.co", "courseId": 1, "memberId": 7}
    if created is not None:
        record["createdDate"] = created
    fast = structure(record, model)
    slow = structure({**record, "id": "7"}, model) if model in (Member, Course) else fast
    assert fast.created_date == expected
    assert slow.created_date == expected
    assert expected is None or fast.created_date.utcoffset() is not None

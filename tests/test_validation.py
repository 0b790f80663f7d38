"""Argument validation shared by every public entry point."""

from __future__ import annotations

import pytest

from coursepath_async._validation import (
    check_group_name,
    validate_email,
    validate_group_name,
    validate_id,
)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("john.smith@example.com", "john.smith@example.com"),
        ("  John.Smith+tag@Example.co.uk ", "John.Smith+tag@Example.co.uk"),
        ("a@b.cd", "a@b.cd"),
        ("o'brien@sub.domain.example", "o'brien@sub.domain.example"),
    ],
)
def test_valid_emails(value: str, expected: str) -> None:
    """Plausible addresses pass, stripped of surrounding spaces, case preserved."""
    assert validate_email(value) == expected


@pytest.mark.parametrize(
    "value",
    [
        "",
        "   ",
        "plain",
        "a@b",
        "@example.com",
        "a@",
        "a@@example.com",
        "a b@example.com",
        "a@exa mple.com",
        "a@example..com",
        "a@.example.com",
        "a@example.com.",
        "a@b@example.com",
        "x" * 250 + "@example.com",
        "a,b@example.com",
        "a;b@example.com",
        "<a@example.com>",
        "John <a@example.com>",
        '"a"@example.com',
        "a\x00@example.com",
        "a\x7f@example.com",
        ".a@example.com",
        "a.@example.com",
        "a..b@example.com",
        "a@exam(ple).com",
    ],
)
def test_invalid_emails(value: str) -> None:
    """Malformed, empty and over-long addresses are refused with ValueError."""
    with pytest.raises(ValueError, match="email"):
        validate_email(value)


@pytest.mark.parametrize("value", [None, 42, b"a@b.co", ["a@b.co"]])
def test_email_must_be_a_string(value: object) -> None:
    """Non-strings are refused, naming the field."""
    with pytest.raises(ValueError, match="must be a string"):
        validate_email(value)


def test_email_with_a_lone_surrogate_is_refused() -> None:
    """An email from a non-UTF-8 environment (a lone surrogate) is refused, not sent."""
    with pytest.raises(ValueError, match="user is not valid UTF-8 text"):
        validate_email("ann\udce9@x.test", field="user")


def test_email_error_names_the_field() -> None:
    """The message names the argument that was wrong."""
    with pytest.raises(ValueError, match=r"^user "):
        validate_email("nope", field="user")


def test_long_values_are_shortened_in_messages() -> None:
    """A huge bad value is truncated in the message, not dumped."""
    with pytest.raises(ValueError, match="must be a positive integer") as info:
        validate_id("9" * 1000, field="member_id")
    assert len(str(info.value)) < 120
    assert "…" in str(info.value)


@pytest.mark.parametrize("value", [1, 7, 2**40, 2**63 - 1])
def test_valid_ids(value: int) -> None:
    """Positive integers are ids."""
    assert validate_id(value, field="member_id") == value


@pytest.mark.parametrize(
    "value", [0, -1, True, False, 1.0, "1", "../1", "x", None, [1], 2**63, 10**30]
)
def test_invalid_ids(value: object) -> None:
    """Zero, negatives, bools, floats and strings (path injection included) are refused."""
    with pytest.raises(ValueError, match="member_id must be a positive integer"):
        validate_id(value, field="member_id")


def test_huge_integer_is_described_not_printed() -> None:
    """An id too large for repr() still gets a short, safe message."""
    with pytest.raises(ValueError, match="an integer of 33220 bits"):
        validate_id(10**10_000, field="member_id")


@pytest.mark.parametrize(("value", "expected"), [("Sales", "Sales"), ("  Sales EU ", "Sales EU")])
def test_valid_group_names(value: str, expected: str) -> None:
    """Group names are stripped."""
    assert validate_group_name(value) == expected


@pytest.mark.parametrize("value", ["", "   ", None, 5])
def test_invalid_group_names(value: object) -> None:
    """Empty or non-string group names are refused."""
    with pytest.raises(ValueError, match="name must be a non-empty string"):
        validate_group_name(value)


def test_check_group_name_keeps_the_academy_spelling() -> None:
    """A listed name is kept exactly (spaces included); a blank one is still refused."""
    assert check_group_name("Sales ") == "Sales "
    for value in ("", "   ", None, 5):
        with pytest.raises(ValueError, match="name must be a non-empty string"):
            check_group_name(value)

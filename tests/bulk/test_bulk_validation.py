"""Property tests of the shared validators the bulk readers rely on: ValueError or a clean value."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from coursepath_async._validation import validate_email, validate_group_name, validate_id

DETERMINISTIC = settings(derandomize=True, database=None, deadline=None, max_examples=300)

ANYTHING = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=True),
    st.text(),
    st.binary(),
    st.lists(st.text(max_size=3), max_size=3),
    st.emails().map(str),
    st.text(alphabet="ab.@ -\x00é", max_size=20),
)


@DETERMINISTIC
@given(ANYTHING)
def test_validate_email_only_raises_value_error(value: object) -> None:
    """Any input gives an email that validates to itself, or a ValueError naming the field."""
    try:
        email = validate_email(value, field="owner")
    except ValueError as exc:
        message = str(exc)
        assert message.startswith("owner ")
        assert len(message) < 400
        return
    assert validate_email(email) == email == email.strip()
    assert email.count("@") == 1


@DETERMINISTIC
@given(st.emails())
def test_generated_emails_are_accepted(email: str) -> None:
    """Well-formed addresses (as hypothesis builds them) pass unchanged."""
    assert validate_email(f"  {email} ") == email


@DETERMINISTIC
@given(ANYTHING)
def test_validate_id_only_raises_value_error(value: object) -> None:
    """Any input gives back a positive int or raises ValueError with the prescribed message."""
    try:
        result = validate_id(value, field="course_id")
    except ValueError as exc:
        message = str(exc)
        assert message.startswith("course_id must be a positive integer, got ")
        return
    assert type(result) is int
    assert result > 0


@pytest.mark.parametrize("value", ["../1", "1", 1.0, True, 0, -5, None, "1/../2"])
def test_validate_id_rejects_path_like_and_non_int(value: object) -> None:
    """Strings, floats, booleans, zero and negatives never pass as ids (no '../1' in a URL)."""
    with pytest.raises(ValueError, match="must be a positive integer"):
        validate_id(value, field="member_id")


@DETERMINISTIC
@given(ANYTHING)
def test_validate_group_name_only_raises_value_error(value: object) -> None:
    """Any input gives a non-empty stripped name or a ValueError."""
    try:
        name = validate_group_name(value)
    except ValueError:
        return
    assert name
    assert name == name.strip()

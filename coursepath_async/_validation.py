"""Input validation shared by every public entry point: say what is wrong and where."""

from __future__ import annotations

import re

_MAX_EMAIL = 254
_MAX_REPR = 60
_MAX_ID = 2**63 - 1  # what JSON consumers and SQLite can hold
# Deliberately simple: one @, no whitespace, control or address-list punctuation
# (so "a,b@x.org" or "<a@x.org>" are refused), no empty or edge dots, a dotted domain.
_ATOM = r"[^@\s,;:<>()\[\]\\\"\x00-\x1f\x7f.]+"
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_EMAIL_RE = re.compile(rf"{_ATOM}(?:\.{_ATOM})*@{_ATOM}(?:\.{_ATOM})+")


def short_repr(value: object) -> str:
    """``repr(value)`` cut to a readable length; an enormous int is described, not printed."""
    if isinstance(value, int) and value.bit_length() > 200:
        return f"<an integer of {value.bit_length()} bits>"  # repr() refuses huge ints
    text = repr(value)
    return text if len(text) <= _MAX_REPR else text[: _MAX_REPR - 1] + "…"


def is_utf8_text(text: str) -> bool:
    """Whether ``text`` encodes as UTF-8; the UnicodeEncodeError (holding it) never escapes."""
    if text.isascii():
        return True
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def validate_email(value: object, *, field: str = "email") -> str:
    """Return the stripped email, or raise ValueError naming the field and the problem."""
    if not isinstance(value, str):
        raise ValueError(f"{field} must be a string, got {short_repr(value)}")
    email = value.strip()
    if not email:
        raise ValueError(f"{field} is empty")
    if len(email) > _MAX_EMAIL:
        raise ValueError(f"{field} is longer than {_MAX_EMAIL} characters")
    if _CONTROL.search(email):
        raise ValueError(f"{field} contains control characters")
    if not is_utf8_text(email):  # a lone surrogate, e.g. from a non-UTF-8 environment
        raise ValueError(f"{field} is not valid UTF-8 text")
    if _EMAIL_RE.fullmatch(email) is None:
        raise ValueError(f"{field} {short_repr(email)} is not a valid email address")
    return email


def validate_id(value: object, *, field: str) -> int:
    """Return a positive integer id, or raise ValueError naming the field and the value."""
    return validate_count(value, field=field)


def validate_count(value: object, *, field: str, maximum: int = _MAX_ID) -> int:
    """Return an int from 1 to ``maximum``, or raise ValueError naming the field and bound."""
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= maximum:
        bound = "a positive integer" if maximum == _MAX_ID else f"an integer from 1 to {maximum:,}"
        raise ValueError(f"{field} must be {bound}, got {short_repr(value)}")
    return int(value)  # a plain int: an int subclass could format itself as a path


def validate_group_name(value: object, *, field: str = "name") -> str:
    """Return a non-empty group name without surrounding spaces."""
    return check_group_name(value, field=field).strip()


def check_group_name(value: object, *, field: str = "name") -> str:
    """Return a group name exactly as given, or raise ValueError if it is blank.

    For names that come from the academy (a listing), which must reach it unchanged:
    "Sales " is a different group from "Sales". User input goes through
    :func:`validate_group_name`, which also trims.
    """
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"{field} must be a non-empty string, got {short_repr(value)}")
    return value

"""Input validation shared by every public entry point: say what is wrong and where."""

from __future__ import annotations

import math
import re
from collections.abc import Collection
from typing import TypeVar

from attrs import Attribute
from yarl import URL

from ._exceptions import InvalidInputError

T = TypeVar("T")

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
    """Return the stripped email, or raise InvalidInputError naming the field and the problem."""
    if not isinstance(value, str):
        raise InvalidInputError(
            f"{field} must be a string, got {short_repr(value)}", argument=field
        )
    email = value.strip()
    if not email:
        raise InvalidInputError(f"{field} is empty", argument=field)
    if len(email) > _MAX_EMAIL:
        raise InvalidInputError(f"{field} is longer than {_MAX_EMAIL} characters", argument=field)
    if _CONTROL.search(email):
        raise InvalidInputError(f"{field} contains control characters", argument=field)
    if not is_utf8_text(email):  # a lone surrogate, e.g. from a non-UTF-8 environment
        raise InvalidInputError(f"{field} is not valid UTF-8 text", argument=field)
    if _EMAIL_RE.fullmatch(email) is None:
        raise InvalidInputError(
            f"{field} {short_repr(email)} is not a valid email address", argument=field
        )
    return email


def validate_id(value: object, *, field: str) -> int:
    """Return a positive integer id, or raise InvalidInputError naming the field and the value."""
    return validate_count(value, field=field)


def validate_count(value: object, *, field: str, maximum: int = _MAX_ID) -> int:
    """Return an int from 1 to ``maximum``, or raise InvalidInputError naming field and bound."""
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= maximum:
        bound = "a positive integer" if maximum == _MAX_ID else f"an integer from 1 to {maximum:,}"
        raise InvalidInputError(f"{field} must be {bound}, got {short_repr(value)}", argument=field)
    return int(value)  # a plain int: an int subclass could format itself as a path


def validate_group_name(value: object, *, field: str = "name") -> str:
    """Return a non-empty group name without surrounding spaces."""
    return check_group_name(value, field=field).strip()


def check_group_name(value: object, *, field: str = "name") -> str:
    """Return a group name exactly as given, or raise InvalidInputError if it is blank.

    For names that come from the academy (a listing), which must reach it unchanged:
    "Sales " is a different group from "Sales". User input goes through
    :func:`validate_group_name`, which also trims.
    """
    if not isinstance(value, str) or not value.strip():
        raise InvalidInputError(
            f"{field} must be a non-empty string, got {short_repr(value)}", argument=field
        )
    return value


def check_int(value: object, *, field: str, minimum: int = 1, maximum: int = _MAX_ID) -> int:
    """Return an int (never a bool) from ``minimum`` to ``maximum``, or say which bound failed."""
    if isinstance(value, bool) or not isinstance(value, int) or not minimum <= value <= maximum:
        if maximum != _MAX_ID:
            bound = f"an integer from {minimum:,} to {maximum:,}"
        else:
            bound = "a positive integer" if minimum == 1 else f"an integer >= {minimum:,}"
        raise InvalidInputError(f"{field} must be {bound}, got {short_repr(value)}", argument=field)
    return int(value)


def check_number(
    value: object,
    *,
    field: str,
    minimum: float = 0.0,
    maximum: float = math.inf,
    above_minimum: bool = False,
) -> float:
    """Return a finite number from ``minimum`` (excluded if ``above_minimum``) to ``maximum``."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InvalidInputError(
            f"{field} must be a number, got {short_repr(value)}", argument=field
        )
    try:
        number = float(value)
    except OverflowError:
        number = math.inf
    too_low = number <= minimum if above_minimum else number < minimum
    if not math.isfinite(number) or too_low or number > maximum:
        bounds = [f"> {minimum:g}" if above_minimum else f">= {minimum:g}"]
        bounds = bounds if minimum > -math.inf else []
        bounds += [f"<= {maximum:g}"] if maximum < math.inf else []
        bound = "".join(f" {text}" for text in [" and ".join(bounds)] if text)
        raise InvalidInputError(
            f"{field} must be a finite number{bound}, got {short_repr(value)}", argument=field
        )
    return number


def check_choice(value: T, *, field: str, choices: Collection[T]) -> T:
    """Return ``value`` if it is one of ``choices``, or list them."""
    if isinstance(value, bool) or value not in choices:
        shown = ", ".join(repr(choice) for choice in choices)
        raise InvalidInputError(
            f"{field} must be one of {shown}, got {short_repr(value)}", argument=field
        )
    return value


def check_http_url(value: object, *, field: str) -> str:
    """Return an absolute http(s) URL with a host, or say what it lacks."""
    try:
        url = URL(value) if isinstance(value, str) else None
        ok = url is not None and url.scheme in ("http", "https") and bool(url.host)
    except (TypeError, ValueError, UnicodeError):
        ok = False
    if not ok:
        raise InvalidInputError(
            f"{field} must be an http(s) URL such as https://example.com/hook, "
            f"got {short_repr(value)}",
            argument=field,
        )
    return str(value)


def positive_or_none(_instance: object, attribute: Attribute[int | None], value: object) -> None:
    """An attrs validator: ``None``, or an int >= 1 (a count option such as ``concurrency``)."""
    if value is not None:
        check_int(value, field=attribute.name)

"""One desired-member row: what a valid row is, and the rules its values obey.

Both readers (:class:`~coursepath_async.bulk.CsvRows` and
:class:`~coursepath_async.bulk.MappingRows`) turn their raw values into a
:class:`MemberRow` or a :class:`RowError` here, so a CSV cell and a mapping value obey
the same rules; column names, secret columns and report excerpts are decided here too.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from functools import partial
from typing import Any, Final

from attrs import define, frozen

from .._exceptions import InvalidInputError
from .._fields import MEMBER_TEXT_FIELDS, api_names
from .._validation import validate_email, validate_group_name, validate_id
from ._seen import LineIndex

__all__ = ["BulkInputError", "MemberRow", "ReadStats", "RowError", "field_for"]

_EXCERPT_LIMIT: Final = 120
_LIST_SEPARATOR: Final = ";"

# The member text fields, by attribute name, with the API (camelCase) name used in messages:
# the same set the client's create/update accept.
_TEXT_FIELDS: Final = api_names()
_FIELDS: Final = ("email", *_TEXT_FIELDS, "groups", "courses", "programs", "invite")


def _column_key(name: str) -> str:
    return re.sub(r"[\s_-]+", "", name).lower()


# Column names are matched case-insensitively with "_", "-" and spaces removed, so
# "externalId", "external_id", "External ID" and "EXTERNAL-ID" all mean one field.
_ALIASES: Final = {
    **{name.replace("_", ""): name for name in _FIELDS},
    **{_column_key(alias): f.name for f in MEMBER_TEXT_FIELDS for alias in (f.api, *f.aliases)},
    "group": "groups",
    "course": "courses",
    "program": "programs",
}
# Columns whose values must never be copied into a report excerpt.
_SECRET_COLUMN = re.compile(r"pass|secret|token|apikey|credential|privatekey", re.IGNORECASE)
_TRUE: Final = frozenset({"1", "true", "yes", "y", "x"})
_FALSE: Final = frozenset({"0", "false", "no", "n"})
# C0 controls and DEL, except tab and line breaks (legal in a quoted cell).
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_ID_DIGITS = re.compile(r"[0-9]{1,19}")


class BulkInputError(InvalidInputError):
    """The input as a whole cannot be used: unreadable, empty, or without an email column."""


@frozen(kw_only=True)
class MemberRow:
    """One valid desired member: an input line turned into normalised, typed values.

    ``email`` keeps the case it was written in, for display; compare ``email_key``.
    ``None`` means "not given": the jobs leave that field of an existing member alone.
    """

    line: int
    email: str
    name: str | None = None
    company: str | None = None
    department: str | None = None
    country: str | None = None
    external_id: str | None = None
    association: str | None = None
    identification: str | None = None
    registration: str | None = None
    groups: tuple[str, ...] = ()
    courses: tuple[int, ...] = ()
    programs: tuple[int, ...] = ()
    invite: bool | None = None

    @property
    def email_key(self) -> str:
        """The email as compared: lowercase."""
        return self.email.lower()

    @property
    def natural_key(self) -> str:
        """The identity of the desired member: its externalId when given, else its email."""
        if self.external_id is not None:
            return f"externalId:{self.external_id}"
        return f"email:{self.email_key}"

    def member_fields(self) -> dict[str, str]:
        """The given text fields but email, by snake_case name, as create/update take them."""
        values = {name: getattr(self, name) for name in _TEXT_FIELDS}
        return {name: value for name, value in values.items() if value is not None}


@frozen(kw_only=True)
class RowError:
    """An input row that cannot be used, with its line, why, and a secret-free excerpt."""

    line: int
    reason: str
    excerpt: str = ""
    #: The row's email as written, when it had one, so reports can show whose row it was.
    email: str | None = None


@define
class ReadStats:
    """Counters that account for every line of the input.

    For a CSV file ``header_lines + blank_lines + row_lines == lines`` once it is read to
    the end; for an iterable each item is one line and one row.
    """

    lines: int = 0
    header_lines: int = 0
    blank_lines: int = 0
    row_lines: int = 0
    #: Data rows yielded: ``valid + invalid``.
    rows: int = 0
    valid: int = 0
    invalid: int = 0
    #: Of ``invalid``, rows repeating an earlier row's email or externalId.
    duplicates: int = 0

    def count(self, item: MemberRow | RowError, *, duplicate: bool = False) -> None:
        """Count one yielded row."""
        self.rows += 1
        if isinstance(item, MemberRow):
            self.valid += 1
        else:
            self.invalid += 1
            self.duplicates += duplicate


class _RowBuilder:
    """Turns a row's raw values into a MemberRow or a RowError, and catches duplicates.

    Shared by both readers so a CSV cell and a mapping value obey the same rules.
    """

    def __init__(self) -> None:
        # Every key seen, to find duplicates anywhere in the file while streaming: on
        # disk, so memory stays flat however long the file is.
        self._seen = LineIndex()

    def build(
        self, line: int, values: Mapping[str, object], excerpt: Callable[[], str]
    ) -> tuple[MemberRow | RowError, bool]:
        """Return the row, or its error and whether that error is a duplicate.

        ``excerpt`` renders the row for an error; valid rows never pay for it.
        """
        raw_email = values.get("email")
        display_email = (_clip(raw_email.strip()) or None) if isinstance(raw_email, str) else None
        parsed: dict[str, Any] = {}
        problems: list[str] = []
        for name, parse in _PARSERS.items():
            try:
                parsed[name] = parse(values.get(name))
            except ValueError as exc:  # collect them all: one pass fixes the whole row
                problems.append(str(exc))
        if problems:
            reason = "; ".join(problems)
            return RowError(line=line, reason=reason, excerpt=excerpt(), email=display_email), False
        duplicate = self._duplicate_of(line, parsed["email"], parsed["external_id"])
        if duplicate is not None:
            return RowError(
                line=line, reason=duplicate, excerpt=excerpt(), email=display_email
            ), True
        return MemberRow(line=line, **parsed), False

    def _duplicate_of(self, line: int, email: str, external_id: str | None) -> str | None:
        """Register a valid row's keys, or say which earlier row already has them."""
        key = "email:" + email.lower()
        first = self._seen.get(key)
        if first is not None:
            return f"duplicate of line {first[0]} (same email {email})"
        if external_id is not None:
            holder, holder_email = self._seen.setdefault("id:" + external_id, line, email)
            if holder != line:
                return (
                    f"externalId {external_id!r} is already used on line {holder} by {holder_email}"
                )
        self._seen.setdefault(key, line)
        return None


def _check_control(label: str, value: str) -> None:
    if _CONTROL.search(value):
        raise ValueError(f"{label} contains control characters")


def _email(value: object) -> str:
    return validate_email("" if value is None else value)


def _text(label: str, value: object) -> str | None:
    """A member text field: stripped, empty means not given, numbers allowed from mappings."""
    if value is None:
        return None
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    if not isinstance(value, str):
        raise ValueError(f"{label} must be text, got {type(value).__name__}")
    text = value.strip()
    _check_control(label, text)
    return text or None


def _items(label: str, value: object) -> list[object]:
    """Split a list-valued field: "a;b" text, a single number, or a list/tuple."""
    if value is None:
        return []
    if isinstance(value, str):
        return [part.strip() for part in value.split(_LIST_SEPARATOR) if part.strip()]
    if isinstance(value, list | tuple):
        return [item.strip() if isinstance(item, str) else item for item in value]
    if isinstance(value, int) and not isinstance(value, bool):
        return [value]
    raise ValueError(f"{label} must be text like 'a;b' or a list, got {type(value).__name__}")


def _groups(value: object) -> tuple[str, ...]:
    """Group names, first spelling kept, repeats (ignoring case) dropped."""
    names: dict[str, str] = {}
    for item in _items("groups", value):
        name = validate_group_name(item, field="group name")
        names.setdefault(name.casefold(), name)
    return tuple(names.values())


def _ids(label: str, value: object) -> tuple[int, ...]:
    """Positive integer ids from "12;34" text or a list; repeats dropped, order kept."""
    ids: dict[int, None] = {}
    for item in _items(label, value):
        if isinstance(item, str):
            # Only plain ASCII digits: int() would also take "+3", "1_000" and "٣".
            if _ID_DIGITS.fullmatch(item) is None:
                raise ValueError(f"{label}: {_clip(item)!r} is not a positive integer id")
            item = int(item)
        ids[validate_id(item, field=f"{label} id")] = None
    return tuple(ids)


def _flag(value: object) -> bool | None:
    """The optional per-row invite flag: yes/no, true/false, 1/0, x; empty means not given."""
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, str):
        word = value.strip().lower()
        if not word:
            return None
        if word in _TRUE:
            return True
        if word in _FALSE:
            return False
    raise ValueError(f"invite must be yes/no, true/false or 1/0, got {_clip(str(value))!r}")


# How each field's raw value (CSV text, or any mapping value) becomes a MemberRow value.
_PARSERS: Final[dict[str, Callable[[object], object]]] = {
    "email": _email,
    **{name: partial(_text, label) for name, label in _TEXT_FIELDS.items()},
    "groups": _groups,
    "courses": partial(_ids, "courses"),
    "programs": partial(_ids, "programs"),
    "invite": _flag,
}


def _clip(text: str, limit: int = 40) -> str:
    return text if len(text) <= limit else text[:limit] + "..."


def field_for(name: str) -> str | None:
    """The member field a column (or mapping key) named ``name`` means, or None."""
    return _ALIASES.get(_column_key(name))


def _excerpt(cells: Iterable[str]) -> str:
    """A short, printable rendering of a row for reports (callers mask secret cells first)."""
    text = _clip(",".join(cells), _EXCERPT_LIMIT)
    if not text.isprintable():
        # Escape line breaks and control characters, keep accented letters readable.
        text = "".join(ch if ch.isprintable() else repr(ch)[1:-1] for ch in text)
    return _clip(text, _EXCERPT_LIMIT)


def _safe_repr(value: object) -> str:
    try:
        return _clip(repr(value))
    except Exception:
        return f"<{type(value).__name__}>"

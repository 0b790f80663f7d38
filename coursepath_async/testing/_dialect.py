"""Dialects: the ways a real Coursepath academy may answer where the API docs leave it open.

A :class:`Dialect` is one answer to every open point of ``coursepath-api.md`` Part B
that a server could plausibly decide differently: the status of "email already exists",
the format of ``createdDate``, which body encodings it takes, the shape of list answers,
each list endpoint's silent page cap and what a ``limit`` above it gets, the statuses
and bodies of writes, its clock, and the type of its error bodies. The default is the
sandbox's own reading; :data:`DIALECTS` names one preset per variation, and ``"all"``
every variation at once. Presets combine: ``Dialect.named("form_only", "no_dates")``
applies each one's changes to the default in turn.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from types import MappingProxyType
from typing import Any, Final, Literal

import attrs
from attrs import field, frozen, validators

from ._records import DateStyle
from ._wire import Encodings

DuplicateStatus = Literal[400, 409, 422]
ListShape = Literal["bare", "wrapped"]
LimitRule = Literal["capped", "honoured"]
CreateStatus = Literal[200, 201]
#: ``json`` 200 ``{"invited": true}``; ``no_content`` 204; ``empty`` 200, empty body.
InviteReply = Literal["json", "no_content", "empty"]
#: ``no_content`` 204; ``json`` 200 ``{"deleted": true}``.
DeleteReply = Literal["no_content", "json"]
ErrorBody = Literal["json", "text"]

#: The message a server answering 400 to an existing email writes.
EMAIL_IN_USE: Final = "The email address is already in use"


def _page_cap(instance: object, attribute: attrs.Attribute[int], value: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"Dialect.{attribute.name} must be an integer >= 1, got {value!r}")


def _finite(instance: object, attribute: attrs.Attribute[float], value: float) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ValueError(f"Dialect.{attribute.name} must be a finite number, got {value!r}")


def _one_of(*choices: object) -> Any:
    return validators.in_(choices)


@frozen(kw_only=True)
class Dialect:
    """How one academy answers the open points of the API (the default: the sandbox's)."""

    #: The status of a create whose email exists (400 says :data:`EMAIL_IN_USE`).
    duplicate_status: DuplicateStatus = field(default=409, validator=_one_of(400, 409, 422))
    #: ``iso`` ``2026-12-02T07:31:05Z``; ``naive`` ``2026-12-02 07:31:05`` (UTC, no
    #: zone); ``offset`` ``2026-12-02T08:31:05+01:00``; ``absent``: no ``createdDate``.
    created_date: DateStyle = field(
        default="iso", validator=_one_of("iso", "naive", "offset", "absent")
    )
    #: Request bodies taken: ``any`` (JSON and form), ``form`` (JSON gets 415), ``json``.
    body_encodings: Encodings = field(default="any", validator=_one_of("any", "form", "json"))
    #: ``wrapped``: ``{"data": [...], "total": N}`` instead of a bare array.
    list_shape: ListShape = field(default="bare", validator=_one_of("bare", "wrapped"))
    member_page_cap: int = field(default=500, validator=_page_cap)
    course_page_cap: int = field(default=250, validator=_page_cap)
    group_page_cap: int = field(default=100, validator=_page_cap)
    #: What a ``limit`` above an endpoint's cap gets: the cap, or what it asked for.
    limit_above_cap: LimitRule = field(default="capped", validator=_one_of("capped", "honoured"))
    create_status: CreateStatus = field(default=201, validator=_one_of(200, 201))
    invite_reply: InviteReply = field(
        default="json", validator=_one_of("json", "no_content", "empty")
    )
    delete_reply: DeleteReply = field(default="no_content", validator=_one_of("no_content", "json"))
    #: Seconds the academy's clock runs ahead of ours (negative: behind).
    clock_offset: float = field(default=0.0, validator=_finite, converter=float)
    #: ``text``: error bodies are ``text/plain`` lines instead of JSON objects.
    error_body: ErrorBody = field(default="json", validator=_one_of("json", "text"))

    @classmethod
    def named(cls, *names: str) -> Dialect:
        """The default with each named preset's changes applied in turn (``"a,b"`` works too).

        Raises ValueError naming the valid presets for an unknown name.
        """
        dialect = cls()
        for name in _split(names):
            preset = DIALECTS.get(name)
            if preset is None:
                raise ValueError(f"unknown dialect {name!r}; valid names: {', '.join(DIALECTS)}")
            dialect = attrs.evolve(dialect, **preset.changes())
        return dialect

    def changes(self) -> dict[str, Any]:
        """The fields in which this dialect differs from the default, by name."""
        default = _DEFAULT
        return {
            a.name: getattr(self, a.name)
            for a in attrs.fields(Dialect)
            if getattr(self, a.name) != getattr(default, a.name)
        }

    def page_cap(self, kind: Literal["member", "course", "group"]) -> int:
        """The silent page cap of a member, course or group list endpoint."""
        caps = {
            "member": self.member_page_cap,
            "course": self.course_page_cap,
            "group": self.group_page_cap,
        }
        return caps[kind]


def _split(names: Iterable[str]) -> list[str]:
    return [part.strip() for name in names for part in name.split(",") if part.strip()]


_DEFAULT: Final = Dialect()

_VARIATIONS: Final[dict[str, Dialect]] = {
    "default": _DEFAULT,
    "duplicate_400": Dialect(duplicate_status=400),
    "duplicate_422": Dialect(duplicate_status=422),
    "naive_dates": Dialect(created_date="naive"),
    "offset_dates": Dialect(created_date="offset"),
    "no_dates": Dialect(created_date="absent"),
    "form_only": Dialect(body_encodings="form"),
    "json_only": Dialect(body_encodings="json"),
    "wrapped_lists": Dialect(list_shape="wrapped"),
    "swapped_caps": Dialect(member_page_cap=100, course_page_cap=500, group_page_cap=250),
    "limit_honoured": Dialect(limit_above_cap="honoured"),
    "create_200": Dialect(create_status=200),
    "invite_204": Dialect(invite_reply="no_content"),
    "invite_empty": Dialect(invite_reply="empty"),
    "delete_json": Dialect(delete_reply="json"),
    "clock_ahead": Dialect(clock_offset=300.0),
    "clock_behind": Dialect(clock_offset=-300.0),
    "text_errors": Dialect(error_body="text"),
}

#: Every variation at once: where one field has several, the one hardest on a client.
_ALL: Final = Dialect(
    duplicate_status=400,
    created_date="absent",
    body_encodings="form",
    list_shape="wrapped",
    member_page_cap=100,
    course_page_cap=500,
    group_page_cap=250,
    limit_above_cap="honoured",
    create_status=200,
    invite_reply="empty",
    delete_reply="json",
    clock_offset=300.0,
    error_body="text",
)

#: The sandbox's own reading of every open point.
DEFAULT_DIALECT: Final = _DEFAULT

#: The named presets: one per variation of the API, ``default`` and ``all``.
DIALECTS: Final[Mapping[str, Dialect]] = MappingProxyType({**_VARIATIONS, "all": _ALL})

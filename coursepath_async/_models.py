"""Typed results: attrs frozen models built from camelCase JSON by one cattrs converter.

The real API's field set is not fully documented, so decoding is lenient: unknown
fields are kept in ``extra``, missing optional fields become ``None``, and dates are
parsed into aware datetimes (UTC when the server omits the offset).
"""

from __future__ import annotations

import re
import typing
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from types import MappingProxyType
from typing import Any, TypeVar

import cattrs
from attrs import NOTHING, field, fields, frozen
from cattrs.gen import make_dict_structure_fn, override

_EXTRA_KEY = "\x00extra"
#: Shared by every record without unknown fields: no empty dict per record.
_NO_EXTRA: Mapping[str, Any] = MappingProxyType({})
_CAMEL = re.compile(r"_([a-z])")

T = TypeVar("T")


def _extra_field() -> Any:
    # In equality but not in the hash: a mapping is unhashable, and leaving it out
    # keeps models usable in sets and as dict keys (equal models still hash equal).
    return field(factory=dict, repr=False, kw_only=True, hash=False)


@frozen
class Member:
    """A member (learner or admin) of the academy."""

    id: int
    email: str
    name: str | None = None
    company: str | None = None
    department: str | None = None
    country: str | None = None
    external_id: str | None = None
    association: str | None = None
    identification: str | None = None
    registration: str | None = None
    created_date: datetime | None = None
    extra: Mapping[str, Any] = _extra_field()


@frozen
class Course:
    """A course of the academy."""

    id: int
    name: str | None = None
    description: str | None = None
    created_date: datetime | None = None
    extra: Mapping[str, Any] = _extra_field()


@frozen
class Group:
    """A named group of members."""

    id: int
    name: str | None = None
    extra: Mapping[str, Any] = _extra_field()


@frozen
class CourseMember:
    """A learner's enrolment in a course and its result (score, success, completion)."""

    course_id: int | None = None
    member_id: int | None = None
    score: float | None = None
    success: bool | None = None
    completed_date: datetime | None = None
    certificate: str | None = None
    created_date: datetime | None = None
    extra: Mapping[str, Any] = _extra_field()

    @property
    def completed(self) -> bool:
        """Whether the learner has finished the course (successfully or not)."""
        return self.completed_date is not None


@frozen
class ProgramMember:
    """A learner's enrolment in a program."""

    program_id: int | None = None
    member_id: int | None = None
    created_date: datetime | None = None
    extra: Mapping[str, Any] = _extra_field()


def _camel(name: str) -> str:
    return _CAMEL.sub(lambda m: m.group(1).upper(), name)


def wire_names(model: type[Any]) -> tuple[str, ...]:
    """The JSON names of a model's fields: the fields Coursepath documents, in that order."""
    return tuple(_camel(f.name) for f in fields(model) if f.name != "extra")


def _structure_datetime(value: Any, _: type) -> datetime | None:
    if value is None or value == "":
        return None
    if isinstance(value, int | float) and not isinstance(value, bool):
        # Some endpoints of this family send epoch milliseconds.
        return datetime.fromtimestamp(value / 1000 if value > 1e11 else value, tz=UTC)
    if not isinstance(value, str):
        raise TypeError(f"expected an ISO 8601 date, got {type(value).__name__}")
    parsed = datetime.fromisoformat(value.strip())
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)


def _structure_bool(value: Any, _: type) -> bool | None:
    if value is None or isinstance(value, bool):
        return value
    if value in (0, 1):
        return bool(value)
    if isinstance(value, str) and value.lower() in ("true", "false", "1", "0"):
        return value.lower() in ("true", "1")
    raise TypeError(f"expected a boolean, got {value!r}")


def _structure_int(value: Any, _: type) -> int:
    if isinstance(value, bool):
        raise TypeError("expected an integer, got a boolean")
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.strip().isdigit():
        return int(value)
    if isinstance(value, float) and value.is_integer() and abs(value) <= 2**53:
        return int(value)  # beyond 2**53 a float no longer holds the id exactly
    raise TypeError(f"expected an integer, got {value!r}")


def _structure_str(value: Any, _: type) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        raise TypeError("expected a string, got a boolean")
    if isinstance(value, int):
        return str(value)  # e.g. externalId sent as a number
    if isinstance(value, float) and value.is_integer() and abs(value) <= 2**53:
        return str(int(value))
    if isinstance(value, float):
        # orjson hands over integers beyond 2**64 as floats: their text is no longer the
        # server's (123456789012345678901234 would become "1.2345678901234569e+23").
        raise TypeError(f"expected a string, got the number {value!r}, which is not exact")
    raise TypeError(f"expected a string, got {type(value).__name__}")


def _structure_float(value: Any, _: type) -> float:
    if isinstance(value, bool):
        raise TypeError("expected a number, got a boolean")
    return float(value)


def _make_converter() -> tuple[cattrs.Converter, dict[type, Callable[[Any, type], Any]]]:
    conv = cattrs.Converter()
    conv.register_structure_hook(datetime, _structure_datetime)
    conv.register_structure_hook(int, _structure_int)
    conv.register_structure_hook(str, _structure_str)
    conv.register_structure_hook(float, _structure_float)
    conv.register_structure_hook(bool, _structure_bool)
    hooks: dict[type, Callable[[Any, type], Any]] = {}
    for cls in (Member, Course, Group, CourseMember, ProgramMember):
        hooks[cls] = _lenient_hook(conv, cls)
        conv.register_structure_hook(cls, hooks[cls])
    return conv, hooks


def _lenient_hook(conv: cattrs.Converter, cls: type[T]) -> Callable[[Any, type], T]:
    """A structure hook: a fast path for well-typed records, cattrs for everything else.

    Decoding is on the hot path of every listing (a 100,000-member sync decodes 100,000
    records), so records whose values already have their field's exact JSON type are
    built directly; anything unusual (a numeric string id, a bad date, a missing field)
    goes through the cattrs-generated function, which converts or reports it.
    """
    names = [a.name for a in fields(cls) if a.name != "extra"]  # type: ignore[arg-type]
    known = frozenset(_camel(n) for n in names)
    renames = {n: override(rename=_camel(n)) for n in names}
    base = make_dict_structure_fn(
        cls,
        conv,
        extra=override(rename=_EXTRA_KEY, struct_hook=lambda v, _: v),
        **renames,  # type: ignore[arg-type]
    )
    hints = typing.get_type_hints(cls)
    plan = {_camel(n): (n, _plain_type(hints[n])) for n in names}

    def slow(value: Any) -> T:
        if not isinstance(value, dict):
            raise TypeError(f"expected a JSON object, got {type(value).__name__}")
        # Explicit nulls mean "not set": drop them so defaults apply to required-less fields.
        data = {k: v for k, v in value.items() if v is not None or k not in known}
        data[_EXTRA_KEY] = {k: v for k, v in value.items() if k not in known}
        return base(data, cls)

    return _compile_fast_path(cls, plan, known, slow)


def _compile_fast_path(
    cls: type[T],
    plan: Mapping[str, tuple[str, type]],
    known: frozenset[str],
    slow: Callable[[Any], T],
) -> Callable[[Any, type], T]:
    """One straight-line function per model, as attrs and cattrs generate theirs.

    Each JSON key is read once and its type checked inline: a loop over the record's
    items with a lookup, a branch and a keyword dict per field cost twice as much. Any
    surprise goes to ``slow``.
    """
    lines = [
        "def fast(value, _):",
        "    if type(value) is not dict:",
        "        return slow(value)",
        "    get = value.get",
    ]
    names: dict[str, Any] = {"cls": cls, "slow": slow, "known": known, "UTC": UTC}
    required = set()
    for a in fields(cls):  # type: ignore[arg-type]
        if a.default is NOTHING:
            required.add(a.name)
        elif a.default is not None and a.name != "extra":  # an absent key is passed as None
            raise TypeError(f"{cls.__name__}.{a.name}: the fast path needs None as default")
        if a.validator is not None or a.converter is not None:  # skipped by the fast path
            raise TypeError(f"{cls.__name__}.{a.name}: the fast path runs no validators")
    if hasattr(cls, "__attrs_post_init__"):
        raise TypeError(f"{cls.__name__}: the fast path runs no __attrs_post_init__")
    args = []
    for i, (key, (name, kind)) in enumerate(plan.items()):
        v, k = f"v{i}", f"k{i}"
        names[k] = kind
        lines.append(f"    {v} = get({key!r})")
        if name in required:
            lines += [f"    if type({v}) is not {k}:", "        return slow(value)"]
        elif kind is datetime:
            lines += [
                f"    if {v} is not None:",
                f"        if type({v}) is not str:",
                "            return slow(value)",
                "        try:",
                f"            {v} = {k}.fromisoformat({v})",
                "        except ValueError:",
                "            return slow(value)",
                f"        if {v}.tzinfo is None:",
                f"            {v} = {v}.replace(tzinfo=UTC)",
            ]
        elif kind is float:
            lines += [
                f"    if {v} is not None and type({v}) is not float:",
                f"        if type({v}) is not int:",
                "            return slow(value)",
                f"        {v} = float({v})",
            ]
        elif kind is not object:
            lines += [
                f"    if {v} is not None and type({v}) is not {k}:",
                "        return slow(value)",
            ]
        args.append(v)
    # Built as attrs' __init__ would (no model has validators or converters), but with
    # each slot's own setter: the frozen __init__'s object.__setattr__ costs a third more.
    for name in (*(name for name, _ in plan.values()), "extra"):
        names[f"set_{name}"] = getattr(cls, name).__set__
    sets = [f"    set_{name}(model, {v})" for (name, _), v in zip(plan.values(), args, strict=True)]
    lines += [
        "    model = new(cls)",
        *sets,
        "    if value.keys() <= known:",
        "        set_extra(model, no_extra)",
        "    else:",
        "        set_extra(model, {k: v for k, v in value.items() if k not in known})",
        "    return model",
    ]
    names["no_extra"] = _NO_EXTRA
    names["new"] = object.__new__
    exec("\n".join(lines), names)  # our own source, built from the model's fields
    fast: Callable[[Any, type], T] = names["fast"]
    return fast


def _plain_type(hint: Any) -> type:
    """``str | None`` -> ``str``: the one JSON type a field's fast path accepts."""
    args = [a for a in typing.get_args(hint) if a is not type(None)]
    plain = args[0] if args else hint
    return plain if isinstance(plain, type) else object


_converter, _model_hooks = _make_converter()


def structure(value: Any, cls: type[T]) -> T:
    """Build a model from decoded JSON; raises cattrs/Type/Value errors on bad shapes."""
    hook = _model_hooks.get(cls)  # the models' own hooks, without cattrs' dispatch
    if hook is not None:
        return hook(value, cls)  # type: ignore[no-any-return]
    return _converter.structure(value, cls)

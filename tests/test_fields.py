"""The member-field table is the one declaration: every static copy of it must agree."""

from __future__ import annotations

import inspect
import types
import typing
from collections.abc import Callable
from typing import Any

import attrs
import pytest

from coursepath_async import Member
from coursepath_async._fields import MEMBER_TEXT_FIELDS, api_names, filter_names
from coursepath_async._resources._base import MEMBER_FILTERS, MemberFields, MemberFilters
from coursepath_async.bulk import MappingRows, MemberRow
from coursepath_async.bulk._export import MEMBER_COLUMNS, member_record
from coursepath_async.testing import AcademyState, MemberRecord
from coursepath_async.testing._records import member_json

TABLE = {field.name for field in MEMBER_TEXT_FIELDS}
FILTERABLE = {field.name for field in MEMBER_TEXT_FIELDS if field.filterable}


def _attrs_fields(cls: type) -> dict[str, object]:
    hints = typing.get_type_hints(cls)
    return {a.name: hints[a.name] for a in attrs.fields(cls)}


def _typeddict_fields(cls: type) -> dict[str, object]:
    return dict(typing.get_type_hints(cls))


def _add_member_parameters(_cls: type) -> dict[str, object]:
    hints = typing.get_type_hints(AcademyState.add_member)
    names = list(inspect.signature(AcademyState.add_member).parameters)[1:]  # not self
    return {name: hints[name] for name in names}


# Each static declaration: how to read its fields, the fields it has beyond the table,
# and which table fields it must declare.
DECLARATIONS: dict[str, tuple[type, Callable[[type], dict[str, object]], set[str], set[str]]] = {
    "Member": (Member, _attrs_fields, {"id", "email", "created_date", "extra"}, TABLE),
    "MemberRow": (
        MemberRow,
        _attrs_fields,
        {"line", "email", "groups", "courses", "programs", "invite"},
        TABLE,
    ),
    "MemberRecord": (MemberRecord, _attrs_fields, {"id", "email", "created", "role"}, TABLE),
    "MemberFields": (MemberFields, _typeddict_fields, {"extra"}, TABLE),
    "MemberFilters": (MemberFilters, _typeddict_fields, {"email"}, FILTERABLE),
    "AcademyState.add_member": (
        AcademyState,
        _add_member_parameters,
        {"email", "role", "created", "id"},
        TABLE,
    ),
}


def _is_text(annotation: object) -> bool:
    """``str`` or ``str | None``: every table field is optional text."""
    if annotation is str:
        return True
    args = typing.get_args(annotation)
    return isinstance(annotation, types.UnionType) and set(args) == {str, type(None)}


@pytest.mark.parametrize("name", sorted(DECLARATIONS))
def test_static_declaration_matches_the_table(name: str) -> None:
    """Each static declaration has exactly the table's fields (plus its own), typed as text."""
    cls, read, own, wanted = DECLARATIONS[name]
    declared = read(cls)
    missing = sorted(wanted - declared.keys())
    assert not missing, f"{name} lacks member field(s) {missing} declared in _fields.py"
    unknown = sorted(declared.keys() - own - wanted)
    assert not unknown, f"{name} declares {unknown}, not in _fields.py's MEMBER_TEXT_FIELDS"
    for field in sorted(wanted):
        assert _is_text(declared[field]), f"{name}.{field} is {declared[field]}, not text"


def test_table_names_are_unique_and_snake_case() -> None:
    """No two table lines share a Python or API name; Python names are snake_case."""
    assert len(TABLE) == len(MEMBER_TEXT_FIELDS)
    assert len(set(api_names().values())) == len(MEMBER_TEXT_FIELDS)
    assert all(name == name.lower() and name.isidentifier() for name in TABLE)


def test_client_filters_derive_from_the_table() -> None:
    """The client's member-list filters are email plus the filterable fields, by API name."""
    assert filter_names() == MEMBER_FILTERS
    assert MEMBER_FILTERS["external_id"] == "externalId"
    assert "name" not in MEMBER_FILTERS


def test_every_field_reads_from_a_mapping_row_by_its_api_name() -> None:
    """A row keyed by each field's API name fills that MemberRow attribute."""
    item = {"email": "ada@example.com", **{f.api: f"v-{f.name}" for f in MEMBER_TEXT_FIELDS}}
    (row,) = list(MappingRows([item]))
    assert isinstance(row, MemberRow)
    assert row.member_fields() == {f.name: f"v-{f.name}" for f in MEMBER_TEXT_FIELDS}


def test_export_and_sandbox_shapes_carry_every_field() -> None:
    """The members export and the sandbox's member JSON carry every table field."""
    values: dict[str, Any] = {f.name: f"v-{f.name}" for f in MEMBER_TEXT_FIELDS}
    state = AcademyState()
    record = state.add_member("ada@example.com", **values)
    wire = member_json(record)
    assert {f.api: wire[f.api] for f in MEMBER_TEXT_FIELDS} == {
        f.api: f"v-{f.name}" for f in MEMBER_TEXT_FIELDS
    }
    member = Member(id=record.id, email=record.email, **values)
    exported = member_record(member)
    assert [c.name for c in MEMBER_COLUMNS] == list(exported)
    assert {name: exported[name] for name in TABLE} == values

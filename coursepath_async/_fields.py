"""The member's optional text fields, declared once: the table the rest derives from.

The client's create/update bodies and list filters, the CSV reader's column names, the
export columns and the sandbox academy's wire shapes are all built from
:data:`MEMBER_TEXT_FIELDS`. The typed declarations (``Member``, ``MemberRow``,
``MemberRecord``, the ``MemberFields``/``MemberFilters`` TypedDicts, ``add_member``) must
stay static for mypy, so ``tests/test_fields.py`` checks each of them against this table
and names the class and field that disagree. Adding a field: one line here, then the
declarations that test names.
"""

from __future__ import annotations

from typing import Final

from attrs import frozen

__all__ = ["MEMBER_TEXT_FIELDS", "MemberField", "api_names", "filter_names"]


@frozen
class MemberField:
    """One optional member field: always text (``str | None`` on models, ``str`` in bodies).

    ``name`` is the Python (snake_case) name, ``api`` the JSON/query name. ``filterable``:
    member listings can be filtered by it. ``aliases``: further CSV column names for it,
    beyond the Python and API names (columns match ignoring case, ``_``, ``-`` and spaces).
    """

    name: str
    api: str
    filterable: bool = True
    aliases: tuple[str, ...] = ()


#: In the order models, exports and wire shapes list them.
MEMBER_TEXT_FIELDS: Final[tuple[MemberField, ...]] = (
    MemberField("name", "name", filterable=False),
    MemberField("company", "company"),
    MemberField("department", "department"),
    MemberField("country", "country"),
    MemberField("external_id", "externalId"),
    MemberField("association", "association"),
    MemberField("identification", "identification"),
    MemberField("registration", "registration"),
)


def api_names() -> dict[str, str]:
    """Each field's API name by its Python name, in table order."""
    return {field.name: field.api for field in MEMBER_TEXT_FIELDS}


def filter_names() -> dict[str, str]:
    """The member-list filters, Python name to query name: ``email`` and the filterable."""
    return {"email": "email", **{f.name: f.api for f in MEMBER_TEXT_FIELDS if f.filterable}}

"""JSON fixtures: dump an academy's state to plain data and load it back.

The format reuses the public wire shapes (camelCase, ISO dates) so a fixture reads like
API responses, plus a ``role`` per member and the membership tables.  Round-tripping
is exact: ``dump_state(load_state(data)) == data`` for any dump.  The API key is not
part of the state and never written.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from pathlib import Path
from typing import Any, cast

import orjson

from .._exceptions import InvalidInputError
from .._fields import MEMBER_TEXT_FIELDS
from ._records import (
    Enrolment,
    JsonDict,
    course_json,
    enrolment_json,
    group_json,
    member_json,
    parse_date,
    program_enrolment_json,
    program_json,
)
from ._state import AcademyState, SandboxStateError

FIXTURE_FORMAT = "coursepath-sandbox/1"


class FixtureError(InvalidInputError):
    """A fixture that is not a valid sandbox dump (the ``fixture`` argument)."""

    def __init__(self, message: str) -> None:
        super().__init__(message, argument="fixture")


def dump_state(state: AcademyState) -> JsonDict:
    """Return the whole state as JSON-compatible data (see the module docstring)."""
    members = []
    for member in state.members():
        record = member_json(member)
        record["role"] = member.role
        members.append(record)
    group_members = [
        {"groupId": group.id, "memberId": member_id}
        for group in state.groups()
        for member_id in state.group_member_ids(group.id)
    ]
    return {
        "format": FIXTURE_FORMAT,
        "members": members,
        "courses": [course_json(course) for course in state.courses()],
        "programs": [program_json(program) for program in state.programs()],
        "groups": [group_json(group) for group in state.groups()],
        "groupMembers": group_members,
        "courseMembers": [enrolment_json(e) for e in state.enrolments()],
        "programMembers": [program_enrolment_json(e) for e in state.program_enrolments()],
    }


def read_fixture(source: str | Path | Mapping[str, Any]) -> Mapping[str, Any]:
    """Return fixture data from a mapping, or from a JSON file path."""
    if isinstance(source, Mapping):
        return source
    try:
        data = orjson.loads(Path(source).read_bytes())
    except OSError as exc:
        raise FixtureError(f"cannot read fixture {source}: {exc.strerror or exc}") from exc
    except orjson.JSONDecodeError as exc:
        raise FixtureError(f"fixture {source} is not valid JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise FixtureError(f"fixture {source} must hold a JSON object")
    return cast(Mapping[str, Any], data)


def load_state(state: AcademyState, data: Mapping[str, Any]) -> None:
    """Fill an empty ``state`` from fixture data, without announcing any events."""
    if data.get("format", FIXTURE_FORMAT) != FIXTURE_FORMAT:
        raise FixtureError(f"unsupported fixture format {data.get('format')!r}")
    try:
        _load(state, data)
    except (KeyError, TypeError, ValueError, SandboxStateError) as exc:
        raise FixtureError(f"invalid fixture: {exc!r}") from exc


def _optional_date(value: object) -> datetime | None:
    return None if value is None else parse_date(str(value))


def _load(state: AcademyState, data: Mapping[str, Any]) -> None:
    for item in data.get("members", []):
        state.add_member(
            item["email"],
            id=int(item["id"]),
            name=item.get("name"),
            role=item.get("role", "learner"),
            **{f.name: item.get(f.api) for f in MEMBER_TEXT_FIELDS if f.name != "name"},
            created=_optional_date(item.get("createdDate")),
        )
    for item in data.get("courses", []):
        state.add_course(
            item["name"],
            id=int(item["id"]),
            description=item.get("description") or "",
            created=_optional_date(item.get("createdDate")),
        )
    for item in data.get("programs", []):
        state.add_program(
            item["name"],
            id=int(item["id"]),
            description=item.get("description") or "",
            created=_optional_date(item.get("createdDate")),
        )
    group_names: dict[int, str] = {}
    for item in data.get("groups", []):
        group_names[int(item["id"])] = state.add_group(item["name"], id=int(item["id"])).name
    for item in data.get("groupMembers", []):
        state.join_group(int(item["memberId"]), group_names[int(item["groupId"])])
    for item in data.get("courseMembers", []):
        state.restore_enrolment(
            Enrolment(
                course_id=int(item["courseId"]),
                member_id=int(item["memberId"]),
                created=parse_date(item["createdDate"]),
                score=item.get("score"),
                success=item.get("success"),
                completed=_optional_date(item.get("completedDate")),
                certificate=item.get("certificate"),
            )
        )
    for item in data.get("programMembers", []):
        state.enrol_program(
            int(item["programId"]),
            int(item["memberId"]),
            created=_optional_date(item.get("createdDate")),
        )

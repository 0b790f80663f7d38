"""Preflight: the checks an import or sync passes before its first write, in seconds.

A typo'd course id, a wrong key or an unreachable academy must stop a job before it
creates a single member, not after every row failed. So before any write (to the academy
or the journal) a job checks, with a handful of reads:

1. the academy answers and accepts the key: ``GET /members/me``;
2. the acting member may use the admin endpoints bulk jobs need (a learner gets 403):
   one record of ``GET /members``;
3. every course id named by the options or by the input exists: ``GET /courses/{id}``.

Ids in the input are collected by a pre-scan of the file (a second, request-free read;
only when it has a ``courses`` column) or of a list of mappings; rows from
an iterator cannot be read twice, so only their options are checked. Program ids are
checked for shape only: the API has no endpoint that reads a program.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator, Mapping
from typing import Final

from .._client import CoursepathAPI
from .._exceptions import (
    APIConnectionError,
    APIStatusError,
    AuthenticationError,
    NotFoundError,
    PermissionDeniedError,
)
from ._errors import PreflightError
from ._plan import PlanOptions
from ._rows import CsvRows, MappingRows, MemberRow

__all__ = ["LIBRARY_SOURCES", "preflight"]

#: How messages name the options an id came from; the CLI passes its flags instead.
LIBRARY_SOURCES: Final = {"courses": "PlanOptions.courses"}


async def preflight(
    client: CoursepathAPI,
    rows: CsvRows | MappingRows,
    *,
    options: PlanOptions,
    sources: Mapping[str, str] = LIBRARY_SOURCES,
) -> None:
    """Check that a job over ``rows`` with ``options`` can run; raise PreflightError if not.

    Reads only; ``rows`` itself is not consumed. ``sources`` names where option ids come
    from in messages (``{"courses": "--course"}`` for the CLI).
    """
    await _check_access(client)
    named: dict[int, str] = {}
    for course in options.courses:
        named.setdefault(course, sources.get("courses", "the options"))
    for course, line in _input_courses(rows).items():
        named.setdefault(course, f"line {line} of {_label(rows)}")
    missing = await _missing_courses(client, named)
    if missing:
        raise PreflightError(
            [f"course {course} does not exist (named by {named[course]})" for course in missing]
        )


async def _check_access(client: CoursepathAPI) -> None:
    """The academy answers, the key works, and the acting member is an admin."""
    url = client.base_url
    try:
        await client.members.me()
    except AuthenticationError as exc:
        raise PreflightError(
            [
                f"the key was refused: {url} answered 401 to GET /members/me acting as "
                f"{client.user} (a wrong API key, or no member with that email)"
            ]
        ) from exc
    except APIConnectionError as exc:
        raise PreflightError([f"cannot reach the academy at {url}: {exc}"]) from exc
    except APIStatusError as exc:
        raise PreflightError([f"the academy at {url} failed the first check: {exc}"]) from exc
    try:
        async for _ in client.members.list(page_size=1).pages():
            break  # one page proves access; the rest is never fetched
    except PermissionDeniedError as exc:
        raise PreflightError(
            [
                f"{client.user} may not use the admin endpoints a bulk job needs ({url} "
                "answered 403 to GET /members): act as an admin of the academy"
            ]
        ) from exc
    except APIStatusError as exc:
        raise PreflightError([f"the academy at {url} failed the admin check: {exc}"]) from exc


async def _missing_courses(client: CoursepathAPI, named: Mapping[int, str]) -> list[int]:
    """The course ids the academy answers 404 for; any other failure stops the check."""

    async def missing(course: int) -> bool:
        try:
            await client.courses.get(course)
        except NotFoundError:
            return True
        except APIStatusError as exc:
            raise PreflightError([f"cannot check course {course}: {exc}"]) from exc
        return False

    ids = sorted(named)
    found = await asyncio.gather(*(missing(course) for course in ids))
    return [course for course, gone in zip(ids, found, strict=True) if gone]


def _input_courses(rows: CsvRows | MappingRows) -> dict[int, int]:
    """Every course id the input names, with the first line naming it (a request-free scan)."""
    first: dict[int, int] = {}
    for row in _rescan(rows):
        for course in row.courses:
            first.setdefault(course, row.line)
    return first


def _rescan(rows: CsvRows | MappingRows) -> Iterator[MemberRow]:
    """The input's valid rows, read again without touching ``rows``; none when impossible."""
    if isinstance(rows, CsvRows):
        if "courses" not in rows.columns or not rows.path.is_file():
            return  # nothing to collect, or a pipe that cannot be read twice
        with rows.reopen() as again:
            yield from (row for row in again if isinstance(row, MemberRow))
    elif rows.items is not None:
        yield from (row for row in MappingRows(rows.items) if isinstance(row, MemberRow))


def _label(rows: CsvRows | MappingRows) -> str:
    return str(rows.path) if isinstance(rows, CsvRows) else "the rows"

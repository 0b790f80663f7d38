"""The export jobs: stream members, or course results, from the academy into a file.

Both run at bulk priority and write each record as it arrives, so memory stays bounded
by the pages and calls in flight, never by the size of the academy. The output appears
only when the export succeeded (see :mod:`._writers`).

Members come in listing order. Results take one call per (course, learner) pair, run
concurrently through ``client.map`` over a lazily generated stream of pairs, and are
written in **completion order**: sort afterwards (e.g. ``ORDER BY course_id, member_id``
in SQLite) when the order matters.

CSV exports neutralise text a spreadsheet would run as a formula (a member named
``=HYPERLINK(...)``) unless ``formula_guard=False``; see :class:`._writers.CsvWriter`.
"""

from __future__ import annotations

import os
import time
from collections.abc import AsyncGenerator, Callable, Iterable, Mapping
from contextlib import aclosing
from enum import Enum
from pathlib import Path
from typing import Final, TypeVar, Unpack

from attrs import frozen

from .._client import ClientView, CoursepathAPI
from .._config import Priority
from .._exceptions import NotFoundError
from .._fields import MEMBER_TEXT_FIELDS
from .._models import Course, CourseMember, Member
from .._resources._base import MemberFilters
from .._validation import validate_id
from ._writers import Column, ExportFormat, RecordWriter, open_writer

__all__ = [
    "MEMBER_COLUMNS",
    "RESULT_COLUMNS",
    "ExportStats",
    "OnRecord",
    "export_members",
    "export_results",
    "member_record",
    "result_record",
]

T = TypeVar("T")

#: The columns of a members export, in order.
MEMBER_COLUMNS: Final = (
    Column("id", "int"),
    Column("email"),
    *(Column(field.name) for field in MEMBER_TEXT_FIELDS),
    Column("created_date", "date"),
)
#: The columns of a results export, in order; ``enrolled_date`` is when the learner
#: was enrolled (the coursemember's created date).
RESULT_COLUMNS: Final = (
    Column("course_id", "int"),
    Column("course_name"),
    Column("member_id", "int"),
    Column("email"),
    Column("name"),
    Column("external_id"),
    Column("enrolled_date", "date"),
    Column("score", "float"),
    Column("success", "bool"),
    Column("completed_date", "date"),
    Column("certificate"),
)

#: Called with every record as it is written (progress bars, counters).
OnRecord = Callable[[Mapping[str, object]], None]


@frozen(kw_only=True)
class ExportStats:
    """What an export wrote: records, pairs skipped, the file, its format and the time taken."""

    records: int
    #: Results only: learners who left a course between the listing and their result.
    skipped: int
    path: Path
    format: ExportFormat
    seconds: float


async def export_members(
    client: CoursepathAPI,
    out: str | os.PathLike[str],
    *,
    format: ExportFormat,
    overwrite: bool = False,
    formula_guard: bool = True,
    window: int = 8,
    on_record: OnRecord | None = None,
    **filters: Unpack[MemberFilters],
) -> ExportStats:
    """Stream every member matching ``filters`` (as ``members.list`` takes them) to ``out``.

    ``window`` pages are fetched in parallel; records are written in listing order.
    ``formula_guard`` (CSV only, on by default): text a spreadsheet would run gets a ``'``.
    """
    bulk = client.with_options(priority=Priority.BULK)
    started = time.monotonic()
    tally = {"records": 0}
    with (
        client._observe_job("export_members", lambda: tally),
        open_writer(
            format,
            out,
            MEMBER_COLUMNS,
            table="members",
            overwrite=overwrite,
            formula_guard=formula_guard,
        ) as writer,
    ):
        async with aclosing(bulk.members.list(window=window, **filters).pages()) as pages:
            async for page in pages:
                for member in page:
                    _emit(writer, member_record(member), on_record)
                tally["records"] = writer.records
    return _stats(writer, format, started, skipped=0)


async def export_results(
    client: CoursepathAPI,
    out: str | os.PathLike[str],
    *,
    format: ExportFormat,
    course_ids: Iterable[int] | None = None,
    completed_only: bool = False,
    overwrite: bool = False,
    formula_guard: bool = True,
    concurrency: int | None = None,
    on_record: OnRecord | None = None,
) -> ExportStats:
    """Stream every learner's result in every course (or in ``course_ids``) to ``out``.

    ``completed_only`` keeps finished results only. A learner unenrolled while the export
    runs (their result is gone: 404) is counted in ``skipped``; any other error, after
    the client's retries, aborts the export and leaves no file. Records are written in
    completion order. ``concurrency``: result calls in flight (default: ``client.map``'s).
    ``formula_guard`` (CSV only, on by default): text a spreadsheet would run gets a ``'``.
    """
    bulk = client.with_options(priority=Priority.BULK)
    wanted = (
        None
        if course_ids is None
        else tuple(validate_id(course, field="course_ids") for course in course_ids)
    )
    started = time.monotonic()
    skipped = 0

    async def fetch(pair: tuple[Course, Member]) -> Mapping[str, object] | _Skip:
        course, member = pair
        try:
            result = await bulk.courses.result(course.id, member.id)
        except NotFoundError:
            return _Skip.GONE
        if completed_only and not result.completed:
            return _Skip.OPEN
        return result_record(course, member, result)

    tally = {"records": 0, "skipped": 0}
    with (
        client._observe_job("export_results", lambda: tally),
        open_writer(
            format,
            out,
            RESULT_COLUMNS,
            table="results",
            overwrite=overwrite,
            formula_guard=formula_guard,
        ) as writer,
    ):
        pairs = _pairs(bulk, wanted)
        async with (
            aclosing(pairs),
            aclosing(bulk.map(fetch, pairs, concurrency=concurrency)) as outcomes,
        ):
            async for outcome in outcomes:
                if outcome is _Skip.GONE:
                    skipped += 1
                elif not isinstance(outcome, _Skip):
                    _emit(writer, outcome, on_record)
                tally.update(records=writer.records, skipped=skipped)
    return _stats(writer, format, started, skipped=skipped)


def member_record(member: Member) -> dict[str, object]:
    """A member as a members-export record."""
    return {
        "id": member.id,
        "email": member.email,
        **{field.name: getattr(member, field.name) for field in MEMBER_TEXT_FIELDS},
        "created_date": member.created_date,
    }


def result_record(course: Course, member: Member, result: CourseMember) -> dict[str, object]:
    """A learner's result in a course as a results-export record."""
    return {
        "course_id": course.id,
        "course_name": course.name,
        "member_id": member.id,
        "email": member.email,
        "name": member.name,
        "external_id": member.external_id,
        "enrolled_date": result.created_date,
        "score": result.score,
        "success": result.success,
        "completed_date": result.completed_date,
        "certificate": result.certificate,
    }


class _Skip(Enum):
    """Why a (course, learner) pair produced no record."""

    GONE = "unenrolled while the export ran"
    OPEN = "not completed (completed_only)"


async def _pairs(
    client: ClientView, course_ids: tuple[int, ...] | None
) -> AsyncGenerator[tuple[Course, Member], None]:
    """Every (course, learner) pair, generated as it is listed: one course's page at a time."""
    async with aclosing(_courses(client, course_ids)) as courses:
        async for course in courses:
            async with aclosing(aiter(client.courses.members(course.id))) as members:
                async for member in members:
                    yield course, member


async def _courses(
    client: ClientView, course_ids: tuple[int, ...] | None
) -> AsyncGenerator[Course, None]:
    if course_ids is None:
        async with aclosing(aiter(client.courses.list())) as courses:
            async for course in courses:
                yield course
    else:
        for course_id in dict.fromkeys(course_ids):
            yield await client.courses.get(course_id)


def _emit(writer: RecordWriter, record: Mapping[str, object], on_record: OnRecord | None) -> None:
    writer.write(record)
    if on_record is not None:
        on_record(record)


def _stats(
    writer: RecordWriter, format: ExportFormat, started: float, *, skipped: int
) -> ExportStats:
    return ExportStats(
        records=writer.records,
        skipped=skipped,
        path=writer.path,
        format=format,
        seconds=time.monotonic() - started,
    )

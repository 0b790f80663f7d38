"""The run report: every row accounted for, exit codes, stable JSON, readable summary."""

from __future__ import annotations

from pathlib import Path

import attr
import orjson
import pytest

from coursepath_async.bulk import CsvRows, ImportReport, MemberRow, ReportError, RowError, RowReport
from coursepath_async.bulk._report import Action, report_entry, row_from_entry


def ok_row(line: int, outcome: str = "created", invitation: str = "sent") -> RowReport:
    return RowReport(line=line, email=f"u{line}@x.org", outcome=outcome, invitation=invitation)  # type: ignore[arg-type]


def test_consistent_when_every_row_is_recorded() -> None:
    """Valid and invalid rows together must equal the reader's row count."""
    report = ImportReport(source="people.csv")
    report.add(ok_row(2))
    report.add_invalid(RowError(line=3, reason="email is empty"))
    report.finish(total_rows=2)
    assert report.accounted_for == 2
    assert report.consistent
    report.check()


def test_missing_row_is_inconsistent_and_fails_the_exit_code() -> None:
    """A row the reader counted but nobody recorded makes the report inconsistent and exit 1."""
    report = ImportReport(source="people.csv")
    report.add(ok_row(2))
    report.finish(total_rows=2)
    assert not report.consistent
    assert report.exit_code == 1
    with pytest.raises(ReportError, match="accounts for 1 rows, but the input had 2"):
        report.check()
    assert "WARNING: 1 rows accounted for, but the input had 2" in report.summary()


def test_unfinished_report_is_not_consistent() -> None:
    """Without the reader's count the report cannot claim completeness."""
    report = ImportReport(source="x")
    report.add(ok_row(2))
    assert not report.consistent
    with pytest.raises(ReportError, match="never finished"):
        report.check()


def test_a_line_is_recorded_once() -> None:
    """Recording the same line twice is a bug caught immediately."""
    report = ImportReport(source="x")
    report.add(ok_row(2))
    with pytest.raises(ReportError, match="line 2"):
        report.add(ok_row(2, outcome="failed"))


@pytest.mark.parametrize(
    ("outcome", "invitation", "code"),
    [
        ("created", "sent", 0),
        ("updated", "not_requested", 0),
        ("unchanged", "skipped_already_sent", 0),
        ("failed", "not_requested", 1),
        ("skipped_invalid", "not_requested", 1),
        ("created", "uncertain", 1),
        ("created", "failed", 1),
    ],
)
def test_exit_code(outcome: str, invitation: str, code: int) -> None:
    """Exit 0 only if every row succeeded, invitation included; failure or uncertainty gives 1."""
    report = ImportReport(source="x")
    report.add(ok_row(2))
    report.add(ok_row(3, outcome, invitation))
    report.finish(total_rows=2)
    assert report.exit_code == code


def test_json_is_stable_and_complete() -> None:
    """The JSON has sorted keys, rows by line whatever the completion order, and the totals."""
    rows = [ok_row(4, "updated", "not_requested"), ok_row(2), ok_row(3, "failed", "not_requested")]
    documents = []
    for order in (rows, rows[::-1]):
        report = ImportReport(source="people.csv")
        for row in order:
            report.add(row)
        report.finish(total_rows=3, blank_lines=1, ignored_columns=["Notes"])
        documents.append(report.to_json())
    assert documents[0] == documents[1]
    data = orjson.loads(documents[0])
    assert [row["line"] for row in data["rows"]] == [2, 3, 4]
    assert list(data) == sorted(data)
    assert data["totals"]["created"] == data["totals"]["updated"] == data["totals"]["failed"] == 1
    assert (data["total_rows"], data["accounted_for"], data["consistent"]) == (3, 3, True)
    assert (data["exit_code"], data["blank_lines"], data["ignored_columns"]) == (1, 1, ["Notes"])


def test_summary_lists_uncertain_invitations_and_problems() -> None:
    """The summary names uncertain invitations and the first problems, then says how many more."""
    report = ImportReport(source="people.csv")
    report.add(ok_row(2, "created", "uncertain"))
    for line in range(3, 20):
        report.add(
            RowReport(line=line, email=None, outcome="skipped_invalid", reason=f"bad {line}")
        )
    report.finish(total_rows=18)
    text = report.summary(limit=5)
    assert "import processed 18 rows from people.csv: 0 succeeded, 18 did not" in text
    assert "line 2: u2@x.org" in text
    assert "line 7: bad 7" in text
    assert "line 8: bad 8" not in text
    assert "... and 12 more" in text


def test_reasons_are_scrubbed() -> None:
    """A token that slipped into an error message does not reach the report."""
    report = ImportReport(source="x")
    report.add(RowReport(line=2, email=None, outcome="failed", reason="401 Bearer eyJa.eyJb.c"))
    report.finish(total_rows=1)
    assert b"eyJ" not in report.to_json()
    assert "eyJ" not in report.summary()


def test_report_accounts_for_every_row_of_a_messy_file(tmp_path: Path) -> None:
    """Reading a file with bad, duplicate and blank lines and reporting each item is consistent."""
    path = tmp_path / "people.csv"
    path.write_bytes(b"email,name\na@x.org,A\n\nbad,B\na@x.org,dup\nc@x.org,C\xff\n,,\nd@x.org,D\n")
    report = ImportReport(source=str(path))
    with CsvRows(path) as reader:
        for item in reader:
            if isinstance(item, MemberRow):
                report.add(RowReport(line=item.line, email=item.email, outcome="created"))
            else:
                report.add_invalid(item)
    report.finish(
        total_rows=reader.stats.rows,
        blank_lines=reader.stats.blank_lines,
        ignored_columns=reader.ignored_columns,
    )
    report.check()
    totals = report.totals
    assert (totals.rows, totals.created, totals.skipped_invalid) == (5, 2, 3)
    assert report.exit_code == 1


def test_a_report_entry_holds_every_field_and_reads_back_as_its_row() -> None:
    """The hand-written entry equals attrs' asdict (no field left out) and round-trips."""
    row = RowReport(
        line=7,
        email="ada@example.com",
        outcome="created",
        invitation="sent",
        reason="a reason",
        member_id=12,
        resumed=True,
        invitation_reason="new member",
        actions=(
            Action(kind="create", at="2026-12-02T19:00:00+00:00"),
            Action(kind="add_group", target="G"),
        ),
    )
    entry = report_entry(row)
    assert entry == attr.asdict(row, retain_collection_types=False)
    assert row_from_entry(orjson.loads(orjson.dumps(entry))) == row
    report = ImportReport(source="people.csv")
    report.add(row)
    assert report.rows == (row,)

"""Reading desired-member rows from CSV files and mappings: every row accounted for."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from coursepath_async.bulk import BulkInputError, CsvRows, MappingRows, MemberRow, RowError

DETERMINISTIC = settings(derandomize=True, database=None, deadline=None, max_examples=300)


WriteCsv = Callable[[bytes | str], Path]


@pytest.fixture
def csv_file(tmp_path: Path) -> WriteCsv:
    def write(data: bytes | str) -> Path:
        path = tmp_path / "people.csv"
        path.write_bytes(data.encode() if isinstance(data, str) else data)
        return path

    return write


def read(path: Path, *, delimiter: str = ",") -> tuple[list[MemberRow | RowError], CsvRows]:
    reader = CsvRows(path, delimiter=delimiter)
    return list(reader), reader


def only_rows(items: list[MemberRow | RowError]) -> list[MemberRow]:
    assert all(isinstance(item, MemberRow) for item in items), items
    return [item for item in items if isinstance(item, MemberRow)]


def errors(items: list[MemberRow | RowError]) -> dict[int, str]:
    return {item.line: item.reason for item in items if isinstance(item, RowError)}


def assert_accounted(reader: CsvRows, items: list[MemberRow | RowError]) -> None:
    s = reader.stats
    assert s.header_lines + s.blank_lines + s.row_lines == s.lines
    assert s.rows == len(items) == s.valid + s.invalid


def test_bom_is_stripped(csv_file: WriteCsv) -> None:
    """A UTF-8 BOM (Excel's "CSV UTF-8") does not hide the email column."""
    items, _ = read(csv_file(b"\xef\xbb\xbfemail,name\na@example.com,Ann\n"))
    assert only_rows(items)[0].email == "a@example.com"


def test_crlf_line_endings(csv_file: WriteCsv) -> None:
    """Windows line endings leave no stray carriage returns and count lines correctly."""
    items, reader = read(csv_file("email,name\r\na@x.org,Ann\r\nb@x.org,Bob\r\n"))
    rows = only_rows(items)
    assert [(r.line, r.name) for r in rows] == [(2, "Ann"), (3, "Bob")]
    assert reader.stats.lines == 3


def test_blank_lines_are_counted_not_rows(csv_file: WriteCsv) -> None:
    """Blank, whitespace and comma-only lines are skipped and counted; line numbers stay true."""
    items, reader = read(csv_file("\nemail,name\n\na@x.org,Ann\n   \n,,\nb@x.org,Bob\n\n"))
    assert [r.line for r in only_rows(items)] == [4, 7]
    assert reader.stats.blank_lines == 5
    assert_accounted(reader, items)


def test_unknown_columns_are_ignored_and_listed(csv_file: WriteCsv) -> None:
    """Columns the job does not know are ignored, named in ignored_columns, even with bad bytes."""
    items, reader = read(csv_file(b"Notes,email,,Manager\nok \xff,a@x.org,,Zed\n"))
    assert only_rows(items)[0].email == "a@x.org"
    assert reader.ignored_columns == ("Notes", "", "Manager")
    assert reader.columns == ("email",)


def test_extra_cells_with_content_fail_the_row(csv_file: WriteCsv) -> None:
    """More filled cells than columns means shifted values: the row fails; empty extras pass."""
    items, _ = read(csv_file("email,name,company\na@x.org,Smith, John,Acme\nb@x.org,Bo,Co,,\n"))
    assert "4 cells but the header has 3 columns" in errors(items)[2]
    assert isinstance(items[1], MemberRow)


def test_missing_trailing_cells_are_not_given(csv_file: WriteCsv) -> None:
    """A short row leaves its missing fields as None (untouched), not as empty strings."""
    items, _ = read(csv_file("email,name,company,courses\na@x.org,Ann\n"))
    (row,) = only_rows(items)
    assert (row.name, row.company, row.courses) == ("Ann", None, ())


@pytest.mark.parametrize(
    ("email", "reason"),
    [
        ("", "email is empty"),
        ("   ", "email is empty"),
        ("not-an-email", "not a valid email"),
        ("a@b", "not a valid email"),
        ("a b@x.org", "not a valid email"),
        ("a@@x.org", "not a valid email"),
        ("a@x..org", "not a valid email"),
        ("a\x00@x.org", "control characters"),
    ],
)
def test_bad_emails_are_row_errors(csv_file: WriteCsv, email: str, reason: str) -> None:
    """Malformed or empty emails fail their own row with a clear reason; the next row proceeds."""
    items, _ = read(csv_file(f"email,name\n{email},X\nok@x.org,Y\n"))
    assert reason in errors(items)[2]
    assert isinstance(items[1], MemberRow)


def test_duplicates_within_the_file(csv_file: WriteCsv) -> None:
    """A repeated email (any case) or an externalId reused by another email fails the later row."""
    data = "email,externalId\na@x.org,E1\nA@X.org,\nb@x.org,E1\nc@x.org,E3\n"
    items, reader = read(csv_file(data))
    assert errors(items) == {
        3: "duplicate of line 2 (same email A@X.org)",
        4: "externalId 'E1' is already used on line 2 by a@x.org",
    }
    assert reader.stats.duplicates == 2
    assert [r.line for r in items if isinstance(r, MemberRow)] == [2, 5]


def test_invalid_first_row_does_not_block_its_duplicate(csv_file: WriteCsv) -> None:
    """Only valid rows claim an email, so a fixed repeat of a broken row still imports."""
    items, _ = read(csv_file("email,courses\na@x.org,zz\na@x.org,1\n"))
    assert 2 in errors(items)
    assert isinstance(items[1], MemberRow)


def test_non_utf8_row_is_reported_and_others_proceed(csv_file: WriteCsv) -> None:
    """A Latin-1 byte fails just its row, naming the line, the column and the byte."""
    data = b"email,name\na@x.org,Ann\nb@x.org,Ren\xe9\nc@x.org,Cy\n"
    items, reader = read(csv_file(data))
    assert errors(items) == {
        3: "column 'name' is not valid UTF-8 (byte 0xE9) on line 3; save the file as CSV UTF-8"
    }
    assert items[1].email == "b@x.org"
    assert [r.line for r in items if isinstance(r, MemberRow)] == [2, 4]
    assert_accounted(reader, items)


def test_quoted_newlines_keep_line_numbers(csv_file: WriteCsv) -> None:
    """A quoted value spanning lines is one row at its first line; later line numbers stay true."""
    data = b'email,company\na@x.org,"Acme\r\nEast\r\nWing"\nb@x.org,"Bad\n\xff"\nc@x.org,Co\n'
    items, reader = read(csv_file(data))
    assert isinstance(items[0], MemberRow)
    assert (items[0].line, items[0].company) == (2, "Acme\r\nEast\r\nWing")
    assert "on lines 5-6" in errors(items)[5]
    assert items[2].line == 7
    assert_accounted(reader, items)


def test_huge_field_is_a_row_error(csv_file: WriteCsv) -> None:
    """A cell over the cap fails its row without a crash; the following row is read normally."""
    data = b"email,name\na@x.org," + b"n" * 70_000 + b"\nb@x.org,Bo\n"
    items, _ = read(csv_file(data))
    assert errors(items) == {2: "column 'name' is larger than 65536 bytes"}
    assert items[1].line == 3


def test_newline_free_binary_garbage_is_one_row_error(csv_file: WriteCsv) -> None:
    """Megabytes with no line break become one failed row, not a memory blow-up or a crash."""
    data = b"email\n" + bytes(range(1, 256)).replace(b"\n", b"").replace(b"\r", b"") * 20_000
    items, reader = read(csv_file(data))
    assert len(items) == 1
    assert isinstance(items[0], RowError)
    assert_accounted(reader, items)


def test_unterminated_quote_is_one_error_to_end_of_file(csv_file: WriteCsv) -> None:
    """An unclosed quote is reported with the lines it swallowed."""
    items, _ = read(csv_file('email,name\na@x.org,"Ann\nb@x.org,Bob\n'))
    assert errors(items) == {
        2: "a quoted value is never closed: lines 2-3 (to the end of file) are one row"
    }


@pytest.mark.parametrize(
    ("cell", "message"),
    [
        ("1;x", "courses: 'x' is not a positive integer id"),
        ("../1", "courses: '../1' is not a positive integer id"),
        ("-3", "courses: '-3' is not a positive integer id"),
        ("1.5", "courses: '1.5' is not a positive integer id"),
        ("0", "courses id must be a positive integer, got 0"),
        ("99999999999999999999", "is not a positive integer id"),
    ],
)
def test_bad_ids_name_the_value(csv_file: WriteCsv, cell: str, message: str) -> None:
    """Ids that are not positive integers fail the row, naming the bad value."""
    items, _ = read(csv_file(f"email,courses\na@x.org,{cell}\n"))
    assert message in errors(items)[2]


def test_list_columns_and_invite(csv_file: WriteCsv) -> None:
    """groups/courses/programs split on ';' (repeats dropped), invite parses yes/no words."""
    data = (
        "email,groups,courses,programs,invite\n"
        "a@x.org, Sales ;sales;Ops;,3; 1;3,7,Yes\n"
        "b@x.org,,,,no\n"
    )
    rows = only_rows(read(csv_file(data))[0])
    assert (rows[0].groups, rows[0].courses, rows[0].programs) == (("Sales", "Ops"), (3, 1), (7,))
    assert (rows[0].invite, rows[1].invite) == (True, False)


def test_bad_invite_value_and_all_problems_listed(csv_file: WriteCsv) -> None:
    """A row with several problems reports them all at once."""
    items, _ = read(csv_file("email,invite,programs\nbad,maybe,x\n"))
    reason = errors(items)[2]
    assert "not a valid email" in reason
    assert "invite must be yes/no" in reason
    assert "programs: 'x'" in reason


@pytest.mark.parametrize("header", ["externalId", "external_id", "External ID", "EXTERNAL-ID"])
def test_column_name_spellings(csv_file: WriteCsv, header: str) -> None:
    """camelCase, snake_case, spaces and case all name the same column."""
    (row,) = only_rows(read(csv_file(f" Email ,{header}\na@x.org,E-7\n"))[0])
    assert row.external_id == "E-7"
    assert row.natural_key == "externalId:E-7"


def test_member_row_keys_and_fields() -> None:
    """Email keeps its case for display, compares lowercase, and fields come out snake_case."""
    row = MemberRow(line=2, email="Ann@X.org", name="Ann", external_id=None, company="Acme")
    assert (row.email_key, row.natural_key) == ("ann@x.org", "email:ann@x.org")
    assert row.member_fields() == {"name": "Ann", "company": "Acme"}


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "is empty"),
        (b"\n\n  \n", "has no header row"),
        (b"name,company\nAnn,Acme\n", "no 'email' column in the header (found 'name', 'company')"),
        (b"email;name\na@x.org;Ann\n", "pass delimiter=';'"),
        (b"\xff\xfee\x00m\x00", "UTF-16"),
        (b"PK\x03\x04rest", "Excel"),
        (b"email,Email\n", "both mean 'email'"),
        (b"em\xffail\n", "header is not valid UTF-8"),
        (b'"email\n', "header is malformed"),
    ],
)
def test_unusable_input_raises_before_any_row(
    csv_file: WriteCsv, data: bytes, message: str
) -> None:
    """Whole-file problems raise BulkInputError on opening, naming the file and the problem."""
    path = csv_file(data)
    with pytest.raises(BulkInputError, match=re.escape(message)) as info:
        CsvRows(path)
    assert str(path) in str(info.value)


def test_missing_file_and_directory(tmp_path: Path) -> None:
    """A path that cannot be read is a BulkInputError, not an OSError."""
    with pytest.raises(BulkInputError, match="No such file"):
        CsvRows(tmp_path / "nope.csv")
    with pytest.raises(BulkInputError, match="cannot read"):
        CsvRows(tmp_path)


def test_semicolon_delimiter_option(csv_file: WriteCsv) -> None:
    """A European-style file reads with delimiter=';' (lists can still be quoted)."""
    (row,) = only_rows(read(csv_file('email;groups\na@x.org;"A;B"\n'), delimiter=";")[0])
    assert row.groups == ("A", "B")


def test_secret_columns_are_masked_in_excerpts(csv_file: WriteCsv) -> None:
    """A password column never reaches an excerpt, even when a stray comma shifts it right."""
    data = "email,name,Password\nbad,Ann,hunter2\nc@x.org,Smith, John,s3cret\n"
    items, _ = read(csv_file(data))
    excerpts = [item.excerpt for item in items if isinstance(item, RowError)]
    assert excerpts == ["bad,Ann,***", "c@x.org,Smith,***,***"]


def test_closing_early_closes_the_file(csv_file: WriteCsv) -> None:
    """Leaving the with-block mid-file closes it; no ResourceWarning (warnings are errors)."""
    with CsvRows(csv_file("email\na@x.org\nb@x.org\n")) as reader:
        next(reader)
    assert reader._file.closed


@DETERMINISTIC
@given(st.binary(max_size=300))
def test_any_bytes_after_a_header_are_accounted_for(
    tmp_path_factory: pytest.TempPathFactory, data: bytes
) -> None:
    """Arbitrary bytes never crash the reader; every line is header, blank or in a reported row."""
    path = tmp_path_factory.mktemp("fuzz") / "f.csv"
    path.write_bytes(b"email,name,courses,groups,invite\n" + data)
    items, reader = read(path)
    assert_accounted(reader, items)
    assert reader.stats.lines == 1 + len(data.splitlines())
    lines = [item.line for item in items]
    assert lines == sorted(set(lines))
    assert all(line >= 2 for line in lines)


@DETERMINISTIC
@given(st.binary(max_size=200))
def test_any_bytes_as_a_whole_file(tmp_path_factory: pytest.TempPathFactory, data: bytes) -> None:
    """Any file either fails up front with BulkInputError or is fully accounted for."""
    path = tmp_path_factory.mktemp("fuzz") / "f.csv"
    path.write_bytes(data)
    try:
        reader = CsvRows(path)
    except BulkInputError:
        return
    items = list(reader)
    assert_accounted(reader, items)


def test_mappings_take_lists_numbers_and_text() -> None:
    """Mapping rows accept lists or 'a;b' text and numeric ids/externalIds."""
    rows = MappingRows(
        [
            {
                "email": "a@x.org",
                "externalId": 12,
                "courses": [1, "2"],
                "groups": "A;B",
                "invite": True,
            },
            {"Email": "b@x.org", "programs": 5, "extra": "ignored"},
        ]
    )
    a, b = only_rows(list(rows))
    assert (a.external_id, a.courses, a.groups, a.invite) == ("12", (1, 2), ("A", "B"), True)
    assert (b.line, b.programs) == (2, (5,))
    assert rows.ignored_columns == ("extra",)
    assert rows.stats.rows == 2


def test_bad_mappings_are_row_errors() -> None:
    """Non-mappings, clashing aliases, wrong types, bool ids and duplicates each fail one row."""
    items = list(
        MappingRows(
            [
                ["not", "a", "mapping"],
                {"email": "a@x.org", "externalId": "E", "external_id": "F"},
                {"email": "b@x.org", "name": 3.5},
                {"email": "c@x.org", "courses": [True]},
                {"email": "d@x.org", "password": "hunter2", "courses": "../1"},
                {"email": "e@x.org"},
                {"email": "E@x.org"},
                {},
            ]
        )
    )
    reasons = errors(items)
    assert reasons[1] == "row is not a mapping, got list"
    assert "both 'externalId' and 'external_id'" in reasons[2]
    assert reasons[3] == "name must be text, got float"
    assert "courses id must be a positive integer, got True" in reasons[4]
    secret_row = items[4]
    assert isinstance(secret_row, RowError)
    assert "hunter2" not in secret_row.excerpt
    assert "password=***" in secret_row.excerpt
    assert isinstance(items[5], MemberRow)
    assert reasons[7] == "duplicate of line 6 (same email E@x.org)"
    assert reasons[8] == "email is empty"


def test_member_row_covers_every_member_field() -> None:
    """Each field the client's create/update accept is a MemberRow attribute and a CSV column."""
    from coursepath_async._resources._base import MEMBER_FIELDS

    source = {"email": "a@x.org", **{api: name for name, api in MEMBER_FIELDS.items()}}
    (row,) = MappingRows([source])
    assert isinstance(row, MemberRow)
    assert row.member_fields() == {name: name for name in MEMBER_FIELDS}

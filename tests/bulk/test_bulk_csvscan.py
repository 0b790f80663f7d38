"""The byte-level CSV scanner: agreement with the csv module, line accounting, caps."""

from __future__ import annotations

import csv
import io

from hypothesis import given, settings
from hypothesis import strategies as st

from coursepath_async.bulk._csvscan import RawRecord, physical_lines, scan_records

DETERMINISTIC = settings(derandomize=True, database=None, deadline=None, max_examples=300)


def scan(data: bytes, *, chunk: int = 64, max_field: int = 1 << 20) -> list[RawRecord]:
    pieces = physical_lines(io.BytesIO(data), chunk_size=chunk)
    return list(scan_records(pieces, max_field=max_field, max_row=1 << 22, max_cells=10_000))


def stdlib_rows(data: bytes) -> list[list[str]]:
    text = io.TextIOWrapper(io.BytesIO(data), encoding="latin-1", newline="")
    # csv gives [] for an empty line where the scanner gives one empty cell.
    return [row or [""] for row in csv.reader(text)]


@DETERMINISTIC
@given(
    st.lists(st.sampled_from([b"a", b"\xe9", b" ", b",", b'"', b"\r", b"\n"]), max_size=40),
    st.integers(1, 9),
)
def test_scanner_agrees_with_the_csv_module(parts: list[bytes], chunk: int) -> None:
    """Cells match csv.reader (strict=False) for any mix of quotes, commas and line breaks."""
    data = b"".join(parts)
    records = scan(data, chunk=chunk)
    assert [[cell.decode("latin-1") for cell in r.cells] for r in records] == stdlib_rows(data)


@DETERMINISTIC
@given(st.binary(max_size=200), st.integers(1, 9))
def test_records_partition_the_physical_lines(data: bytes, chunk: int) -> None:
    """Every physical line belongs to exactly one record, in order, with no gap."""
    records = scan(data, chunk=chunk)
    expected_line = 1
    for record in records:
        assert record.first_line == expected_line
        assert record.last_line >= record.first_line
        expected_line = record.last_line + 1
    assert expected_line - 1 == len(data.splitlines())


def test_crlf_split_across_chunks_is_one_line_break() -> None:
    """A CR LF pair cut between two reads still ends one line, not two."""
    data = b"ab\r\ncd\r\n"
    pieces = list(physical_lines(io.BytesIO(data), chunk_size=3))
    assert [p for p, ends in pieces if ends] == [b"ab\r\n", b"cd\r\n"]


def test_long_line_arrives_in_bounded_pieces() -> None:
    """A line longer than the chunk size is handed out in pieces no bigger than the chunk."""
    data = b"x" * 1000 + b"\n"
    pieces = list(physical_lines(io.BytesIO(data), chunk_size=64))
    assert all(len(piece) <= 64 for piece, _ in pieces)
    assert [ends for _, ends in pieces].count(True) == 1
    assert b"".join(piece for piece, _ in pieces) == data


def test_line_counted_when_file_ends_after_a_long_fragment() -> None:
    """A final unterminated line that was handed out in fragments still counts as a line."""
    records = scan(b"a\n" + b"y" * 128, chunk=64)
    assert [(r.first_line, r.last_line) for r in records] == [(1, 1), (2, 2)]


def test_oversized_quoted_field_keeps_sync() -> None:
    """A huge quoted value with line breaks is flagged and dropped; the next row parses normally."""
    big = b'"' + b"z\n" * 500 + b'"'
    records = scan(b"a," + big + b",c\nnext,row\n", max_field=100)
    assert records[0].oversized_cell == 1
    assert records[0].cells == [b"a", b"", b"c"]
    assert (records[0].first_line, records[0].last_line) == (1, 501)
    assert records[1].cells == [b"next", b"row"]
    assert records[1].first_line == 502


def test_unterminated_quote_runs_to_end_of_file() -> None:
    """An unclosed quote swallows the rest of the file into one record flagged unterminated."""
    records = scan(b'a,"open\nb,c\n')
    assert len(records) == 1
    assert records[0].unterminated
    assert (records[0].first_line, records[0].last_line) == (1, 2)


def test_too_many_cells_is_flagged() -> None:
    """A row of endless delimiters is capped instead of growing without bound."""
    pieces = physical_lines(io.BytesIO(b"," * 5000 + b"\n"), chunk_size=64)
    (record,) = scan_records(pieces, max_field=100, max_row=1 << 20, max_cells=100)
    assert record.overflow
    assert len(record.cells) == 100


def test_blank_records() -> None:
    """Empty, whitespace-only and delimiter-only lines are blank; a quoted value is not."""
    records = scan(b'\n  \n,,,\n"x"\n')
    assert [r.is_blank for r in records] == [True, True, True, False]

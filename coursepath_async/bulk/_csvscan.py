"""A streaming, byte-level CSV scanner that knows the physical line of every record.

The stdlib ``csv`` module cannot say which bytes of a row failed to decode, stops with an
exception (losing its place inside a quoted field) when a field passes its global size
limit, and reads a newline-free file as one giant line. This scanner works on bytes in
bounded chunks with the same quoting rules as ``csv`` (``strict=False``, double-quote
escaping), caps every field and row without losing sync, and leaves decoding to the
caller so a bad byte costs one row, not the file. Delimiter, quote and line breaks are
ASCII, and UTF-8 never uses ASCII bytes inside a multi-byte character, so scanning the
raw bytes is exact for UTF-8 and for any ASCII-compatible encoding.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from typing import BinaryIO

from attrs import define, field

__all__ = ["RawRecord", "physical_lines", "scan_records"]

_QUOTE = 0x22
_LINE_BREAK = re.compile(rb"\r\n|\r|\n")


def physical_lines(
    stream: BinaryIO, *, chunk_size: int, prefix: bytes = b""
) -> Iterator[tuple[bytes, bool]]:
    r"""Yield ``(piece, ends_line)`` pairs covering ``stream`` byte for byte.

    Lines end at ``\r\n``, ``\r`` or ``\n`` (as ``bytes.splitlines`` counts them); the
    terminator stays in the piece. A line longer than ``chunk_size`` arrives in several
    pieces, only the last with ``ends_line`` set, so memory stays bounded by the chunk
    size whatever the file holds. The final line needs no terminator. ``prefix`` holds
    bytes the caller already read from ``stream`` (to sniff the encoding).
    """
    buf = prefix
    open_line = False  # a fragment of an unfinished line has been handed out
    while True:
        chunk = stream.read(chunk_size)
        at_eof = not chunk
        buf += chunk
        start = 0
        while True:
            match = _LINE_BREAK.search(buf, start)
            if match is None:
                break
            if match.group() == b"\r" and match.end() == len(buf) and not at_eof:
                break  # a "\n" in the next chunk may complete this "\r\n"
            yield buf[start : match.end()], True
            start = match.end()
            open_line = False
        buf = buf[start:]
        if at_eof:
            if buf or open_line:
                yield buf, True
            return
        # Hand over long line fragments now; keep a trailing "\r" for the check above.
        keep = 1 if buf.endswith(b"\r") else 0
        if len(buf) - keep >= chunk_size:
            yield buf[: len(buf) - keep], False
            buf = buf[len(buf) - keep :]
            open_line = True


@define
class RawRecord:
    """One CSV record as undecoded cells, with the physical lines it spans and its defects."""

    first_line: int
    last_line: int = 0
    cells: list[bytes] = field(factory=list)
    #: Index of the first cell that exceeded the field size cap (its content is dropped).
    oversized_cell: int | None = None
    #: The record went past the row size or cell count cap; later content is dropped.
    overflow: bool = False
    #: The file ended inside a quoted field.
    unterminated: bool = False

    @property
    def line_count(self) -> int:
        """The number of physical lines this record occupies."""
        return self.last_line - self.first_line + 1

    @property
    def is_blank(self) -> bool:
        """Whether the record holds no data at all: only whitespace and delimiters."""
        return (
            self.oversized_cell is None
            and not self.overflow
            and not self.unterminated
            and not any(cell.strip() for cell in self.cells)
        )


class _Scanner:
    """The state machine behind :func:`scan_records`, fed one piece at a time."""

    _START, _UNQUOTED, _QUOTED, _QUOTE_IN_QUOTED = range(4)

    def __init__(self, *, delimiter: bytes, max_field: int, max_row: int, max_cells: int) -> None:
        self._delim = delimiter[0]
        self._unquoted = re.compile(b"[^" + re.escape(delimiter) + rb"\r\n]*")
        self._max_field = max_field
        self._max_row = max_row
        self._max_cells = max_cells
        self._state = self._START
        self._line = 1
        self._record: RawRecord | None = None
        self._parts: list[bytes] = []
        self._field_len = 0
        self._row_len = 0

    def _add(self, data: bytes) -> None:
        record = self._record
        assert record is not None
        self._field_len += len(data)
        self._row_len += len(data)
        if self._field_len > self._max_field:
            if record.oversized_cell is None:
                record.oversized_cell = len(record.cells)
        elif self._row_len > self._max_row:
            record.overflow = True
        elif data:
            self._parts.append(data)

    def _end_field(self) -> None:
        record = self._record
        assert record is not None
        if len(record.cells) >= self._max_cells:
            record.overflow = True
        elif record.oversized_cell == len(record.cells) or record.overflow:
            record.cells.append(b"")  # keep cell positions; the content was dropped
        else:
            record.cells.append(b"".join(self._parts))
        self._row_len += 1  # the delimiter: a row of empty cells must hit the cap too
        self._parts = []
        self._field_len = 0

    def _end_record(self, last_line: int) -> RawRecord:
        self._end_field()
        record = self._record
        assert record is not None
        record.last_line = last_line
        self._record = None
        self._row_len = 0
        self._state = self._START
        return record

    def feed(self, piece: bytes, ends_line: bool) -> RawRecord | None:
        """Consume one piece; return the record it completes, if any.

        A record can only end at a line break, and a piece holds at most one line break
        (at its end), so each piece completes at most one record.
        """
        done: RawRecord | None = None
        if self._record is None:
            self._record = RawRecord(first_line=self._line)
        pos, end = 0, len(piece)
        while pos < end:
            state = self._state
            if state == self._START:
                if piece[pos] == _QUOTE:
                    self._state = self._QUOTED
                    pos += 1
                    continue
                self._state = state = self._UNQUOTED
            if state == self._UNQUOTED:
                match = self._unquoted.match(piece, pos)
                assert match is not None  # the pattern matches the empty string
                self._add(piece[pos : match.end()])
                pos = match.end()
                if pos == end:
                    break
                if piece[pos] == self._delim:
                    self._end_field()
                    self._state = self._START
                    pos += 1
                else:  # the line break, the last thing in the piece
                    done = self._end_record(self._line)
                    pos = end
            elif state == self._QUOTED:
                quote = piece.find(b'"', pos)
                if quote < 0:
                    self._add(piece[pos:])  # line breaks inside quotes belong to the value
                    pos = end
                else:
                    self._add(piece[pos:quote])
                    self._state = self._QUOTE_IN_QUOTED
                    pos = quote + 1
            elif piece[pos] == _QUOTE:  # "" inside a quoted field is one literal quote
                self._add(b'"')
                self._state = self._QUOTED
                pos += 1
            else:
                # Text after a closing quote is kept literally, as csv does with strict=False.
                self._state = self._UNQUOTED
        if ends_line:
            self._line += 1
        return done

    def finish(self) -> RawRecord | None:
        """Close the record the data ended in, if any, at end of file."""
        if self._record is None:
            return None
        unterminated = self._state == self._QUOTED
        record = self._end_record(self._line - 1)  # its last piece already counted the line
        record.unterminated = unterminated
        return record

    @property
    def lines(self) -> int:
        """Physical lines completed so far."""
        return self._line - 1


def scan_records(
    pieces: Iterable[tuple[bytes, bool]],
    *,
    delimiter: bytes = b",",
    max_field: int,
    max_row: int,
    max_cells: int,
) -> Iterator[RawRecord]:
    """Yield the records of a CSV byte stream given as :func:`physical_lines` pieces.

    Every physical line belongs to exactly one yielded record (blank lines are records
    with one empty cell), so callers can account for the whole file.
    """
    if len(delimiter) != 1 or delimiter in b'"\r\n':
        raise ValueError(f"delimiter must be one byte, not a quote or line break: {delimiter!r}")
    scanner = _Scanner(
        delimiter=delimiter, max_field=max_field, max_row=max_row, max_cells=max_cells
    )
    for piece, ends_line in pieces:
        record = scanner.feed(piece, ends_line)
        if record is not None:
            yield record
    record = scanner.finish()
    if record is not None:
        yield record

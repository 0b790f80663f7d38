"""Desired-member rows read from a CSV file or an iterable of mappings, one item per row.

Both readers stream (a CSV file is read in bounded chunks, never whole) and yield, for
every data row, either a valid :class:`MemberRow` or a :class:`RowError` with the row's
line and a reason, so a bad row never aborts the job and never vanishes. Problems that
make the whole input unusable (no such file, empty file, no ``email`` column) raise
:class:`BulkInputError` when the reader is opened, before any row is yielded.
"""

from __future__ import annotations

import os
from collections.abc import Generator, Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import BinaryIO, Final

from attrs import frozen

from .._exceptions import InvalidInputError
from ._csvscan import RawRecord, physical_lines, scan_records
from ._memberrow import (
    _SECRET_COLUMN,
    _TEXT_FIELDS,
    BulkInputError,
    MemberRow,
    ReadStats,
    RowError,
    _clip,
    _column_key,
    _excerpt,
    _RowBuilder,
    _safe_repr,
    field_for,
)

__all__ = [
    "BulkInputError",
    "CsvRows",
    "MappingRows",
    "MemberRow",
    "ReadStats",
    "RowError",
]

#: Cap on one cell: a real member field is tiny; a bigger one is a broken file.
DEFAULT_MAX_FIELD_BYTES: Final = 64 * 1024
_MAX_ROW_BYTES: Final = 1024 * 1024
_MAX_CELLS: Final = 1000
_CHUNK_SIZE: Final = 64 * 1024


@frozen
class _Header:
    """What the header row says: the field of each column and which columns to mask."""

    fields: tuple[str | None, ...]
    ignored: tuple[str, ...]
    secret: tuple[bool, ...]


class CsvRows:
    """The rows of a CSV file of desired members, streamed.

    Opening reads and checks the header, raising :class:`BulkInputError` for a file that
    cannot be used at all. Iterating yields one :class:`MemberRow` or :class:`RowError`
    per data row, with its 1-based physical line (a quoted value with line breaks makes a
    row span several lines; the first is reported). Blank lines are not rows: they are
    counted in ``stats.blank_lines``. Columns the jobs do not know are ignored and listed
    in ``ignored_columns``; bad bytes in an ignored column therefore do not fail the row.
    Use as a context manager, or call :meth:`close`; reading to the end closes the file.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        delimiter: str = ",",
        max_field_bytes: int = DEFAULT_MAX_FIELD_BYTES,
    ) -> None:
        if len(delimiter) != 1 or not delimiter.isascii() or delimiter in '"\r\n':
            raise InvalidInputError(
                "delimiter must be one ASCII character other than a quote or line break, "
                f"got {delimiter!r}",
                argument="delimiter",
            )
        if max_field_bytes < 1:
            raise InvalidInputError(
                f"max_field_bytes must be positive, got {max_field_bytes}",
                argument="max_field_bytes",
            )
        self.path = Path(path)
        self.stats = ReadStats()
        self._delimiter = delimiter
        self._max_field = max_field_bytes
        self._builder = _RowBuilder()
        try:
            self._file: BinaryIO = open(self.path, "rb")  # noqa: SIM115 - closed by close()
        except OSError as exc:
            raise BulkInputError(f"cannot read {self.path}: {exc.strerror or exc}") from exc
        try:
            self._records = self._open_records()
            self._header = self._read_header()
        except BaseException:
            self._file.close()
            raise
        self._rows = self._iterate()

    def reopen(self) -> CsvRows:
        """A new reader over the same file with the same settings (for a cheap pre-scan)."""
        return CsvRows(self.path, delimiter=self._delimiter, max_field_bytes=self._max_field)

    @property
    def columns(self) -> tuple[str, ...]:
        """The fields the header provides, by attribute name (e.g. ``external_id``)."""
        return tuple(name for name in self._header.fields if name is not None)

    @property
    def ignored_columns(self) -> tuple[str, ...]:
        """Header names that map to no field, as written (empty names included)."""
        return self._header.ignored

    def _open_records(self) -> Iterator[RawRecord]:
        # No seek: the path may be a pipe such as /dev/stdin.
        head = self._file.read(4)
        if not head:
            raise BulkInputError(f"{self.path} is empty")
        if head.startswith((b"\xff\xfe", b"\xfe\xff")):
            raise BulkInputError(f"{self.path} is UTF-16 encoded; save it as CSV UTF-8")
        if head.startswith(b"PK\x03\x04"):
            raise BulkInputError(
                f"{self.path} looks like an Excel/ZIP file; export it as CSV UTF-8"
            )
        prefix = head.removeprefix(b"\xef\xbb\xbf")  # Excel's "CSV UTF-8" starts with a BOM
        return scan_records(
            self._pieces(prefix),
            delimiter=self._delimiter.encode("ascii"),
            max_field=self._max_field,
            max_row=_MAX_ROW_BYTES,
            max_cells=_MAX_CELLS,
        )

    def _pieces(self, prefix: bytes) -> Iterator[tuple[bytes, bool]]:
        try:
            for piece, ends_line in physical_lines(
                self._file, chunk_size=_CHUNK_SIZE, prefix=prefix
            ):
                self.stats.lines += ends_line
                yield piece, ends_line
        except OSError as exc:
            raise BulkInputError(
                f"error reading {self.path} after line {self.stats.lines}: {exc.strerror or exc}"
            ) from exc

    def _read_header(self) -> _Header:
        for record in self._records:
            if record.is_blank:
                self.stats.blank_lines += record.line_count
                continue
            self.stats.header_lines = record.line_count
            return self._parse_header(record)
        raise BulkInputError(f"{self.path} has no header row (only blank lines)")

    def _parse_header(self, record: RawRecord) -> _Header:
        where = f"{self.path} line {record.first_line}"
        if record.unterminated or record.oversized_cell is not None or record.overflow:
            raise BulkInputError(f"{where}: the header is malformed (unclosed quote or huge cell)")
        if any(b"\x00" in cell for cell in record.cells):
            raise BulkInputError(
                f"{where}: the header has NUL bytes; is the file UTF-16 or binary? "
                "Save it as CSV UTF-8"
            )
        try:
            names = [cell.decode("utf-8").strip() for cell in record.cells]
        except UnicodeDecodeError as exc:
            raise BulkInputError(
                f"{where}: the header is not valid UTF-8; save the file as CSV UTF-8"
            ) from exc
        fields: list[str | None] = []
        seen: dict[str, str] = {}
        for name in names:
            field_name = field_for(name)
            if field_name is not None and field_name in seen:
                raise BulkInputError(
                    f"{where}: columns {_clip(seen[field_name])!r} and {_clip(name)!r} "
                    f"both mean {field_name!r}"
                )
            if field_name is not None:
                seen[field_name] = name
            fields.append(field_name)
        if "email" not in seen:
            raise BulkInputError(f"{where}: no 'email' column in the header{self._hint(names)}")
        return _Header(
            fields=tuple(fields),
            ignored=tuple(name for name, f in zip(names, fields, strict=True) if f is None),
            secret=tuple(bool(_SECRET_COLUMN.search(_column_key(name))) for name in names),
        )

    def _hint(self, names: list[str]) -> str:
        """Show what the header holds, and guess the separator when it is not a comma."""
        found = ", ".join(repr(_clip(name)) for name in names[:20])
        if len(names) == 1 and self._delimiter == ",":
            for other in (";", "\t", "|"):
                if other in names[0]:
                    return (
                        f" (found {found}); the file seems to use {other!r} as separator, "
                        f"pass delimiter={other!r}"
                    )
        return f" (found {found})"

    def _iterate(self) -> Generator[MemberRow | RowError, None, None]:
        try:
            for record in self._records:
                if record.is_blank:
                    self.stats.blank_lines += record.line_count
                    continue
                self.stats.row_lines += record.line_count
                item, duplicate = self._row(record)
                self.stats.count(item, duplicate=duplicate)
                yield item
        finally:
            self._file.close()

    def _row(self, record: RawRecord) -> tuple[MemberRow | RowError, bool]:
        header = self._header
        line = record.first_line
        span = f"lines {line}-{record.last_line}" if record.line_count > 1 else f"line {line}"

        def excerpt() -> str:
            return self._excerpt(record)

        def error(reason: str) -> tuple[RowError, bool]:
            return RowError(
                line=line, reason=reason, excerpt=excerpt(), email=self._email_of(record)
            ), False

        if record.unterminated:
            return error(f"a quoted value is never closed: {span} (to the end of file) are one row")
        if record.oversized_cell is not None:
            label = self._label(record.oversized_cell)
            return error(f"{label} is larger than {self._max_field} bytes")
        if record.overflow:
            return error(
                f"the row is larger than {_MAX_ROW_BYTES} bytes or has more than {_MAX_CELLS} cells"
            )
        if any(cell.strip() for cell in record.cells[len(header.fields) :]):
            return error(
                f"the row has {len(record.cells)} cells but the header has {len(header.fields)} "
                "columns (an unquoted comma in a value?)"
            )
        values: dict[str, object] = {}
        for index, field_name in enumerate(header.fields[: len(record.cells)]):
            if field_name is None:
                continue  # an ignored column; missing trailing cells are simply not given
            try:
                values[field_name] = record.cells[index].decode("utf-8")
            except UnicodeDecodeError as exc:
                byte = record.cells[index][exc.start]
                return error(
                    f"{self._label(index)} is not valid UTF-8 (byte 0x{byte:02X}) on {span}; "
                    "save the file as CSV UTF-8"
                )
        return self._builder.build(line, values, excerpt)

    def _excerpt(self, record: RawRecord) -> str:
        """The row as text for a report, with the cells of secret-looking columns masked."""
        secret = self._header.secret
        if len(record.cells) > len(secret) and any(secret):
            # An unquoted comma shifts values right, so a password may sit in any
            # later cell: mask everything from the first secret column on.
            first = secret.index(True)
            secret = (*secret[:first], *(True for _ in record.cells[first:]))
        cells = (
            "***"
            if index < len(secret) and secret[index]
            else cell.decode("utf-8", "backslashreplace")
            for index, cell in enumerate(record.cells)
        )
        return _excerpt(cells)

    def _email_of(self, record: RawRecord) -> str | None:
        """The row's email cell as written, if it decodes: to say whose row failed."""
        index = self._header.fields.index("email")
        try:
            email = record.cells[index].decode("utf-8").strip() if index < len(record.cells) else ""
        except UnicodeDecodeError:
            return None
        return _clip(email) or None

    def _label(self, index: int) -> str:
        name = self._header.fields[index] if index < len(self._header.fields) else None
        return f"column {_TEXT_FIELDS.get(name, name)!r}" if name else f"column {index + 1}"

    def __iter__(self) -> Iterator[MemberRow | RowError]:
        return self

    def __next__(self) -> MemberRow | RowError:
        return next(self._rows)

    def close(self) -> None:
        """Close the file; iteration stops."""
        self._rows.close()
        self._file.close()

    def __enter__(self) -> CsvRows:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


class MappingRows:
    """Rows of desired members from any iterable of mappings (e.g. an HR system's records).

    Keys follow the CSV column rules (``externalId`` or ``external_id``, any case);
    ``groups``/``courses``/``programs`` may be lists or "a;b" text. Item ``n`` (1-based)
    is reported as line ``n``. Unknown keys are ignored and listed in ``ignored_columns``.
    """

    def __init__(self, rows: Iterable[object]) -> None:
        self.stats = ReadStats()
        self._source = rows
        self._ignored: dict[str, None] = {}
        self._builder = _RowBuilder()
        self._rows = self._iterate()

    @property
    def ignored_columns(self) -> tuple[str, ...]:
        """Keys seen so far that map to no field."""
        return tuple(self._ignored)

    @property
    def items(self) -> Sequence[object] | None:
        """The input when it can be read again without consuming it (a list or tuple)."""
        source = self._source
        return source if isinstance(source, list | tuple) else None

    def _iterate(self) -> Iterator[MemberRow | RowError]:
        for line, item in enumerate(self._source, start=1):
            self.stats.lines += 1
            self.stats.row_lines += 1
            row, duplicate = self._row(line, item)
            self.stats.count(row, duplicate=duplicate)
            yield row

    def _row(self, line: int, item: object) -> tuple[MemberRow | RowError, bool]:
        if not isinstance(item, Mapping):
            reason = f"row is not a mapping, got {type(item).__name__}"
            return RowError(line=line, reason=reason), False
        pairs = [
            (key if isinstance(key, str) else _safe_repr(key), value) for key, value in item.items()
        ]

        def excerpt() -> str:
            return _excerpt(
                f"{name}=***"
                if _SECRET_COLUMN.search(_column_key(name))
                else f"{name}={_safe_repr(value)}"
                for name, value in pairs
            )

        values: dict[str, object] = {}
        sources: dict[str, str] = {}
        for name, value in pairs:
            field_name = field_for(name)
            if field_name is None:
                self._ignored.setdefault(name, None)
            elif field_name in sources:
                reason = f"both {sources[field_name]!r} and {name!r} given for {field_name!r}"
                return RowError(line=line, reason=reason, excerpt=excerpt()), False
            else:
                sources[field_name] = name
                values[field_name] = value
        return self._builder.build(line, values, excerpt)

    def __iter__(self) -> Iterator[MemberRow | RowError]:
        return self

    def __next__(self) -> MemberRow | RowError:
        return next(self._rows)

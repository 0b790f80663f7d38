"""Streaming record writers for exports: CSV, JSON Lines and SQLite, one small interface.

A writer is opened on a path with its columns, takes one record (a mapping) at a time
and holds at most one batch in memory. It writes to a hidden temporary file beside the
target and renames it into place only when closed after success, so a crash or an error
never leaves a half-written file that looks complete; on failure the temporary file is
removed. An existing target is refused unless ``overwrite=True``. Exports hold people's
data, so the file is created readable by its owner only, like the journal. CSV is opened
in spreadsheets, so text that would run as a formula there is neutralised (see
:class:`CsvWriter`); JSON Lines and SQLite are data formats and keep every value as is.
"""

from __future__ import annotations

import csv
import os
import re
import sqlite3
import tempfile
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from datetime import datetime
from pathlib import Path
from types import TracebackType
from typing import ClassVar, Final, Literal, Self

import orjson
from attrs import field, frozen

from .._exceptions import InvalidInputError

__all__ = [
    "Column",
    "ColumnKind",
    "CsvWriter",
    "ExportFormat",
    "JsonlWriter",
    "RecordWriter",
    "SqliteWriter",
    "open_writer",
]

ExportFormat = Literal["csv", "jsonl", "sqlite"]
ColumnKind = Literal["int", "float", "bool", "text", "date"]

_SQL_TYPES: Final[dict[str, str]] = {
    "int": "INTEGER",
    "float": "REAL",
    "bool": "INTEGER",  # 0/1: SQLite has no boolean type
    "text": "TEXT",
    "date": "TEXT",  # ISO 8601, which sorts and compares correctly as text
}
_IDENTIFIER_CHARS: Final = frozenset("abcdefghijklmnopqrstuvwxyz0123456789_")
#: First characters that make Excel or LibreOffice read a CSV cell as a formula (OWASP
#: "CSV injection"): ``=HYPERLINK(...)``, ``+cmd|...``, ``@SUM(...)``, and tab or CR
#: before one of them.
_FORMULA_STARTS: Final = ("=", "+", "-", "@", "\t", "\r")
#: A signed plain number ("-42", "+33612345678"): a spreadsheet reads it as that number,
#: never as a formula, so it is written as is.
_PLAIN_NUMBER: Final = re.compile(r"[+-]?[0-9]+(?:\.[0-9]+)?")


def _identifier(value: str) -> str:
    # Names are interpolated into SQL: allow plain lowercase identifiers only.
    if not value or value[0].isdigit() or not set(value) <= _IDENTIFIER_CHARS:
        raise ValueError(f"{value!r} is not a plain lowercase identifier")
    return value


def _check_identifier(_instance: object, _attribute: object, value: str) -> None:
    _identifier(value)


def _check_kind(_instance: object, _attribute: object, value: str) -> None:
    if value not in _SQL_TYPES:
        raise ValueError(f"column kind must be one of {', '.join(_SQL_TYPES)}, got {value!r}")


@frozen
class Column:
    """One output column: its name and the kind of its values (typed columns in SQLite)."""

    name: str = field(validator=_check_identifier)
    kind: ColumnKind = field(default="text", validator=_check_kind)


def _text(value: object) -> str:
    """A value as CSV text: ISO 8601 dates, lowercase booleans, ``None`` as empty."""
    if value is None:
        return ""
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _defused(text: str) -> str:
    """``text`` with a leading ``'`` if a spreadsheet would run it as a formula."""
    if text.startswith(_FORMULA_STARTS) and _PLAIN_NUMBER.fullmatch(text) is None:
        return "'" + text
    return text


def _sql(value: object) -> object:
    """A value as SQLite stores it: dates as ISO 8601 text, booleans as 0/1."""
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, bool):
        return int(value)
    return value


class RecordWriter(ABC):
    """Writes records to a temporary file and moves it onto ``path`` on :meth:`close`.

    Use as a context manager: leaving the block normally closes (publishes) the file,
    leaving it with an exception aborts (deletes the temporary file, target untouched).
    """

    #: What :func:`open_writer` calls this format.
    format: ClassVar[ExportFormat]

    def __init__(
        self, path: Path, columns: tuple[Column, ...], *, overwrite: bool, table: str
    ) -> None:
        if not columns:
            raise ValueError("a writer needs at least one column")
        self.path = path
        self.columns = columns
        self.table = _identifier(table)
        self.records = 0
        self._names = tuple(column.name for column in columns)
        self._overwrite = overwrite
        self._done = False
        if not overwrite and path.exists():
            raise FileExistsError(f"{path} already exists; pass overwrite=True to replace it")
        # Same directory as the target, so the final rename is atomic (one filesystem).
        fd, temp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".partial")
        os.close(fd)
        self._temp = Path(temp)
        try:
            self._open(self._temp)
        except BaseException:
            self._temp.unlink(missing_ok=True)
            raise

    @classmethod
    def open(
        cls,
        path: str | os.PathLike[str],
        columns: Sequence[Column],
        *,
        overwrite: bool = False,
        table: str = "records",
    ) -> Self:
        """Start writing ``columns`` to ``path`` (refused if it exists, unless ``overwrite``).

        ``table`` names what is exported: the SQLite table; other formats ignore it.
        """
        return cls(Path(path), tuple(columns), overwrite=overwrite, table=table)

    def write(self, record: Mapping[str, object]) -> None:
        """Write one record; keys not among the columns are ignored, missing ones are empty."""
        if self._done:
            raise ValueError(f"the writer for {self.path} is closed")
        self._write(tuple(record.get(name) for name in self._names))
        self.records += 1

    def close(self) -> None:
        """Finish the file and move it into place; closing twice is harmless."""
        if self._done:
            return
        self._done = True
        try:
            self._finish()
            _fsync(self._temp)
            self._publish()
        except BaseException:
            self._temp.unlink(missing_ok=True)
            raise

    def abort(self) -> None:
        """Discard everything written: the target is left as it was."""
        if self._done:
            return
        self._done = True
        try:
            self._discard()
        finally:
            self._temp.unlink(missing_ok=True)

    def _publish(self) -> None:
        if self._overwrite:
            os.replace(self._temp, self.path)
        else:
            # link() fails if the target appeared meanwhile: never clobber a file we
            # were told not to.
            try:
                os.link(self._temp, self.path)
            except FileExistsError:
                raise FileExistsError(
                    f"{self.path} appeared during the export; pass overwrite=True to replace it"
                ) from None
            except OSError:
                # No hard links on this filesystem (FAT, some network shares): check, rename.
                if self.path.exists():
                    raise FileExistsError(f"{self.path} appeared during the export") from None
                os.replace(self._temp, self.path)
            else:
                self._temp.unlink()
        _fsync_dir(self.path.parent)

    @abstractmethod
    def _open(self, temp: Path) -> None:
        """Open the temporary file and write any header."""

    @abstractmethod
    def _write(self, values: tuple[object, ...]) -> None:
        """Write one record's values, in column order."""

    @abstractmethod
    def _finish(self) -> None:
        """Flush and close the temporary file."""

    @abstractmethod
    def _discard(self) -> None:
        """Close the temporary file without finishing it."""

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()

    def __repr__(self) -> str:
        state = "closed" if self._done else "open"
        return f"<{type(self).__name__} {str(self.path)!r} records={self.records} {state}>"


class CsvWriter(RecordWriter):
    """CSV: a header row, UTF-8, RFC 4180 quoting and CRLF line ends; ``None`` is empty.

    With ``formula_guard`` (the default), a text value starting with ``=``, ``+``, ``-``,
    ``@``, a tab or a carriage return is written with a ``'`` before it, so Excel or
    LibreOffice shows it as text instead of running it as a formula (a member named
    ``=HYPERLINK(...)`` would otherwise become a live link or command in HR's
    spreadsheet). Only ``str`` values are guarded, and a signed plain number such as
    ``"-42"`` is not, so ids, scores, dates and booleans are never altered.
    ``formula_guard=False`` writes every value as it is, for programs that read the
    file as data.
    """

    format = "csv"

    def __init__(
        self,
        path: Path,
        columns: tuple[Column, ...],
        *,
        overwrite: bool,
        table: str,
        formula_guard: bool = True,
    ) -> None:
        # Set first: the base class opens the file while it initialises.
        self.formula_guard = formula_guard
        super().__init__(path, columns, overwrite=overwrite, table=table)

    def _open(self, temp: Path) -> None:
        self._file = open(temp, "w", encoding="utf-8", newline="")  # noqa: SIM115 - closed in _finish
        self._csv = csv.writer(self._file, lineterminator="\r\n")
        self._csv.writerow(self._names)

    def _write(self, values: tuple[object, ...]) -> None:
        if not self.formula_guard:
            self._csv.writerow([_text(value) for value in values])
            return
        self._csv.writerow(
            [_defused(_text(value)) if isinstance(value, str) else _text(value) for value in values]
        )

    def _finish(self) -> None:
        self._file.close()

    def _discard(self) -> None:
        self._file.close()


class JsonlWriter(RecordWriter):
    """JSON Lines: one object per line, keys in column order, dates as ISO 8601 strings."""

    format = "jsonl"

    def _open(self, temp: Path) -> None:
        self._file = open(temp, "wb")  # noqa: SIM115 - closed in _finish

    def _write(self, values: tuple[object, ...]) -> None:
        record = dict(zip(self._names, values, strict=True))
        self._file.write(orjson.dumps(record, option=orjson.OPT_APPEND_NEWLINE))

    def _finish(self) -> None:
        self._file.close()

    def _discard(self) -> None:
        self._file.close()


class SqliteWriter(RecordWriter):
    """SQLite: one table with typed columns, filled in transactions of ``BATCH`` rows."""

    format = "sqlite"

    #: Rows per INSERT transaction: few commits, little memory.
    BATCH: ClassVar[int] = 1000

    def _open(self, temp: Path) -> None:
        self._batch: list[tuple[object, ...]] = []
        self._conn = sqlite3.connect(temp, isolation_level=None)
        # No rollback journal or syncs while filling: the file only becomes the export
        # after it is complete, fsynced and renamed.
        self._conn.execute("PRAGMA journal_mode = OFF")
        self._conn.execute("PRAGMA synchronous = OFF")
        definitions = ", ".join(f"{c.name} {_SQL_TYPES[c.kind]}" for c in self.columns)
        self._conn.execute(f"CREATE TABLE {self.table} ({definitions})")
        marks = ", ".join("?" * len(self.columns))
        self._insert = f"INSERT INTO {self.table} VALUES ({marks})"

    def _write(self, values: tuple[object, ...]) -> None:
        self._batch.append(tuple(_sql(value) for value in values))
        if len(self._batch) >= self.BATCH:
            self._flush()

    def _flush(self) -> None:
        if not self._batch:
            return
        self._conn.execute("BEGIN")
        self._conn.executemany(self._insert, self._batch)
        self._conn.execute("COMMIT")
        self._batch.clear()

    def _finish(self) -> None:
        try:
            self._flush()
        finally:
            self._conn.close()

    def _discard(self) -> None:
        self._batch.clear()
        self._conn.close()


_WRITERS: Final[dict[str, type[RecordWriter]]] = {
    "csv": CsvWriter,
    "jsonl": JsonlWriter,
    "sqlite": SqliteWriter,
}


def open_writer(
    format: ExportFormat,
    path: str | os.PathLike[str],
    columns: Sequence[Column],
    *,
    table: str = "records",
    overwrite: bool = False,
    formula_guard: bool = True,
) -> RecordWriter:
    """Open the writer for ``format``; ``table`` names the SQLite table (ignored otherwise).

    ``formula_guard`` (CSV only, on by default) neutralises text a spreadsheet would run
    as a formula, see :class:`CsvWriter`; JSON Lines and SQLite ignore it.
    """
    cls = _WRITERS.get(format)
    if cls is None:
        raise InvalidInputError(
            f"format must be one of {', '.join(_WRITERS)}, got {format!r}", argument="format"
        )
    if cls is CsvWriter:
        cols = tuple(columns)
        return CsvWriter(
            Path(path), cols, overwrite=overwrite, table=table, formula_guard=formula_guard
        )
    return cls.open(path, columns, overwrite=overwrite, table=table)


def _fsync(path: Path) -> None:
    """Make the file's content durable before it is renamed into place."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_dir(directory: Path) -> None:
    """Make the rename durable; not every platform can open a directory, so best effort."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)

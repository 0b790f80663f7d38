"""Which line of a run first had each key, kept on disk so memory stays flat at any size.

A bulk job must remember every email, externalId and member it has seen to catch
duplicates and rows acting on the same person; in a dict that is a few hundred bytes
a row (hundreds of MB for a million rows). This index keeps them in a private
temporary SQLite file instead (created on first use, deleted when closed or collected):
one lookup or insert is a few microseconds, and SQLite's page cache bounds the memory.
Reads and writes are synchronous and exact, so a check-then-take with no ``await`` in
between stays atomic, as with a dict.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable

__all__ = ["LineIndex"]


class LineIndex:
    """A map from text keys to (line, note): the first line that had the key."""

    def __init__(self) -> None:
        self._conn: sqlite3.Connection | None = None

    def _db(self) -> sqlite3.Connection:
        if self._conn is None:
            # "": a temporary file SQLite creates privately and deletes on close.
            conn = sqlite3.connect("", isolation_level=None)
            conn.execute("PRAGMA journal_mode = OFF")
            conn.execute("PRAGMA synchronous = OFF")
            conn.execute(
                "CREATE TABLE seen (key TEXT PRIMARY KEY, line INTEGER NOT NULL, note TEXT)"
                " WITHOUT ROWID"
            )
            conn.execute("BEGIN")  # never committed: nothing here needs to survive
            self._conn = conn
        return self._conn

    def get(self, key: str) -> tuple[int, str | None] | None:
        """The line (and note) that first had ``key``, or None."""
        if self._conn is None:
            return None
        found = self._conn.execute("SELECT line, note FROM seen WHERE key = ?", (key,)).fetchone()
        return None if found is None else (found[0], found[1])

    def setdefault(self, key: str, line: int, note: str | None = None) -> tuple[int, str | None]:
        """Register ``key`` for ``line`` unless known; returns whoever has it now."""
        db = self._db()
        if db.execute(
            "INSERT INTO seen (key, line, note) VALUES (?, ?, ?) ON CONFLICT DO NOTHING",
            (key, line, note),
        ).rowcount:
            return line, note
        found = self.get(key)
        assert found is not None
        return found

    def put(self, keys: Iterable[str], line: int) -> None:
        """Register every key for ``line`` (replacing what they had)."""
        self._db().executemany(
            "INSERT INTO seen (key, line) VALUES (?, ?)"
            " ON CONFLICT DO UPDATE SET line = excluded.line, note = NULL",
            ((key, line) for key in keys),
        )

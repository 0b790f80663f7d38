"""Which line of a run first had each key: the newest in memory, the rest on disk.

A bulk job must remember every email, externalId and member it has seen to catch
duplicates and rows acting on the same person; in a dict that is a few hundred bytes
a row (hundreds of MB for a million rows). This index keeps the newest
:data:`MEMORY_KEYS` keys in a dict and spills the oldest, whenever it fills, into a
private temporary SQLite file (created on first spill, deleted when closed or
collected), which is read only for keys the dict lacks. A job of tens of thousands of
rows never touches the file; a bigger one keeps at most ``MEMORY_KEYS`` keys in
memory, and SQLite's page cache bounds the rest. Reads and writes are synchronous and
exact, so a check-then-take with no ``await`` in between stays atomic, as with a dict.
"""

from __future__ import annotations

import itertools
import sqlite3
from collections.abc import Iterable
from typing import Final

__all__ = ["MEMORY_KEYS", "LineIndex"]

#: Keys held in memory before they are spilled to disk (a few MB of them).
MEMORY_KEYS: Final = 16_384

Entry = tuple[int, str | None]


class LineIndex:
    """A map from text keys to (line, note): the first line that had the key."""

    def __init__(self, *, memory_keys: int = MEMORY_KEYS) -> None:
        self._recent: dict[str, Entry] = {}
        self._memory_keys = memory_keys
        self._conn: sqlite3.Connection | None = None

    def get(self, key: str) -> Entry | None:
        """The line (and note) that first had ``key``, or None."""
        found = self._recent.get(key)
        if found is not None or self._conn is None:
            return found
        row = self._conn.execute("SELECT line, note FROM seen WHERE key = ?", (key,)).fetchone()
        return None if row is None else (row[0], row[1])

    def setdefault(self, key: str, line: int, note: str | None = None) -> Entry:
        """Register ``key`` for ``line`` unless known; returns whoever has it now."""
        found = self.get(key)
        if found is not None:
            return found
        self._set(key, (line, note))
        return line, note

    def put(self, keys: Iterable[str], line: int) -> None:
        """Register every key for ``line`` (replacing what they had)."""
        for key in keys:
            self._set(key, (line, None))

    def _set(self, key: str, entry: Entry) -> None:
        recent = self._recent
        recent[key] = entry
        if len(recent) >= self._memory_keys:
            self._spill()

    def _spill(self) -> None:
        """Move the oldest quarter of the keys in memory to the file (newer than its own).

        A quarter at a time keeps each spill short (a few ms on the event loop's thread,
        not one pause for every key at once).
        """
        recent = self._recent
        oldest = list(itertools.islice(recent.items(), max(1, self._memory_keys // 4)))
        self._db().executemany(
            "INSERT INTO seen (key, line, note) VALUES (?, ?, ?)"
            " ON CONFLICT DO UPDATE SET line = excluded.line, note = excluded.note",
            ((key, line, note) for key, (line, note) in oldest),
        )
        for key, _ in oldest:
            del recent[key]

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

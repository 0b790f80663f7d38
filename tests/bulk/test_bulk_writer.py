"""The journal writer's queue: a commit takes what was queued before it, not what keeps coming."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from coursepath_async.bulk._writer import JournalWriter


def _writer(tmp_path: Path) -> tuple[JournalWriter, sqlite3.Connection]:
    conn = sqlite3.connect(tmp_path / "w.sqlite", isolation_level=None, check_same_thread=False)
    conn.execute("CREATE TABLE t (v INTEGER)")
    writer = JournalWriter(conn, before_commit=lambda: None, batch_size=10_000, batch_seconds=3600)
    writer.deferred = True  # queue writes, as inside a job
    return writer, conn


def _stored(conn: sqlite3.Connection) -> list[int]:
    return [v for (v,) in conn.execute("SELECT v FROM t ORDER BY rowid")]


def test_a_commit_leaves_writes_queued_while_it_drains_for_the_next(tmp_path: Path) -> None:
    """A write queued during a commit's drain (the loop thread keeps going) waits, in order.

    Chasing them, a worker's commit never started while rows kept coming: an import
    without invitations (no row waits for durability) was one transaction, its WAL and
    memory growing with the whole file (+130 MiB at a million rows).
    """
    writer, conn = _writer(tmp_path)

    def queue_another(changed: int, error: sqlite3.Error | None) -> None:
        writer.write("INSERT INTO t VALUES (?)", (99,))  # what a row does meanwhile

    writer.write("INSERT INTO t VALUES (?)", (1,), queue_another)
    writer.write("INSERT INTO t VALUES (?)", (2,))
    writer.commit()
    assert _stored(conn) == [1, 2]
    assert writer.commits == 1
    writer.commit()
    assert _stored(conn) == [1, 2, 99]
    assert writer.commits == 2

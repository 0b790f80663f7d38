"""The journal's removal log: every group removal and unenrolment a job applied, and when.

Removals delete things a person may miss (an unenrolment deletes the learner's results),
so each one applied is logged with its member, target and time. Unlike a run's rows and
steps, which the next run of a finished sync forgets, the log is never cleared: it answers
"what did last night's sync remove from Alice?" on any later night too.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Final, Literal, cast, get_args

from attrs import frozen

from ._writer import JournalWriter, one_of

__all__ = ["SCHEMA", "Removal", "RemovalKind", "RemovalLog"]

RemovalKind = Literal["remove_group", "unenroll"]

SCHEMA: Final = f"""
CREATE TABLE IF NOT EXISTS removals (
    member_id INTEGER NOT NULL,
    email     TEXT NOT NULL,
    kind      TEXT NOT NULL CHECK {one_of("kind", get_args(RemovalKind))},
    target    TEXT NOT NULL,
    at        TEXT NOT NULL,
    run       INTEGER NOT NULL
)
"""


@frozen(kw_only=True)
class Removal:
    """One removal applied: from which member, what (a group name or a course id), when."""

    member_id: int
    email: str
    kind: RemovalKind
    target: str
    at: str
    #: The journal's run that applied it (1 for the first run).
    run: int


class RemovalLog:
    """The removals table of one open journal; writes join the journal's batch."""

    def __init__(self, writer: JournalWriter, *, run: int) -> None:
        self._writer = writer
        self._run = run

    def record(
        self, *, member_id: int, email: str, kind: RemovalKind, target: str | int, at: str
    ) -> None:
        """Log one applied removal (durable with the batch that records its step)."""
        self._writer.write(
            "INSERT INTO removals (member_id, email, kind, target, at, run)"
            " VALUES (?, ?, ?, ?, ?, ?)",
            (member_id, email, kind, str(target), at, self._run),
        )

    def __iter__(self) -> Iterator[Removal]:
        """Every removal ever logged, oldest first."""
        records = self._writer.run(
            lambda conn: conn.execute(
                "SELECT member_id, email, kind, target, at, run FROM removals ORDER BY rowid"
            ).fetchall()
        )
        for member_id, email, kind, target, at, run in records:
            yield Removal(
                member_id=member_id,
                email=email,
                kind=cast(RemovalKind, kind),
                target=target,
                at=at,
                run=run,
            )

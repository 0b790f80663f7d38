"""The report of a bulk run: one outcome per input row, totals, JSON and a human summary.

The report must account for every data row of the input (valid, invalid and duplicate
alike): :attr:`ImportReport.consistent` compares the rows recorded with the reader's row
count, and an inconsistent report never yields exit code 0.
"""

from __future__ import annotations

import io
import itertools
import sqlite3
from collections import Counter
from collections.abc import Iterator, Sequence
from typing import Any, BinaryIO, Final, Literal

import orjson
from attrs import asdict, evolve, frozen

from .._exceptions import CoursepathError
from .._redact import scrub
from ._rows import RowError

__all__ = [
    "Action",
    "ActionKind",
    "ImportReport",
    "Invitation",
    "ReportError",
    "ReportTotals",
    "RowOutcome",
    "RowReport",
    "report_entry",
]

RowOutcome = Literal["created", "updated", "unchanged", "failed", "skipped_invalid", "interrupted"]
Invitation = Literal[
    "sent",
    "uncertain",
    "withheld",
    "not_requested",
    "failed",
    "skipped_already_sent",
    "would_send",
    "acknowledged",
]
#: What an action did to a member; ``remove_group`` and ``unenroll`` are the removals.
ActionKind = Literal[
    "create",
    "update",
    "add_group",
    "remove_group",
    "enroll",
    "unenroll",
    "enroll_program",
    "invite",
]
REMOVALS: Final = frozenset({"remove_group", "unenroll"})

_JSON: Final = orjson.OPT_SORT_KEYS | orjson.OPT_INDENT_2
_FAILED_OUTCOMES: Final = frozenset({"failed", "skipped_invalid", "interrupted"})
#: Invitations that need a person: "withheld" waits for a deliberate release.
_FAILED_INVITATIONS: Final = frozenset({"uncertain", "failed", "withheld"})


#: Invitations a person must look at, listed by the summary under these headings.
_LISTED_INVITATIONS: Final = (
    (
        "uncertain",
        "  invitations that may or may not have been sent (not re-sent; re-send them "
        "with --resend-uncertain, or settle them with --acknowledge-uncertain):",
    ),
    (
        "withheld",
        "  invitations withheld (this run could not tell whether it created these "
        "members; send them with --release-withheld, or settle them with "
        "--acknowledge-uncertain):",
    ),
)


class ReportError(CoursepathError):
    """The report is inconsistent: a row is missing or recorded twice."""


@frozen(kw_only=True)
class Action:
    """One change a row applied to its member (in a dry run: would apply), with its target.

    ``target`` is the group name, course or program id, or the changed fields of an
    update (comma-separated); ``at`` is when it was applied (UTC, ISO 8601), None in a
    dry run or for work an earlier run did.
    """

    kind: ActionKind
    target: str | int | None = None
    at: str | None = None

    @property
    def removal(self) -> bool:
        """Whether it removed something (a group membership, a course's learning results)."""
        return self.kind in REMOVALS


@frozen(kw_only=True)
class RowReport:
    """What happened to one input row."""

    line: int
    email: str | None
    outcome: RowOutcome
    invitation: Invitation = "not_requested"
    reason: str | None = None
    member_id: int | None = None
    #: Finished by an earlier run of the same journal; this run skipped it.
    resumed: bool = False
    #: Why the invitation is what it is ("existing member: ...", "withheld": why).
    invitation_reason: str | None = None
    #: What this row did to its member, in order (a dry run: what it would do).
    actions: tuple[Action, ...] = ()

    @property
    def ok(self) -> bool:
        """Whether the row fully succeeded, invitation included."""
        return self.outcome not in _FAILED_OUTCOMES and self.invitation not in _FAILED_INVITATIONS


@frozen(kw_only=True)
class ReportTotals:
    """Counts over all recorded rows."""

    rows: int
    succeeded: int
    created: int
    updated: int
    unchanged: int
    failed: int
    skipped_invalid: int
    #: Rows not reached because the run was stopped (Ctrl-C); a re-run picks them up.
    interrupted: int
    resumed: int
    invitations_sent: int
    invitations_uncertain: int
    #: Not sent because this job could not tell it created the member (release them).
    invitations_withheld: int
    invitations_failed: int
    invitations_skipped_already_sent: int
    #: Uncertain or withheld invitations an operator acknowledged (never sent again).
    invitations_acknowledged: int
    #: Dry run only: invitations the run would send.
    invitations_would_send: int
    #: Course unenrolments applied (dry run: planned); each deleted learning results.
    unenrolled: int
    #: Group removals applied (dry run: planned).
    left_groups: int


def report_entry(row: RowReport) -> dict[str, object]:
    """The JSON report's entry for one row: the public contract tools read (add, never rename).

    Spelled out rather than ``attrs.asdict`` (five times slower, and a job makes one per
    row); a test holds it equal to ``asdict`` so a new field cannot be left out.
    """
    return {
        "line": row.line,
        "email": row.email,
        "outcome": row.outcome,
        "invitation": row.invitation,
        "reason": row.reason,
        "member_id": row.member_id,
        "resumed": row.resumed,
        "invitation_reason": row.invitation_reason,
        "actions": [{"kind": a.kind, "target": a.target, "at": a.at} for a in row.actions],
    }


def row_from_entry(entry: dict[str, Any]) -> RowReport:
    """The row a :func:`report_entry` was made from (the store keeps entries only)."""
    actions = tuple(Action(**action) for action in entry["actions"])
    return RowReport(**{**entry, "actions": actions})


class _RowStore:
    """Every row's report on disk, in a private temporary SQLite file, in batches.

    Memory stays flat however many rows a job has: a row is kept as its JSON entry (an
    opaque blob, streamed into the report file, and read back as a :class:`RowReport`
    for :attr:`ImportReport.rows` and the summary). The file goes when the report does.
    """

    _BATCH: Final = 512

    def __init__(self) -> None:
        self._conn: sqlite3.Connection | None = None
        self._pending: list[tuple[int, str, str, bytes]] = []

    def add(self, row: RowReport) -> None:
        # Encoded once, as the report file lays it out (sorted keys, indented).
        entry = orjson.dumps(report_entry(row), option=_JSON)
        self._pending.append((row.line, row.outcome, row.invitation, entry))
        if len(self._pending) >= self._BATCH:
            self._flush()

    def rows(self, where: str = "", params: Sequence[object] = ()) -> Iterator[RowReport]:
        """The rows matching ``where``, by line."""
        for entry in self.select("entry", where, params):
            yield row_from_entry(orjson.loads(entry))

    def _db(self) -> sqlite3.Connection:
        if self._conn is None:
            # "": a temporary file SQLite creates privately and deletes on close.
            self._conn = sqlite3.connect("", isolation_level=None)
            self._conn.execute("PRAGMA journal_mode = OFF")
            self._conn.execute("PRAGMA synchronous = OFF")
            self._conn.execute(
                "CREATE TABLE rows (line INTEGER PRIMARY KEY, outcome TEXT, invitation TEXT,"
                " entry BLOB)"
            )
        return self._conn

    def _flush(self) -> None:
        if self._pending:
            db = self._db()
            db.execute("BEGIN")
            db.executemany("INSERT INTO rows VALUES (?, ?, ?, ?)", self._pending)
            db.execute("COMMIT")
            self._pending = []

    def select(self, column: str, where: str = "", params: Sequence[object] = ()) -> Iterator[Any]:
        """One column of the rows matching ``where``, by line, read in chunks."""
        self._flush()
        if self._conn is None:
            return
        after = -1
        while True:
            chunk = self._conn.execute(
                f"SELECT line, {column} FROM rows WHERE line > ?"
                + (f" AND ({where})" if where else "")
                + " ORDER BY line LIMIT 1000",
                (after, *params),
            ).fetchall()
            for _, value in chunk:
                yield value
            if len(chunk) < 1000:
                return
            after = chunk[-1][0]

    def count(self, where: str, params: Sequence[object] = ()) -> int:
        self._flush()
        if self._conn is None:
            return 0
        return int(
            self._conn.execute(f"SELECT count(*) FROM rows WHERE {where}", params).fetchone()[0]
        )


class ImportReport:
    """Collects row outcomes as a job runs (in any order) and renders them at the end.

    Call :meth:`add` or :meth:`add_invalid` once per data row, then :meth:`finish` with
    the reader's counts. Memory is flat at any size: counts are kept, and every row goes
    to a private temporary file, read back by line for :meth:`iter_rows`, :attr:`rows`,
    the summary and :meth:`write_json` (which streams the JSON report).
    """

    def __init__(self, *, source: str, kind: str = "import", dry_run: bool = False) -> None:
        self.source = source
        self.kind = kind
        self.dry_run = dry_run
        self._store = _RowStore()
        self._lines = bytearray()  # a bit per line number: each may be recorded once
        self._count = 0
        self._outcomes: Counter[str] = Counter()
        self._invitations: Counter[str] = Counter()
        self._actions: Counter[str] = Counter()
        self._succeeded = 0
        self._resumed = 0
        self.total_rows: int | None = None
        self.blank_lines = 0
        self.ignored_columns: tuple[str, ...] = ()

    def add(self, row: RowReport) -> None:
        """Record one row's outcome; a line may be recorded only once."""
        self._take_line(row.line)
        reason, invitation_reason = row.reason, row.invitation_reason
        clean = None if reason is None else scrub(reason)
        clean_invitation = None if invitation_reason is None else scrub(invitation_reason)
        if clean != reason or clean_invitation != invitation_reason:
            row = evolve(row, reason=clean, invitation_reason=clean_invitation)
        self._store.add(row)
        self._count += 1
        self._outcomes[row.outcome] += 1
        self._invitations[row.invitation] += 1
        self._actions.update(action.kind for action in row.actions)
        self._succeeded += row.ok
        self._resumed += row.resumed

    def _take_line(self, line: int) -> None:
        if line < 0:
            raise ReportError(f"line {line} is not a line number")
        byte, bit = divmod(line, 8)
        if byte >= len(self._lines):
            self._lines.extend(bytes(max(byte + 1 - len(self._lines), len(self._lines))))
        if self._lines[byte] & (1 << bit):
            raise ReportError(f"line {line} is already in the report")
        self._lines[byte] |= 1 << bit

    def add_invalid(self, error: RowError) -> None:
        """Record a row the reader rejected."""
        self.add(
            RowReport(
                line=error.line, email=error.email, outcome="skipped_invalid", reason=error.reason
            )
        )

    def finish(
        self, *, total_rows: int, blank_lines: int = 0, ignored_columns: Sequence[str] = ()
    ) -> None:
        """Set what the reader counted: data rows, blank lines skipped, columns ignored."""
        self.total_rows = total_rows
        self.blank_lines = blank_lines
        self.ignored_columns = tuple(ignored_columns)

    def iter_rows(self) -> Iterator[RowReport]:
        """The recorded rows, by line, read back from disk a chunk at a time."""
        yield from self._store.rows()

    @property
    def rows(self) -> tuple[RowReport, ...]:
        """The recorded rows, by line (all read into memory: prefer :meth:`iter_rows`)."""
        return tuple(self.iter_rows())

    @property
    def accounted_for(self) -> int:
        """How many input rows have an outcome."""
        return self._count

    @property
    def consistent(self) -> bool:
        """Whether every row the reader counted has exactly one outcome."""
        return self.total_rows is not None and self.accounted_for == self.total_rows

    def check(self) -> None:
        """Raise ReportError unless the report accounts for every input row."""
        if self.total_rows is None:
            raise ReportError("the report was never finished with the reader's row count")
        if not self.consistent:
            raise ReportError(
                f"the report accounts for {self.accounted_for} rows, "
                f"but the input had {self.total_rows}"
            )

    @property
    def totals(self) -> ReportTotals:
        """Counts by outcome and invitation."""
        outcomes, invitations = self._outcomes, self._invitations
        actions = self._actions
        return ReportTotals(
            rows=self._count,
            succeeded=self._succeeded,
            created=outcomes["created"],
            updated=outcomes["updated"],
            unchanged=outcomes["unchanged"],
            failed=outcomes["failed"],
            skipped_invalid=outcomes["skipped_invalid"],
            interrupted=outcomes["interrupted"],
            resumed=self._resumed,
            invitations_sent=invitations["sent"],
            invitations_uncertain=invitations["uncertain"],
            invitations_withheld=invitations["withheld"],
            invitations_failed=invitations["failed"],
            invitations_skipped_already_sent=invitations["skipped_already_sent"],
            invitations_acknowledged=invitations["acknowledged"],
            invitations_would_send=invitations["would_send"],
            unenrolled=actions["unenroll"],
            left_groups=actions["remove_group"],
        )

    @property
    def exit_code(self) -> int:
        """0 when every row succeeded and the report is consistent, else 1."""
        return 0 if self.consistent and self._succeeded == self._count else 1

    def to_json(self) -> bytes:
        """The whole report as JSON with sorted keys and rows by line (stable for diffs)."""
        out = io.BytesIO()
        self.write_json(out)
        return out.getvalue()

    def write_json(self, out: BinaryIO) -> None:
        """Stream :meth:`to_json`'s bytes to ``out``, rows read back from disk one by one."""
        document = {
            "kind": self.kind,
            "source": self.source,
            "dry_run": self.dry_run,
            "total_rows": self.total_rows,
            "accounted_for": self.accounted_for,
            "consistent": self.consistent,
            "exit_code": self.exit_code,
            "blank_lines": self.blank_lines,
            "ignored_columns": list(self.ignored_columns),
            "totals": asdict(self.totals),
            "rows": [],
        }
        head, tail = orjson.dumps(document, option=_JSON).split(b'"rows": []', 1)
        out.write(head + b'"rows": [')
        first = True
        for entry in self._store.select("entry"):
            # The entry as a nested value of the document would be: indented two levels.
            nested = entry.replace(b"\n", b"\n    ")
            out.write((b"\n    " if first else b",\n    ") + nested)
            first = False
        out.write((b"]" if first else b"\n  ]") + tail)

    def summary(self, *, limit: int = 10) -> str:
        """A few lines for the terminal: counts, then the first problems of each kind."""
        t = self.totals
        total = "?" if self.total_rows is None else f"{self.total_rows:,}"
        would = "would " if self.dry_run else ""
        verb = "would process" if self.dry_run else "processed"
        lines = [
            f"{self.kind} {verb} {total} rows from {self.source}: "
            f"{t.succeeded:,} succeeded, {t.rows - t.succeeded:,} did not",
            f"  {would}{'create' if would else 'created'} {t.created:,}"
            f" · {would}{'update' if would else 'updated'} {t.updated:,}"
            f" · unchanged {t.unchanged:,} · failed {t.failed:,} · invalid {t.skipped_invalid:,}"
            + (f" · finished by an earlier run {t.resumed:,}" if t.resumed else "")
            + (f" · not reached (interrupted) {t.interrupted:,}" if t.interrupted else ""),
        ]
        if self.dry_run:
            lines.append(f"  invitations: would send {t.invitations_would_send:,}")
        else:
            lines.append(
                f"  invitations: sent {t.invitations_sent:,}"
                f" · uncertain {t.invitations_uncertain:,}"
                f" · withheld {t.invitations_withheld:,} · failed {t.invitations_failed:,}"
                f" · already sent before {t.invitations_skipped_already_sent:,}"
                + (
                    f" · acknowledged {t.invitations_acknowledged:,}"
                    if t.invitations_acknowledged
                    else ""
                )
            )
        if t.unenrolled or t.left_groups:
            lines.append(
                f"  removals: {would}unenroll {t.unenrolled:,} · {would}leave groups "
                f"{t.left_groups:,}"
                if self.dry_run
                else f"  removals: unenrolled {t.unenrolled:,} · left groups {t.left_groups:,}"
            )
        if self.blank_lines:
            lines.append(f"  blank lines skipped: {self.blank_lines:,}")
        if self.ignored_columns:
            lines.append("  ignored columns: " + ", ".join(map(repr, self.ignored_columns)))
        if not self.consistent:
            lines.append(
                f"  WARNING: {self.accounted_for:,} rows accounted for, but the input had {total}"
            )
        for invitation, heading in _LISTED_INVITATIONS:
            count = self._invitations[invitation]
            if count:
                lines.append(heading)
                lines.extend(
                    f"    line {row.line}: {row.email}"
                    for row in self._first(limit, "invitation = ?", (invitation,))
                )
                lines.extend(self._more(count, limit))
        outcomes = sorted(_FAILED_OUTCOMES - {"interrupted"})
        problem = f"outcome IN ({', '.join('?' * len(outcomes))}) OR invitation = 'failed'"
        count = self._store.count(problem, outcomes)
        if count:
            lines.append("  problems:")
            lines.extend(
                f"    line {row.line}: {row.reason or row.outcome}"
                + (f" ({row.email})" if row.email else "")
                for row in self._first(limit, problem, outcomes)
            )
            lines.extend(self._more(count, limit))
        return "\n".join(lines)

    def _first(self, limit: int, where: str, params: Sequence[object]) -> list[RowReport]:
        """The first ``limit`` rows matching ``where``, by line."""
        return list(itertools.islice(self._store.rows(where, params), max(limit, 0)))

    @staticmethod
    def _more(count: int, limit: int) -> list[str]:
        return (
            [f"    ... and {count - limit:,} more (see the JSON report)"] if count > limit else []
        )

"""The journal of a bulk job: a SQLite file recording each row's progress, durable across crashes.

One file per job. Re-running the job with the same journal resumes it: rows already
done are skipped, steps already done are not repeated, and an invitation that was being
sent when the process died is reported as *uncertain* and never re-sent unless the caller
asks for it explicitly.

A run the caller marked finished (:meth:`Journal.finish_run`, e.g. a sync that reached
every row) is not resumed: the next open starts a new run over the same file. Every row's
progress is forgotten, so the new run re-plans everything, but invitations that were sent,
are uncertain or failed are kept, so no run ever re-sends what an earlier one sent or
might have sent. A finished journal accepts a new input and options (tonight's file).
Layout::

    job    one row: kind, input source/size/digest, options (JSON), created, runs,
           finished (when the last run was marked finished; NULL while one is open)
    rows   one per desired member, keyed by its natural key: line, email, status
           (pending/done/failed), member_id, member outcome, error, invitation wanted,
           and its finished steps (below)
    invitations  the ledger: one per member id, its invitation's state
    removals     every group removal and unenrolment applied: member, target, when
                 (``_removals.py``); never cleared, unlike rows
    rows.steps  a JSON object, one key per finished step of the row after its member
           step ("group+:Sales", "course+:12", ...): ``["done", null]`` or ``["failed",
           error]``; a step with no key has not finished. It lives in the row (schema 3;
           a table of its own before) so that a row's finish and its steps are one
           statement. The member step itself is done once the row has a member outcome
           (journals written before 0.1 may also list it here). A member found by a
           lookup is recorded by its id alone: no outcome, so no member step ran.

Durability. The file is in WAL mode with ``synchronous=FULL``: every commit is fsynced,
so a commit survives SIGKILL and power loss alike. Ordinary writes are batched (one
commit per ``batch_size`` writes or ``batch_seconds``): losing an uncommitted batch only
makes a resumed run repeat idempotent steps (the create of an existing member becomes a
lookup, and an invitation it owed is withheld, never guessed). The one write that must
never be lost is "about to send an invitation", so the ledger's
:meth:`~coursepath_async.bulk._ledger.InvitationLedger.claim` commits before it returns
and the caller sends afterwards. NORMAL would save that fsync but could lose the mark on
power loss, and then the invitation would be sent twice.

Invitations live in the ledger (``invitations``, one entry per member id, see
``_ledger.py``), not in the rows: a row only says whether it wants one. A journal serves
one academy (:meth:`Journal.bind_academy`): member ids mean nothing in another.

Exclusivity. The connection holds SQLite's exclusive lock for its whole life, so a second
process opening the same journal gets :class:`JournalLockedError` instead of racing the
first one (and turning its in-flight invitations into "uncertain"). A crashed process's
lock is released by the operating system. A lock cannot outlive the file's name, so
before every commit the journal checks that its path still names the file it holds open:
a journal deleted or replaced mid-run (which would let a second job start on a fresh
file) raises :class:`JournalGoneError` and the job stops.

The journal stores emails, ids, options and scrubbed error text; never API keys or tokens.
Calls are synchronous and tiny; use one Journal from one thread (the event loop's).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import sqlite3
from collections.abc import AsyncIterator, Iterable, Iterator, Mapping, Sequence
from collections.abc import Set as AbstractSet
from functools import partial
from pathlib import Path
from types import TracebackType
from typing import Final, Literal, cast, get_args

import orjson
from attrs import frozen

from .._exceptions import InvalidInputError
from .._redact import scrub
from ._errors import (
    InviteStateError,
    JournalError,
    JournalGoneError,
    JournalLockedError,
    JournalMismatchError,
)
from ._ledger import ACK_SCHEMA, InvitationLedger, LedgerEntry, LedgerState
from ._ledger import SCHEMA as LEDGER_SCHEMA
from ._removals import SCHEMA as REMOVALS_SCHEMA
from ._removals import RemovalLog
from ._stamp import utc_now
from ._writer import JournalWriter, one_of

__all__ = [
    "InputFingerprint",
    "InviteState",
    "InviteStateError",
    "JobKind",
    "Journal",
    "JournalError",
    "JournalGoneError",
    "JournalLockedError",
    "JournalMismatchError",
    "MEMBER_STEP",
    "MemberOutcome",
    "RowState",
    "RowStatus",
]

JobKind = Literal["import", "sync"]
RowStatus = Literal["pending", "done", "failed"]
MemberOutcome = Literal["created", "updated", "unchanged"]
#: What a row wants: an invitation or not (what was done about it is the ledger's).
InviteIntent = Literal["not_needed", "pending"]
#: A row's invitation as reports see it: its intent, or its member's ledger state.
InviteState = InviteIntent | LedgerState

SCHEMA_VERSION: Final = 3
_MAX_KEY = 1024
_IN_BATCH = 500  # keys per "IN (...)" query, well under SQLite's parameter limit
_SECRET_OPTION = re.compile(
    r"api[_-]?key|secret|token|password|passwd|authorization|jwt|credential", re.IGNORECASE
)

#: The rows' steps column, as created and as added to a schema-2 journal's rows.
_STEPS_COLUMN: Final = "steps TEXT NOT NULL DEFAULT '{}' CHECK (json_type(steps) = 'object')"

_SCHEMA: Final = (
    f"""
CREATE TABLE job (
    id            INTEGER PRIMARY KEY CHECK (id = 1),
    schema        INTEGER NOT NULL,
    kind          TEXT NOT NULL,
    source        TEXT NOT NULL,
    source_size   INTEGER,
    source_digest TEXT NOT NULL,
    options       TEXT NOT NULL,
    created_at    TEXT NOT NULL,
    resumed_at    TEXT,
    runs          INTEGER NOT NULL,
    finished_at   TEXT,
    academy       TEXT
);
CREATE TABLE rows (
    key                 TEXT PRIMARY KEY,
    line                INTEGER NOT NULL,
    email               TEXT NOT NULL,
    status              TEXT NOT NULL CHECK {one_of("status", get_args(RowStatus))},
    member_id           INTEGER,
    outcome             TEXT CHECK {one_of("outcome", get_args(MemberOutcome))},
    error               TEXT,
    invite              TEXT NOT NULL CHECK {one_of("invite", get_args(InviteIntent))},
    updated_at          TEXT NOT NULL,
    {_STEPS_COLUMN}
) WITHOUT ROWID;
"""
    + LEDGER_SCHEMA
)


@frozen(kw_only=True)
class InputFingerprint:
    """What a journal was made for: a display name, a size and a content digest."""

    source: str
    size: int | None
    digest: str

    @classmethod
    def of_file(cls, path: str | os.PathLike[str]) -> InputFingerprint:
        """Fingerprint a file by its content (streamed), so a moved copy still resumes."""
        path = Path(path)
        with path.open("rb") as stream:
            digest = hashlib.file_digest(stream, "sha256").hexdigest()
            size = stream.tell()
        return cls(source=str(path), size=size, digest=f"sha256:{digest}")

    @classmethod
    def of_label(cls, label: str) -> InputFingerprint:
        """Fingerprint an input that cannot be read twice (an iterable) by a caller's label."""
        digest = hashlib.sha256(label.encode("utf-8", "surrogatepass")).hexdigest()
        return cls(source=label, size=None, digest=f"label-sha256:{digest}")

    @classmethod
    def of_items(cls, items: Iterable[object], *, source: str) -> InputFingerprint:
        """Fingerprint in-memory rows by their content, as canonical JSON (keys sorted).

        Values JSON cannot hold count by their text, sets sorted; a value whose text
        changes from run to run (an object's default repr) makes every run look new.
        """
        digest = hashlib.sha256()
        for item in items:
            digest.update(_canonical(item))
            digest.update(b"\n")
        return cls(source=source, size=None, digest=f"rows-sha256:{digest.hexdigest()}")


_CANONICAL: Final = orjson.OPT_SORT_KEYS | orjson.OPT_NON_STR_KEYS


def _canonical(item: object) -> bytes:
    """One input item as bytes that depend on its content only (for a fingerprint)."""
    try:
        return orjson.dumps(item, default=_plain, option=_CANONICAL)
    except orjson.JSONEncodeError:  # a huge int, a lone surrogate: the repr is as stable
        return repr(item).encode()


def _plain(value: object) -> object:
    """What orjson cannot encode, made deterministic: mappings as dicts, sets sorted, else text."""
    if isinstance(value, Mapping):
        return dict(value)
    if isinstance(value, AbstractSet):
        return sorted(map(str, value))
    return str(value)


def _input_text(source: str, size: int | None, digest: str) -> str:
    """How a mismatch names an input: a file by its size, in-memory rows by their digest."""
    return f"{source} ({size} bytes)" if size is not None else f"{source} ({digest[:24]}...)"


@frozen(kw_only=True)
class RowState:
    """What the journal knows about one desired member."""

    key: str
    line: int
    email: str
    status: RowStatus
    member_id: int | None
    outcome: MemberOutcome | None
    error: str | None
    invite: InviteState
    invite_attempts: int
    invite_error: str | None
    steps_done: frozenset[str]
    #: Failed steps with their error, sorted by step name.
    steps_failed: tuple[tuple[str, str | None], ...]

    def step_done(self, step: str) -> bool:
        """Whether ``step`` already succeeded (in this run or an earlier one)."""
        return step in self.steps_done

    @property
    def complete(self) -> bool:
        """Whether nothing is left to do for this row without a deliberate flag.

        A withheld invitation waits for ``release_withheld``: the row is otherwise done.
        """
        return self.status == "done" and self.invite in ("not_needed", "sent", "withheld")

    @property
    def created_here(self) -> bool | None:
        """Whether an earlier run of this journal created the row's member.

        True: its create was answered 2xx. False: no create can have run (no row yet, or
        the member was found existing). None: the row was begun without a member, so a
        create may have been sent and its answer lost.
        """
        if self.outcome == "created":
            return True
        return False if self.member_id is not None else None


#: The step key of a row's member create or update, done once the row has an outcome.
MEMBER_STEP: Final = "member"

_ROW_COLUMNS: Final = (
    "key, line, rows.email, status, rows.member_id, outcome, error, invite,"
    " invitations.state, invitations.attempts, invitations.reason, rows.steps"
)
#: Rows with their member's ledger entry, if any.
_ROWS: Final = "rows LEFT JOIN invitations ON invitations.member_id = rows.member_id"


def _read_row(conn: sqlite3.Connection, *, key: str) -> RowState | None:
    record = conn.execute(f"SELECT {_ROW_COLUMNS} FROM {_ROWS} WHERE key = ?", (key,)).fetchone()
    return None if record is None else _row_state(record)


def _read_rows_after(conn: sqlite3.Connection, *, after: tuple[int, str]) -> list[RowState]:
    """The next chunk of rows by (line, key), after ``after``."""
    cursor = conn.execute(
        f"SELECT {_ROW_COLUMNS} FROM {_ROWS} WHERE (line, key) > (?, ?)"
        f" ORDER BY line, key LIMIT {_IN_BATCH}",
        after,
    )
    return [_row_state(record) for record in cursor]


def _new_row_state(
    key: str,
    line: int,
    email: str,
    member_id: int | None,
    wanted: InviteIntent,
    entry: LedgerEntry | None,
) -> RowState:
    """The state of a row just begun with no earlier state: nothing done yet."""
    return RowState(
        key=key,
        line=line,
        email=email,
        status="pending",
        member_id=member_id,
        outcome=None,
        error=None,
        invite=_effective(wanted, None if entry is None else entry.state),
        invite_attempts=0 if entry is None else entry.attempts,
        invite_error=None if entry is None else entry.reason,
        steps_done=frozenset(),
        steps_failed=(),
    )


def _row_state(record: tuple[object, ...]) -> RowState:
    key, line, email, status, member_id, outcome, error, intent, ledger, attempts, reason, steps = (
        record
    )
    done: set[str] = set() if outcome is None else {MEMBER_STEP}
    failed: list[tuple[str, str | None]] = []
    for step, (state, step_error) in orjson.loads(cast(str, steps)).items():
        if state == "done":
            done.add(step)
        else:
            failed.append((step, step_error))
    return RowState(
        key=cast(str, key),
        line=cast(int, line),
        email=cast(str, email),
        status=cast(RowStatus, status),
        member_id=cast("int | None", member_id),
        outcome=cast("MemberOutcome | None", outcome),
        error=cast("str | None", error),
        invite=_effective(cast(InviteIntent, intent), cast("LedgerState | None", ledger)),
        invite_attempts=cast("int | None", attempts) or 0,
        invite_error=cast("str | None", reason),
        steps_done=frozenset(done),
        steps_failed=tuple(sorted(failed)),
    )


def _steps_patch(steps: Sequence[tuple[str, str | None]]) -> str:
    """Steps (name, error or None) as the JSON object merged into a row's ``steps``."""
    patch: dict[str, tuple[str, str | None]] = {}
    for step, error in steps:
        if not step or len(step) > _MAX_KEY:
            raise InvalidInputError(
                f"a step name must have 1 to {_MAX_KEY} characters", argument="step"
            )
        patch[step] = ("done", None) if error is None else ("failed", scrub(error))
    return orjson.dumps(patch).decode()


def _effective(intent: InviteIntent, ledger: LedgerState | None) -> InviteState:
    """A row's invitation: its member's history wins; owed or failed counts if still wanted."""
    if ledger is None or (ledger in ("pending", "failed") and intent == "not_needed"):
        return intent
    return ledger


def _options_json(options: Mapping[str, object]) -> str:
    """Canonical JSON of the job options, refusing anything that names a credential."""

    def check(value: object, where: str) -> None:
        if isinstance(value, Mapping):
            for key, item in value.items():
                if not isinstance(key, str) or _SECRET_OPTION.search(key):
                    raise InvalidInputError(
                        f"journal options must not hold credentials: {where}{key!r}",
                        argument="options",
                    )
                check(item, f"{where}{key}.")
        elif isinstance(value, list | tuple):
            for item in value:
                check(item, where)

    check(options, "")
    try:
        return orjson.dumps(options, option=orjson.OPT_SORT_KEYS).decode()
    except TypeError as exc:
        raise InvalidInputError(
            f"journal options must be JSON values: {exc}", argument="options"
        ) from exc


def _migrate_v1(conn: sqlite3.Connection) -> None:
    """Bring a schema-1 journal (invitations kept per row) to the member-keyed ledger."""
    conn.execute("ALTER TABLE job ADD COLUMN academy TEXT")
    conn.execute(LEDGER_SCHEMA)
    conn.execute(
        "INSERT INTO invitations (member_id, email, state, attempts, attempted_at, reason,"
        " updated_at) SELECT member_id, email, invite, invite_attempts, invite_attempted_at,"
        " invite_error, updated_at FROM rows WHERE member_id IS NOT NULL"
        " AND invite IN ('attempting', 'sent', 'uncertain', 'failed')"
        " ON CONFLICT (member_id) DO NOTHING"
    )
    # The old CHECK allows a superset of today's two values; the rest now live in the ledger.
    conn.execute("UPDATE rows SET invite = 'pending' WHERE invite NOT IN ('not_needed', 'pending')")
    conn.execute("UPDATE job SET schema = 2 WHERE id = 1")


def _migrate_v2(conn: sqlite3.Connection) -> None:
    """Bring a schema-2 journal (a table of steps) to steps kept in their row."""
    conn.execute(f"ALTER TABLE rows ADD COLUMN {_STEPS_COLUMN}")
    conn.execute(
        "UPDATE rows SET steps = (SELECT json_group_object(step, json_array(state, error))"
        " FROM steps WHERE row_key = rows.key) WHERE key IN (SELECT row_key FROM steps)"
    )
    conn.execute("DROP TABLE steps")
    conn.execute("UPDATE job SET schema = 3 WHERE id = 1")


#: Each older schema and the step that brings it to the next one.
_MIGRATIONS: Final = ((1, _migrate_v1), (2, _migrate_v2))


def _opening_ledger(conn: sqlite3.Connection) -> InvitationLedger:
    """The ledger inside :meth:`Journal.open`'s transaction: writes at once, never commits."""
    writer = JournalWriter(
        conn, before_commit=lambda: None, batch_size=2**62, batch_seconds=float("inf")
    )
    return InvitationLedger(writer, now=utc_now)


def _identity(stat: os.stat_result) -> tuple[int, int]:
    """Which file a path names: its device and inode."""
    return stat.st_dev, stat.st_ino


def _check_key(key: str) -> None:
    if not key or len(key) > _MAX_KEY:
        raise InvalidInputError(
            f"a journal key must have 1 to {_MAX_KEY} characters, got {len(key)}", argument="key"
        )


class Journal:
    """An open job journal; create it with :meth:`open` and close it (or use ``with``)."""

    def __init__(
        self,
        conn: sqlite3.Connection,
        *,
        path: Path,
        resumed: bool,
        new_run: bool,
        runs: int,
        recovered_uncertain: int,
        batch_size: int,
        batch_seconds: float,
    ) -> None:
        self._conn = conn
        self.path = path
        #: True when this journal already existed: the job is resuming.
        self.resumed = resumed
        #: True when this open started a new run over a finished one (invitations kept).
        self.new_run = new_run
        #: How many times the job has been started with this journal, this run included.
        self.runs = runs
        #: Invitations found "attempting" on open (a run died mid-send), now "uncertain".
        self.recovered_uncertain = recovered_uncertain
        self._identity = _identity(os.stat(path))
        #: Owns the connection: writes, commits (grouped, off the loop inside a job), reads.
        self.writer = JournalWriter(
            conn,
            before_commit=self._check_identity,
            batch_size=batch_size,
            batch_seconds=batch_seconds,
        )
        #: The invitation ledger: the one place that lets an invitation email go out.
        self.invitations = InvitationLedger(self.writer, now=utc_now)
        #: Every group removal and unenrolment applied, kept across runs.
        self.removals = RemovalLog(self.writer, run=runs)

    @classmethod
    def open(
        cls,
        path: str | os.PathLike[str],
        *,
        kind: JobKind,
        fingerprint: InputFingerprint,
        options: Mapping[str, object],
        allow_changed_input: bool = False,
        batch_size: int = 256,
        batch_seconds: float = 1.0,
    ) -> Journal:
        """Create the journal at ``path``, or reopen it to resume the job it belongs to.

        ``options`` are the job settings that change what happens to rows (courses,
        groups, invite policy...), not run-time knobs. Reopening checks that kind, input
        and options match; a different input or options raises JournalMismatchError
        unless ``allow_changed_input`` (the new input and options are then recorded).
        Invitations left "attempting" by a dead run become "uncertain" here. A journal
        whose run was marked finished starts a new run instead (see the module docs):
        ``resumed`` is then False and ``new_run`` True, whatever the input and options.
        """
        if batch_size < 1 or batch_seconds < 0:
            raise InvalidInputError(
                "batch_size must be >= 1 and batch_seconds >= 0",
                argument="batch_size" if batch_size < 1 else "batch_seconds",
            )
        path = Path(path)
        options_json = _options_json(options)
        # The journal holds people's emails: create it readable by its owner only.
        try:
            os.close(os.open(path, os.O_CREAT | os.O_WRONLY, 0o600))
        except OSError as exc:
            raise JournalError(f"cannot create journal {path}: {exc.strerror or exc}") from exc
        # timeout=0: a journal in use by another process must fail now, not hang.
        # One thread at a time uses it (the writer's lock); inside a job, a worker thread.
        conn = sqlite3.connect(path, timeout=0, isolation_level=None, check_same_thread=False)
        try:
            conn.execute("PRAGMA locking_mode = EXCLUSIVE")
            conn.execute("PRAGMA journal_mode = WAL")
            conn.execute("PRAGMA synchronous = FULL")
            conn.execute("PRAGMA foreign_keys = ON")
            conn.execute("BEGIN IMMEDIATE")  # takes the lock, held until close
            exists = conn.execute(
                "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = 'job'"
            ).fetchone()[0]
            new_run = False
            if exists:
                runs, recovered, new_run = cls._resume(
                    conn,
                    path=path,
                    kind=kind,
                    fingerprint=fingerprint,
                    options_json=options_json,
                    allow_changed_input=allow_changed_input,
                )
            else:
                cls._create(
                    conn, path=path, kind=kind, fingerprint=fingerprint, options_json=options_json
                )
                runs, recovered = 1, 0
            conn.execute(REMOVALS_SCHEMA)  # both also added to journals made before them
            conn.execute(ACK_SCHEMA)
            conn.execute("COMMIT")
        except sqlite3.OperationalError as exc:
            conn.close()
            if "locked" in str(exc) or "busy" in str(exc):
                raise JournalLockedError(f"journal {path} is in use by another process") from exc
            raise JournalError(f"cannot open journal {path}: {exc}") from exc
        except sqlite3.DatabaseError as exc:
            conn.close()
            raise JournalError(f"{path} is not a usable journal: {exc}") from exc
        except BaseException:
            conn.close()
            raise
        return cls(
            conn,
            path=path,
            resumed=bool(exists) and not new_run,
            new_run=new_run,
            runs=runs,
            recovered_uncertain=recovered,
            batch_size=batch_size,
            batch_seconds=batch_seconds,
        )

    @staticmethod
    def _create(
        conn: sqlite3.Connection,
        *,
        path: Path,
        kind: JobKind,
        fingerprint: InputFingerprint,
        options_json: str,
    ) -> None:
        if conn.execute("SELECT count(*) FROM sqlite_master").fetchone()[0]:
            raise JournalError(f"{path} is an SQLite file but not a coursepath journal")
        for statement in _SCHEMA.split(";"):
            if statement.strip():
                conn.execute(statement)
        conn.execute(
            "INSERT INTO job (id, schema, kind, source, source_size, source_digest, options,"
            " created_at, runs) VALUES (1, ?, ?, ?, ?, ?, ?, ?, 1)",
            (
                SCHEMA_VERSION,
                kind,
                fingerprint.source,
                fingerprint.size,
                fingerprint.digest,
                options_json,
                utc_now(),
            ),
        )

    @staticmethod
    def _resume(
        conn: sqlite3.Connection,
        *,
        path: Path,
        kind: JobKind,
        fingerprint: InputFingerprint,
        options_json: str,
        allow_changed_input: bool,
    ) -> tuple[int, int, bool]:
        """Reopen: the runs so far, invitations recovered as uncertain, whether a new run began."""
        columns = {name for _, name, *_ in conn.execute("PRAGMA table_info(job)")}
        if columns and "finished_at" not in columns:  # a journal from before finish_run
            conn.execute("ALTER TABLE job ADD COLUMN finished_at TEXT")
        schema = conn.execute("SELECT schema FROM job WHERE id = 1").fetchone()
        for old, migrate in _MIGRATIONS:  # in order: a schema-1 journal takes both steps
            if schema == (old,):
                migrate(conn)
                schema = (old + 1,)
        row = conn.execute(
            "SELECT schema, kind, source, source_size, source_digest, options, created_at, runs,"
            " finished_at FROM job WHERE id = 1"
        ).fetchone()
        if row is None:
            raise JournalError(f"{path} is not a coursepath journal (no job record)")
        schema, old_kind, source, size, digest, old_options, created, runs, finished = row
        if schema != SCHEMA_VERSION:
            raise JournalError(
                f"journal {path} has schema {schema}; this version reads {SCHEMA_VERSION}"
            )
        if old_kind != kind:
            raise JournalMismatchError(f"journal {path} belongs to a {old_kind} job, not {kind}")
        changes = []
        if digest != fingerprint.digest:
            changes.append(
                f"input was {_input_text(source, size, digest)}, now "
                + _input_text(fingerprint.source, fingerprint.size, fingerprint.digest)
            )
        if old_options != options_json:
            changes.append(f"options were {old_options}, now {options_json}")
        if changes and not allow_changed_input and finished is None:
            (owed,) = conn.execute(
                "SELECT count(*) FROM invitations WHERE state = 'pending'"
            ).fetchone()
            advice = (
                f" {owed} invitations owed to members this job created are kept only in "
                "this journal: to send them, resume it with the changed input allowed "
                "(--allow-changed-input, allow_changed_input=True), not a new journal."
                if owed
                else " Use a new journal, or allow the changed input to resume anyway"
                " (--allow-changed-input, allow_changed_input=True)."
            )
            raise JournalMismatchError(
                f"journal {path} (created {created}) was made for a different job: "
                + "; ".join(changes)
                + "."
                + advice
            )
        conn.execute(
            "UPDATE job SET source = ?, source_size = ?, source_digest = ?, options = ?,"
            " resumed_at = ?, runs = runs + 1 WHERE id = 1",
            (fingerprint.source, fingerprint.size, fingerprint.digest, options_json, utc_now()),
        )
        # Whoever marked these died before recording an answer: the email may be out.
        recovered = _opening_ledger(conn).recover()
        if finished is not None:
            Journal._start_new_run(conn)
        return int(runs) + 1, recovered, finished is not None

    @staticmethod
    def _start_new_run(conn: sqlite3.Connection) -> None:
        """Forget the finished run's rows (and their steps); the invitation ledger stays whole.

        The ledger is keyed by member id, so the new run finds every member's history
        whatever its rows' keys are now, and cannot send any invitation twice.
        """
        conn.execute("DELETE FROM rows")
        conn.execute("UPDATE job SET finished_at = NULL WHERE id = 1")

    # -- reading -------------------------------------------------------------------------

    def has_rows(self) -> bool:
        """Whether any row was ever begun (``resumed`` says only that the file existed)."""
        return self.writer.run(
            lambda conn: conn.execute("SELECT 1 FROM rows LIMIT 1").fetchone() is not None
        )

    def get(self, key: str) -> RowState | None:
        """The state of one row, or None when the journal has never seen it."""
        return self.writer.run(partial(_read_row, key=key))

    async def fetch(self, key: str) -> RowState | None:
        """:meth:`get` off the event loop (on the writer's thread, after queued writes)."""
        return await self.writer.arun(partial(_read_row, key=key))

    def rows(self) -> Iterator[RowState]:
        """Every row the journal knows, by line (streamed in chunks, for reports)."""
        after: tuple[int, str] = (-1, "")
        while True:
            chunk = self.writer.run(partial(_read_rows_after, after=after))
            yield from chunk
            if len(chunk) < _IN_BATCH:
                return
            after = (chunk[-1].line, chunk[-1].key)

    def uncertain_invites(self) -> list[RowState]:
        """Rows whose member's invitation may or may not have been sent."""
        records = self.writer.run(
            lambda conn: conn.execute(
                f"SELECT {_ROW_COLUMNS} FROM {_ROWS}"
                " WHERE invitations.state = 'uncertain' ORDER BY line, key"
            ).fetchall()
        )
        return [_row_state(record) for record in records]

    def counts(self) -> dict[str, int]:
        """Rows by status, ledger entries by state: ``{"done": 9, "invite_sent": 9}``."""
        counts: dict[str, int] = {}
        records = self.writer.run(
            lambda conn: conn.execute(
                "SELECT status, count(*) FROM rows GROUP BY status"
            ).fetchall()
        )
        for status, n in records:
            counts[status] = n
        for state, n in self.invitations.counts().items():
            counts[f"invite_{state}"] = n
        return counts

    # -- writing -------------------------------------------------------------------------

    def finish_run(self) -> None:
        """Mark this run finished (durably): the next open starts a new run, not a resume.

        Call it when the run reached every row, failed ones included, and re-running
        should re-plan from scratch (a sync); leave it out to keep resuming (an import).
        """
        self.writer.write("UPDATE job SET finished_at = ? WHERE id = 1", (utc_now(),), now=True)
        self.commit()

    def bind_academy(self, academy: str) -> None:
        """Tie the journal to one academy (its API root); another one is refused.

        Member ids, finished rows and the invitation ledger mean nothing elsewhere: a
        journal made against the sandbox must not skip rows or invitations in production.
        """
        (bound,) = self.writer.run(
            lambda conn: conn.execute("SELECT academy FROM job WHERE id = 1").fetchone()
        )
        if bound is None:
            self._write("UPDATE job SET academy = ? WHERE id = 1", (academy,), key="job")
        elif bound != academy:
            raise JournalMismatchError(
                f"journal {self.path} belongs to the academy at {bound}, not {academy}"
            )

    def begin_row(
        self, key: str, *, line: int, email: str, invite: bool, member_id: int | None = None
    ) -> RowState:
        """Register a row before working on it (or find it from an earlier run) and return it.

        ``invite`` says whether this row wants an invitation now; what was done about
        invitations is the ledger's, untouched here. ``member_id`` records the existing
        member the row acts on (a lookup found it), so a resumed run knows no create ran.
        """
        self._begin(key, line=line, email=email, invite=invite, member_id=member_id, new=False)
        state = self.get(key)
        assert state is not None
        return state

    def begin_new_row(
        self, key: str, *, line: int, email: str, invite: bool, member_id: int | None = None
    ) -> RowState:
        """Register a row the journal has never seen (``get`` said None): one write, no read.

        The fast path of a row with no earlier state; a key that is already there raises
        JournalError, since merging with an earlier state is :meth:`begin_row`'s job.
        Only a row naming its member reads that member's ledger entry.
        """
        wanted = self._begin(key, line=line, email=email, invite=invite, member_id=member_id)
        entry = None if member_id is None else self.invitations.get(member_id)
        return _new_row_state(key, line, email, member_id, wanted, entry)

    async def begin(
        self,
        key: str,
        *,
        line: int,
        email: str,
        invite: bool,
        member_id: int | None = None,
        new: bool,
    ) -> RowState:
        """:meth:`begin_new_row` (``new``) or :meth:`begin_row`, reading off the event loop.

        Inside a job the write is only queued; a new row with no member reads nothing.
        """
        wanted = self._begin(
            key, line=line, email=email, invite=invite, member_id=member_id, new=new
        )
        if not new:
            state = await self.fetch(key)
            assert state is not None
            return state
        entry = None if member_id is None else await self.invitations.fetch(member_id)
        return _new_row_state(key, line, email, member_id, wanted, entry)

    def _begin(
        self,
        key: str,
        *,
        line: int,
        email: str,
        invite: bool,
        member_id: int | None,
        new: bool = True,
    ) -> InviteIntent:
        _check_key(key)
        wanted: InviteIntent = "pending" if invite else "not_needed"
        merge = (
            " ON CONFLICT (key) DO UPDATE SET line = excluded.line, email = excluded.email,"
            " invite = excluded.invite, member_id = coalesce(member_id, excluded.member_id)"
        )
        self._write(
            "INSERT INTO rows (key, line, email, status, invite, member_id, updated_at)"
            " VALUES (?, ?, ?, 'pending', ?, ?, ?)" + ("" if new else merge),
            (key, line, email, wanted, member_id, utc_now()),
            key=key,
            new_row=new,
        )
        return wanted

    def record_member(self, key: str, *, member_id: int, outcome: MemberOutcome) -> None:
        """Record the member step: the member exists with ``member_id`` (the step is done)."""
        self._write(
            "UPDATE rows SET member_id = ?, outcome = ?, updated_at = ? WHERE key = ?",
            (member_id, outcome, utc_now(), key),
            key=key,
        )

    def record_member_id(self, key: str, member_id: int) -> None:
        """Record who the row's member is, found by a lookup; the member step stays undone."""
        self._write(
            "UPDATE rows SET member_id = ?, updated_at = ? WHERE key = ?",
            (member_id, utc_now(), key),
            key=key,
        )

    def record_step(self, key: str, step: str, *, error: str | None = None) -> None:
        """Record that ``step`` of a row succeeded, or failed with ``error``."""
        self._write_steps(key, ((step, error),))

    def finish_row(
        self,
        key: str,
        *,
        error: str | None = None,
        invite: bool | None = None,
        steps: Sequence[tuple[str, str | None]] = (),
    ) -> None:
        """Close a row's member work: done, or failed with ``error`` (retried on resume).

        ``invite``, when given, is the row's final wish for an invitation. ``steps`` are
        the row's finished steps (name, error or None), written in the same statement:
        a crash before the finish only repeats those idempotent steps.
        """
        status: RowStatus = "done" if error is None else "failed"
        self._write(
            "UPDATE rows SET status = ?, error = ?, updated_at = ?,"
            " invite = coalesce(?, invite), steps = json_patch(steps, ?) WHERE key = ?",
            (
                status,
                None if error is None else scrub(error),
                utc_now(),
                None if invite is None else ("pending" if invite else "not_needed"),
                _steps_patch(steps),
                key,
            ),
            key=key,
        )

    def _write_steps(self, key: str, steps: Sequence[tuple[str, str | None]]) -> None:
        """Record steps of a row in one statement (merged into its steps object)."""
        self._write(
            "UPDATE rows SET steps = json_patch(steps, ?) WHERE key = ?",
            (_steps_patch(steps), key),
            key=key,
        )

    def _write(
        self, sql: str, params: tuple[object, ...], *, key: str, new_row: bool = False
    ) -> None:
        """One write of a row in the open batch, refused unless it wrote its row.

        An IntegrityError means a ``new_row`` that exists already, or a row never begun.
        Inside a job it is queued: a refusal is raised by the row's next durable wait.
        """

        def check(changed: int, error: sqlite3.Error | None) -> None:
            if error is None and changed:
                return  # the messages below are only built for a refusal
            if error is not None and not isinstance(error, sqlite3.IntegrityError):
                raise error
            problem = (
                f"journal row {key!r} exists already; use begin_row"
                if new_row and error is not None
                else f"no journal row for key {key!r}; call begin_row first"
            )
            raise JournalError(problem) from error

        self.writer.write(sql, params, check)

    def commit(self) -> None:
        """Make every write so far durable (an fsync), if the file is still this journal's.

        Raises JournalGoneError, writing nothing, once the path was deleted or replaced:
        a second job may be running on a fresh file there, so this one must stop. Runs
        on the caller's thread; a job's rows await :meth:`durable` instead.
        """
        self.writer.commit()

    async def durable(self) -> None:
        """Wait until every write so far is committed, sharing the commit with other rows."""
        await self.writer.durable()

    @contextlib.asynccontextmanager
    async def writing(self) -> AsyncIterator[Journal]:
        """Inside, writes are queued and committed in groups on a worker thread (a job).

        The event loop never runs SQLite or waits on fsync; everything is committed on
        the way out.
        """
        async with self.writer.deferring():
            yield self

    def _check_identity(self) -> None:
        try:
            now = _identity(os.stat(self.path))
        except FileNotFoundError:
            now = None
        if now != self._identity:
            what = "deleted" if now is None else "replaced by another file"
            raise JournalGoneError(
                f"journal {self.path} was {what} while this job had it open; stopping, since "
                "another job may now be running on that path (nothing more was written)"
            )

    def close(self) -> None:
        """Commit and close; the lock is released. Closing twice is harmless."""
        try:
            self.commit()
        except sqlite3.ProgrammingError:
            return  # already closed
        except JournalGoneError:
            self._conn.close()  # the batch is not committed to a file no longer ours
            raise
        self._conn.close()

    def __enter__(self) -> Journal:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if isinstance(exc, JournalGoneError):  # already said; closing must not say it twice
            with contextlib.suppress(JournalGoneError):
                self.close()
            return
        self.close()

    def __repr__(self) -> str:
        return f"<Journal {str(self.path)!r} runs={self.runs} resumed={self.resumed}>"

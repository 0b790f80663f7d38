"""The job journal: resume semantics, at-most-once invitations, fingerprints, locking, secrets."""

from __future__ import annotations

import sqlite3
import stat
from collections.abc import Mapping
from pathlib import Path

import pytest
from old_journal import rewrite

from coursepath_async.bulk import (
    InputFingerprint,
    Journal,
    JournalError,
    JournalLockedError,
    JournalMismatchError,
)

INPUT = InputFingerprint(source="people.csv", size=10, digest="sha256:abc")
OPTIONS: Mapping[str, object] = {"courses": [12], "invite": "new"}


def open_journal(
    path: Path,
    *,
    fingerprint: InputFingerprint = INPUT,
    options: Mapping[str, object] = OPTIONS,
    allow_changed_input: bool = False,
    batch_size: int = 256,
    batch_seconds: float = 1.0,
) -> Journal:
    return Journal.open(
        path,
        kind="import",
        fingerprint=fingerprint,
        options=options,
        allow_changed_input=allow_changed_input,
        batch_size=batch_size,
        batch_seconds=batch_seconds,
    )


def crash(journal: Journal) -> None:
    """Drop the connection without committing, as a SIGKILL would: the open batch is lost."""
    journal._conn.close()


@pytest.fixture
def path(tmp_path: Path) -> Path:
    return tmp_path / "job.journal.sqlite"


def test_new_then_resumed(path: Path) -> None:
    """A new journal is not resuming; reopening it is, and counts the run."""
    with open_journal(path) as journal:
        assert (journal.resumed, journal.runs) == (False, 1)
    with open_journal(path) as journal:
        assert (journal.resumed, journal.runs) == (True, 2)


def test_journal_file_is_private(path: Path) -> None:
    """The journal holds emails, so only its owner may read it."""
    open_journal(path).close()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_finished_rows_are_complete_after_resume(path: Path) -> None:
    """A done row with no invitation is complete on resume; its steps and outcome survive."""
    with open_journal(path) as journal:
        journal.begin_row("email:a@x.org", line=2, email="a@x.org", invite=False)
        journal.record_member("email:a@x.org", member_id=7, outcome="created")
        journal.record_step("email:a@x.org", "course+:12")
        journal.record_step("email:a@x.org", "group+:Sales", error="404 no such group")
        journal.finish_row("email:a@x.org")
    with open_journal(path) as journal:
        state = journal.get("email:a@x.org")
        assert state is not None
        assert state.complete
        assert (state.member_id, state.outcome) == (7, "created")
        assert state.step_done("member")
        assert state.step_done("course+:12")
        assert state.steps_failed == (("group+:Sales", "404 no such group"),)
        assert journal.get("email:other@x.org") is None


def test_begin_new_row_matches_what_the_journal_stores(path: Path) -> None:
    """The write-only fast path returns exactly the state a read-back would give."""
    with open_journal(path) as journal:
        fast = journal.begin_new_row("email:a@x.org", line=2, email="a@x.org", invite=True)
        assert journal.get("email:a@x.org") == fast
        assert (fast.status, fast.invite, fast.steps_done) == ("pending", "pending", frozenset())


def test_begin_new_row_refuses_a_known_key(path: Path) -> None:
    """A key already in the journal is refused, not merged: that is begin_row's job."""
    with open_journal(path) as journal:
        journal.begin_row("k", line=2, email="a@x.org", invite=False)
        with pytest.raises(JournalError, match="exists already; use begin_row"):
            journal.begin_new_row("k", line=2, email="a@x.org", invite=False)
        state = journal.get("k")
        assert state is not None
        assert state.invite == "not_needed"


def test_member_step_is_done_once_the_outcome_is_recorded(path: Path) -> None:
    """The member step needs no steps entry: recording the member marks it done."""
    with open_journal(path) as journal:
        journal.begin_new_row("k", line=2, email="a@x.org", invite=False)
        before = journal.get("k")
        assert before is not None
        assert not before.step_done("member")
        journal.record_member("k", member_id=3, outcome="updated")
        after = journal.get("k")
        assert after is not None
        assert after.step_done("member")
        steps = journal._conn.execute("SELECT steps FROM rows WHERE key = 'k'").fetchone()
        assert steps == ("{}",)


def test_failed_row_is_retried_on_resume(path: Path) -> None:
    """A failed row is not complete, so the resumed run redoes its unfinished steps."""
    with open_journal(path) as journal:
        journal.begin_row("k", line=2, email="a@x.org", invite=False)
        journal.finish_row("k", error="500 server error")
    with open_journal(path) as journal:
        state = journal.get("k")
        assert state is not None
        assert (state.status, state.complete, state.error) == ("failed", False, "500 server error")


def test_uncommitted_batch_is_lost_on_crash_but_commits_survive(path: Path) -> None:
    """Ordinary writes are batched (a crash loses them, to be redone); commit() makes them stick."""
    journal = open_journal(path, batch_size=10_000, batch_seconds=3600)
    journal.begin_row("kept", line=2, email="a@x.org", invite=False)
    journal.commit()
    journal.begin_row("lost", line=3, email="b@x.org", invite=False)
    crash(journal)
    with open_journal(path) as resumed:
        assert resumed.get("kept") is not None
        assert resumed.get("lost") is None


def test_batches_commit_by_size(path: Path) -> None:
    """Every batch_size writes are committed without an explicit commit()."""
    journal = open_journal(path, batch_size=2, batch_seconds=3600)
    journal.begin_row("a", line=2, email="a@x.org", invite=False)
    journal.begin_row("b", line=3, email="b@x.org", invite=False)
    journal.begin_row("c", line=4, email="c@x.org", invite=False)
    crash(journal)
    with open_journal(path) as resumed:
        assert [row.key for row in resumed.rows()] == ["a", "b"]


def test_different_input_is_refused_unless_allowed(path: Path, tmp_path: Path) -> None:
    """A changed input file or changed options refuses to resume, unless explicitly allowed."""
    source = tmp_path / "people.csv"
    source.write_text("email\na@x.org\n")
    open_journal(path, fingerprint=InputFingerprint.of_file(source)).close()
    source.write_text("email\nb@x.org\n")
    changed = InputFingerprint.of_file(source)
    with pytest.raises(JournalMismatchError, match="different job: input was"):
        open_journal(path, fingerprint=changed)
    with pytest.raises(JournalMismatchError, match="options were"):
        open_journal(path, fingerprint=changed, options={"courses": [13]})
    with open_journal(path, fingerprint=changed, allow_changed_input=True) as journal:
        assert journal.runs == 2
    open_journal(path, fingerprint=changed).close()  # the new input is now the recorded one


def test_kind_mismatch_is_always_refused(path: Path) -> None:
    """A sync must never resume an import's journal, allowed changes or not."""
    open_journal(path).close()
    with pytest.raises(JournalMismatchError, match="import job, not sync"):
        Journal.open(
            path, kind="sync", fingerprint=INPUT, options=OPTIONS, allow_changed_input=True
        )


def test_file_fingerprint_follows_content_not_path(tmp_path: Path) -> None:
    """The same bytes at another path have the same digest; different bytes do not."""
    a, b, c = tmp_path / "a.csv", tmp_path / "b.csv", tmp_path / "c.csv"
    a.write_bytes(b"email\nx@y.org\n")
    b.write_bytes(b"email\nx@y.org\n")
    c.write_bytes(b"email\nz@y.org\n")
    fa, fb, fc = (InputFingerprint.of_file(p) for p in (a, b, c))
    assert fa.digest == fb.digest != fc.digest
    assert fa.size == 14


def test_second_process_is_locked_out(path: Path) -> None:
    """While one job holds the journal, another open fails fast instead of racing it."""
    first = open_journal(path)
    with pytest.raises(JournalLockedError, match="in use"):
        open_journal(path)
    first.close()
    open_journal(path).close()


def test_not_a_journal(tmp_path: Path) -> None:
    """A random file or someone else's SQLite database is refused, not overwritten."""
    garbage = tmp_path / "garbage"
    garbage.write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(JournalError, match="not a usable journal"):
        open_journal(garbage)
    other = tmp_path / "other.sqlite"
    with sqlite3.connect(other) as conn:
        conn.execute("CREATE TABLE t (x)")
    conn.close()
    with pytest.raises(JournalError, match="not a coursepath journal"):
        open_journal(other)


def test_writes_need_a_begun_row(path: Path) -> None:
    """Recording a step or member for an unknown row is an error, not a silent no-op."""
    with open_journal(path) as journal:
        with pytest.raises(JournalError, match="begin_row"):
            journal.record_step("ghost", "course+:1")
        with pytest.raises(JournalError, match="begin_row"):
            journal.record_member("ghost", member_id=1, outcome="created")


def test_credentials_never_reach_the_file(path: Path) -> None:
    """Options naming a credential are refused, and token-like text in errors is scrubbed."""
    with pytest.raises(ValueError, match="credentials"):
        open_journal(path, options={"auth": {"api_key": "k"}})
    token = "eyJhbGciOiJIUzI1NiJ9.eyJlbWFpbCI6ImFAeC5vcmcifQ.c2lnbmF0dXJl"
    with open_journal(path) as journal:
        journal.begin_row("k", line=2, email="a@x.org", invite=False)
        journal.record_step("k", "course+:1", error=f"401 for token {token}")
        journal.finish_row("k", error=f"Authorization: Bearer {token}")
    raw = b"".join(p.read_bytes() for p in path.parent.iterdir() if p.name.startswith(path.name))
    assert b"401 for token [redacted]" in raw
    assert b"eyJhbGciOiJIUzI1NiJ9" not in raw


def test_a_schema_2_journal_keeps_its_steps_in_their_rows(path: Path) -> None:
    """A journal whose steps had a table of their own resumes with every step as it was."""
    with open_journal(path):
        pass
    rewrite(
        path,
        """
        DROP TABLE rows;
        CREATE TABLE rows (key TEXT PRIMARY KEY, line INTEGER NOT NULL, email TEXT NOT NULL,
            status TEXT NOT NULL, member_id INTEGER, outcome TEXT, error TEXT,
            invite TEXT NOT NULL, updated_at TEXT NOT NULL) WITHOUT ROWID;
        CREATE TABLE steps (row_key TEXT NOT NULL REFERENCES rows (key), step TEXT NOT NULL,
            state TEXT NOT NULL, error TEXT, PRIMARY KEY (row_key, step)) WITHOUT ROWID;
        INSERT INTO rows VALUES ('a', 2, 'a@x.org', 'failed', 1, 'created', 'e', 'pending', 'now');
        INSERT INTO rows VALUES ('b', 3, 'b@x.org', 'pending', NULL, NULL, NULL, 'pending', 'now');
        INSERT INTO steps VALUES ('a', 'group+:Sales', 'done', NULL);
        INSERT INTO steps VALUES ('a', 'course+:12', 'failed', '404 no such course');
        UPDATE job SET schema = 2;
        """,
    )
    with open_journal(path) as journal:
        a, b = journal.get("a"), journal.get("b")
        assert a is not None
        assert b is not None
        assert a.steps_done == {"member", "group+:Sales"}
        assert a.steps_failed == (("course+:12", "404 no such course"),)
        assert (b.steps_done, b.steps_failed) == (frozenset(), ())
        journal.finish_row("a", steps=[("course+:12", None)])
        finished = journal.get("a")
        assert finished is not None
        assert finished.steps_done == {"member", "group+:Sales", "course+:12"}
        assert finished.steps_failed == ()
        tables = {name for (name,) in journal._conn.execute("SELECT name FROM sqlite_master")}
        assert "steps" not in tables
        assert journal._conn.execute("SELECT schema FROM job").fetchone() == (3,)


def _row_writes(journal: Journal) -> list[str]:
    """The SQL of one row's life (begin, create, owe, claim with every flag, settle, finish)."""
    written: list[str] = []
    journal._conn.set_trace_callback(written.append)
    journal.begin_new_row("a", line=2, email="a@x.org", invite=True)
    journal.record_member("a", member_id=7, outcome="created")
    journal.invitations.owe(7, email="a@x.org")
    journal.invitations.claim(7, email="a@x.org", resend_uncertain=True, release_withheld=True)
    journal.invitations.settle(7, "sent", None)
    journal.finish_row("a", steps=[("group+:Sales", None)])
    journal._conn.set_trace_callback(None)
    return [sql for sql in written if sql.startswith(("INSERT", "UPDATE"))]


def test_no_row_write_builds_a_temporary_btree(path: Path) -> None:
    """A row's writes check their columns by equalities: no IN list's b-tree on each write."""
    with open_journal(path) as journal:
        writes = _row_writes(journal)
        assert len(writes) == 6
        for sql in writes:
            opcodes = {op for (_, op, *_) in journal._conn.execute("EXPLAIN " + sql)}
            assert "OpenEphemeral" not in opcodes, sql


def test_checks_refuse_a_value_outside_their_set(path: Path) -> None:
    """Each state column still refuses an unknown value, and an unset outcome passes."""
    with open_journal(path) as journal:
        _row_writes(journal)
        conn = journal._conn
        for sql in (
            "UPDATE rows SET status = 'lost'",
            "UPDATE rows SET outcome = 'deleted'",
            "UPDATE rows SET invite = 'sent'",
            "UPDATE invitations SET state = 'maybe'",
            "INSERT INTO removals VALUES (7, 'a@x.org', 'delete', 'Sales', 'now', 1)",
        ):
            with pytest.raises(sqlite3.IntegrityError, match="CHECK"):
                conn.execute(sql)
        conn.execute("UPDATE rows SET outcome = NULL")


def test_a_journal_with_in_list_checks_resumes(path: Path) -> None:
    """A journal an earlier release made (CHECKs as IN lists) resumes, finishes and checks."""
    with open_journal(path) as journal:
        journal.begin_new_row("a", line=2, email="a@x.org", invite=True)
        journal.record_member("a", member_id=7, outcome="created")
        journal.commit()
    rewrite(
        path,
        """
        CREATE TABLE old_rows (key TEXT PRIMARY KEY, line INTEGER NOT NULL,
            email TEXT NOT NULL,
            status TEXT NOT NULL CHECK (status IN ('pending', 'done', 'failed')),
            member_id INTEGER,
            outcome TEXT CHECK (outcome IN ('created', 'updated', 'unchanged')),
            error TEXT, invite TEXT NOT NULL CHECK (invite IN ('not_needed', 'pending')),
            updated_at TEXT NOT NULL,
            steps TEXT NOT NULL DEFAULT '{}' CHECK (json_type(steps) = 'object')
        ) WITHOUT ROWID;
        INSERT INTO old_rows SELECT * FROM rows;
        DROP TABLE rows;
        ALTER TABLE old_rows RENAME TO rows;
        """,
    )
    with open_journal(path) as journal:
        state = journal.get("a")
        assert state is not None
        assert (state.member_id, state.outcome, state.complete) == (7, "created", False)
        journal.finish_row("a", steps=[("group+:Sales", None)])
        finished = journal.get("a")
        assert finished is not None
        assert finished.status == "done"
        assert finished.steps_done == {"member", "group+:Sales"}
        with pytest.raises(sqlite3.IntegrityError, match="CHECK"):
            journal._conn.execute("UPDATE rows SET status = 'lost'")

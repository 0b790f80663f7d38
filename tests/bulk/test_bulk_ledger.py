"""The invitation ledger: keyed by member id, at most once, durable claims, withheld and owed."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from old_journal import rewrite

from coursepath_async.bulk import (
    InputFingerprint,
    InviteStateError,
    Journal,
    JournalGoneError,
    JournalLockedError,
    JournalMismatchError,
)
from coursepath_async.bulk._ledger import ApplyOptions, LedgerEntry, LedgerState, decide_invitation

INPUT = InputFingerprint(source="people.csv", size=10, digest="sha256:abc")
OPTIONS = {"invite": "new"}


def open_journal(path: Path, **options: object) -> Journal:
    return Journal.open(path, kind="import", fingerprint=INPUT, options=OPTIONS, **options)  # type: ignore[arg-type]


@pytest.fixture
def path(tmp_path: Path) -> Path:
    return tmp_path / "job.journal.sqlite"


def test_a_claim_is_durable_before_it_returns(path: Path) -> None:
    """A claimed invitation survives a crash (no close, no commit) and resumes as uncertain."""
    journal = open_journal(path, batch_size=10_000, batch_seconds=3600)
    journal.begin_row("k", line=2, email="a@x.org", invite=True)
    journal.record_member("k", member_id=7, outcome="created")
    journal.invitations.claim(7, email="a@x.org")
    journal._conn.close()  # as a SIGKILL would: nothing more is committed
    with open_journal(path) as resumed:
        assert resumed.recovered_uncertain == 1
        state = resumed.get("k")
        assert state is not None
        assert (state.member_id, state.invite, state.complete) == (7, "uncertain", False)
        with pytest.raises(InviteStateError, match="uncertain"):
            resumed.invitations.claim(7, email="a@x.org")
        assert [row.key for row in resumed.uncertain_invites()] == ["k"]


def test_transitions_that_could_send_twice_are_refused(path: Path) -> None:
    """Never from attempting or sent; uncertain only with resend, withheld only with release."""
    with open_journal(path) as journal:
        ledger = journal.invitations
        with pytest.raises(InviteStateError, match="unknown, not attempting"):
            ledger.settle(1, "sent", None)
        ledger.claim(1, email="a@x.org")
        with pytest.raises(InviteStateError, match="attempting"):
            ledger.claim(1, email="a@x.org", resend_uncertain=True, release_withheld=True)
        ledger.settle(1, "sent", None)
        with pytest.raises(InviteStateError, match="sent"):
            ledger.claim(1, email="a@x.org", resend_uncertain=True, release_withheld=True)
        ledger.claim(2, email="b@x.org")
        ledger.settle(2, "uncertain", "timeout after sending")
        with pytest.raises(InviteStateError, match="uncertain"):
            ledger.claim(2, email="b@x.org")
        ledger.claim(2, email="b@x.org", resend_uncertain=True)
        ledger.withhold(3, email="c@x.org")
        with pytest.raises(InviteStateError, match="withheld"):
            ledger.claim(3, email="c@x.org", resend_uncertain=True)
        ledger.claim(3, email="c@x.org", release_withheld=True)
        ledger.claim(4, email="d@x.org")
        ledger.settle(4, "failed", "422 inactive")
        ledger.claim(4, email="d@x.org")  # certainly not sent: may be tried again
        entry = ledger.get(4)
        assert entry is not None
        assert (entry.state, entry.attempts) == ("attempting", 2)


def test_withhold_and_owe_never_overwrite_history(path: Path) -> None:
    """A member with any entry keeps it: withholding a sent invitation changes nothing."""
    with open_journal(path) as journal:
        ledger = journal.invitations
        ledger.claim(1, email="a@x.org")
        ledger.settle(1, "sent", None)
        ledger.withhold(1, email="a@x.org")
        ledger.owe(1, email="a@x.org")
        ledger.owe(2, email="b@x.org")
        ledger.withhold(2, email="b@x.org")
        assert [(e.member_id, e.state) for e in ledger.entries()] == [(1, "sent"), (2, "pending")]


def test_history_follows_the_member_not_the_row_key(path: Path) -> None:
    """A new run whose row has another key (an externalId filled in) still sees "sent"."""
    journal = Journal.open(path, kind="sync", fingerprint=INPUT, options={"invite": "all"})
    with journal:
        journal.begin_row("ada@x.org", line=2, email="ada@x.org", invite=True)
        journal.record_member("ada@x.org", member_id=9, outcome="created")
        journal.invitations.claim(9, email="ada@x.org")
        journal.invitations.settle(9, "sent", None)
        journal.finish_row("ada@x.org")
        journal.finish_run()
    tonight = InputFingerprint(source="people.csv", size=12, digest="sha256:def")
    with Journal.open(path, kind="sync", fingerprint=tonight, options={"invite": "all"}) as again:
        assert again.new_run
        assert list(again.rows()) == []
        state = again.begin_row("ext:HR-1", line=2, email="ada@x.org", invite=True, member_id=9)
        assert (state.invite, state.complete) == ("sent", False)
        with pytest.raises(InviteStateError, match="sent"):
            again.invitations.claim(9, email="ada@x.org", resend_uncertain=True)


def test_a_journal_serves_one_academy(path: Path) -> None:
    """Binding another academy to a journal is refused: its member ids mean nothing there."""
    with open_journal(path) as journal:
        journal.bind_academy("https://acme.example")
        journal.bind_academy("https://acme.example")
    with open_journal(path) as journal, pytest.raises(JournalMismatchError, match="acme"):
        journal.bind_academy("https://127.0.0.1:8470")


@pytest.mark.parametrize("how", ["unlink", "replace"])
def test_a_journal_deleted_or_replaced_mid_run_stops_the_job(path: Path, how: str) -> None:
    """Once its path names another file (or none), the next durable step raises; nothing lands."""
    journal = open_journal(path)
    journal.begin_row("k", line=2, email="a@x.org", invite=True)
    journal.record_member("k", member_id=7, outcome="created")
    os.unlink(path)
    if how == "replace":
        second = open_journal(path)  # a second job now holds a fresh file at the path
        second.close()
    with pytest.raises(JournalGoneError, match=r"deleted|replaced"):
        journal.invitations.claim(7, email="a@x.org")
    with pytest.raises(JournalGoneError):
        journal.close()
    if how == "replace":
        with open_journal(path) as fresh:
            assert fresh.invitations.get(7) is None  # nothing of the first job's went there


def test_the_lock_still_refuses_a_second_job(path: Path) -> None:
    """The check adds to the lock; it does not replace it."""
    with open_journal(path), pytest.raises(JournalLockedError):
        open_journal(path)


def test_sigkill_right_after_a_claim_resumes_as_uncertain(path: Path) -> None:
    """A real SIGKILL right after the claim resumes with the invitation uncertain."""
    script = textwrap.dedent(
        f"""
        import os, signal
        from coursepath_async.bulk import InputFingerprint, Journal
        fp = InputFingerprint(source={INPUT.source!r}, size={INPUT.size!r}, digest={INPUT.digest!r})
        j = Journal.open({str(path)!r}, kind="import", fingerprint=fp, options={OPTIONS!r},
                         batch_size=10_000, batch_seconds=3600)
        j.begin_row("k", line=2, email="a@x.org", invite=True)
        j.record_member("k", member_id=5, outcome="created")
        j.invitations.claim(5, email="a@x.org")
        os.kill(os.getpid(), signal.SIGKILL)
        """
    )
    result = subprocess.run([sys.executable, "-c", script], check=False, timeout=60)
    assert result.returncode == -signal.SIGKILL
    with open_journal(path) as journal:
        state = journal.get("k")
        assert state is not None
        assert state.invite == "uncertain"
        assert journal.recovered_uncertain == 1


def _entry(state: LedgerState) -> LedgerEntry:
    return LedgerEntry(member_id=1, email="a@x.org", state=state, attempts=1, reason="why")


NEW = ApplyOptions(invite="new")


@pytest.mark.parametrize(
    ("row_wants", "created", "entry", "options", "expected"),
    [
        (None, True, None, NEW, (True, "not_requested")),
        (None, None, None, NEW, (False, "withheld")),
        (None, False, None, NEW, (False, "not_requested")),
        (None, None, None, ApplyOptions(invite="all"), (True, "not_requested")),
        (True, None, None, ApplyOptions(), (True, "not_requested")),
        (False, True, None, NEW, (False, "not_requested")),
        (
            None,
            True,
            _entry("sent"),
            ApplyOptions(invite="all", resend_uncertain=True),
            (False, "skipped_already_sent"),
        ),
        (None, True, _entry("uncertain"), NEW, (False, "uncertain")),
        (
            None,
            True,
            _entry("attempting"),
            ApplyOptions(invite="new", resend_uncertain=True),
            (True, "not_requested"),
        ),
        (None, False, _entry("withheld"), ApplyOptions(invite="all"), (False, "withheld")),
        (
            None,
            False,
            _entry("withheld"),
            ApplyOptions(release_withheld=True),
            (True, "not_requested"),
        ),
        (None, False, _entry("pending"), NEW, (True, "not_requested")),
        (None, False, _entry("failed"), NEW, (True, "not_requested")),
        (None, False, _entry("pending"), ApplyOptions(), (True, "not_requested")),
    ],
)
def test_decide_invitation(
    row_wants: bool | None,
    created: bool | None,
    entry: LedgerEntry | None,
    options: ApplyOptions,
    expected: tuple[bool, str],
) -> None:
    """The decision table: history first, then the row, then the policy; unknown withholds."""
    decision = decide_invitation(row_wants=row_wants, created=created, entry=entry, options=options)
    assert (decision.send, decision.invitation) == expected
    if decision.invitation == "withheld":
        assert decision.reason


def test_a_withheld_decision_says_why_and_how_to_release() -> None:
    """The reason names the uncertainty and the flag that releases it."""
    decision = decide_invitation(row_wants=None, created=None, entry=None, options=NEW)
    assert "could not tell whether this run created the member" in (decision.reason or "")
    assert "--release-withheld" in (decision.reason or "")


def test_a_schema_1_journal_is_migrated_to_the_ledger(path: Path) -> None:
    """Per-row invitation states of an old journal become ledger entries by member id."""
    with open_journal(path):
        pass
    rewrite(
        path,
        """
        DROP TABLE invitations;
        ALTER TABLE job DROP COLUMN academy;
        UPDATE job SET schema = 1;
        DROP TABLE rows;
        CREATE TABLE rows (key TEXT PRIMARY KEY, line INTEGER NOT NULL, email TEXT NOT NULL,
            status TEXT NOT NULL, member_id INTEGER, outcome TEXT, error TEXT,
            invite TEXT NOT NULL, invite_attempts INTEGER NOT NULL DEFAULT 0,
            invite_attempted_at TEXT, invite_error TEXT, updated_at TEXT NOT NULL);
        CREATE TABLE steps (row_key TEXT NOT NULL, step TEXT NOT NULL, state TEXT NOT NULL,
            error TEXT, PRIMARY KEY (row_key, step));
        INSERT INTO rows VALUES ('a', 2, 'a@x.org', 'done', 1, 'created', NULL, 'sent', 1,
            NULL, NULL, 'now');
        INSERT INTO rows VALUES ('b', 3, 'b@x.org', 'done', 2, 'created', NULL, 'attempting',
            1, NULL, NULL, 'now');
        INSERT INTO rows VALUES ('c', 4, 'c@x.org', 'pending', NULL, NULL, NULL, 'pending', 0,
            NULL, NULL, 'now');
        """,
    )
    with open_journal(path) as journal:
        assert journal.recovered_uncertain == 1
        states = {e.member_id: e.state for e in journal.invitations.entries()}
        assert states == {1: "sent", 2: "uncertain"}
        assert {row.key: row.invite for row in journal.rows()} == {
            "a": "sent",
            "b": "uncertain",
            "c": "pending",
        }

"""Journal runs: a finished run is not resumed, but its invitation history carries over."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from coursepath_async.bulk import InputFingerprint, Journal

INPUT = InputFingerprint(source="people.csv", size=10, digest="sha256:abc")
TONIGHT = InputFingerprint(source="people.csv", size=12, digest="sha256:def")


def open_sync(path: Path, fingerprint: InputFingerprint = INPUT) -> Journal:
    return Journal.open(path, kind="sync", fingerprint=fingerprint, options={"invite": "all"})


def _first_run(path: Path) -> None:
    """One row per invitation outcome, each done with a member step and a group step."""
    with open_sync(path) as journal:
        for n, key in enumerate(("sent", "uncertain", "failed", "plain", "owed")):
            journal.begin_row(key, line=n + 2, email=f"{key}@x.test", invite=key != "plain")
            journal.record_member(key, member_id=n + 1, outcome="created")
            journal.record_step(key, "group+:Night")
            journal.finish_row(key)
        ledger = journal.invitations
        for member_id, state in ((1, "sent"), (2, "uncertain"), (3, "failed")):
            ledger.claim(member_id, email=f"{state}@x.test")
            ledger.settle(member_id, state, None if state == "sent" else state)  # type: ignore[arg-type]
        ledger.owe(5, email="owed@x.test")
        journal.finish_run()


def test_a_finished_run_starts_a_new_run_keeping_invitations(tmp_path: Path) -> None:
    """After finish_run the next open forgets every row but keeps the ledger by member id."""
    path = tmp_path / "j.sqlite"
    _first_run(path)
    with open_sync(path, TONIGHT) as journal:  # tonight's file differs: no mismatch error
        assert (journal.resumed, journal.new_run, journal.runs) == (False, True, 2)
        assert list(journal.rows()) == []
        states = {e.member_id: e.state for e in journal.invitations.entries()}
        assert states == {1: "sent", 2: "uncertain", 3: "failed", 5: "pending"}
        # Tonight's rows carry other keys (an externalId filled in): history still applies.
        again = journal.begin_row("ext:1", line=2, email="sent@x.test", invite=True, member_id=1)
        assert again.invite == "sent"
        unsure = journal.begin_row("ext:2", line=3, email="u@x.test", invite=True, member_id=2)
        assert unsure.invite == "uncertain"
        assert not unsure.complete


def test_an_unfinished_run_still_resumes(tmp_path: Path) -> None:
    """Without finish_run (interrupted, crashed) reopening resumes: finished rows stay done."""
    path = tmp_path / "j.sqlite"
    with open_sync(path) as journal:
        journal.begin_row("a", line=2, email="a@x.test", invite=False)
        journal.record_member("a", member_id=1, outcome="created")
        journal.finish_row("a")
    with open_sync(path) as journal:
        assert (journal.resumed, journal.new_run, journal.runs) == (True, False, 2)
        state = journal.get("a")
        assert state is not None
        assert state.complete
        journal.finish_run()
    with open_sync(path) as journal:
        assert journal.new_run
        assert journal.get("a") is None
    with open_sync(path) as journal:  # the new run was not finished: it resumes
        assert journal.resumed
        assert not journal.new_run


def test_a_journal_from_before_finish_run_still_opens(tmp_path: Path) -> None:
    """A journal without the finished column is upgraded on open and resumes as before."""
    path = tmp_path / "j.sqlite"
    with open_sync(path) as journal:
        journal.begin_row("a", line=2, email="a@x.test", invite=False)
        journal.finish_row("a")
    conn = sqlite3.connect(path)
    conn.execute("ALTER TABLE job DROP COLUMN finished_at")
    conn.commit()
    conn.close()
    with open_sync(path) as journal:
        assert journal.resumed
        assert not journal.new_run
        assert journal.get("a") is not None
        journal.finish_run()
    with open_sync(path) as journal:
        assert journal.new_run

"""The invitation ledger: every invitation a journal's runs owed, withheld or attempted, by member.

The one place that decides whether an invitation email may go out
(:func:`decide_invitation`, pure) and sends it (:meth:`InvitationLedger.send_once`).
It is keyed by the academy's member id, never by a row's key, so a file whose key column changes (an
``externalId`` filled in, tonight's new export) still finds the member's history, and no
run of the journal sends a member a second email, whatever its options say.

States and transitions (each write goes through :meth:`InvitationLedger._set`)::

    (none) ──owe──► pending ──claim──► attempting ──settle──► sent
    (none) ──withhold──► withheld ─claim(release)─┘      ├──► failed ──claim──► attempting
                                                         └──► uncertain ─claim(resend)─┘
    uncertain / withheld ──acknowledge──► acknowledged (a mark beside the state: final)

``pending``: this job created the member and means to invite it, but has not tried yet
(the row's other steps failed): a later run sends it. ``withheld``: this job could not
tell whether it created the member (a create with an unknown outcome, then "exists"),
so an invitation meant for new people waits for a deliberate release. ``attempting`` is
committed (fsynced) before the request; a run that dies leaves it, and the next open
turns it into ``uncertain``: never re-sent without ``resend_uncertain``.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Awaitable, Callable, Iterator
from functools import partial
from typing import Final, Literal, cast, get_args

from attrs import frozen

from .._exceptions import APIConnectionError, APIStatusError, UncertainOutcomeError
from .._redact import scrub
from ._errors import InviteStateError
from ._report import Invitation
from ._writer import JournalWriter, one_of

#: Which members a job invites besides rows that say so: none, those it creates, all.
InvitePolicy = Literal["none", "new", "all"]

__all__ = [
    "ApplyOptions",
    "InvitationLedger",
    "InviteDecision",
    "LedgerEntry",
    "LedgerState",
    "decide_invitation",
]

LedgerState = Literal["pending", "withheld", "attempting", "sent", "uncertain", "failed"]

SCHEMA: Final = f"""
CREATE TABLE invitations (
    member_id    INTEGER PRIMARY KEY,
    email        TEXT NOT NULL,
    state        TEXT NOT NULL CHECK {one_of("state", get_args(LedgerState))},
    attempts     INTEGER NOT NULL DEFAULT 0,
    attempted_at TEXT,
    reason       TEXT,
    updated_at   TEXT NOT NULL
) WITHOUT ROWID
"""

#: What a claim may start from: never ``attempting`` or ``sent``.
_CLAIMABLE: Final = ("pending", "failed")

WITHHELD_REASON: Final = (
    "could not tell whether this run created the member (its create had an unknown "
    "outcome, then the email already existed); not invited: release with --release-withheld"
)
CUT_OFF_REASON: Final = "the run stopped while sending; the invitation may have been sent"
EXISTING_MEMBER: Final = (
    "existing member: --invite invites the members this run creates; use --invite all"
)
NOT_ASKED: Final = "not asked: no --invite, and the row's invite column is blank"
#: A member this job created for an invitation: owed until sent, whatever a re-run says.
OWED_REASON: Final = "new member created by this job to be invited: owed until sent"
RETRY_REASON: Final = "an earlier attempt was refused by the academy; sending again"
RESEND_REASON: Final = "an earlier attempt may have been sent; re-sent (--resend-uncertain)"
RELEASE_REASON: Final = "withheld by an earlier run; released (--release-withheld)"


@frozen(kw_only=True)
class LedgerEntry:
    """What the ledger knows about one member's invitation."""

    member_id: int
    email: str
    state: LedgerState
    attempts: int
    reason: str | None
    #: When an operator acknowledged this uncertain or withheld invitation, if ever.
    acknowledged_at: str | None = None


_COLUMNS: Final = (
    "invitations.member_id, email, invitations.state, attempts, reason, acknowledgements.at"
)
_ENTRIES: Final = (
    "invitations LEFT JOIN acknowledgements ON acknowledgements.member_id = invitations.member_id"
)

#: The operator's acknowledgements of invitations no run may send or settle on its own;
#: a table of its own so journals made before it gain it on open (``IF NOT EXISTS``).
ACK_SCHEMA: Final = """
CREATE TABLE IF NOT EXISTS acknowledgements (
    member_id INTEGER PRIMARY KEY,
    state     TEXT NOT NULL,
    at        TEXT NOT NULL
) WITHOUT ROWID
"""
#: What ``acknowledge_uncertain`` settles: delivery unknown, or ownership unknown.
ACKNOWLEDGEABLE: Final = ("uncertain", "withheld")


def _entry(record: tuple[object, ...]) -> LedgerEntry:
    member_id, email, state, attempts, reason, acknowledged = record
    return LedgerEntry(
        member_id=cast(int, member_id),
        email=cast(str, email),
        state=cast(LedgerState, state),
        attempts=cast(int, attempts),
        reason=cast("str | None", reason),
        acknowledged_at=cast("str | None", acknowledged),
    )


@frozen(kw_only=True)
class ApplyOptions:
    """How invitations are decided, on top of each row's own invite column."""

    invite: InvitePolicy = "none"
    #: Re-send invitations an earlier run left uncertain (may email someone twice).
    resend_uncertain: bool = False
    #: Send invitations withheld because this job could not tell it created the member.
    release_withheld: bool = False
    #: Settle uncertain and withheld invitations as they are: recorded, never sent by
    #: this journal, and no longer a failure of the run.
    acknowledge_uncertain: bool = False


@frozen
class InviteDecision:
    """Whether to send now, else what the report says and why."""

    send: bool
    invitation: Invitation = "not_requested"
    reason: str | None = None


def decide_invitation(
    *,
    row_wants: bool | None,
    created: bool | None,
    entry: LedgerEntry | None,
    options: ApplyOptions,
) -> InviteDecision:
    """Whether a row's member gets an invitation now: pure, from what is known for sure.

    ``row_wants`` is the row's own invite column (None: blank); ``created`` whether this
    job created the member (None: it cannot tell); ``entry`` the member's ledger history.
    An invitation meant for new people is withheld, never guessed, when ``created`` is
    None; history wins over every option: sent is never sent again, uncertain only with
    ``resend_uncertain``, withheld only with ``release_withheld``, and one owed (pending:
    an earlier run created the member meaning to invite it) is sent whatever the options
    now say. Every decision carries its reason, for the report.
    """
    if row_wants is False:
        return InviteDecision(False, reason="the row's invite column says no")
    if entry is not None:
        if entry.state in ACKNOWLEDGEABLE and (
            entry.acknowledged_at is not None or options.acknowledge_uncertain
        ):
            when = "by this run" if entry.acknowledged_at is None else entry.acknowledged_at
            return InviteDecision(
                False,
                "acknowledged",
                f"{entry.state}; acknowledged {when} (--acknowledge-uncertain): never sent",
            )
        if entry.state == "sent":
            return InviteDecision(False, "skipped_already_sent", "sent by an earlier run")
        if entry.state in ("attempting", "uncertain"):
            if options.resend_uncertain:
                return InviteDecision(True, reason=RESEND_REASON)
            return InviteDecision(False, "uncertain", entry.reason or CUT_OFF_REASON)
        if entry.state == "withheld":
            if options.release_withheld:
                return InviteDecision(True, reason=RELEASE_REASON)
            return InviteDecision(False, "withheld", entry.reason)
        if entry.state == "pending":
            # Owed by the run that created the member: a re-run with other options
            # (a corrected course, --invite left out) must not strand the new hire.
            return InviteDecision(True, reason=OWED_REASON)
        # failed: the academy refused an earlier attempt; sent again when still asked for
        if row_wants or options.invite != "none":
            return InviteDecision(True, reason=RETRY_REASON)
    if row_wants:
        return InviteDecision(True, reason="the row's invite column says yes")
    if options.invite == "all":
        return InviteDecision(True, reason="--invite all invites every row's member")
    if options.invite == "new":
        if created is None:
            return InviteDecision(False, "withheld", WITHHELD_REASON)
        if created:
            return InviteDecision(True, reason=OWED_REASON)
        return InviteDecision(False, reason=EXISTING_MEMBER)
    return InviteDecision(False, reason=NOT_ASKED)


class InvitationLedger:
    """The journal's invitation ledger; writes join the journal's batch, claims commit it."""

    def __init__(self, writer: JournalWriter, *, now: Callable[[], str]) -> None:
        self._writer = writer
        self._now = now

    def get(self, member_id: int) -> LedgerEntry | None:
        """The member's entry, or None when no run owed, withheld or attempted one."""
        return self._writer.run(partial(_read_entry, member_id=member_id))

    async def fetch(self, member_id: int) -> LedgerEntry | None:
        """:meth:`get` off the event loop, after the writes queued before it."""
        return await self._writer.arun(partial(_read_entry, member_id=member_id))

    def entries(self, *states: LedgerState) -> Iterator[LedgerEntry]:
        """Every entry (in one of ``states`` when given), by member id."""
        where = f" WHERE invitations.state IN ({', '.join('?' * len(states))})" if states else ""
        records = self._writer.run(
            lambda conn: conn.execute(
                f"SELECT {_COLUMNS} FROM {_ENTRIES}{where} ORDER BY invitations.member_id", states
            ).fetchall()
        )
        for record in records:
            yield _entry(record)

    def counts(self) -> dict[LedgerState, int]:
        """Entries by state."""
        records = self._writer.run(
            lambda conn: conn.execute(
                "SELECT state, count(*) FROM invitations GROUP BY state"
            ).fetchall()
        )
        return {cast(LedgerState, state): n for state, n in records}

    def acknowledge(self, entry: LedgerEntry) -> None:
        """Record that an operator accepted this uncertain or withheld invitation as settled."""
        if entry.state not in ACKNOWLEDGEABLE:
            raise InviteStateError(
                f"only uncertain or withheld invitations can be acknowledged; member "
                f"{entry.member_id}'s is {entry.state}"
            )
        self._writer.write(
            "INSERT INTO acknowledgements (member_id, state, at) VALUES (?, ?, ?)"
            " ON CONFLICT (member_id) DO NOTHING",
            (entry.member_id, entry.state, self._now()),
        )

    def owe(self, member_id: int, *, email: str) -> None:
        """Record that this job created the member and means to invite it (no-op if known)."""
        self._insert(member_id, email, "pending", None)

    def withhold(self, member_id: int, *, email: str, reason: str = WITHHELD_REASON) -> None:
        """Hold back an invitation this job may not owe; a member with history is left alone."""
        self._insert(member_id, email, "withheld", reason)

    def claim(
        self,
        member_id: int,
        *,
        email: str,
        resend_uncertain: bool = False,
        release_withheld: bool = False,
    ) -> None:
        """Durably mark the invitation "attempting"; send only after this returns.

        Allowed from no entry, ``pending`` or ``failed``; from ``uncertain`` only with
        ``resend_uncertain``, from ``withheld`` only with ``release_withheld``; never from
        ``attempting`` or ``sent`` (InviteStateError, nothing written). Commits on this
        thread; a job's rows use :meth:`claim_durably`, which shares a commit.
        """
        sql, params = self._claim(member_id, email, resend_uncertain, release_withheld)
        changed = self._writer.write(sql, params, now=True)
        self._claimed(member_id, changed)
        self._writer.commit()

    async def claim_durably(
        self,
        member_id: int,
        *,
        email: str,
        resend_uncertain: bool = False,
        release_withheld: bool = False,
    ) -> None:
        """:meth:`claim`, returning once a group commit holding the mark is on disk."""
        sql, params = self._claim(member_id, email, resend_uncertain, release_withheld)
        changed = await self._writer.write_durably(sql, params)
        if not changed:
            self._claimed(member_id, changed, await self.fetch(member_id))

    def _claim(
        self, member_id: int, email: str, resend_uncertain: bool, release_withheld: bool
    ) -> tuple[str, tuple[object, ...]]:
        """One conditional upsert: the claim, checked by its row count (no read first)."""
        allowed = [*_CLAIMABLE]
        if resend_uncertain:
            allowed.append("uncertain")
        if release_withheld:
            allowed.append("withheld")
        now = self._now()
        return (
            "INSERT INTO invitations (member_id, email, state, attempts, attempted_at,"
            " updated_at) VALUES (?, ?, 'attempting', 1, ?, ?)"
            " ON CONFLICT (member_id) DO UPDATE SET state = 'attempting',"
            " attempts = attempts + 1, attempted_at = excluded.attempted_at, reason = NULL,"
            f" updated_at = excluded.updated_at WHERE {one_of('state', allowed)}",
            (member_id, email, now, now),
        )

    def _claimed(self, member_id: int, changed: int, entry: LedgerEntry | None = None) -> None:
        if not changed:
            entry = entry or self.get(member_id)
            current = "unknown" if entry is None else entry.state
            raise InviteStateError(
                f"refusing to send the invitation of member {member_id}: it is {current}"
            )

    def settle(
        self, member_id: int, state: Literal["sent", "failed", "uncertain"], reason: str | None
    ) -> None:
        """Record the answer to a claimed invitation (batched: losing it reads as uncertain)."""

        def check(changed: int, error: sqlite3.Error | None) -> None:
            if error is not None:
                raise error
            if not changed:
                entry = self._writer.peek(partial(_read_entry, member_id=member_id))
                current = "unknown" if entry is None else entry.state
                raise InviteStateError(
                    f"invitation of member {member_id} is {current}, not attempting"
                )

        self._writer.write(
            "UPDATE invitations SET state = ?, reason = ?, updated_at = ?"
            " WHERE member_id = ? AND state = 'attempting'",
            (state, None if reason is None else scrub(reason), self._now(), member_id),
            check,
        )

    async def send_once(
        self,
        member_id: int,
        *,
        email: str,
        request: Callable[[], Awaitable[object]],
        options: ApplyOptions,
    ) -> InviteDecision:
        """Claim, send, settle: the one way an invitation goes out; returns what happened.

        A failure that may have reached the server (a timeout after sending, a 5xx the
        client reports as uncertain) is "uncertain" and never retried here.
        """
        await self.claim_durably(
            member_id,
            email=email,
            resend_uncertain=options.resend_uncertain,
            release_withheld=options.release_withheld,
        )
        try:
            await request()
        except UncertainOutcomeError as exc:
            return self._answered(member_id, "uncertain", str(exc))
        except APIConnectionError as exc:  # a timeout too: ``sent`` says whether it went out
            return self._answered(member_id, "uncertain" if exc.sent else "failed", str(exc))
        except APIStatusError as exc:
            return self._answered(member_id, "failed", str(exc))
        return self._answered(member_id, "sent", None)

    def _answered(
        self, member_id: int, state: Literal["sent", "failed", "uncertain"], reason: str | None
    ) -> InviteDecision:
        self.settle(member_id, state, reason)
        return InviteDecision(False, state, reason)

    def recover(self) -> int:
        """After a run died mid-send: every "attempting" becomes "uncertain"; returns how many."""
        return self._writer.write(
            "UPDATE invitations SET state = 'uncertain', reason = ?, updated_at = ?"
            " WHERE state = 'attempting'",
            (CUT_OFF_REASON, self._now()),
        )

    def _insert(self, member_id: int, email: str, state: LedgerState, reason: str | None) -> None:
        self._writer.write(
            "INSERT INTO invitations (member_id, email, state, reason, updated_at)"
            " VALUES (?, ?, ?, ?, ?) ON CONFLICT (member_id) DO NOTHING",
            (member_id, email, state, reason, self._now()),
        )


def _read_entry(conn: sqlite3.Connection, *, member_id: int) -> LedgerEntry | None:
    record = conn.execute(
        f"SELECT {_COLUMNS} FROM {_ENTRIES} WHERE invitations.member_id = ?", (member_id,)
    ).fetchone()
    return None if record is None else _entry(record)

"""The journal's error tree, apart so the journal and its invitation ledger can share it."""

from __future__ import annotations

from .._exceptions import CoursepathError

__all__ = [
    "InviteStateError",
    "JournalError",
    "JournalGoneError",
    "JournalLockedError",
    "JournalMismatchError",
]


class JournalError(CoursepathError):
    """The journal cannot be used: not a journal, corrupt, or misused."""


class JournalLockedError(JournalError):
    """Another process has the journal open (one job per journal at a time)."""


class JournalMismatchError(JournalError):
    """The journal was made for another job kind, input, options or academy."""


class JournalGoneError(JournalError):
    """The journal file was deleted or replaced while a job had it open: the job stops."""


class InviteStateError(JournalError):
    """An invitation transition that could send an email twice was refused."""

"""The bulk jobs' error tree (journal, preflight, removals), apart so every module can share it."""

from __future__ import annotations

from collections.abc import Sequence

from .._exceptions import CoursepathError

__all__ = [
    "InviteStateError",
    "JournalError",
    "JournalGoneError",
    "JournalLockedError",
    "JournalMismatchError",
    "PreflightError",
    "RemovalsRefusedError",
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


class PreflightError(CoursepathError):
    """A bulk job refused before its first write: the academy, the key or an id is wrong.

    ``problems`` lists each thing found wrong, one sentence each (the message joins them).
    Nothing was written to the academy or the journal.
    """

    def __init__(self, problems: Sequence[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = tuple(problems)


class RemovalsRefusedError(CoursepathError):
    """A sync refused, before its first write, to apply the removals it planned.

    Either more than ``limit`` (``max_removals``) were planned, or the confirmation
    callback declined (``limit`` is then None). ``sample`` holds a few planned removals.
    """

    def __init__(
        self, message: str, *, planned: int, limit: int | None, sample: Sequence[str]
    ) -> None:
        super().__init__(message)
        self.planned = planned
        self.limit = limit
        self.sample = tuple(sample)

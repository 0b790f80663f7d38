"""Bulk jobs: import members from CSV or any rows, sync to a desired state, export.

This package holds the pure layer the async jobs are built on: streaming row readers
that account for every input line, the sync planner, the crash-safe SQLite journal and
the run report; the typed plan steps are in :mod:`coursepath_async.bulk.steps`.
Error tree (all under :class:`~coursepath_async.CoursepathError`)::

    BulkInputError (an InvalidInputError, so a ValueError)  the input as a whole is unusable
    JournalError                        the journal cannot be used
    ├── JournalLockedError              another process has it open
    ├── JournalMismatchError            it belongs to another job, input, options or academy
    ├── JournalGoneError                its file was deleted or replaced mid-run: the job stops
    └── InviteStateError                a transition that could send an invitation twice
    ReportError                         the report does not account for every row
    PreflightError                      a job refused before its first write (key, admin, ids)
    RemovalsRefusedError                a sync's planned removals over max_removals, or declined
"""

from ._academy import AcademyIndex, CurrentMember
from ._errors import PreflightError, RemovalsRefusedError
from ._export import ExportStats, export_members, export_results
from ._import import ImportOptions, import_members, open_journal
from ._journal import (
    InputFingerprint,
    InviteState,
    InviteStateError,
    JobKind,
    Journal,
    JournalError,
    JournalGoneError,
    JournalLockedError,
    JournalMismatchError,
    MemberOutcome,
    RowState,
    RowStatus,
)
from ._plan import (
    InvitePolicy,
    Plan,
    PlanCounts,
    PlanOptions,
    RowPlan,
    plan_row,
    plan_sync,
)
from ._preflight import preflight
from ._removals import Removal
from ._report import (
    Action,
    ActionKind,
    ImportReport,
    Invitation,
    ReportError,
    ReportTotals,
    RowOutcome,
    RowReport,
)
from ._rows import BulkInputError, CsvRows, MappingRows, MemberRow, ReadStats, RowError
from ._sync import SyncOptions, SyncResult, removal_limit, removal_sample, sync_members
from ._writers import ExportFormat

# The step classes live in ``bulk.steps``; these names stay importable from here.
from .steps import AddToGroup as AddToGroup
from .steps import CreateMember as CreateMember
from .steps import EnrollCourse as EnrollCourse
from .steps import EnrollProgram as EnrollProgram
from .steps import FieldChange as FieldChange
from .steps import RemoveFromGroup as RemoveFromGroup
from .steps import SendInvite as SendInvite
from .steps import Step as Step
from .steps import UnenrollCourse as UnenrollCourse
from .steps import UpdateMember as UpdateMember

__all__ = [
    "AcademyIndex",
    "Action",
    "ActionKind",
    "BulkInputError",
    "CsvRows",
    "CurrentMember",
    "ExportFormat",
    "ExportStats",
    "ImportOptions",
    "ImportReport",
    "InputFingerprint",
    "Invitation",
    "InvitePolicy",
    "InviteState",
    "InviteStateError",
    "JobKind",
    "Journal",
    "JournalError",
    "JournalGoneError",
    "JournalLockedError",
    "JournalMismatchError",
    "MappingRows",
    "MemberOutcome",
    "MemberRow",
    "Plan",
    "PlanCounts",
    "PlanOptions",
    "PreflightError",
    "ReadStats",
    "Removal",
    "RemovalsRefusedError",
    "ReportError",
    "ReportTotals",
    "RowError",
    "RowOutcome",
    "RowPlan",
    "RowReport",
    "RowState",
    "RowStatus",
    "SyncOptions",
    "SyncResult",
    "export_members",
    "export_results",
    "import_members",
    "open_journal",
    "plan_row",
    "plan_sync",
    "preflight",
    "removal_limit",
    "removal_sample",
    "sync_members",
]

"""The public names of coursepath_async.bulk, pinned so a change to them is deliberate."""

from __future__ import annotations

import coursepath_async.bulk as bulk

EXPECTED = [
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


def test_all_is_pinned_and_sorted() -> None:
    """__all__ lists exactly the expected names, sorted, and each one exists."""
    assert bulk.__all__ == EXPECTED
    assert all(hasattr(bulk, name) for name in EXPECTED)


STEPS = [
    "AddToGroup",
    "CreateMember",
    "EnrollCourse",
    "EnrollProgram",
    "FieldChange",
    "RemoveFromGroup",
    "SendInvite",
    "Step",
    "UnenrollCourse",
    "UpdateMember",
]


def test_steps_namespace_is_pinned_and_still_reachable_from_bulk() -> None:
    """bulk.steps exports the step types; the old ``bulk.X`` names are the same objects."""
    import coursepath_async.bulk.steps as steps

    assert steps.__all__ == STEPS
    assert not set(STEPS) & set(bulk.__all__)
    for name in STEPS:
        assert getattr(bulk, name) is getattr(steps, name), name


def test_errors_belong_to_the_sdk_hierarchy() -> None:
    """Every bulk error is a CoursepathError; BulkInputError is also a ValueError."""
    from coursepath_async import CoursepathError

    for error in (bulk.BulkInputError, bulk.JournalError, bulk.ReportError):
        assert issubclass(error, CoursepathError)
    assert issubclass(bulk.BulkInputError, ValueError)
    for error in (
        bulk.JournalLockedError,
        bulk.JournalMismatchError,
        bulk.JournalGoneError,
        bulk.InviteStateError,
    ):
        assert issubclass(error, bulk.JournalError)

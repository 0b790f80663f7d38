"""The typed steps of a sync or import plan (``RowPlan.steps``), one class per kind.

Match on them to inspect a :class:`~coursepath_async.bulk.Plan` before applying it::

    from coursepath_async.bulk.steps import RemoveFromGroup

    removals = [s for row in plan.rows for s in row.steps if isinstance(s, RemoveFromGroup)]
"""

from ._steps import (
    AddToGroup,
    CreateMember,
    EnrollCourse,
    EnrollProgram,
    FieldChange,
    RemoveFromGroup,
    SendInvite,
    Step,
    UnenrollCourse,
    UpdateMember,
)

__all__ = [
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

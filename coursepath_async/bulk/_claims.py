"""Which line of a run acts on each member: the run-time claims beside the row pipeline.

Unlike the planner this is mutable state, one per run: a sync's planning pass and an
import's rows take claims as they go, so two rows never act on the same person.
"""

from __future__ import annotations

from collections.abc import Iterable

from attrs import evolve

from ._seen import LineIndex
from ._steps import RowPlan

__all__ = ["MemberClaims"]


class MemberClaims:
    """Which line of a run acts on each email and each member (by id).

    Checked and taken with no ``await`` in between, so of two concurrent rows that would
    act on the same person exactly one wins. Kept in a :class:`LineIndex` (bounded memory),
    like the reader's duplicate check, so memory stays flat however many rows a run has.
    """

    def __init__(self) -> None:
        self._lines = LineIndex()

    def take(self, line: int, *, emails: Iterable[str], members: Iterable[int] = ()) -> str | None:
        """Claim all of them for ``line``, or none: returns the conflict naming the holder."""
        wanted = [*(f"email:{email.lower()}" for email in emails), *(f"id:{m}" for m in members)]
        for item in wanted:
            found = self._lines.get(item)
            if found is not None and found[0] != line:
                return f"acts on the same member or email as line {found[0]}"
        self._lines.put(wanted, line)
        return None

    def claim(self, plan: RowPlan, *, also: Iterable[str] = ()) -> RowPlan:
        """``plan`` once its email, ``also`` emails and member are claimed; else a conflict."""
        if plan.conflict is not None:
            return plan
        members = () if plan.member_id is None else (plan.member_id,)
        conflict = self.take(plan.line, emails=(plan.email, *also), members=members)
        return plan if conflict is None else evolve(plan, steps=(), conflict=conflict)

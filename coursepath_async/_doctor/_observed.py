"""What the doctor sent and what came back: the input of every finding, free of I/O."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import attrs
import orjson
from attrs import frozen


@frozen(kw_only=True)
class Exchange:
    """One request and its answer: status, headers (lower-case names) and body, or an error.

    ``sent_at`` and ``received_at`` are our wall clock around the attempt, so an answer's
    ``Date`` can be set against them. ``error`` (already redacted) says why no HTTP
    answer arrived; ``status`` is then None.
    """

    method: str
    #: The endpoint as documented, e.g. ``/members/{id}/courses``.
    path: str
    #: What was sent, relative to the API root, e.g. ``/members/1/courses?limit=1000``.
    target: str
    status: int | None = None
    headers: Mapping[str, str] = attrs.field(factory=dict, repr=False)
    body: bytes = attrs.field(default=b"", repr=False)
    sent_at: float = 0.0
    received_at: float = 0.0
    #: Seconds the token's ``iat`` was moved for the academy's clock (0: signed on ours).
    signed_with: float = 0.0
    error: str | None = None

    @property
    def ok(self) -> bool:
        """Whether the answer is a success (2xx)."""
        return self.status is not None and 200 <= self.status < 300

    def json(self) -> Any:
        """The body as JSON; None when empty or not JSON."""
        if not self.body.strip():
            return None
        try:
            return orjson.loads(self.body)
        except orjson.JSONDecodeError:
            return None


@frozen(kw_only=True)
class ListProbe:
    """A list endpoint asked for ``limit`` records, and the page after what came back."""

    path: str
    limit: int
    first: Exchange
    #: The page at the offset where ``first`` stopped; None when not asked (0 or a full page).
    following: Exchange | None = None


@frozen(kw_only=True)
class Observations:
    """Everything one doctor run saw, in the order it was sent."""

    me: Exchange
    lists: tuple[ListProbe, ...] = ()
    #: ``coursemember`` results of a few learners of one course.
    results: tuple[Exchange, ...] = ()
    #: The ``--write-check`` update: JSON first, then a form after a 415.
    writes: tuple[Exchange, ...] = ()
    #: Answers that refused a probe for the rate (429, 503 with Retry-After) before it got through.
    refusals: tuple[Exchange, ...] = ()
    #: 401s to tokens dated on a clock over a minute off the academy's, each sent again
    #: signed on the academy's clock (learnt from their ``Date``).
    skew_refusals: tuple[Exchange, ...] = ()
    write_check: bool = False

    def exchanges(self) -> list[Exchange]:
        """Every exchange, refusals included."""
        out = [self.me]
        for probe in self.lists:
            out.append(probe.first)
            if probe.following is not None:
                out.append(probe.following)
        return [*out, *self.results, *self.writes, *self.refusals, *self.skew_refusals]

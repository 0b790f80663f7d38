"""What a webhook receiver did: counters kept while running, snapshots for callers.

Every request lands in exactly one outcome — ``rejected`` (by reason: a
:data:`RejectReason` of the parser, or ``wrong_secret``, ``method_not_allowed``,
``read_timeout``, ``malformed_body``, ``unavailable``), ``duplicates``,
``dropped_queue_full`` or ``accepted`` — and every accepted event ends as one of
``verified``, ``unconfirmed`` (by reason), ``verify_errors`` or ``dropped_shutdown``
(or is still ``queued``/``in_flight``); an event re-checked because a duplicate came
while it was pending is counted by its last check only. ``callback_errors`` counts
verified events whose callback raised. Connections are counted apart from requests:
``connections_open`` now, and since the start ``connections_refused`` (a 503 at the
cap), ``connections_evicted`` (closed at the cap to make room) and ``header_timeouts``
(closed without a complete request head in time).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping

from attrs import define, field, frozen

__all__ = ["Counters", "WebhookStats"]


@frozen(kw_only=True)
class WebhookStats:
    """A snapshot of a receiver's counters; see the module docstring for how they add up."""

    received: int
    accepted: int
    rejected: Mapping[str, int]
    duplicates: int
    dropped_queue_full: int
    verified: int
    unconfirmed: Mapping[str, int]
    verify_errors: int
    dropped_shutdown: int
    callback_errors: int
    queued: int
    in_flight: int
    connections_open: int
    connections_refused: int
    connections_evicted: int
    header_timeouts: int

    @property
    def rejected_total(self) -> int:
        """POSTs refused before queueing: malformed, wrong type, too big, wrong secret."""
        return sum(self.rejected.values())

    @property
    def unconfirmed_total(self) -> int:
        """Accepted events the API did not confirm (forged or stale)."""
        return sum(self.unconfirmed.values())


@define
class Counters:
    """The mutable tally behind :class:`WebhookStats` (one event loop, no locking)."""

    received: int = 0
    accepted: int = 0
    rejected: Counter[str] = field(factory=Counter)
    duplicates: int = 0
    dropped_queue_full: int = 0
    verified: int = 0
    unconfirmed: Counter[str] = field(factory=Counter)
    verify_errors: int = 0
    dropped_shutdown: int = 0
    callback_errors: int = 0

    def snapshot(
        self,
        *,
        queued: int,
        in_flight: int,
        connections_open: int,
        connections_refused: int,
        connections_evicted: int,
        header_timeouts: int,
    ) -> WebhookStats:
        """Freeze the current values, with the live queue, in-flight and connection counts."""
        return WebhookStats(
            received=self.received,
            accepted=self.accepted,
            rejected=dict(self.rejected),
            duplicates=self.duplicates,
            dropped_queue_full=self.dropped_queue_full,
            verified=self.verified,
            unconfirmed=dict(self.unconfirmed),
            verify_errors=self.verify_errors,
            dropped_shutdown=self.dropped_shutdown,
            callback_errors=self.callback_errors,
            queued=queued,
            in_flight=in_flight,
            connections_open=connections_open,
            connections_refused=connections_refused,
            connections_evicted=connections_evicted,
            header_timeouts=header_timeouts,
        )

"""What clients did to the sandbox academy, for tests to assert on.

Counters are always complete; the per-request log can be bounded (``max_log``) and the
set of seen ``jti`` values switched off (``record_jtis=False``) because benchmarks push
a million requests through one academy.
"""

from __future__ import annotations

import asyncio
from collections import Counter, deque
from collections.abc import Callable
from typing import Literal

from attrs import frozen

from ._auth import Jti
from ._faults import normalize_path

InviteScope = Literal["member", "course", "program"]


@frozen(kw_only=True)
class RequestRecord:
    """One request as the academy saw it.

    ``route`` is the matched template (``/api/v1/members/{memberId}``) or ``None``;
    ``status`` is what was sent, ``None`` if no response was started (a hang, or the
    client went away first); ``email``/``jti``/``iat`` come from the token, unverified
    when the request was rejected or faulted before authentication; ``fault`` is a
    :attr:`ScriptedFault.label`; ``started``/``ended`` are ``time.monotonic()`` values.
    """

    request_id: str
    method: str
    path: str
    route: str | None
    status: int | None
    email: str | None
    jti: Jti | None
    iat: float | None
    fault: str | None
    rejection: str | None
    started: float
    ended: float

    @property
    def duration(self) -> float:
        """Seconds the academy spent on the request."""
        return self.ended - self.started


@frozen(kw_only=True)
class Invitation:
    """One invitation email the academy "sent", with any ``mail`` overrides."""

    member_id: int
    email: str
    scope: InviteScope
    scope_id: int | None
    subject: str | None
    body: str | None
    action: str | None
    request_id: str


@frozen(kw_only=True)
class WebhookDelivery:
    """One webhook POST attempt: ``status`` when answered, ``error`` when it failed."""

    event: str
    course_id: int
    member_id: int
    status: int | None
    error: str | None


class Recorder:
    """Request log and counters of one academy; :meth:`reset` starts a fresh tally."""

    def __init__(self, *, max_log: int | None = None, record_jtis: bool = True) -> None:
        self._max_log = max_log
        self._record_jtis = record_jtis
        self.in_flight = 0
        self.requests: deque[RequestRecord] = deque(maxlen=max_log)
        self.total = 0
        self.peak_in_flight = 0
        self.route_counts: Counter[str] = Counter()
        self.status_counts: Counter[int | None] = Counter()
        self.fault_counts: Counter[str] = Counter()
        self.rejected_tokens: Counter[str] = Counter()
        self.jtis: set[Jti] = set()
        self.duplicate_jtis: Counter[Jti] = Counter()
        self.invitations: Counter[int] = Counter()
        self.invitation_log: list[Invitation] = []
        self.webhook_deliveries: list[WebhookDelivery] = []
        #: The tokens ``echo`` faults reflected back, for tests that search outputs for them.
        self.echoed_tokens: list[str] = []
        self._waiters: list[tuple[Callable[[Recorder], bool], asyncio.Future[None]]] = []

    def __repr__(self) -> str:
        return (
            f"<Recorder total={self.total} in_flight={self.in_flight} "
            f"peak_in_flight={self.peak_in_flight} rejected={sum(self.rejected_tokens.values())}>"
        )

    def reset(self) -> None:
        """Forget everything recorded so far (requests still in flight stay counted)."""
        self.requests = deque(maxlen=self._max_log)
        self.total = 0
        self.peak_in_flight = self.in_flight
        self.route_counts = Counter()
        self.status_counts = Counter()
        self.fault_counts = Counter()
        self.rejected_tokens = Counter()
        self.jtis = set()
        self.duplicate_jtis = Counter()
        self.invitations = Counter()
        self.invitation_log = []
        self.webhook_deliveries = []
        self.echoed_tokens = []

    def count(self, method: str, template: str) -> int:
        """Requests to one route, e.g. ``count("GET", "/members/{id}")``.

        The ``/api/v1`` prefix is optional and placeholder names do not matter.
        """
        wanted = f"{method.upper()} {normalize_path(template)}"
        return sum(
            n
            for key, n in self.route_counts.items()
            if f"{key.split(' ', 1)[0]} {normalize_path(key.split(' ', 1)[1])}" == wanted
        )

    async def wait_for(self, predicate: Callable[[Recorder], bool]) -> None:
        """Wait until ``predicate(recorder)`` holds, without polling or sleeping.

        The predicate is re-checked whenever a request starts or ends and whenever a
        webhook delivery is recorded, e.g. ``await recorder.wait_for(lambda r:
        r.in_flight == 5)``.  Bound the wait with ``asyncio.timeout``.
        """
        if predicate(self):
            return
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        waiter = (predicate, future)
        self._waiters.append(waiter)
        try:
            await future
        finally:
            self._waiters.remove(waiter)

    def _changed(self) -> None:
        for predicate, future in self._waiters:
            if not future.done() and predicate(self):
                future.set_result(None)

    # -- hooks used by the academy's request pipeline --------------------------------

    def request_started(self) -> None:
        """Note a request entering the academy."""
        self.in_flight += 1
        self.peak_in_flight = max(self.peak_in_flight, self.in_flight)
        if self._waiters:
            self._changed()

    def request_finished(self, record: RequestRecord) -> None:
        """Note a request leaving the academy, with everything known about it."""
        self.in_flight -= 1
        self.total += 1
        self.requests.append(record)
        self.route_counts[f"{record.method} {record.route or '<unmatched>'}"] += 1
        self.status_counts[record.status] += 1
        if record.fault is not None:
            self.fault_counts[record.fault] += 1
        if self._waiters:
            self._changed()

    def saw_jti(self, jti: Jti) -> None:
        """Note a ``jti`` presented to the academy; a repeat is counted as a duplicate."""
        if not self._record_jtis:
            return
        if jti in self.jtis:
            self.duplicate_jtis[jti] += 1
        else:
            self.jtis.add(jti)

    def echoed(self, token: str) -> None:
        """Note a token an ``echo`` fault put in its answer."""
        self.echoed_tokens.append(token)

    def token_rejected(self, reason: str) -> None:
        """Note a token rejected for ``reason``."""
        self.rejected_tokens[reason] += 1

    def invited(self, invitation: Invitation) -> None:
        """Note an invitation email sent."""
        self.invitations[invitation.member_id] += 1
        self.invitation_log.append(invitation)

    def webhook_delivered(self, delivery: WebhookDelivery) -> None:
        """Note a webhook delivery attempt and its outcome."""
        self.webhook_deliveries.append(delivery)
        if self._waiters:
            self._changed()

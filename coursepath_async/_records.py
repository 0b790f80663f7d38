"""What hooks are told: frozen records of each attempt, call and bulk job, and path templates.

A record names the endpoint by its template (``/members/{memberId}``), never the filled
path, and carries no token, key, email or body: it is safe to log and to export as is.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from typing import Literal

from attrs import frozen

from ._config import Priority

#: How one attempt ended: a 2xx answer, or the retry policy's kind of failure.
AttemptOutcome = Literal["success", "refusal", "fault", "rejection"]

# The id segment after a collection, as the API reference names it.
_ID_NAMES = {
    "members": "{memberId}",
    "courses": "{courseId}",
    "programs": "{programId}",
    "groups": "{groupId}",
}


@functools.lru_cache(maxsize=4096)  # the same few paths, or ids a job goes through
def path_template(path: str) -> str:
    """The endpoint a path calls, ids replaced by their names: ``/members/{memberId}/groups``.

    Ids are positive integers (validated before any path is built), so every all-digit
    segment is one; it is named after the collection before it, or ``{id}``.
    """
    segments = path.split("/")
    for i, segment in enumerate(segments):
        if segment.isdigit():
            segments[i] = _ID_NAMES.get(segments[i - 1], "{id}")
    return "/".join(segments)


@frozen(kw_only=True)
class CallStart:
    """A call about to start: its endpoint, scheduler lane and server (for tracers)."""

    method: str
    #: The endpoint relative to the API root, e.g. ``/members/{memberId}``.
    path_template: str
    #: The absolute path template, e.g. ``/api/v1/members/{memberId}``.
    url_template: str
    lane: Priority
    server_address: str
    server_port: int


@frozen(kw_only=True)
class AttemptRecord:
    """One attempt of a call, as it ended: answer or failure, timing and the retry decision."""

    method: str
    path_template: str
    lane: Priority
    #: 1 for the first attempt of a call.
    attempt: int
    outcome: AttemptOutcome
    #: The answer's HTTP status; None when no answer came (a reset, a timeout).
    status: int | None
    #: The class name of the attempt's error (``ServerError``, ``APITimeoutError``), or None.
    error: str | None
    #: Seconds from sending the request to its answer or failure.
    elapsed: float
    #: Seconds spent waiting for a scheduler slot and the rate governor before sending.
    queue_wait: float
    will_retry: bool
    #: Seconds the call waits before its next attempt; None when it will not retry.
    retry_wait: float | None
    #: The id the server gave its answer (``X-Request-Id`` and kin), redacted; None
    #: without an answer or without such a header. Quote it to Coursepath's support.
    request_id: str | None = None


@frozen(kw_only=True)
class CallRecord:
    """A whole call, as it ended: how many attempts, how long, how long spent waiting to retry."""

    method: str
    path_template: str
    lane: Priority
    #: Attempts that ended (one cut short by a deadline or a cancellation is not counted).
    attempts: int
    #: The final answer's status, or the status of the error raised; None without one.
    status: int | None
    #: The class name of the error the call raised (``CancelledError`` when cancelled).
    error: str | None
    #: Seconds from the call's start to its end, queueing and retry waits included.
    elapsed: float
    #: Seconds the call slept between attempts, as the retry policy decided.
    retry_wait: float
    #: Seconds its attempts waited for a scheduler slot and the rate governor.
    queue_wait: float
    #: The request id of the last answer the call got, redacted; None without one.
    request_id: str | None = None

    @property
    def ok(self) -> bool:
        """Whether the call ended with a 2xx answer."""
        return self.error is None


@frozen(kw_only=True)
class JobRecord:
    """A bulk job (``import``, ``sync``, ``export_members``, ``export_results``) as it ended."""

    kind: str
    #: Its row or record counters, e.g. ``{"rows": 120, "created": 7, "failed": 1}``.
    counts: Mapping[str, int]
    elapsed: float
    #: The class name of the error the job raised; None when it finished.
    error: str | None

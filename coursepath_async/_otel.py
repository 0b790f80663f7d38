"""OpenTelemetry spans and metrics for every call, built on the hooks' records.

Each call is a CLIENT span ``coursepath {METHOD} {path template}`` with the HTTP
semantic-convention attributes, ``coursepath.attempts`` and ``coursepath.retry_wait_s``,
and one ``coursepath.attempt`` event per attempt. A bulk job is an INTERNAL span
``coursepath job {kind}`` holding its calls' spans, with its counters as attributes.
Metrics: ``http.client.request.duration`` (per attempt: each is one HTTP request),
``coursepath.retries`` and ``coursepath.refusals`` counters, and the
``coursepath.requests.active`` / ``coursepath.requests.queued`` gauges read off the
clients' schedulers. Only ``opentelemetry-api`` is needed; without a configured SDK
every instrument is the API's no-op.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from attrs import frozen
from opentelemetry import context, metrics, trace
from opentelemetry.metrics import CallbackOptions, MeterProvider, Observation
from opentelemetry.trace import Span, SpanKind, Status, StatusCode, TracerProvider

from . import __version__
from ._config import Priority
from ._hooks import Instrumentation
from ._records import AttemptRecord, CallRecord, CallStart, JobRecord
from ._scheduler import SchedulerStats

_NAME = "coursepath_async"

Attributes = dict[str, str | int | float | bool]


@frozen
class _Open:
    """A span this instrumentation opened, the context token to reset, and its attributes."""

    span: Span
    token: object
    #: What every measurement of the call's attempts is labelled with.
    labels: Attributes


class OpenTelemetryHooks(Instrumentation):
    """Traces and measures every call of the clients it is given to (``hooks=``).

    ``tracer_provider`` and ``meter_provider`` default to the global ones. One instance
    may serve several clients; its gauges then add their schedulers up.
    """

    def __init__(
        self,
        *,
        tracer_provider: TracerProvider | None = None,
        meter_provider: MeterProvider | None = None,
    ) -> None:
        self._tracer = trace.get_tracer(_NAME, __version__, tracer_provider=tracer_provider)
        meter = metrics.get_meter(_NAME, __version__, meter_provider=meter_provider)
        self._duration = meter.create_histogram(
            "http.client.request.duration",
            unit="s",
            description="Duration of HTTP client requests (one per attempt).",
        )
        self._retries = meter.create_counter(
            "coursepath.retries", unit="{retry}", description="Attempts that will be retried."
        )
        self._refusals = meter.create_counter(
            "coursepath.refusals",
            unit="{refusal}",
            description="Attempts the server refused (429, 503 with Retry-After).",
        )
        meter.create_observable_gauge(
            "coursepath.requests.active",
            callbacks=[self._observe_active],
            unit="{request}",
            description="Requests holding a scheduler slot (in flight).",
        )
        meter.create_observable_gauge(
            "coursepath.requests.queued",
            callbacks=[self._observe_queued],
            unit="{request}",
            description="Requests waiting for a scheduler slot, per lane.",
        )
        #: The open clients' scheduler readers (a dict: ordered, and cheap to remove from).
        self._schedulers: dict[Callable[[], SchedulerStats], None] = {}

    def client_opened(self, stats: Callable[[], SchedulerStats]) -> None:
        """Count this client's scheduler in the gauges."""
        self._schedulers[stats] = None

    def client_closed(self, stats: Callable[[], SchedulerStats]) -> None:
        """Stop counting this client's scheduler."""
        self._schedulers.pop(stats, None)

    def call_started(self, start: CallStart) -> _Open:
        """Open the call's CLIENT span and make it current, for spans made inside it."""
        labels: Attributes = {
            "http.request.method": start.method,
            "url.template": start.url_template,
            "server.address": start.server_address,
            "server.port": start.server_port,
        }
        span = self._tracer.start_span(
            f"coursepath {start.method} {start.path_template}",
            kind=SpanKind.CLIENT,
            attributes={**labels, "coursepath.lane": start.lane.name.lower()},
        )
        token = context.attach(trace.set_span_in_context(span))
        return _Open(span, token, labels)

    def attempt_ended(self, state: _Open, record: AttemptRecord) -> None:
        """Add the attempt as an event; measure it as one HTTP request."""
        answer = _present(
            {
                "http.response.status_code": record.status,
                "error.type": _error_type(record.status, record.error),
            }
        )
        event: dict[str, Any] = {
            "coursepath.attempt": record.attempt,
            "coursepath.outcome": record.outcome,
            **answer,
            "coursepath.elapsed_s": record.elapsed,
            "coursepath.queue_wait_s": record.queue_wait,
            "coursepath.will_retry": record.will_retry,
        }
        if record.retry_wait is not None:
            event["coursepath.retry_wait_s"] = record.retry_wait
        if record.request_id is not None:
            event["coursepath.request_id"] = record.request_id
        state.span.add_event("coursepath.attempt", attributes=event)
        measured = {**state.labels, **answer}
        self._duration.record(record.elapsed, measured)
        if record.will_retry:
            self._retries.add(1, measured)
        if record.outcome == "refusal":
            self._refusals.add(1, measured)

    def call_ended(self, state: _Open, record: CallRecord) -> None:
        """Set the call's totals and outcome, reset the context and end the span."""
        span = state.span
        try:
            error_type = _error_type(record.status, record.error)
            span.set_attributes(
                _present(
                    {
                        "coursepath.attempts": record.attempts,
                        "coursepath.retry_wait_s": record.retry_wait,
                        "coursepath.queue_wait_s": record.queue_wait,
                        "http.response.status_code": record.status,
                        "error.type": error_type,
                        "coursepath.request_id": record.request_id,
                    }
                )
            )
            if error_type is not None:
                span.set_status(Status(StatusCode.ERROR, record.error))
        finally:
            context.detach(state.token)  # type: ignore[arg-type]
            span.end()

    def job_started(self, kind: str) -> _Open:
        """Open the job's span and make it current: its calls' spans nest under it."""
        labels: Attributes = {"coursepath.job": kind}
        span = self._tracer.start_span(
            f"coursepath job {kind}", kind=SpanKind.INTERNAL, attributes=labels
        )
        token = context.attach(trace.set_span_in_context(span))
        return _Open(span, token, labels)

    def job_ended(self, state: _Open, record: JobRecord) -> None:
        """Set the job's counters, reset the context and end the span."""
        span = state.span
        try:
            span.set_attributes({f"coursepath.job.{k}": v for k, v in record.counts.items()})
            span.set_attribute("coursepath.job.elapsed_s", record.elapsed)
            if record.error is not None:
                span.set_attribute("error.type", record.error)
                span.set_status(Status(StatusCode.ERROR, record.error))
        finally:
            context.detach(state.token)  # type: ignore[arg-type]
            span.end()

    def _stats(self) -> list[SchedulerStats]:
        return [stats() for stats in list(self._schedulers)]

    def _observe_active(self, options: CallbackOptions) -> Iterable[Observation]:
        stats = self._stats()
        if stats:  # no open client: nothing to observe
            yield Observation(sum(s.active for s in stats))

    def _observe_queued(self, options: CallbackOptions) -> Iterable[Observation]:
        stats = self._stats()
        for lane in Priority if stats else ():
            name = lane.name.lower()
            yield Observation(sum(s.pending[name] for s in stats), {"coursepath.lane": name})


def _error_type(status: int | None, error: str | None) -> str | None:
    """Semantic conventions: the status code for an error answer, else the error's class."""
    if status is not None and status >= 400:
        return str(status)
    return error


def _present(values: dict[str, Any]) -> Attributes:
    """The attributes that have a value (OpenTelemetry refuses None)."""
    return {k: v for k, v in values.items() if v is not None}

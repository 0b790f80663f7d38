"""OpenTelemetry through the sandbox: spans, attempt events and metrics in in-memory exporters."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from typing import Any

import pytest
from _support import serving
from opentelemetry import trace
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode
from yarl import URL

from coursepath_async import Hooks, NotFoundError
from coursepath_async.bulk import ImportOptions, MappingRows, import_members
from coursepath_async.otel import OpenTelemetryHooks
from coursepath_async.testing import ScriptedFault


class Telemetry:
    """An SDK tracer and meter provider writing to memory, and the hooks built on them."""

    def __init__(self) -> None:
        self.spans = InMemorySpanExporter()
        self.tracer_provider = TracerProvider()
        self.tracer_provider.add_span_processor(SimpleSpanProcessor(self.spans))
        self.reader = InMemoryMetricReader()
        self.meter_provider = MeterProvider(metric_readers=[self.reader])
        self.hooks = OpenTelemetryHooks(
            tracer_provider=self.tracer_provider, meter_provider=self.meter_provider
        )

    def finished(self) -> tuple[ReadableSpan, ...]:
        return tuple(self.spans.get_finished_spans())

    def points(self, name: str) -> list[Any]:
        """The data points of metric ``name`` collected now."""
        data = self.reader.get_metrics_data()
        assert data is not None
        return [
            point
            for resource in data.resource_metrics
            for scope in resource.scope_metrics
            for metric in scope.metrics
            if metric.name == name
            for point in metric.data.data_points
        ]


@pytest.fixture
def telemetry() -> Iterator[Telemetry]:
    t = Telemetry()
    yield t
    t.tracer_provider.shutdown()
    t.meter_provider.shutdown()


async def test_a_retried_call_is_one_span_with_two_attempt_events_and_the_retry_wait(
    telemetry: Telemetry,
) -> None:
    """A 503 asking for 50 ms, then a 200: one CLIENT span, two attempt events, the wait."""
    async with serving(client={"hooks": telemetry.hooks}) as (academy, client):
        academy.script("GET", "/members/{id}", ScriptedFault.status(503, retry_after=0.05))
        await client.members.get(3)
    (span,) = telemetry.finished()
    assert span.name == "coursepath GET /members/{memberId}"
    assert span.kind is SpanKind.CLIENT
    attributes = dict(span.attributes or {})
    assert attributes["coursepath.attempts"] == 2
    assert attributes["coursepath.retry_wait_s"] == pytest.approx(0.05)
    assert attributes["http.response.status_code"] == 200
    assert "error.type" not in attributes
    assert span.status.status_code is StatusCode.UNSET
    first, second = span.events
    assert (first.name, second.name) == ("coursepath.attempt", "coursepath.attempt")
    refused = dict(first.attributes or {})
    elapsed = refused.pop("coursepath.elapsed_s")
    assert isinstance(elapsed, float)
    assert elapsed > 0
    refused_id = refused.pop("coursepath.request_id")
    answered_id = (second.attributes or {})["coursepath.request_id"]
    assert attributes["coursepath.request_id"] == answered_id  # the call's: its last answer's
    assert str(refused_id).startswith("sbx-")
    assert str(answered_id).startswith("sbx-")
    assert refused_id != answered_id
    assert refused == {
        "coursepath.attempt": 1,
        "coursepath.outcome": "refusal",
        "http.response.status_code": 503,
        "error.type": "503",
        "coursepath.queue_wait_s": 0.0,
        "coursepath.will_retry": True,
        "coursepath.retry_wait_s": pytest.approx(0.05),
    }
    assert (second.attributes or {})["coursepath.outcome"] == "success"
    assert (second.attributes or {})["coursepath.will_retry"] is False
    assert "coursepath.retry_wait_s" not in (second.attributes or {})


async def test_span_attributes_follow_the_http_semantic_conventions(telemetry: Telemetry) -> None:
    """Method, URL template (not the path), server address and port, status code."""
    async with serving(client={"hooks": telemetry.hooks}) as (academy, client):
        await client.courses.members(2).collect()
        url = URL(academy.url)
    (span,) = telemetry.finished()
    attributes = dict(span.attributes or {})
    assert attributes == {
        "http.request.method": "GET",
        "url.template": "/api/v1/courses/{courseId}/members",
        "server.address": url.host,
        "server.port": url.port,
        "coursepath.lane": "normal",
        "coursepath.attempts": 1,
        "coursepath.retry_wait_s": 0.0,
        "coursepath.queue_wait_s": 0.0,
        "http.response.status_code": 200,
        "coursepath.request_id": academy.recorder.requests[-1].request_id,
    }


async def test_a_failed_call_has_an_error_status_and_type(telemetry: Telemetry) -> None:
    """A 404 ends the span in error, ``error.type`` the status code as the conventions say."""
    async with serving(client={"hooks": telemetry.hooks}) as (_, client):
        with pytest.raises(NotFoundError):
            await client.members.get(99_999)
    (span,) = telemetry.finished()
    assert span.status.status_code is StatusCode.ERROR
    assert span.status.description == "NotFoundError"
    assert (span.attributes or {})["error.type"] == "404"


async def test_call_spans_nest_under_the_callers_span_which_stays_current(
    telemetry: Telemetry,
) -> None:
    """The caller's span is the parent of the call's span, and is current again after it."""
    tracer = telemetry.tracer_provider.get_tracer("test")
    async with serving(client={"hooks": telemetry.hooks}) as (_, client):
        with tracer.start_as_current_span("request handler") as outer:
            await client.members.me()
            assert trace.get_current_span() is outer
    call, handler = telemetry.finished()
    assert handler.name == "request handler"
    assert call.parent is not None
    assert call.parent.span_id == outer.get_span_context().span_id


async def test_metrics_measure_attempts_retries_refusals_and_the_schedulers(
    telemetry: Telemetry,
) -> None:
    """Two attempts measured, one retry and one refusal counted, gauges read the scheduler."""
    async with serving(client={"hooks": telemetry.hooks}) as (academy, client):
        academy.script("GET", "/members/{id}", ScriptedFault.status(503, retry_after=0.01))
        await client.members.get(3)
        active = telemetry.points("coursepath.requests.active")
        queued = telemetry.points("coursepath.requests.queued")
    durations = telemetry.points("http.client.request.duration")
    assert sorted(p.attributes["http.response.status_code"] for p in durations) == [200, 503]
    assert sum(p.count for p in durations) == 2
    assert {p.attributes["url.template"] for p in durations} == {"/api/v1/members/{memberId}"}
    (retries,) = telemetry.points("coursepath.retries")
    (refusals,) = telemetry.points("coursepath.refusals")
    assert (retries.value, refusals.value) == (1, 1)
    assert refusals.attributes["error.type"] == "503"
    assert [p.value for p in active] == [0]
    assert {p.attributes["coursepath.lane"]: p.value for p in queued} == {
        "interactive": 0,
        "normal": 0,
        "bulk": 0,
    }
    # Closed: the client's scheduler is no longer read, so nothing is observed.
    assert telemetry.points("coursepath.requests.active") == []
    assert telemetry.points("coursepath.requests.queued") == []


async def test_an_import_is_one_job_span_holding_its_calls_with_row_counters(
    telemetry: Telemetry,
) -> None:
    """``import_members`` opens a job span; every call's span is its child; rows are counted."""
    rows = MappingRows([{"email": f"otel.{i}@example.com", "name": f"Otel {i}"} for i in range(3)])
    jobs: list[Any] = []
    hooks = [telemetry.hooks, Hooks(on_job=jobs.append)]
    async with serving(client={"hooks": hooks}) as (_, client):
        report = await import_members(
            client, rows, journal=None, options=ImportOptions(dry_run=True)
        )
    assert report.totals.rows == 3
    spans = telemetry.finished()
    (job,) = [s for s in spans if s.name == "coursepath job import"]
    calls = [s for s in spans if s is not job]
    assert calls
    assert all(s.parent is not None and s.parent.span_id == job.context.span_id for s in calls)
    attributes = dict(job.attributes or {})
    assert attributes["coursepath.job.rows"] == 3
    assert attributes["coursepath.job.failed"] == 0
    (record,) = jobs
    assert record.kind == "import"
    assert record.counts["rows"] == 3
    assert record.error is None


def _python(code: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )


def test_without_the_otel_module_nothing_of_opentelemetry_is_imported() -> None:
    """A client with plain hooks never loads OpenTelemetry: no cost for who does not use it."""
    done = _python(
        """
        import sys
        from coursepath_async import CoursepathClient, Hooks
        import coursepath_async.bulk, coursepath_async.testing
        CoursepathClient("https://acme.coursepath.com", api_key="k" * 40,
                         user="ada@example.com", hooks=Hooks())
        print(sorted(m for m in sys.modules if m.startswith("opentelemetry")))
        """
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


def test_the_otel_module_without_opentelemetry_names_the_extra_to_install() -> None:
    """Without opentelemetry-api, importing ``coursepath_async.otel`` says what to install."""
    done = _python(
        """
        import sys
        sys.modules["opentelemetry"] = None  # as if it were not installed
        try:
            import coursepath_async.otel
        except ImportError as exc:
            print(exc)
        """
    )
    assert done.returncode == 0, done.stderr
    assert "pip install 'coursepath-async[otel]'" in done.stdout

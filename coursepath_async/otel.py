"""OpenTelemetry for coursepath_async: ``CoursepathClient(..., hooks=OpenTelemetryHooks())``.

Spans for calls and bulk jobs, events for attempts, and HTTP client metrics, through
whatever tracer and meter providers the application configured. Needs only
``opentelemetry-api`` (``pip install 'coursepath-async[otel]'``); nothing of it is
imported unless this module is.
"""

try:
    from ._otel import OpenTelemetryHooks
except ModuleNotFoundError as exc:
    if not (exc.name or "").startswith("opentelemetry"):
        raise
    raise ImportError(
        "coursepath_async.otel needs opentelemetry-api: pip install 'coursepath-async[otel]'"
    ) from exc

__all__ = ["OpenTelemetryHooks"]

"""Benchmark 12: what event hooks and OpenTelemetry cost per request, against no hooks.

Three clients on one loop call the sandbox (in its own process) with sequential
``members.get`` calls: one without hooks, one with no-op sync ``on_attempt`` and
``on_call`` hooks, one with :class:`OpenTelemetryHooks` on an SDK tracer provider (a
simple processor into an in-memory exporter, cleared after each batch) and meter provider
(an in-memory reader). Batches alternate between them in a rotating order, so drift on a
noisy machine hits all alike; each figure is the median of the client's CPU µs per
request over the batches, and the extra is measured against the no-hooks client of the
same run.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import time
import timeit
from collections.abc import AsyncIterator, Callable, Coroutine
from typing import Any

from coursepath_async import CoursepathClient, Hooks, Instrumentation, Priority
from coursepath_async._hooks import HookRunner
from coursepath_async._sansio import ApiRequest, RawResponse

from ._common import ADMIN, API_KEY, Result, interleaved, sandbox, spread
from ._util import median

Batch = Callable[[int], Coroutine[Any, Any, None]]

_ORIGIN: dict[str, Any] = {"server_address": "127.0.0.1", "server_port": 80, "root_path": "/"}


def _noop(record: object) -> None:
    """The cheapest hook there is: what remains is the SDK's own cost of calling hooks."""


@contextlib.asynccontextmanager
async def _otel() -> AsyncIterator[tuple[Instrumentation, Callable[[], None]] | None]:
    """OpenTelemetryHooks on SDK providers writing to memory, and a way to empty it."""
    try:
        from opentelemetry.sdk.metrics import MeterProvider
        from opentelemetry.sdk.metrics.export import InMemoryMetricReader
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import SimpleSpanProcessor
        from opentelemetry.sdk.trace.export.in_memory_span_exporter import (
            InMemorySpanExporter,
        )

        from coursepath_async.otel import OpenTelemetryHooks
    except ImportError:  # the SDK is a test/bench extra
        yield None
        return
    exporter = InMemorySpanExporter()
    tracer_provider = TracerProvider()
    tracer_provider.add_span_processor(SimpleSpanProcessor(exporter))
    meter_provider = MeterProvider(metric_readers=[InMemoryMetricReader()])
    try:
        yield (
            OpenTelemetryHooks(tracer_provider=tracer_provider, meter_provider=meter_provider),
            exporter.clear,
        )
    finally:
        tracer_provider.shutdown()
        meter_provider.shutdown()


async def _measure(
    url: str, rounds: int, batch: int
) -> tuple[dict[str, list[float]], dict[str, list[float]]]:
    """CPU µs per request of each variant, one figure per batch, batches interleaved.

    Also the hook path's own cost per call, without I/O (:func:`_machinery`).
    """
    async with contextlib.AsyncExitStack() as stack:
        otel = await stack.enter_async_context(_otel())
        variants: dict[str, tuple[Any, Callable[[], None]]] = {
            "none": (None, lambda: None),
            "hook": (Hooks(on_attempt=_noop, on_call=_noop), lambda: None),
        }
        if otel is not None:
            variants["otel"] = otel
        machinery = _machinery(rounds, otel)
        loops: dict[str, Batch] = {}
        for name, (hooks, _) in variants.items():
            client = await stack.enter_async_context(
                CoursepathClient(url, api_key=API_KEY, user=ADMIN, allow_http=True, hooks=hooks)
            )
            loops[name] = _loop(client)
        names = list(loops)
        for name in names:
            await loops[name](batch)  # open the pools outside the measurement
            variants[name][1]()
        figures: dict[str, list[float]] = {name: [] for name in names}
        for round_no in range(rounds):
            shift = round_no % len(names)
            for name in names[shift:] + names[:shift]:
                started = time.process_time()
                await loops[name](batch)
                figures[name].append((time.process_time() - started) / batch * 1e6)
                variants[name][1]()  # empty the span exporter outside the timing
        return figures, machinery


def _machinery(
    rounds: int, otel: tuple[Instrumentation, Callable[[], None]] | None
) -> dict[str, list[float]]:
    """µs per call of the hook path alone (a call's start, one attempt, its end), no I/O."""
    request = ApiRequest(method="GET", path="/members/12")
    answer = RawResponse(200, {}, b"")
    hooks = Hooks(on_attempt=_noop, on_call=_noop)
    runners = {"hook": (HookRunner((hooks,), **_ORIGIN), lambda: None)}
    if otel is not None:
        runners["otel"] = (HookRunner((otel[0],), **_ORIGIN), otel[1])
    n = 2_000

    def per_call(runner: HookRunner, clear: Callable[[], None], _round: int) -> float:
        def one() -> None:
            trace = runner._start(request, Priority.NORMAL)
            trace.attempt(answer, None, queue_wait=0.0, elapsed=0.001)
            trace.ended(0.001, None)

        clear()  # finished spans would pile up across rounds (and slow the collector)
        return timeit.timeit(one, number=n) / n * 1e6

    return interleaved(
        rounds, {name: functools.partial(per_call, *pair) for name, pair in runners.items()}
    )


def _loop(client: CoursepathClient) -> Batch:
    async def run(n: int) -> None:
        for i in range(n):
            await client.members.get(i % 20 + 1)

    return run


def _paired(values: list[float], baseline: list[float]) -> list[float]:
    """Each round's figure minus the baseline's in the same round."""
    return [v - b for v, b in zip(values, baseline, strict=True)]


def hook_overhead(*, quick: bool) -> list[Result]:
    """Client CPU µs per request: no hooks, a no-op sync hook, OpenTelemetry."""
    rounds, batch = (6, 100) if quick else (48, 100)
    with sandbox(members=20) as url:
        figures, machinery = asyncio.run(_measure(url, rounds, batch))
    none, hook = median(figures["none"]), median(figures["hook"])
    otel = median(figures["otel"]) if "otel" in figures else None
    # The extra is the median of each round's adjacent differences: a busy spell on a
    # shared machine lifts a whole round, and cancels out of its differences.
    extra = {name: _paired(figures[name], figures["none"]) for name in figures}
    shown = f"{hook:.1f} µs hook (+{median(extra['hook']):.1f})"
    if otel is not None:
        shown += f", {otel:.1f} µs OTel (+{median(extra['otel']):.1f})"
    notes = [
        f"{rounds} interleaved batches of {batch} sequential members.get per variant; client "
        f"CPU µs per request, median; the extra is the median of each round's difference "
        f"to no hooks (spread of those: hook {spread(extra['hook'], '{:.1f}')}"
        + (f", OTel {spread(extra['otel'], '{:.1f}')}" if otel is not None else "")
        + f"; no hooks alone {spread(figures['none'], '{:.1f}')})",
    ]
    notes.append(
        "the hook path alone (a call's start, one attempt and its end, no I/O, timeit in "
        f"{rounds} interleaved rounds): hook {median(machinery['hook']):.1f} µs per call"
        + (f", OTel {median(machinery['otel']):.1f} µs" if "otel" in machinery else "")
    )
    if otel is None:
        notes.append("OpenTelemetry not measured: opentelemetry-sdk is not installed")
    return [
        Result(
            number=12,
            title="Hooks / OpenTelemetry overhead per request",
            sdk=shown,
            baseline=f"{none:.1f} µs (no hooks)",
            ratio=f"{hook / none:.2f}x" + ("" if otel is None else f" / {otel / none:.2f}x"),
            measured=median(extra["hook"]),
            bar=None,
            goal=None,
            notes=tuple(notes),
        )
    ]

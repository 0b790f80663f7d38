"""Event hooks: every attempt, call and bulk job handed, as a frozen record, to instrumentations.

``CoursepathClient(hooks=...)`` takes a :class:`Hooks` of callables, an
:class:`Instrumentation` (such as ``coursepath_async.otel.OpenTelemetryHooks``) or a
sequence of them. The client and all its views share them. An instrumentation is called
synchronously, in the task making the call, so a tracer sees the caller's context. What
it raises is logged (at most once a minute per hook) and never reaches the call. When a
hook returns an awaitable (an ``async def`` hook), it runs as a background task: the call
never waits for it. At most ``max_pending`` such tasks run per instrumentation; a record
arriving beyond that is not handed to it, and the drops are logged. Closing the client
waits up to five seconds for those still running, then cancels them.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
import time
from collections.abc import Awaitable, Callable, Coroutine, Iterator, Mapping
from typing import Any, Protocol, TypeVar

from attrs import field, frozen

from ._config import Priority
from ._exceptions import APIStatusError
from ._records import AttemptOutcome, AttemptRecord, CallRecord, CallStart, JobRecord, path_template
from ._retry import Fault, GiveUp, Outcome, Refusal, Retry
from ._sansio import ApiRequest, RawResponse
from ._scheduler import SchedulerStats

T = TypeVar("T")


class Traced(Protocol):
    """A call in progress that hooks follow: the core's per-call state."""

    trace: Trace | None


logger = logging.getLogger("coursepath_async.hooks")

#: Seconds between two log lines about the same failing hook.
LOG_INTERVAL = 60.0
#: Seconds ``aclose`` waits for background hook tasks before cancelling them.
CLOSE_WAIT = 5.0
#: Background tasks per instrumentation, by default.
MAX_PENDING = 256

_FAILED = object()  # the state of an instrumentation whose call_started raised


class Instrumentation:
    """What ``hooks=`` accepts: told when each call, attempt and bulk job starts or ends.

    Subclass it for a tracer that needs a call's start (to open a span in the caller's
    context); for plain callbacks use :class:`Hooks`. Every method is called synchronously
    in the calling task and must not block; one that returns an awaitable has it run in
    the background. ``call_started`` and ``job_started`` return a state object that is
    handed back to the matching ``*_ended`` calls; when one of them raises, that call or
    job is not reported to this instrumentation again.
    """

    #: Background tasks (awaitables the methods return) that may run at once.
    max_pending: int = MAX_PENDING

    def call_started(self, start: CallStart) -> object:
        """A call is starting (before it queues for a slot); returns the call's state."""
        return None

    def attempt_ended(self, state: Any, record: AttemptRecord) -> object:
        """One attempt of the call started with ``state`` ended."""
        return None

    def call_ended(self, state: Any, record: CallRecord) -> object:
        """The call started with ``state`` returned or raised."""
        return None

    def job_started(self, kind: str) -> object:
        """A bulk job of ``kind`` is starting; returns the job's state."""
        return None

    def job_ended(self, state: Any, record: JobRecord) -> object:
        """The bulk job started with ``state`` finished or raised."""
        return None

    def client_opened(self, stats: Callable[[], SchedulerStats]) -> None:
        """A client using this instrumentation was built; ``stats`` reads its scheduler."""

    def client_closed(self, stats: Callable[[], SchedulerStats]) -> None:
        """The client whose scheduler ``stats`` reads was closed."""


Hook = Callable[[T], object]


@frozen(kw_only=True)
class Hooks(Instrumentation):
    """Callbacks, sync or ``async``, given a frozen record after each attempt, call and job.

    Each is optional. A sync hook runs inline and should be quick; an async one runs as
    a background task (at most ``max_pending`` at once). Neither can break or delay a call.
    """

    on_attempt: Hook[AttemptRecord] | None = None
    on_call: Hook[CallRecord] | None = None
    on_job: Hook[JobRecord] | None = None
    max_pending: int = field(default=MAX_PENDING)

    @max_pending.validator
    def _check(self, attribute: object, value: int) -> None:
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"Hooks.max_pending must be an integer >= 1, got {value!r}")

    def attempt_ended(self, state: Any, record: AttemptRecord) -> object:
        """Hand the record to ``on_attempt``."""
        return None if self.on_attempt is None else self.on_attempt(record)

    def call_ended(self, state: Any, record: CallRecord) -> object:
        """Hand the record to ``on_call``."""
        return None if self.on_call is None else self.on_call(record)

    def job_ended(self, state: Any, record: JobRecord) -> object:
        """Hand the record to ``on_job``."""
        return None if self.on_job is None else self.on_job(record)


def as_instrumentations(hooks: object) -> tuple[Instrumentation, ...]:
    """``hooks=`` as a tuple of instrumentations; a clear TypeError for anything else."""
    if hooks is None:
        return ()
    items = (hooks,) if isinstance(hooks, Instrumentation) else hooks
    if isinstance(items, list | tuple) and all(isinstance(i, Instrumentation) for i in items):
        return tuple(items)
    raise TypeError(
        "hooks must be a Hooks, an Instrumentation (e.g. OpenTelemetryHooks) or a list of "
        f"them, got {type(hooks).__name__}"
    )


class _Guard:
    """One instrumentation, guarded: what it raises is logged (rate-limited), never passed on."""

    __slots__ = ("_clock", "_dropped", "_failures", "_last_log", "_tasks", "instrumentation")

    def __init__(self, instrumentation: Instrumentation, clock: Callable[[], float]) -> None:
        self.instrumentation = instrumentation
        self._clock = clock
        self._tasks: set[asyncio.Task[object]] = set()
        self._failures: dict[str, int] = {}  # not yet logged, per hook
        self._last_log: dict[str, float] = {}
        self._dropped = 0

    def run(self, name: str, method: Callable[..., object], *args: object) -> object:
        """Call ``method``; start what it returns in the background; ``_FAILED`` if it raised."""
        try:
            result = method(*args)
        except Exception as exc:
            self.failed(name, exc)
            return _FAILED
        if result is not None and inspect.isawaitable(result):  # None: the usual, cheap case
            self._spawn(name, result)
            return None
        return result

    def _spawn(self, name: str, awaitable: Awaitable[object]) -> None:
        limit = self.instrumentation.max_pending
        if len(self._tasks) >= limit:
            if inspect.iscoroutine(awaitable):
                awaitable.close()  # never started: no "never awaited" warning
            self._dropped += 1
            self._log(
                f"{name}:dropped",
                "coursepath_async hook %s: %d background tasks still running, so a record "
                "was not handed to it (%d dropped so far)",
                self._label(name),
                limit,
                self._dropped,
            )
            return
        task = asyncio.ensure_future(_run(awaitable))
        self._tasks.add(task)
        task.add_done_callback(lambda t: self._done(name, t))

    def _done(self, name: str, task: asyncio.Task[object]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and (exc := task.exception()) is not None:
            self.failed(name, exc)

    def failed(self, name: str, exc: BaseException) -> None:
        """Log a hook's failure: the first at once, then at most one line a minute."""
        count = self._failures.get(name, 0) + 1
        self._failures[name] = count
        self._log(
            name,
            "coursepath_async hook %s raised (%d time(s) since last logged); the call went on",
            self._label(name),
            count,
            exc_info=exc,
        )

    def _log(
        self, key: str, message: str, *args: object, exc_info: BaseException | None = None
    ) -> None:
        now = self._clock()
        last = self._last_log.get(key)
        if last is not None and now - last < LOG_INTERVAL:
            return
        self._last_log[key] = now
        self._failures.pop(key, None)
        logger.warning(message, *args, exc_info=exc_info)

    def _label(self, name: str) -> str:
        return f"{type(self.instrumentation).__name__}.{name}"

    async def drain(self, wait: float) -> None:
        """Wait up to ``wait`` seconds for background tasks, then cancel the rest."""
        if not self._tasks:
            return
        _, pending = await asyncio.wait(set(self._tasks), timeout=wait)
        for task in pending:
            task.cancel()
        if pending:
            await asyncio.wait(pending)


async def _run(awaitable: Awaitable[object]) -> object:
    return await awaitable


class HookRunner:
    """The instrumentations of one client and its views, each guarded; held by the core."""

    __slots__ = ("_guards", "_origin")

    def __init__(
        self,
        instrumentations: tuple[Instrumentation, ...],
        *,
        server_address: str,
        server_port: int,
        root_path: str,
        log_clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._guards = tuple(_Guard(i, log_clock) for i in instrumentations)
        self._origin = (server_address, server_port, root_path.rstrip("/"))

    def opened(self, stats: Callable[[], SchedulerStats]) -> None:
        """Tell every instrumentation a client was built on this scheduler."""
        for guard in self._guards:
            guard.run("client_opened", guard.instrumentation.client_opened, stats)

    async def aclose(self, stats: Callable[[], SchedulerStats]) -> None:
        """Tell every instrumentation the client closed, then drain background hooks."""
        for guard in self._guards:
            guard.run("client_closed", guard.instrumentation.client_closed, stats)
        for guard in self._guards:
            await guard.drain(CLOSE_WAIT)

    def _start(self, request: ApiRequest, lane: Priority) -> Trace:
        """A call of ``request`` in ``lane`` is starting: tell every instrumentation."""
        address, port, root = self._origin
        template = path_template(request.path)
        start = CallStart(
            method=request.method,
            path_template=template,
            url_template=root + template,
            lane=lane,
            server_address=address,
            server_port=port,
        )
        return Trace(self._guards, start)

    async def run_call(
        self,
        calling: Coroutine[Any, Any, T],
        call: Traced,
        request: ApiRequest,
        lane: Priority,
        clock: Callable[[], float],
    ) -> T:
        """Await ``calling``, the attempts of ``call``, telling every instrumentation about it.

        Started here, in the task that awaits the call, so that a tracer's context is
        set and reset in that one task however the call's coroutine was handed around.
        """
        trace = call.trace = self._start(request, lane)
        began = clock()
        error: BaseException | None = None
        try:
            return await calling
        except BaseException as exc:
            error = exc
            raise
        finally:
            trace.ended(clock() - began, error)

    @contextlib.contextmanager
    def job(self, kind: str, counts: Callable[[], Mapping[str, int]]) -> Iterator[None]:
        """Run a bulk job inside: instrumentations see it start, then end with ``counts()``."""
        states = [g.run("job_started", g.instrumentation.job_started, kind) for g in self._guards]
        began = time.monotonic()
        error: BaseException | None = None
        try:
            yield
        except BaseException as exc:
            error = exc
            raise
        finally:
            record = JobRecord(
                kind=kind,
                counts=dict(counts()),
                elapsed=time.monotonic() - began,
                error=None if error is None else type(error).__name__,
            )
            for guard, state in zip(self._guards, states, strict=True):
                if state is not _FAILED:
                    guard.run("job_ended", guard.instrumentation.job_ended, state, record)


class Trace:
    """One call's progress for the instrumentations: their states, attempts and waits."""

    __slots__ = (
        "_guards",
        "_queue_wait",
        "_request_id",
        "_retry_wait",
        "_start",
        "_states",
        "_status",
        "attempts",
    )

    def __init__(self, guards: tuple[_Guard, ...], start: CallStart) -> None:
        self._guards = guards
        self._start = start
        self._states = [
            g.run("call_started", g.instrumentation.call_started, start) for g in guards
        ]
        self.attempts = 0
        self._retry_wait = 0.0
        self._queue_wait = 0.0
        self._status: int | None = None
        self._request_id: str | None = None

    def attempt(
        self,
        answer: RawResponse | Outcome,
        decision: Retry | GiveUp | None,
        *,
        queue_wait: float,
        elapsed: float,
        request_id: str | None = None,
    ) -> None:
        """An attempt ended with ``answer`` (and the server's id for it); the policy decided."""
        self.attempts += 1
        self._queue_wait += queue_wait
        retry_wait = decision.wait if isinstance(decision, Retry) else None
        if retry_wait is not None:
            self._retry_wait += retry_wait
        status, error = _status_and_error(answer)
        self._status = status
        if request_id is not None:
            self._request_id = request_id
        start = self._start
        record = AttemptRecord(
            method=start.method,
            path_template=start.path_template,
            lane=start.lane,
            attempt=self.attempts,
            outcome=_outcome(answer),
            status=status,
            error=error,
            elapsed=elapsed,
            queue_wait=queue_wait,
            will_retry=retry_wait is not None,
            retry_wait=retry_wait,
            request_id=request_id,
        )
        for guard, state in zip(self._guards, self._states, strict=True):
            if state is not _FAILED:
                guard.run("attempt_ended", guard.instrumentation.attempt_ended, state, record)

    def ended(self, elapsed: float, error: BaseException | None) -> None:
        """The call returned (``error`` None) or raised ``error``."""
        start = self._start
        if error is None:
            status = self._status
        else:
            status = error.status_code if isinstance(error, APIStatusError) else None
        record = CallRecord(
            method=start.method,
            path_template=start.path_template,
            lane=start.lane,
            attempts=self.attempts,
            status=status,
            error=None if error is None else type(error).__name__,
            elapsed=elapsed,
            retry_wait=self._retry_wait,
            queue_wait=self._queue_wait,
            request_id=self._request_id,
        )
        for guard, state in zip(self._guards, self._states, strict=True):
            if state is not _FAILED:
                guard.run("call_ended", guard.instrumentation.call_ended, state, record)


def _outcome(answer: RawResponse | Outcome) -> AttemptOutcome:
    if isinstance(answer, RawResponse):
        return "success"
    if isinstance(answer, Refusal):
        return "refusal"
    return "fault" if isinstance(answer, Fault) else "rejection"


def _status_and_error(answer: RawResponse | Outcome) -> tuple[int | None, str | None]:
    if isinstance(answer, RawResponse):
        return answer.status, None
    error = answer.error
    status = error.status_code if isinstance(error, APIStatusError) else None
    return status, type(error).__name__

"""The journal's writer: one SQLite connection, written off the event loop, committed in groups.

Outside a job (:meth:`JournalWriter.deferred` off) every write runs at once on the
caller's thread, as plain synchronous calls. Inside a job the event loop never waits on
the connection: a write is queued, and the queue is executed in runs (every
:data:`DRAIN_SIZE` writes, and before each commit or read) by whoever finds the
connection free (statements are in-memory work, microseconds each). Every COMMIT, the
fsync, runs on an anyio worker thread behind a ``CapacityLimiter(1)``, so the loop keeps
serving HTTP while the disk works; writes made meanwhile wait in the queue for the next
commit. A row that needs its writes durable (an invitation's "attempting" mark before
the email, a row's begin before a create) awaits :meth:`JournalWriter.durable`: a
commit starts as soon as the worker is free, and every row that asks while it runs
shares the next one (group commit, with no timer to wait out: an fsync's own length
gathers the group), so one fsync serves many rows when many wait, and a lone row waits
for its fsync only. Ordinary writes ride the next commit, or are committed once
``batch_size`` are queued or ``batch_seconds`` passed.

Why statements may run on the loop thread: sqlite3 releases the GIL around every step,
and a worker thread must then wait for a busy loop thread to give it back (up to the
5 ms switch interval) once per statement; executed there, a 50-statement group took
~100 ms to commit. Only the commit, one GIL release for the whole fsync, goes over.

Queued writes keep their order: the queue is drained only under the connection's lock,
by whichever thread holds it, so any read or commit sees every write queued before it.
"""

from __future__ import annotations

import asyncio
import sqlite3
import threading
import time
from collections import deque
from collections.abc import AsyncIterator, Callable, Iterable
from contextlib import asynccontextmanager
from typing import TypeVar

import anyio
import anyio.to_thread

__all__ = ["JournalWriter", "WriteCheck", "one_of"]

T = TypeVar("T")
#: Queued writes executed together: SQLite's code and pages stay in the CPU's caches
#: across a run of statements (about 5 us each) but not across a row's Python work in
#: between (about 20 us each). The queue is also drained by every commit and read.
DRAIN_SIZE = 64
#: Checks a queued write once it ran: its row count, or the error SQLite raised.
WriteCheck = Callable[[int, sqlite3.Error | None], None]


def one_of(column: str, values: Iterable[str]) -> str:
    """SQL true when ``column`` is one of ``values`` (NULL when it is NULL, as with IN).

    ``values`` are the code's own constants (a Literal's values), put in as literals.

    Spelled as equalities, not ``IN (...)``: SQLite evaluates an IN list of three or
    more by filling a temporary b-tree, on every write a CHECK guards, and that cost
    more than the write itself (8.7 against 5.3 us a statement).
    """
    return "(" + " OR ".join(f"{column} = '{value}'" for value in values) + ")"


class _Write:
    """One queued statement."""

    __slots__ = ("check", "params", "sql")

    def __init__(self, sql: str, params: tuple[object, ...], check: WriteCheck | None) -> None:
        self.sql = sql
        self.params = params
        self.check = check


class JournalWriter:
    """Serialises a journal connection's writes, commits and reads; see the module docs."""

    def __init__(
        self,
        conn: sqlite3.Connection,
        *,
        before_commit: Callable[[], None],
        batch_size: int,
        batch_seconds: float,
    ) -> None:
        self._conn = conn
        self._before_commit = before_commit
        self._batch_size = batch_size
        self._batch_seconds = batch_seconds
        self._lock = threading.RLock()  # a write's check may peek
        self._queue: deque[_Write] = deque()
        self._submitted = 0  # writes handed to the writer (loop thread only)
        self._executed = 0  # writes executed (under the lock)
        self._durable = 0  # writes known committed (loop thread only)
        self._uncommitted = 0
        self._last_commit = time.monotonic()
        self._waiters: list[tuple[int, asyncio.Future[None]]] = []
        self._task: asyncio.Task[None] | None = None
        self._limiter: anyio.CapacityLimiter | None = None
        self._failure: Exception | None = None
        self._commit_failed = False
        self._flush_wanted = False
        #: Whether writes are queued for the worker thread (inside a job) or run at once.
        self.deferred = False
        #: Commits that wrote something, and statements executed (for benchmarks).
        self.commits = 0
        self.statements = 0

    # -- writing ---------------------------------------------------------------------------

    def write(
        self,
        sql: str,
        params: tuple[object, ...],
        check: WriteCheck | None = None,
        *,
        now: bool = False,
    ) -> int:
        """Execute (or, deferred, queue) one write; returns its row count (-1 when queued).

        At once (or ``now``): ``check`` runs now and its error reaches the caller.
        Deferred: it runs on the worker, and its first error is raised by the next
        :meth:`durable` and on leaving :meth:`deferring`.
        """
        self._submitted += 1
        if self.deferred and not now:
            queue = self._queue
            queue.append(_Write(sql, params, check))
            if len(queue) >= DRAIN_SIZE:
                self._drain_if_free()
            if self._submitted - self._durable >= self._batch_size or self._batch_due():
                self._flush_wanted = True
                self._kick()
            return -1
        with self._lock:
            self._drain()
            changed, error = self._execute(sql, params)
            if check is not None:
                check(changed, error)
            elif error is not None:
                raise error
            if self._uncommitted >= self._batch_size or self._batch_due():
                self._commit()
        return changed

    def run(self, read: Callable[[sqlite3.Connection], T]) -> T:
        """Run ``read`` on the connection now, after every queued write (blocks on a commit)."""
        with self._lock:
            self._drain()
            return read(self._conn)

    def peek(self, read: Callable[[sqlite3.Connection], T]) -> T:
        """Run ``read`` without draining the queue: for a write's check, under the lock."""
        with self._lock:
            return read(self._conn)

    async def arun(self, read: Callable[[sqlite3.Connection], T]) -> T:
        """Run ``read`` after every queued write, never making the loop wait for it.

        Now when the connection is free, else on the worker once the commit holding it ends.
        """
        if not self.deferred or self._lock.acquire(blocking=False):
            try:
                return self.run(read)
            finally:
                if self.deferred:
                    self._lock.release()
        return await anyio.to_thread.run_sync(self.run, read, limiter=self._worker())

    def commit(self) -> None:
        """Execute and commit every queued write now, on this thread."""
        with self._lock:
            self._commit()
            self._durable = max(self._durable, self._executed)

    async def write_durably(self, sql: str, params: tuple[object, ...]) -> int:
        """Write, then wait for the commit that holds it; returns its row count."""
        if not self.deferred:
            changed = self.write(sql, params)
            self.commit()
            return changed
        counts: list[int] = []

        def keep(changed: int, error: sqlite3.Error | None) -> None:
            if error is not None:
                raise error
            counts.append(changed)

        self.write(sql, params, keep)
        await self.durable()
        return counts[0]

    async def durable(self) -> None:
        """Wait until every write submitted so far is committed (shared with other rows)."""
        self._raise_failure()
        target = self._submitted
        if self._durable >= target:
            return
        if not self.deferred:
            self.commit()
            return
        waiter = asyncio.get_running_loop().create_future()
        self._waiters.append((target, waiter))
        self._kick()
        await waiter

    @asynccontextmanager
    async def deferring(self) -> AsyncIterator[None]:
        """Queue writes for the worker while inside; everything is committed on the way out."""
        if self.deferred:
            yield
            return
        self.deferred = True
        try:
            yield
        finally:
            try:
                task = self._task
                if task is not None and not task.done():
                    await asyncio.shield(task)
                if (self._queue or self._uncommitted) and not self._commit_failed:
                    await anyio.to_thread.run_sync(self.commit, limiter=self._worker())
            finally:
                self.deferred = False
        self._raise_failure()

    # -- the worker ------------------------------------------------------------------------

    def _kick(self) -> None:
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._commit_groups())

    async def _commit_groups(self) -> None:
        """Commit groups while rows wait or writes pile up; a failed commit fails them all."""
        while self._waiters or self._flush_wanted:
            self._flush_wanted = False
            self._drain_if_free()
            try:
                done = await anyio.to_thread.run_sync(self._commit_now, limiter=self._worker())
            except Exception as exc:
                self._commit_failed = True
                self._failure = self._failure or exc
                self._wake(self._submitted, exc)
                return
            self._durable = max(self._durable, done)
            # A deferred write's error fails every waiter: it is a bug, and the job stops.
            self._wake(self._submitted if self._failure else done, self._failure)

    def _wake(self, upto: int, error: Exception | None) -> None:
        """Settle the waiters whose writes are at most ``upto``, with ``error`` if given."""
        waiting = []
        for target, waiter in self._waiters:
            if target > upto:
                waiting.append((target, waiter))
            elif not waiter.done():
                if error is None:
                    waiter.set_result(None)
                else:
                    waiter.set_exception(error)
        self._waiters = waiting

    def _commit_now(self) -> int:
        with self._lock:
            self._commit()
            return self._executed

    def _worker(self) -> anyio.CapacityLimiter:
        if self._limiter is None:
            self._limiter = anyio.CapacityLimiter(1)
        return self._limiter

    # -- under the lock --------------------------------------------------------------------

    def _execute(self, sql: str, params: tuple[object, ...]) -> tuple[int, sqlite3.Error | None]:
        if not self._conn.in_transaction:
            self._conn.execute("BEGIN IMMEDIATE")
        self._executed += 1
        self._uncommitted += 1
        self.statements += 1
        try:
            return self._conn.execute(sql, params).rowcount, None
        except sqlite3.Error as exc:
            return 0, exc

    def _drain_if_free(self) -> None:
        """Execute the queue here and now, unless a commit holds the connection."""
        if self._lock.acquire(blocking=False):
            try:
                self._drain()
            finally:
                self._lock.release()

    def _drain(self) -> None:
        """Execute the writes queued when it began; those queued meanwhile wait their turn.

        The loop thread queues writes while a worker drains: chasing them would keep a
        commit from ever starting for as long as rows keep coming (an import without
        invitations, where no row waits for durability, was once a single transaction).
        """
        queue = self._queue
        for _ in range(len(queue)):
            write = queue.popleft()
            changed, error = self._execute(write.sql, write.params)
            try:
                if write.check is not None:
                    write.check(changed, error)
                elif error is not None:
                    raise error
            except Exception as exc:
                self._failure = self._failure or exc

    def _commit(self) -> None:
        self._drain()
        if self._conn.in_transaction:
            self._before_commit()
            self._conn.execute("COMMIT")
            self.commits += 1
        self._uncommitted = 0
        self._last_commit = time.monotonic()

    def _batch_due(self) -> bool:
        return time.monotonic() - self._last_commit >= self._batch_seconds

    def _raise_failure(self) -> None:
        if self._failure is not None:
            raise self._failure

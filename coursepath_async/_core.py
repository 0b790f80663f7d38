"""The path every call travels: scheduler slot → fresh token → one attempt → retry policy.

Shared by a client and all its views; holds the pool, the budget and the signer.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Coroutine, Mapping
from typing import Any, TypeVar

import aiohttp
from attrs import frozen

from ._auth import TokenSigner
from ._bodyformat import BodyFormats
from ._config import ClientConfig, Priority, WireFormat
from ._exceptions import (
    APIConnectionError,
    APIResponseValidationError,
    APIStatusError,
    APITimeoutError,
    ClientStateError,
)
from ._governor import RateGovernor
from ._hooks import HookRunner, Trace
from ._models import structure
from ._proxy import Proxy
from ._ratelimit import quota_hint
from ._redact import REDACT, Redactor
from ._retry import (
    Attempt,
    GiveUp,
    Outcome,
    Refusal,
    Rejection,
    Retry,
    RetryPolicy,
    classify,
    decide,
    uncertain,
)
from ._sansio import ApiRequest, RawResponse, RequestKind, encode_body, request_id
from ._scheduler import Scheduler
from ._skew import ClockSkew, measure
from ._transport import SSLParam, Transport

T = TypeVar("T")

logger = logging.getLogger("coursepath_async")


@frozen
class CallContext:
    """Who a call acts as, in which scheduler lane, and its total deadline."""

    user: str
    priority: Priority
    deadline: float | None


_NO_ATTEMPT = Attempt()  # frozen: every call starts from this one


class _Call:
    """One call's progress, which the deadline reads when it strikes: in doubt or not.

    Also what its last attempt's token was dated with (the clock offset) and, after a
    401, the offset that answer's ``Date`` showed; ``resigned`` once it was resent so.
    """

    __slots__ = (
        "attempt",
        "in_flight",
        "queue_wait",
        "refused_skew",
        "resigned",
        "sent_at",
        "signed_with",
        "trace",
    )

    def __init__(self) -> None:
        self.attempt = _NO_ATTEMPT
        self.in_flight = False
        self.signed_with = 0.0
        self.refused_skew: float | None = None
        self.resigned = False
        #: The hooks' view of the call (None without hooks), and its last attempt's timing.
        self.trace: Trace | None = None
        self.queue_wait = 0.0
        self.sent_at = 0.0

    @property
    def in_doubt(self) -> bool:
        """Whether the call may have been applied: an attempt is out, or one may have been."""
        return self.in_flight or self.attempt.maybe_applied


class Core:
    """Config, signer, scheduler, transport and retry policy of one client and its views."""

    def __init__(
        self,
        config: ClientConfig,
        *,
        api_key: str,
        retry: RetryPolicy,
        ssl: SSLParam,
        page_window: int,
        hooks: HookRunner | None = None,
        proxy: Proxy | None = None,
        session: aiohttp.ClientSession | None = None,
    ) -> None:
        self.config = config
        self.page_window = page_window
        self.retry = retry
        self.signer = TokenSigner(api_key)
        #: The server's clock offset, from its Date headers: tokens are dated on its clock.
        self.skew = ClockSkew()
        #: JSON or form bodies, for the client and all its views (auto: a 415 switches).
        self.body_formats = BodyFormats(config.body_format)
        #: Blanks tokens, this client's API key and proxy credentials in what servers answer.
        self.redact = Redactor([api_key, *(proxy.secrets if proxy is not None else ())])
        # One governor for the client and all its views: the server's limit is per academy.
        self.governor = RateGovernor(
            max_rate=config.max_rate,
            reserve=config.interactive_reserve,
            max_pause=retry.max_retry_after,
        )
        self.scheduler = Scheduler(
            config.max_concurrency,
            interactive_reserve=config.interactive_reserve,
            governor=self.governor,
        )
        self.transport = Transport(
            limit=config.max_concurrency + config.interactive_reserve,
            timeout=config.timeout,
            ssl=ssl,
            proxy=proxy,
            session=session,
        )
        self.closed = False
        #: The event loop of the first call: the pool, timers and waiters live there.
        self._loop: asyncio.AbstractEventLoop | None = None
        #: That loop's clock (``loop.time``), which the scheduler and governor run on,
        #: bound once instead of looked up several times per attempt.
        self._time: Callable[[], float] = time.monotonic
        self._closing = asyncio.Event()  # ends backoff waits when the client closes
        self._root = str(config.api_root)
        #: The client's instrumentations (``hooks=``); None: no hooks, no cost.
        self.hooks = hooks
        if hooks is not None:
            hooks.opened(self.scheduler.stats)

    def url_for(self, path: str) -> str:
        """The full URL of an API path, for messages."""
        return self._root + path

    def send(
        self, request: ApiRequest, ctx: CallContext
    ) -> Coroutine[Any, Any, tuple[str, RawResponse]]:
        """Run one call to a 2xx answer or a typed error; returns (url, response)."""
        url = self._root + request.target()
        call = _Call()
        if ctx.deadline is None:
            calling = self._attempts(request, ctx, url, call)
        else:
            calling = self._within_deadline(request, ctx, url, call, ctx.deadline)
        if self.hooks is None:
            return calling
        return self.hooks.run_call(calling, call, request, ctx.priority, self.scheduler.now)

    async def _within_deadline(
        self, request: ApiRequest, ctx: CallContext, url: str, call: _Call, deadline: float
    ) -> tuple[str, RawResponse]:
        try:
            async with asyncio.timeout(deadline):
                return await self._attempts(request, ctx, url, call)
        except TimeoutError:
            pass
        # Raised out here so that nothing the deadline cut short stays in the chain.
        error = APITimeoutError(
            f"call deadline of {deadline:g}s exceeded",
            method=request.method,
            url=url,
            sent=call.in_doubt,
        )
        if call.in_doubt and request.kind is RequestKind.AT_MOST_ONCE:
            raise uncertain(error)
        raise error

    async def _attempts(
        self, request: ApiRequest, ctx: CallContext, url: str, call: _Call
    ) -> tuple[str, RawResponse]:
        """Attempt until success or a final error: each attempt, then the retry decision."""
        self._check_usable()
        # The body's format (None: no body), fixed for the call unless a 415 switches it.
        if request.body is None:
            sent_as, data, headers = None, None, self.transport.call_headers()
        else:
            sent_as = self.body_formats.current
            data, headers = self._wire(request.body, sent_as)
        clock = self._time  # the one clock: the governor's and the scheduler's
        began = clock()
        while True:
            answer = await self._attempt(request, ctx, url, data, headers, call)
            if isinstance(answer, RawResponse):
                if call.trace is not None:
                    self._observe(call.trace, call, answer, None)
                return url, answer
            if isinstance(answer, Rejection) and self._resend_at_once(answer, call, sent_as):
                if call.trace is not None:
                    self._observe(call.trace, call, answer, Retry(wait=0.0))
                if request.body is not None and sent_as != self.body_formats.current:
                    sent_as = self.body_formats.current
                    data, headers = self._wire(request.body, sent_as)
                continue
            decision = decide(
                answer,
                call.attempt,
                request.kind,
                clock() - began,
                ctx.deadline,
                policy=self.retry,
            )
            if call.trace is not None:
                self._observe(call.trace, call, answer, decision)
            if isinstance(decision, GiveUp):
                raise decision.error
            wait, attempt, failure = decision.wait, call.attempt.number, answer.error
            logger.info(
                "retrying %s %s in %.2fs after attempt %d: %s",
                request.method,
                request.path,
                wait,
                attempt,
                failure,
            )
            await self._back_off(wait)

    def _observe(
        self,
        trace: Trace,
        call: _Call,
        answer: RawResponse | Outcome,
        decision: Retry | GiveUp | None,
    ) -> None:
        """Hand the attempt that just ended, and what the retry policy decided, to the hooks."""
        elapsed = self._time() - call.sent_at
        if isinstance(answer, RawResponse):
            rid = request_id(answer.headers, self.redact)
        else:
            error = answer.error
            rid = error.request_id if isinstance(error, APIStatusError) else None
        trace.attempt(answer, decision, queue_wait=call.queue_wait, elapsed=elapsed, request_id=rid)

    def _resend_at_once(self, outcome: Rejection, call: _Call, sent_as: WireFormat | None) -> bool:
        """Whether a refusal that applied nothing is mended by resending the call now.

        A 415 to a JSON body under ``body_format="auto"`` (resent as form), and a 401
        whose ``Date`` shows our token was dated over a minute off the server's clock
        (resent once, signed on its clock). Neither waits nor counts as a fault.
        """
        status = outcome.error.status_code
        if status == 415:
            return sent_as is not None and self.body_formats.refused(sent_as)
        if status != 401 or call.resigned:
            return False
        call.resigned = self.skew.misdated(call.refused_skew, signed_with=call.signed_with)
        return call.resigned

    def _check_usable(self) -> None:
        """Refuse a call on a closed client, or from another loop than its first call's.

        aiohttp's pool cannot move between loops: used from a second ``asyncio.run`` it
        fails deep inside with "Event loop is closed" or "attached to a different loop".
        """
        if self.closed:
            raise ClientStateError("the Coursepath client is closed")
        loop = asyncio.get_running_loop()
        if self._loop is None:
            self._loop = loop
            # asyncio's own loops read time.monotonic() through a Python method: call it
            # directly, three times an attempt. Other loops (uvloop's) keep their clock.
            standard = type(loop).time is asyncio.BaseEventLoop.time
            self._time = time.monotonic if standard else loop.time
        elif loop is not self._loop:
            raise ClientStateError(
                "this Coursepath client belongs to the event loop of its first call "
                "(an earlier asyncio.run?); create a client inside each event loop"
            )

    def _wire(
        self, body: Mapping[str, Any], body_format: WireFormat
    ) -> tuple[bytes, dict[str, str]]:
        """The body bytes and headers every attempt sends (each adds its own token)."""
        data, content_type = encode_body(body, body_format)
        return data, self.transport.call_headers(content_type)

    async def _attempt(
        self,
        request: ApiRequest,
        ctx: CallContext,
        url: str,
        data: bytes | None,
        headers: dict[str, str],
        call: _Call,
    ) -> RawResponse | Outcome:
        """One attempt: slot, fresh token, send, classify; a 2xx answer or what went wrong."""
        scheduler, clock = self.scheduler, self._time
        # The slot's fast path without a coroutine: a free slot is simply taken.
        if scheduler.try_acquire(ctx.priority):
            call.queue_wait = 0.0
        else:
            queued_at = clock()
            await scheduler.acquire(ctx.priority)
            call.queue_wait = clock() - queued_at
        try:
            if self.closed:  # closed while we waited or backed off: never reopen
                raise ClientStateError("the Coursepath client is closed")
            call.in_flight = True
            # Signed here, after any wait for a slot: iat is the dispatch time, on the
            # server's clock.
            offset = call.signed_with = self.skew.offset
            headers["Authorization"] = "Bearer " + self.signer.sign(ctx.user, offset)
            call.sent_at = sent_at = clock()
            sent_wall = time.time()
            try:
                response = await self.transport.request(
                    request.method, url, headers=headers, data=data, max_body=request.max_body
                )
            except APIConnectionError as exc:
                answer: RawResponse | APIConnectionError = exc
            else:
                now = clock()
                wall = time.time()
                date = response.headers.get("date")
                if date != self.skew.last_date:  # a new second: a new sample
                    self.skew.observe(date, sent=sent_wall, received=wall)
                if logger.isEnabledFor(logging.DEBUG):
                    logger.debug(
                        "%s %s -> %d (attempt %d, %.3fs, request id %s)",
                        request.method,
                        request.path,
                        response.status,
                        call.attempt.number + 1,
                        now - sent_at,
                        request_id(response.headers, self.redact),
                    )
                hint = quota_hint(response.headers, now=wall)
                if hint is not None:  # the server told its quota
                    self.governor.heed(hint, now=now)
                if 200 <= response.status < 300:  # a 3xx is not followed; a 1xx no answer
                    self.governor.accepted(now)
                    scheduler.succeeded()
                    return response
                if response.status == 401:
                    call.refused_skew = measure(date, sent=sent_wall, received=wall)
                answer = response
            outcome = classify(
                request, url, answer, earlier=call.attempt, now=time.time(), redact=self.redact
            )
            call.attempt = call.attempt.after(outcome)
            # Answered or failed: no longer out. (Cut off by the deadline, it still is.)
            call.in_flight = False
            self._learn(outcome, sent_at)
            return outcome
        finally:
            scheduler.release()

    def _learn(self, outcome: Outcome, sent_at: float) -> None:
        """Tell the governor and the scheduler what a failed attempt says of the server."""
        now = self._time()
        if isinstance(outcome, Refusal):
            # The server's rate limit, for everyone: the whole client slows (and pauses).
            self.governor.refused(sent_at=sent_at, now=now, retry_after=outcome.retry_after)
        elif isinstance(outcome.error, APIStatusError):
            self.governor.accepted(now)  # answered: it counted against any quota
            if outcome.error.status_code == 503:
                # Overloaded without saying for how long: fewer calls at once.
                self.scheduler.overloaded()

    async def _back_off(self, wait: float) -> None:
        """Sleep ``wait`` seconds before a retry, or less if the client closes meanwhile."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(wait):
                await self._closing.wait()

    async def aclose(self) -> None:
        """Close the shared pool; later calls raise instead of reopening it.

        Calls backing off or queued (even behind a long ``Retry-After`` pause) are let go
        at once, and raise that the client is closed.
        """
        was_closed = self.closed
        if not self.closed and self._loop is not None:
            self._check_usable()  # from another loop the pool cannot be closed: say so
        self.closed = True
        self._closing.set()
        self.scheduler.close()
        await self.transport.aclose()
        if self.hooks is not None and not was_closed:
            await self.hooks.aclose(self.scheduler.stats)


def decode_model(
    request: ApiRequest,
    url: str,
    data: Any,
    body: bytes,
    cls: type[T],
    *,
    redact: Redactor = REDACT,
) -> T:
    """Build ``cls`` from decoded JSON, turning any shape error into a typed, redacted one."""
    try:
        return structure(data, cls)
    except Exception as exc:  # cattrs raises several types; all mean "bad shape"
        problem = _describe(exc)
    # Raised out here: cattrs' errors quote the answer's values, and would stay as
    # __context__ (``from None`` only hides it from tracebacks).
    raise APIResponseValidationError(
        f"answer is not a valid {cls.__name__}: {redact(problem)}",
        method=request.method,
        url=url,
        body=redact.body(body),
    )


def _describe(exc: Exception) -> str:
    subs = getattr(exc, "exceptions", None)
    if subs:
        return "; ".join(_describe(e) for e in subs)
    return f"{type(exc).__name__}: {exc}"

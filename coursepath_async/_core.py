"""The path every call travels: scheduler slot → fresh token → one attempt → retry policy.

Shared by a client and all its views; holds the pool, the budget and the signer.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Coroutine
from typing import Any, TypeVar

import aiohttp
from attrs import frozen

from ._auth import TokenSigner
from ._config import ClientConfig, Priority
from ._exceptions import (
    APIConnectionError,
    APIResponseValidationError,
    APIStatusError,
    APITimeoutError,
)
from ._governor import RateGovernor
from ._models import structure
from ._proxy import Proxy
from ._ratelimit import quota_hint
from ._redact import REDACT, Redactor
from ._retry import (
    Attempt,
    GiveUp,
    Outcome,
    Refusal,
    RetryPolicy,
    classify,
    decide,
    uncertain,
)
from ._sansio import ApiRequest, RawResponse, RequestKind, encode_body, request_id
from ._scheduler import Scheduler
from ._transport import SSLParam, Transport

T = TypeVar("T")

logger = logging.getLogger("coursepath_async")

_USER_AGENT = "coursepath-async/0.1"


@frozen
class CallContext:
    """Who a call acts as, in which scheduler lane, and its total deadline."""

    user: str
    priority: Priority
    deadline: float | None


_NO_ATTEMPT = Attempt()  # frozen: every call starts from this one


class _Call:
    """One call's progress, which the deadline reads when it strikes: in doubt or not."""

    __slots__ = ("attempt", "in_flight")

    def __init__(self) -> None:
        self.attempt = _NO_ATTEMPT
        self.in_flight = False

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
        proxy: Proxy | None = None,
        session: aiohttp.ClientSession | None = None,
    ) -> None:
        self.config = config
        self.page_window = page_window
        self.retry = retry
        self.signer = TokenSigner(api_key)
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
        self._closing = asyncio.Event()  # ends backoff waits when the client closes
        self._root = str(config.api_root)

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
            return self._attempts(request, ctx, url, call)
        return self._within_deadline(request, ctx, url, call, ctx.deadline)

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
        if self.closed:
            raise RuntimeError("the Coursepath client is closed")
        data, headers = self._wire(request)
        clock = self.scheduler.now  # the one clock: the governor's and the scheduler's
        began = clock()
        while True:
            answer = await self._attempt(request, ctx, url, data, headers, call)
            if isinstance(answer, RawResponse):
                return url, answer
            decision = decide(
                answer,
                call.attempt,
                request.kind,
                clock() - began,
                ctx.deadline,
                policy=self.retry,
            )
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

    def _wire(self, request: ApiRequest) -> tuple[bytes | None, dict[str, str]]:
        """The body bytes and headers every attempt sends (each adds its own token)."""
        if request.body is None:
            return None, {"Accept": "application/json", "User-Agent": _USER_AGENT}
        data, content_type = encode_body(request.body, self.config.body_format)
        return data, {
            "Accept": "application/json",
            "User-Agent": _USER_AGENT,
            "Content-Type": content_type,
        }

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
        scheduler = self.scheduler
        # The slot's fast path without a coroutine: a free slot is simply taken.
        if not scheduler.try_acquire(ctx.priority):
            await scheduler.acquire(ctx.priority)
        try:
            if self.closed:  # closed while we waited or backed off: never reopen
                raise RuntimeError("the Coursepath client is closed")
            call.in_flight = True
            # Signed here, after any wait for a slot: iat is the dispatch time.
            headers["Authorization"] = "Bearer " + self.signer.sign(ctx.user)
            sent_at = scheduler.now()
            try:
                response = await self.transport.request(
                    request.method, url, headers=headers, data=data, max_body=request.max_body
                )
            except APIConnectionError as exc:
                answer: RawResponse | APIConnectionError = exc
            else:
                now = scheduler.now()
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
                hint = quota_hint(response.headers, now=time.time())
                if hint is not None:  # the server told its quota
                    self.governor.heed(hint, now=now)
                if 200 <= response.status < 300:  # a 3xx is not followed; a 1xx no answer
                    self.governor.accepted(now)
                    scheduler.succeeded()
                    return response
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
        now = self.scheduler.now()
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
        self.closed = True
        self._closing.set()
        self.scheduler.close()
        await self.transport.aclose()


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

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

from attrs import frozen

from ._auth import TokenSigner
from ._config import ClientConfig, Priority
from ._exceptions import (
    APIConnectionError,
    APIResponseValidationError,
    APIStatusError,
    APITimeoutError,
    UncertainOutcomeError,
)
from ._models import structure
from ._redact import REDACT, Redactor
from ._retry import RetryPolicy, is_retryable_status, parse_retry_after
from ._sansio import ApiRequest, RawResponse, RequestKind, encode_body, status_error
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
    ) -> None:
        self.config = config
        self.page_window = page_window
        self.retry = retry
        self.signer = TokenSigner(api_key)
        #: Blanks tokens and this client's API key in what servers answer.
        self.redact = Redactor([api_key])
        self.scheduler = Scheduler(
            config.max_concurrency, interactive_reserve=config.interactive_reserve
        )
        self.transport = Transport(
            limit=config.max_concurrency + config.interactive_reserve,
            timeout=config.timeout,
            ssl=ssl,
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
        if ctx.deadline is None:
            return self._attempts(request, ctx, url, None, [])
        return self._within_deadline(request, ctx, url, ctx.deadline)

    async def _within_deadline(
        self, request: ApiRequest, ctx: CallContext, url: str, deadline: float
    ) -> tuple[str, RawResponse]:
        deadline_at = time.monotonic() + deadline
        in_doubt: list[bool] = []
        try:
            async with asyncio.timeout_at(asyncio.get_running_loop().time() + deadline):
                return await self._attempts(request, ctx, url, deadline_at, in_doubt)
        except TimeoutError:
            pass
        # Raised out here so that nothing the deadline cut short stays in the chain.
        error = APITimeoutError(
            f"call deadline of {deadline:g}s exceeded",
            method=request.method,
            url=url,
            sent=bool(in_doubt),
        )
        if in_doubt and request.kind is RequestKind.AT_MOST_ONCE:
            raise _uncertain(request, url, error) from error
        raise error

    async def _attempts(
        self,
        request: ApiRequest,
        ctx: CallContext,
        url: str,
        deadline_at: float | None,
        in_doubt: list[bool],
    ) -> tuple[str, RawResponse]:
        """Attempt until success or a final error.

        ``in_doubt`` is non-empty while the call may have been applied: an attempt is in
        flight, or an earlier one ended without a clear refusal.
        """
        if self.closed:
            raise RuntimeError("the Coursepath client is closed")
        if request.body is None:
            data, headers = None, {"Accept": "application/json", "User-Agent": _USER_AGENT}
        else:
            data, content_type = encode_body(request.body, self.config.body_format)
            headers = {
                "Accept": "application/json",
                "User-Agent": _USER_AGENT,
                "Content-Type": content_type,
            }
        scheduler = self.scheduler
        maybe_applied_before = False
        attempt = 0
        while True:
            attempt += 1
            # The slot's fast path without a coroutine: a free slot is simply taken.
            if not scheduler.try_acquire(ctx.priority):
                await scheduler.acquire(ctx.priority)
            try:
                if self.closed:  # closed while we waited or backed off: never reopen
                    raise RuntimeError("the Coursepath client is closed")
                in_doubt.append(True)
                # Signed here, after any wait for a slot: iat is the dispatch time.
                headers["Authorization"] = "Bearer " + self.signer.sign(ctx.user)
                started = time.monotonic()
                try:
                    response = await self.transport.request(
                        request.method, url, headers=headers, data=data, max_body=request.max_body
                    )
                except APIConnectionError as exc:
                    failure: APIConnectionError | APIStatusError = exc
                    retry_after = None
                    maybe_applied = exc.sent
                else:
                    if logger.isEnabledFor(logging.DEBUG):
                        logger.debug(
                            "%s %s -> %d (attempt %d, %.3fs)",
                            request.method,
                            request.path,
                            response.status,
                            attempt,
                            time.monotonic() - started,
                        )
                    if 200 <= response.status < 300:  # a 3xx is not followed; a 1xx no answer
                        scheduler.succeeded()
                        return url, response
                    retry_after = parse_retry_after(response.headers, now=time.time())
                    failure = status_error(
                        request,
                        url,
                        response,
                        retry_after=retry_after,
                        after_unknown_outcome=maybe_applied_before,
                        redact=self.redact,
                    )
                    # A 429 is a refusal before any work; a 5xx may come after the work.
                    maybe_applied = response.status >= 500
                    if response.status in (429, 503):
                        # The server is overloaded for everyone: the whole client backs off.
                        scheduler.overloaded()
                        if retry_after is not None and retry_after <= self.retry.max_retry_after:
                            # A longer demand fails calls fast instead of freezing the client.
                            scheduler.pause(retry_after)
            finally:
                scheduler.release()
            if maybe_applied and request.kind is RequestKind.AT_MOST_ONCE:
                raise _uncertain(request, url, failure) from failure
            maybe_applied_before = maybe_applied_before or maybe_applied
            if not maybe_applied_before:
                # Every attempt so far was refused unapplied: a deadline that strikes
                # before the next one is sent is a plain timeout, not an unknown outcome.
                in_doubt.clear()
            retryable = isinstance(failure, APIConnectionError) or is_retryable_status(
                failure.status_code
            )
            if not retryable or attempt >= self.retry.max_attempts:
                raise failure
            wait = self.retry.wait_before_retry(attempt, retry_after)
            if retry_after is not None and retry_after > self.retry.max_retry_after:
                raise failure
            if deadline_at is not None and time.monotonic() + wait >= deadline_at:
                raise failure  # waiting would outlive the call's deadline
            logger.info(
                "retrying %s %s in %.2fs after attempt %d: %s",
                request.method,
                request.path,
                wait,
                attempt,
                failure,
            )
            await self._back_off(wait)

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


def _uncertain(request: ApiRequest, url: str, failure: Exception) -> UncertainOutcomeError:
    return UncertainOutcomeError(
        f"{request.method} {request.path} may or may not have been applied "
        f"({failure}); not retried because repeating it is unsafe",
        method=request.method,
        url=url,
    )


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

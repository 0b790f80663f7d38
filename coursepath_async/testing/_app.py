"""The request pipeline: route, inject faults, authenticate, authorise, handle, record.

One low-level aiohttp handler (no ``web.Application``, no middlewares) serves every
request, in this order:

1. match the path to a route template (unknown paths still go through faults);
2. take the fault: the route's scripted fault if one is queued, else the random
   decision. As across a network, the request reaches what follows half-way through
   the latency (later by a ``delay`` fault's seconds), and its answer leaves once the
   whole latency has passed since it arrived, so the app's work is inside it;
3. pre-app faults (``status``, ``rate_limit``, ``hang``) answer here, as a proxy in
   front of the app would: no authentication, no ``jti`` consumed, nothing applied;
4. the app: 404 unknown route, 405 wrong method, 401 bad token (the ``jti`` of a
   genuine token is consumed from here on), 403 learner out of bounds, 400/415 bad
   body, then the handler, which applies writes synchronously;
5. post-app faults (``applied_then``, ``reset``, ``slow_body``) spoil the answer to a
   request that WAS handled, writes included;
6. the recorder gets one :class:`RequestRecord`, whatever happened, even when the
   client went away (aiohttp cancels the handler, ``status`` is then ``None``).
"""

from __future__ import annotations

import asyncio
import itertools
import time
from email.utils import formatdate
from http import HTTPStatus
from typing import Final

from aiohttp import web

from ._auth import TokenClaims, TokenRejectedError, TokenVerifier, peek_claims
from ._dialect import DEFAULT_DIALECT, Dialect
from ._faults import POST_APP_KINDS, PRE_APP_KINDS, FaultInjector, FaultScript, ScriptedFault
from ._handlers import Call, Endpoint, Endpoints
from ._limiter import Limiter
from ._recorder import Recorder, RequestRecord
from ._routing import Match, Router
from ._state import AcademyState
from ._wire import (
    ApiError,
    Reply,
    echo_reply,
    error_reply,
    parse_body,
    proxy_error_reply,
    text_error,
)

_WRITES: Final = frozenset({"POST", "DELETE", "PUT", "PATCH"})


class _Log:
    """What is learnt about a request while it is being served, for its record."""

    __slots__ = ("claims", "fault", "rejection", "status")

    def __init__(self) -> None:
        self.status: int | None = None
        self.claims: TokenClaims | None = None
        self.fault: str | None = None
        self.rejection: str | None = None


class SandboxApp:
    """Serves the Coursepath API of one academy over aiohttp's low-level server."""

    def __init__(
        self,
        *,
        state: AcademyState,
        recorder: Recorder,
        verifier: TokenVerifier,
        endpoints: Endpoints,
        router: Router[Endpoint],
        injector: FaultInjector,
        script: FaultScript,
        api_key: str,
        limiter: Limiter | None = None,
        dialect: Dialect = DEFAULT_DIALECT,
    ) -> None:
        self.state = state
        #: Only for ``echo`` faults, which play a debug page that shows it.
        self.api_key = api_key
        self.recorder = recorder
        self.verifier = verifier
        self.endpoints = endpoints
        self.router = router
        #: Replaced when the academy's faults change (a new seeded sequence).
        self.injector = injector
        self.script = script
        #: The gateway's rate limiter, if any: it answers before faults and the app.
        self.limiter = limiter
        #: How this academy answers the open points: bodies taken, error type, clock.
        self.dialect = dialect
        #: Seconds the server's clock (its ``Date`` headers) runs ahead of ours.
        self.clock_offset = dialect.clock_offset
        self._accepts = dialect.body_encodings
        self._text_errors = dialect.error_body == "text"
        #: Set when the academy closes, releasing hung requests.
        self.closing = asyncio.Event()
        self._ids = itertools.count(1)

    def __repr__(self) -> str:
        return f"<SandboxApp {self.state!r} {self.recorder!r}>"

    async def handle(self, request: web.BaseRequest) -> web.StreamResponse:
        """Serve one request (the aiohttp handler)."""
        recorder = self.recorder
        started = time.monotonic()
        request_id = f"sbx-{next(self._ids)}"
        recorder.request_started()
        method = request.method
        path = request.path
        match = self.router.match(method, path)
        template = None if match is None else match.template
        log = _Log()
        try:
            decision = self.injector.decide(write=method in _WRITES)
            scripted = self.script.pop(method, path, template)
            fault = decision.fault if scripted is None else scripted
            if fault is not None and fault.kind == "ok":
                fault = None
            # The app's own work (a burst of 64 token checks, say) is inside the
            # latency, not on top of it.
            inbound = decision.latency / 2
            if fault is not None:
                log.fault = fault.label
                if fault.kind == "delay":
                    inbound += fault.seconds
            answer_at = started + inbound + decision.latency / 2
            refusal = None if self.limiter is None else self.limiter.admit()
            if refusal is not None:  # the gateway says no before anything else happens
                log.fault, log.status = "rate_limited", refusal.status
                self._note_claims(log, peek_claims(request.headers.get("Authorization")))
                await _sleep_until(answer_at)
                return self._response(refusal, request_id)
            if inbound > 0:
                await asyncio.sleep(inbound)
            if fault is not None and fault.kind in PRE_APP_KINDS:
                self._note_claims(log, peek_claims(request.headers.get("Authorization")))
                await _sleep_until(answer_at)
                return await self._pre_app_fault(request, fault, log, request_id)
            reply = await self._app_reply(request, match, log, request_id)
            await _sleep_until(answer_at)
            if fault is not None and fault.kind in POST_APP_KINDS:
                return await self._post_app_fault(request, fault, reply, log, request_id)
            log.status = reply.status
            return self._response(reply, request_id)
        finally:
            claims = log.claims
            recorder.request_finished(
                RequestRecord(
                    request_id=request_id,
                    method=method,
                    path=path,
                    route=template,
                    status=log.status,
                    email=None if claims is None else claims.email,
                    jti=None if claims is None else claims.jti,
                    iat=None if claims is None else claims.iat,
                    fault=log.fault,
                    rejection=log.rejection,
                    started=started,
                    ended=time.monotonic(),
                )
            )

    def _note_claims(self, log: _Log, claims: TokenClaims | None) -> None:
        log.claims = claims
        if claims is not None and claims.jti is not None:
            self.recorder.saw_jti(claims.jti)

    async def _app_reply(
        self, request: web.BaseRequest, match: Match[Endpoint] | None, log: _Log, request_id: str
    ) -> Reply:
        authorization = request.headers.get("Authorization")
        if match is None:
            self._note_claims(log, peek_claims(authorization))
            return error_reply(404, "not_found", f"no route for {request.method} {request.path}")
        endpoint = match.route
        if endpoint is None:
            self._note_claims(log, peek_claims(authorization))
            return error_reply(
                405,
                "method_not_allowed",
                f"{request.method} is not allowed here",
                {"Allow": ", ".join(match.allowed)},
            )
        try:
            claims = self.verifier.verify(authorization)
        except TokenRejectedError as exc:
            self._note_claims(log, exc.claims)
            return self._reject(log, exc.reason, exc.message)
        self._note_claims(log, claims)
        actor = self.state.member_by_email(claims.email or "")
        if actor is None:
            return self._reject(log, "unknown_member", "the token's email is not a member")
        if actor.role != "admin" and not (
            endpoint.learner == "always"
            or (endpoint.learner == "self" and match.ids.get("memberId") == actor.id)
        ):
            return error_reply(403, "forbidden", "a learner may only read their own records")
        try:
            query: dict[str, str] = dict(request.query)
            body: dict[str, object] = {}
            if request.method in _WRITES:
                # Parameters may come in the query string too; the body wins.
                raw = await request.read()
                body = {**query, **parse_body(request.content_type, raw, self._accepts)}
            call = Call(ids=match.ids, query=query, body=body, actor=actor, request_id=request_id)
            return endpoint.handler(self.endpoints, call)
        except ApiError as exc:
            return exc.reply()

    def _headers(self, reply: Reply, request_id: str) -> dict[str, str]:
        headers = {"X-Request-Id": request_id, **reply.headers}
        if reply.content_type is not None:
            headers["Content-Type"] = reply.content_type
        if self.clock_offset:  # else aiohttp's own Date, which is ours
            headers["Date"] = formatdate(time.time() + self.clock_offset, usegmt=True)
        return headers

    def _response(self, reply: Reply, request_id: str) -> web.Response:
        if self._text_errors:  # the one place every error reply of the app passes
            reply = text_error(reply)
        headers = self._headers(reply, request_id)
        if not reply.body:
            return web.Response(status=reply.status, headers=headers, reason=reply.reason)
        return web.Response(
            status=reply.status, body=reply.body, headers=headers, reason=reply.reason
        )

    def _reject(self, log: _Log, reason: str, message: str) -> Reply:
        log.rejection = reason
        self.recorder.token_rejected(reason)
        return error_reply(
            401, "unauthorized", message, {"WWW-Authenticate": 'Bearer error="invalid_token"'}
        )

    async def _pre_app_fault(
        self, request: web.BaseRequest, fault: ScriptedFault, log: _Log, request_id: str
    ) -> web.StreamResponse:
        if fault.kind == "hang":
            # Until the client gives up (aiohttp then cancels us) or the academy closes.
            await self.closing.wait()
            _abort(request)
            return web.Response(status=503)
        code = fault.http_status or 503
        headers = fault.retry_after_headers
        if fault.kind == "echo":
            authorization = request.headers.get("Authorization")
            if authorization:
                self.recorder.echoed(authorization.partition(" ")[2])
            reply = echo_reply(
                code, fault.echo_format, authorization=authorization, api_key=self.api_key
            )
        elif code >= 500:
            reply = proxy_error_reply(code, headers)
        else:
            try:
                error, phrase = HTTPStatus(code).name.lower(), HTTPStatus(code).phrase
            except ValueError:
                error, phrase = "error", "Error"
            if code == 429:
                error = "rate_limited"
            reply = error_reply(code, error, phrase, headers)
        log.status = code
        return self._response(reply, request_id)

    async def _post_app_fault(
        self,
        request: web.BaseRequest,
        fault: ScriptedFault,
        reply: Reply,
        log: _Log,
        request_id: str,
    ) -> web.StreamResponse:
        if fault.kind == "applied_then":
            code = fault.http_status or 502
            log.status = code
            return self._response(proxy_error_reply(code), request_id)
        body = reply.body
        if fault.kind == "reset" and not body:
            _abort(request)
            return web.Response(status=reply.status)
        stream = web.StreamResponse(status=reply.status, headers=self._headers(reply, request_id))
        stream.content_length = len(reply.body)
        log.status = reply.status
        await stream.prepare(request)
        try:
            if fault.kind == "reset":
                # Promise the whole body, deliver half, hang up: a payload error.
                await stream.write(body[: len(body) // 2])
                _abort(request)
                return stream
            size = -(-len(body) // fault.chunks)
            for index in range(0, len(body), size):
                if index:
                    await asyncio.sleep(fault.seconds)
                await stream.write(body[index : index + size])
            await stream.write_eof()
        except ConnectionError:
            # The client gave up on the slow body; nothing left to send to.
            pass
        return stream


async def _sleep_until(deadline: float) -> None:
    """Sleep until ``deadline`` on the monotonic clock, if it is still ahead."""
    delay = deadline - time.monotonic()
    if delay > 0:
        await asyncio.sleep(delay)


def _abort(request: web.BaseRequest) -> None:
    transport = request.transport
    if transport is not None:
        transport.abort()

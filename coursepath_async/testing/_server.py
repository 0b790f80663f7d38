"""The :class:`SandboxAcademy`: build the state, serve it on a port, shut down cleanly."""

from __future__ import annotations

import asyncio
import math
import secrets
import time
import uuid
from collections.abc import Callable, Mapping
from datetime import datetime
from pathlib import Path
from ssl import SSLContext
from types import TracebackType
from typing import Any, Final, Literal, Self

import attrs
import orjson
from aiohttp import web

from .._exceptions import InvalidInputError
from .._validation import (
    check_choice,
    check_http_url,
    check_int,
    check_number,
    validate_email,
)
from ._app import SandboxApp
from ._auth import Jti, TokenVerifier, encode_token
from ._dialect import Dialect, DuplicateStatus
from ._faults import FaultInjector, Faults, FaultScript, ScriptEntry
from ._fixture import dump_state, load_state, read_fixture
from ._handlers import ROUTES, ApiOptions, Endpoints
from ._limiter import Limiter, RateLimit, RateLimitStyle
from ._recorder import Recorder
from ._records import Enrolment, JsonDict
from ._routing import Router
from ._seed import seed_state
from ._state import AcademyState
from ._webhooks import WebhookSender

DEFAULT_ADMIN_EMAIL: Final = "admin@sandbox.test"


def _dialect(base: Dialect | str | None, **explicit: Any) -> Dialect:
    """The academy's dialect: ``base`` (or presets by name), with explicit keywords over it."""
    if base is None:
        dialect = Dialect()
    elif isinstance(base, str):
        dialect = Dialect.named(base)
    elif isinstance(base, Dialect):
        dialect = base
    else:
        raise TypeError(f"dialect must be a Dialect or preset names, got {type(base).__name__}")
    given = {name: value for name, value in explicit.items() if value is not None}
    return attrs.evolve(dialect, **given) if given else dialect


class SandboxAcademy:
    """A stateful, fault-injecting Coursepath academy served over real loopback HTTP.

    Use it as ``async with SandboxAcademy(members=50, seed=1) as academy:`` and point a
    client at ``academy.url`` with ``academy.api_key`` and ``academy.admin_email``.
    ``members`` counts every member, the admin (id 1) included; ``fixture`` (a dump,
    or a path to one) replaces the seeded data.  Tokens are checked as Coursepath does
    (see ``_auth``); faults (see ``_faults``) are off unless ``faults`` or
    :meth:`script` say otherwise. ``rate_limit`` (requests per second) puts a gateway's
    limiter in front (see ``_limiter``: ``rate_limit_style`` is how it refuses,
    ``rate_limit_burst`` its bucket); ``clock_offset`` runs the academy's clock that
    many seconds ahead of ours (its ``Date`` headers, dated Retry-After, token checks).

    ``dialect`` (a :class:`Dialect` or preset names, ``"form_only,no_dates"``) is how the
    academy answers the API's open points; the keywords ``duplicate_status``,
    ``member_page_size``, ``course_page_size``, ``group_page_size`` and ``clock_offset``
    are dialect fields too, and override the dialect's value when given; ``dialect``
    (the attribute) is the result.
    """

    def __init__(
        self,
        *,
        members: int = 20,
        courses: int = 5,
        programs: int = 2,
        groups: int = 4,
        seed: int = 0,
        completion_rate: float = 0.25,
        fixture: str | Path | Mapping[str, Any] | None = None,
        api_key: str | None = None,
        admin_email: str = DEFAULT_ADMIN_EMAIL,
        host: str = "127.0.0.1",
        port: int = 0,
        ssl: SSLContext | None = None,
        faults: Faults | None = None,
        webhook_url: str | None = None,
        webhook_ssl: SSLContext | None = None,
        webhook_timeout: float = 5.0,
        dialect: Dialect | str | None = None,
        duplicate_status: DuplicateStatus | None = None,
        list_order: Literal["id", "newest_first"] = "id",
        member_page_size: int | None = None,
        course_page_size: int | None = None,
        group_page_size: int | None = None,
        token_max_age: float = 120.0,
        token_max_skew: float = 30.0,
        max_log: int | None = None,
        record_jtis: bool = True,
        rate_limit: float | None = None,
        rate_limit_style: RateLimitStyle = "429",
        rate_limit_burst: float | None = None,
        clock_offset: float | None = None,
    ) -> None:
        check_choice(list_order, field="list_order", choices=("id", "newest_first"))
        counts = {"members": members, "courses": courses, "programs": programs, "groups": groups}
        for name, count in counts.items():
            check_int(count, field=name, minimum=0)
        sizes = {
            "member_page_size": member_page_size,
            "course_page_size": course_page_size,
            "group_page_size": group_page_size,
        }
        for name, size in sizes.items():
            if size is not None:
                check_int(size, field=name)
        check_int(port, field="port", minimum=0, maximum=65535)
        for name, seconds in (
            ("token_max_age", token_max_age),
            ("token_max_skew", token_max_skew),
            ("webhook_timeout", webhook_timeout),
        ):
            check_number(seconds, field=name, above_minimum=True)
        check_number(completion_rate, field="completion_rate", maximum=1.0)
        validate_email(admin_email, field="admin_email")
        if webhook_url is not None:
            check_http_url(webhook_url, field="webhook_url")
        if faults is not None and not isinstance(faults, Faults):
            raise InvalidInputError(
                f"faults must be a Faults, got {type(faults).__name__}", argument="faults"
            )
        if clock_offset is not None:
            check_number(clock_offset, field="clock_offset", minimum=-math.inf)
        if duplicate_status is not None:
            check_choice(duplicate_status, field="duplicate_status", choices=(400, 409, 422))
        self.dialect = _dialect(
            dialect,
            duplicate_status=duplicate_status,
            member_page_cap=member_page_size,
            course_page_cap=course_page_size,
            group_page_cap=group_page_size,
            clock_offset=clock_offset,
        )
        self._api_key = api_key or secrets.token_urlsafe(32)
        self._admin_email = admin_email
        self._host = host
        self._requested_port = port
        self._ssl = ssl
        self._webhook_url = webhook_url
        self._webhook_ssl = webhook_ssl
        self._webhook_timeout = webhook_timeout

        self.state = AcademyState()
        if fixture is not None:
            load_state(self.state, read_fixture(fixture))
            if self.state.member_by_email(admin_email) is None:
                self.state.add_member(admin_email, name="Sandbox Admin", role="admin")
        else:
            seed_state(
                self.state,
                members=members,
                courses=courses,
                programs=programs,
                groups=groups,
                seed=seed,
                admin_email=admin_email,
                completion_rate=completion_rate,
            )
        self.recorder = Recorder(max_log=max_log, record_jtis=record_jtis)
        self._faults = faults or Faults()
        options = ApiOptions(dialect=self.dialect, newest_first=list_order == "newest_first")
        self._script = FaultScript()
        self._clock_offset = self.dialect.clock_offset
        limiter = None
        if rate_limit is not None:
            limit = RateLimit(rate=rate_limit, style=rate_limit_style, burst=rate_limit_burst)
            limiter = Limiter(limit, wall=self.server_time)
        self._app = SandboxApp(
            state=self.state,
            recorder=self.recorder,
            verifier=TokenVerifier(
                self._api_key,
                max_age=token_max_age,
                max_skew=token_max_skew,
                clock=self.server_time,
            ),
            endpoints=Endpoints(self.state, self.recorder, options),
            router=Router((method, template, endpoint) for method, template, endpoint in ROUTES),
            injector=FaultInjector(self._faults),
            script=self._script,
            api_key=self._api_key,
            limiter=limiter,
            dialect=self.dialect,
        )
        self._runner: web.ServerRunner | None = None
        self._port: int | None = None
        self._webhooks: WebhookSender | None = None
        self._unsubscribe: Callable[[], None] | None = None

    def __repr__(self) -> str:
        where = self.url if self._port is not None else "not started"
        limiter = "" if self.limiter is None else f" {self.limiter!r}"
        return (
            f"<SandboxAcademy {where} members={self.state.member_count} {self._faults!r}{limiter}>"
        )

    def server_time(self) -> float:
        """The academy's wall clock: ours plus ``clock_offset`` (its Date headers, iat checks)."""
        return time.time() + self._clock_offset

    @property
    def limiter(self) -> Limiter | None:
        """The rate limiter in front of the academy (``rate_limit=``), if any."""
        return self._app.limiter

    # -- connection details ---------------------------------------------------------

    @property
    def url(self) -> str:
        """The base URL clients use, e.g. ``http://127.0.0.1:54321`` (once started)."""
        if self._port is None:
            raise RuntimeError("the sandbox academy is not running; use 'async with'")
        scheme = "https" if self._ssl is not None else "http"
        return f"{scheme}://{self._host}:{self._port}"

    @property
    def port(self) -> int:
        """The bound port (once started)."""
        if self._port is None:
            raise RuntimeError("the sandbox academy is not running; use 'async with'")
        return self._port

    @property
    def api_key(self) -> str:
        """The academy's API key, which signs every client token (never in a repr)."""
        return self._api_key

    @property
    def admin_email(self) -> str:
        """The email of the seeded admin member, who may call every endpoint."""
        return self._admin_email

    # -- lifecycle ------------------------------------------------------------------

    async def start(self) -> None:
        """Bind the port and start serving (``async with`` does this)."""
        if self._runner is not None:
            raise RuntimeError("the sandbox academy is already running")
        self._app.closing.clear()
        if self._webhook_url is not None:
            self._webhooks = WebhookSender(
                self._webhook_url,
                self.recorder,
                ssl_context=self._webhook_ssl,
                timeout=self._webhook_timeout,
            )
            await self._webhooks.start()
            self._unsubscribe = self.state.subscribe(self._webhooks.send)
        server = web.Server(self._app.handle, handler_cancellation=True, access_log=None)
        runner = web.ServerRunner(server, shutdown_timeout=1.0)
        await runner.setup()
        site = web.TCPSite(runner, self._host, self._requested_port, ssl_context=self._ssl)
        try:
            await site.start()
        except BaseException:
            await runner.cleanup()
            await self._close_webhooks()
            raise
        self._runner = runner
        address = runner.addresses[0]
        self._port = int(address[1])

    async def close(self) -> None:
        """Stop serving, release hung requests and finish webhook deliveries."""
        runner, self._runner = self._runner, None
        self._app.closing.set()
        if runner is not None:
            await runner.cleanup()
        await self._close_webhooks()
        self._port = None

    async def _close_webhooks(self) -> None:
        if self._unsubscribe is not None:
            self._unsubscribe()
            self._unsubscribe = None
        if self._webhooks is not None:
            await self._webhooks.aclose()
            self._webhooks = None

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    async def serve_forever(self) -> None:
        """Serve until cancelled, then close (for the CLI: prints nothing itself)."""
        if self._runner is None:
            await self.start()
        try:
            await asyncio.Event().wait()
        finally:
            await self.close()

    # -- faults ---------------------------------------------------------------------

    @property
    def faults(self) -> Faults:
        """The random fault config; assigning one restarts the seeded sequence."""
        return self._faults

    @faults.setter
    def faults(self, faults: Faults) -> None:
        self._faults = faults
        self._app.injector = FaultInjector(faults)

    def set_faults(self, **changes: Any) -> Faults:
        """Change some fault settings (``attrs.evolve``); returns the new config."""
        self.faults = attrs.evolve(self._faults, **changes)
        return self._faults

    def script(self, method: str, path: str, *faults: ScriptEntry) -> None:
        """Queue faults for the next requests to one route, consumed in order.

        ``path`` is an exact path (``/api/v1/members/7``) or a template
        (``/api/v1/members/{id}``); the ``/api/v1`` prefix may be left out and
        ``method`` may be ``"*"``.  Entries are :class:`ScriptedFault` values, ints
        (a status) or names (``"reset"``, ``"hang"``, ``"ok"``, ``"applied_then_502"``).
        """
        self._script.add(method, path, faults)

    def pending_script(self) -> dict[str, int]:
        """Scripted faults not consumed yet, by ``"METHOD path"``."""
        return self._script.pending()

    def clear_script(self) -> None:
        """Drop every scripted fault not consumed yet."""
        self._script.clear()

    # -- test helpers ---------------------------------------------------------------

    def sign_token(
        self,
        email: str | None = None,
        *,
        iat: float | None = None,
        jti: Jti | None = None,
    ) -> str:
        """Mint a token the academy accepts (for raw-HTTP tests): fresh ``jti``, ``iat`` now."""
        claims = {
            "email": email or self._admin_email,
            "iat": int(time.time()) if iat is None else iat,
            "jti": uuid.uuid4().hex if jti is None else jti,
        }
        return encode_token(claims, self._api_key)

    def complete_course(
        self,
        course_id: int,
        member_id: int,
        *,
        score: float | None = 100.0,
        success: bool = True,
        completed_at: datetime | None = None,
    ) -> Enrolment:
        """Mark an enrolled member's course completed (fires COURSEMEMBER_COMPLETED)."""
        return self.state.complete(
            course_id, member_id, score=score, success=success, completed_at=completed_at
        )

    def complete_random(self, fraction: float, *, seed: int = 0) -> list[Enrolment]:
        """Complete about ``fraction`` of the open enrolments, deterministically."""
        return self.state.complete_random(fraction, seed=seed)

    async def wait_webhooks(self) -> None:
        """Wait until every webhook delivery scheduled so far has finished."""
        if self._webhooks is not None:
            await self._webhooks.drain()

    def dump(self, path: str | Path | None = None) -> JsonDict:
        """Return the state as fixture data, also writing it to ``path`` if given."""
        data = dump_state(self.state)
        if path is not None:
            Path(path).write_bytes(orjson.dumps(data, option=orjson.OPT_INDENT_2))
        return data

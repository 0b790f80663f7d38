"""``CoursepathClient``: the session manager users hold, and the views ``as_user`` returns."""

from __future__ import annotations

import asyncio
import contextlib
import warnings
from collections.abc import (
    AsyncGenerator,
    AsyncIterable,
    Awaitable,
    Callable,
    Iterable,
    Mapping,
    Sequence,
)
from contextlib import AbstractContextManager
from ssl import SSLContext
from types import TracebackType
from typing import Self, TypeVar

import aiohttp

from ._config import (
    BodyFormat,
    ClientConfig,
    Priority,
    WireFormat,
    check_body_format,
    check_count,
    check_optional_rate,
    check_optional_seconds,
    check_positive_int,
    check_priority,
    check_seconds,
    resolve_allow_http,
    resolve_api_key,
    resolve_base_url,
    resolve_user,
)
from ._core import CallContext, Core
from ._cursor import MAX_RECORDS
from ._exceptions import ConfigurationError
from ._hooks import HookRunner, Instrumentation, as_instrumentations
from ._jobs import bounded_map
from ._pagination import MAX_WINDOW
from ._proxy import resolve_proxy
from ._resources import Courses, Groups, Members, Programs
from ._retry import RetryPolicy
from ._scheduler import SchedulerStats
from ._transport import SSLParam
from ._validation import validate_email

_UNSET: object = object()

T = TypeVar("T")
R = TypeVar("R")


class CoursepathAPI:
    """A client or a view acting for one member: the resources, the acting member and lane.

    :class:`CoursepathClient` and :class:`ClientView` are both one; bulk jobs and helpers
    that only make calls accept either, so type them with this.
    """

    members: Members
    courses: Courses
    programs: Programs
    groups: Groups

    def _bind(self, core: Core, ctx: CallContext) -> None:
        self._core = core
        self._ctx = ctx
        self.members = Members(core, ctx)
        self.courses = Courses(core, ctx)
        self.programs = Programs(core, ctx)
        self.groups = Groups(core, ctx)

    @property
    def base_url(self) -> str:
        """The academy's origin, e.g. ``https://acme.coursepath.com``."""
        return str(self._core.config.base_url).rstrip("/")

    @property
    def user(self) -> str:
        """The email of the member calls are made on behalf of."""
        return self._ctx.user

    @property
    def priority(self) -> Priority:
        """The scheduler lane this view's calls wait in."""
        return self._ctx.priority

    @property
    def body_format(self) -> WireFormat:
        """How request bodies are sent now: ``"json"``, or ``"form"`` (after a 415 under auto)."""
        return self._core.body_formats.current

    @property
    def clock_skew(self) -> float:
        """Seconds the academy's clock runs ahead of ours, from its ``Date`` headers (0: none)."""
        return self._core.skew.offset

    def as_user(self, email: str) -> ClientView:
        """A view acting as another member; same pool, budget and lifecycle."""
        return self.with_options(user=validate_email(email, field="user"))

    def with_options(
        self,
        *,
        user: str | None = None,
        priority: Priority | None = None,
        deadline: float | object | None = _UNSET,
    ) -> ClientView:
        """A view with another acting member, scheduler lane or per-call deadline."""
        ctx = CallContext(
            user=self._ctx.user if user is None else validate_email(user, field="user"),
            priority=self._ctx.priority if priority is None else check_priority(priority),
            deadline=(
                self._ctx.deadline
                if deadline is _UNSET
                else check_optional_seconds("deadline", deadline)
            ),
        )
        return ClientView(self._core, ctx)

    def map(
        self,
        fn: Callable[[T], Awaitable[R]],
        items: Iterable[T] | AsyncIterable[T],
        *,
        concurrency: int | None = None,
        stop: asyncio.Event | None = None,
    ) -> AsyncGenerator[R, None]:
        """Run ``fn`` over ``items`` concurrently, yielding results as they complete.

        Items are pulled lazily with ``concurrency`` (default: twice the client's
        budget, so the scheduler always has work queued) in flight, so a producer of
        100,000 calls waits for room instead of growing memory. Setting ``stop``
        drains: nothing new starts, what is in flight finishes.
        """
        limit = 2 * self._core.config.max_concurrency if concurrency is None else concurrency
        return bounded_map(fn, items, limit=check_positive_int("concurrency", limit), stop=stop)

    def _observe_job(
        self, kind: str, counts: Callable[[], Mapping[str, int]]
    ) -> AbstractContextManager[None]:
        """For bulk jobs: the hooks see the job start, then end with ``counts()``."""
        hooks = self._core.hooks
        return contextlib.nullcontext() if hooks is None else hooks.job(kind, counts)

    def scheduler_stats(self) -> SchedulerStats:
        """Slots in use, callers waiting per lane and the rate governor, for the whole client."""
        return self._core.scheduler.stats()


class CoursepathClient(CoursepathAPI):
    """An async Coursepath client: config, pooled session, scheduler and lifecycle.

    Use one per process (``async with CoursepathClient(...) as client``) and derive
    per-member views with :meth:`as_user`. Every call signs a fresh single-use JWT
    when it is dispatched, waits for a slot in the shared budget and for the rate
    governor (which learns the server's rate limit; ``max_rate`` caps it, in requests
    per second), and is retried per the :class:`RetryPolicy`. ``body_format`` is how
    request bodies travel: ``"auto"`` (JSON, switching the whole client to form encoding
    once a server answers 415), ``"json"`` or ``"form"``. Tokens are signed on the
    server's clock as its ``Date`` headers tell it. ``hooks`` (a
    :class:`Hooks`, an :class:`Instrumentation` or a list of them) observe every attempt,
    call and bulk job of the client and its views.

    ``base_url``, ``api_key``, ``user`` and ``allow_http`` fall back to
    ``COURSEPATH_URL``, ``COURSEPATH_API_KEY``, ``COURSEPATH_USER`` and
    ``COURSEPATH_ALLOW_HTTP``. ``allow_http=True`` (or ``COURSEPATH_ALLOW_HTTP=1``)
    permits a plain ``http://`` academy: a local sandbox only, as Coursepath serves
    https only. A client belongs to the event loop of its first call. Invalid arguments
    raise :class:`InvalidInputError` naming them.

    ``proxy`` (``http://[user:password@]host:port``) sends every call through a
    forward proxy (a CONNECT tunnel for HTTPS), ``proxy_auth=(login, password)`` gives
    its credentials apart; without ``proxy``, ``trust_env`` honours ``HTTPS_PROXY`` and
    ``NO_PROXY``, read once. Proxy credentials never appear in a repr, log line or error.

    ``session`` shares an ``aiohttp.ClientSession`` you already manage: the client
    never closes it, and still sets per request what it relies on (no redirects, no
    ``raise_for_status``, its connect timeout, ``ssl`` and proxy); it switches off
    aiohttp's silent resend on that session, which would replay a single-use token.
    """

    def __init__(
        self,
        base_url: str | None = None,
        *,
        api_key: str | None = None,
        user: str | None = None,
        max_concurrency: int = 16,
        interactive_reserve: int = 2,
        retry: RetryPolicy | None = None,
        timeout: float = 30.0,
        deadline: float | None = None,
        allow_http: bool | None = None,
        ssl: SSLParam = True,
        body_format: BodyFormat = "auto",
        page_window: int | None = None,
        max_listing_records: int = MAX_RECORDS,
        priority: Priority = Priority.NORMAL,
        max_rate: float | None = None,
        hooks: Instrumentation | Sequence[Instrumentation] | None = None,
        proxy: str | None = None,
        proxy_auth: tuple[str, str] | None = None,
        trust_env: bool = True,
        session: aiohttp.ClientSession | None = None,
    ) -> None:
        allow_http = resolve_allow_http(allow_http)
        if not isinstance(ssl, bool | SSLContext):
            raise ConfigurationError(
                f"ssl must be an ssl.SSLContext or a bool, got {type(ssl).__name__}",
                argument="ssl",
            )
        if retry is not None and not isinstance(retry, RetryPolicy):
            raise ConfigurationError(
                f"retry must be a RetryPolicy, got {type(retry).__name__}", argument="retry"
            )
        config = ClientConfig(
            base_url=resolve_base_url(base_url, allow_http=allow_http),
            user=resolve_user(user),
            max_concurrency=check_positive_int("max_concurrency", max_concurrency),
            interactive_reserve=check_count("interactive_reserve", interactive_reserve),
            timeout=check_seconds("timeout", timeout),
            deadline=check_optional_seconds("deadline", deadline),
            body_format=check_body_format(body_format),
            max_listing_records=check_positive_int("max_listing_records", max_listing_records),
            max_rate=check_optional_rate("max_rate", max_rate),
        )
        if session is not None and (
            not isinstance(session, aiohttp.ClientSession) or session.closed
        ):
            raise ConfigurationError("session must be an open aiohttp.ClientSession")
        proxy_setting = resolve_proxy(
            proxy, proxy_auth, base_url=config.base_url, trust_env=trust_env
        )
        core = Core(
            config,
            hooks=_hook_runner(config, hooks),
            proxy=proxy_setting,
            session=session,
            api_key=resolve_api_key(api_key),
            retry=retry or RetryPolicy(),
            ssl=ssl,
            # Pages in flight per full listing: by default as many as the budget allows,
            # up to 16 (beyond that a listing only crowds out other calls).
            page_window=check_positive_int(
                "page_window",
                min(max_concurrency, 16) if page_window is None else page_window,
                maximum=MAX_WINDOW,
            ),
        )
        self._bind(
            core,
            CallContext(
                user=config.user, priority=check_priority(priority), deadline=config.deadline
            ),
        )

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the connection pool; views die with it. Safe to call twice."""
        await self._core.aclose()

    def __del__(self) -> None:
        core = getattr(self, "_core", None)
        if core is not None and core.transport.opened:
            warnings.warn(
                f"unclosed {self!r}: use 'async with' or 'await client.aclose()'",
                ResourceWarning,
                stacklevel=1,
                source=self,
            )

    def __repr__(self) -> str:
        return f"<CoursepathClient {self.base_url} user={self.user!r}>"


def _hook_runner(
    config: ClientConfig, hooks: Instrumentation | Sequence[Instrumentation] | None
) -> HookRunner | None:
    """The runner of ``hooks=`` for the core; None when there are none (no cost per call)."""
    try:
        instrumentations = as_instrumentations(hooks)
    except TypeError as exc:
        raise ConfigurationError(str(exc)) from None
    if not instrumentations:
        return None
    url = config.base_url
    return HookRunner(
        instrumentations,
        server_address=url.host or "",
        server_port=url.port or 443,
        root_path=config.api_root.path,
    )


class ClientView(CoursepathAPI):
    """A client acting as another member or in another lane; shares everything else."""

    def __init__(self, core: Core, ctx: CallContext) -> None:
        self._bind(core, ctx)

    def __repr__(self) -> str:
        origin = str(self._core.config.base_url).rstrip("/")
        return f"<ClientView {origin} user={self.user!r} priority={self.priority.name}>"

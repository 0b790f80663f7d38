"""Deterministic fault injection: random faults from a seeded config, and scripted ones.

Random faults: :class:`Faults` is a frozen config; the academy turns it into a
:class:`FaultInjector` whose ``random.Random(seed)`` makes one decision per request
with a fixed number of draws, so the k-th request after the faults were set always
gets the same decision, whatever earlier requests were.  Replacing the faults starts a
new sequence from the new seed.

Scripted faults: :class:`FaultScript` keeps per-route queues of :class:`ScriptedFault`
consumed in order; a scripted fault replaces the random decision's fault for that
request (the random latency still applies, and the random sequence still advances).

Where each fault strikes, relative to the app (auth, permissions, the handler):

* before the app, as a proxy would, so nothing is applied and the token is neither
  verified nor consumed: ``status`` (5xx HTML page or 4xx JSON), ``rate_limit`` (429),
  ``hang`` (never answers until the client gives up or the academy closes), ``echo``
  (any status, its body, a header and the reason phrase echoing the request's
  credentials, as a misconfigured proxy or a debug error page would);
* around the app: ``delay`` sleeps, then handles the request normally;
* after the app, so a write IS applied and its ``jti`` consumed: ``applied_then``
  (the response is replaced by a 5xx HTML page), ``reset`` (headers and part of the
  body, then the connection is aborted) and ``slow_body`` (the real response, dribbled
  out in chunks).
"""

from __future__ import annotations

import math
import random
from collections import deque
from collections.abc import Iterable
from typing import Any, Final, Literal

from attrs import Attribute, field, frozen

from .._exceptions import InvalidInputError
from .._validation import check_int, check_number, short_repr

FaultKind = Literal[
    "ok", "status", "rate_limit", "hang", "delay", "applied_then", "reset", "slow_body", "echo"
]
#: How an ``echo`` fault lays out its body.
EchoFormat = Literal["json", "text", "html"]
ECHO_FORMATS: Final[tuple[EchoFormat, ...]] = ("json", "text", "html")

#: Faults that answer before the request reaches the app (nothing applied).
PRE_APP_KINDS: Final = frozenset({"status", "rate_limit", "hang", "echo"})
#: Faults that let the app handle (and apply) the request, then spoil the answer.
POST_APP_KINDS: Final = frozenset({"applied_then", "reset", "slow_body"})


def _rate(_instance: object, attribute: Attribute[float], value: object) -> None:
    check_number(value, field=attribute.name, maximum=1.0)  # a probability


def _seconds(_instance: object, attribute: Attribute[float], value: object) -> None:
    check_number(value, field=attribute.name)


def _at_least(minimum: int, maximum: int | None = None) -> Any:
    """An attrs validator: an int from ``minimum`` (to ``maximum``), named in its error."""

    def check(_instance: object, attribute: Attribute[int], value: object) -> None:
        if maximum is None:
            check_int(value, field=attribute.name, minimum=minimum)
        else:
            check_int(value, field=attribute.name, minimum=minimum, maximum=maximum)

    return check


def _error_statuses(_instance: object, _attribute: object, value: tuple[int, ...]) -> None:
    if (
        not isinstance(value, tuple)
        or not value
        or not all(isinstance(code, int) and 500 <= code <= 599 for code in value)
    ):
        raise InvalidInputError(
            "error_statuses must be a non-empty tuple of 5xx codes", argument="error_statuses"
        )


@frozen(kw_only=True)
class Faults:
    """Random fault rates and timings for a sandbox academy; all off by default.

    Rates are probabilities per request.  Decisions are drawn from
    ``random.Random(seed)`` in a fixed pattern, so a seed reproduces a run exactly for
    the same order of requests.
    """

    seed: int = 0
    #: Seconds from a request's arrival to its answer, plus uniform
    #: ``[0, latency_jitter)``; the app sees the request half-way through.
    latency: float = field(default=0.0, validator=_seconds)
    latency_jitter: float = field(default=0.0, validator=_seconds)
    #: Requests answered with a 5xx HTML page from ``error_statuses``, not applied.
    error_rate: float = field(default=0.0, validator=_rate)
    error_statuses: tuple[int, ...] = field(default=(500, 502, 503), validator=_error_statuses)
    #: Probability that a 429 burst of ``rate_limit_burst`` requests starts.
    rate_limit_rate: float = field(default=0.0, validator=_rate)
    rate_limit_burst: int = field(default=3, validator=_at_least(1))
    #: The wait a 429 asks for, in ``Retry-After`` (whole seconds, rounded up) and
    #: ``retry-after-ms``; fractions keep tests fast.
    retry_after: float = field(default=1.0, validator=_seconds)
    #: Requests handled (writes applied) whose response is cut off mid-body.
    reset_rate: float = field(default=0.0, validator=_rate)
    #: Writes (POST/DELETE) applied, then answered ``applied_then_fail_status``.
    applied_then_fail_rate: float = field(default=0.0, validator=_rate)
    applied_then_fail_status: int = field(default=502, validator=_at_least(500, 599))
    #: Responses streamed in ``slow_body_chunks`` pieces, ``slow_body_delay`` apart.
    slow_body_rate: float = field(default=0.0, validator=_rate)
    slow_body_chunks: int = field(default=8, validator=_at_least(2))
    slow_body_delay: float = field(default=0.01, validator=_seconds)
    #: Requests never answered (until the client gives up or the academy closes).
    hang_rate: float = field(default=0.0, validator=_rate)
    #: The ``error_rate`` answers echo the request's credentials (see
    #: :meth:`ScriptedFault.echo`) in a JSON, text or HTML body: for secret-hygiene tests.
    echo_request: bool = False

    @property
    def quiet(self) -> bool:
        """True when no fault can ever fire (the injector then skips its draws)."""
        return not (
            self.latency
            or self.latency_jitter
            or self.error_rate
            or self.rate_limit_rate
            or self.reset_rate
            or self.applied_then_fail_rate
            or self.slow_body_rate
            or self.hang_rate
        )


@frozen(kw_only=True)
class ScriptedFault:
    """One fault to inject; build it with the class methods, e.g. ``ScriptedFault.reset()``.

    Random faults are expressed with the same type, so the request log names both
    alike (see :attr:`label`).
    """

    kind: FaultKind
    http_status: int | None = None
    retry_after: float | None = None
    seconds: float = 0.0
    chunks: int = 8
    echo_format: EchoFormat = "json"

    @classmethod
    def ok(cls) -> ScriptedFault:
        """Handle the request normally (a gap in a script: ``503, ok, 503``)."""
        return cls(kind="ok")

    @classmethod
    def status(cls, code: int, *, retry_after: float | None = None) -> ScriptedFault:
        """Answer ``code`` without applying anything: 5xx as a proxy's HTML, 4xx as JSON."""
        if not 400 <= code <= 599:
            raise InvalidInputError(
                f"code of a scripted status must be a 4xx or 5xx code, got {code!r}",
                argument="code",
            )
        return cls(kind="status", http_status=code, retry_after=retry_after)

    @classmethod
    def echo(cls, code: int = 503, *, body: EchoFormat = "json") -> ScriptedFault:
        """Answer ``code`` echoing the request's credentials; nothing applied.

        As a misconfigured proxy or a debug error page would: the ``Authorization``
        header (as sent, URL-encoded, JSON-escaped, dots escaped, wrapped across lines)
        and the academy's API key (as is, URL-encoded, base64) fill a ``body`` laid out
        as ``json``, ``text`` or ``html``; ``X-Request-Id`` and the reason phrase echo
        the header too. For tests proving that no credential leaks out of a client.
        """
        if not 200 <= code <= 599:
            raise InvalidInputError(
                f"code of an echo must be a status from 200 to 599, got {code!r}", argument="code"
            )
        if body not in ECHO_FORMATS:
            raise InvalidInputError(
                f"body of an echo is one of {', '.join(ECHO_FORMATS)}, got {body!r}",
                argument="body",
            )
        return cls(kind="echo", http_status=code, echo_format=body)

    @classmethod
    def rate_limit(cls, retry_after: float = 1.0) -> ScriptedFault:
        """Answer 429 with ``Retry-After`` and ``retry-after-ms`` headers, nothing applied."""
        return cls(kind="rate_limit", http_status=429, retry_after=retry_after)

    @classmethod
    def hang(cls) -> ScriptedFault:
        """Never answer: the client must time out (the academy releases it on close)."""
        return cls(kind="hang")

    @classmethod
    def delay(cls, seconds: float) -> ScriptedFault:
        """Wait ``seconds``, then handle the request normally."""
        return cls(kind="delay", seconds=seconds)

    @classmethod
    def applied_then(cls, code: int = 502) -> ScriptedFault:
        """Handle (apply) the request, then answer ``code`` with a proxy's HTML page."""
        if not 500 <= code <= 599:
            raise InvalidInputError(
                f"code of applied_then must be a 5xx code, got {code!r}", argument="code"
            )
        return cls(kind="applied_then", http_status=code)

    @classmethod
    def reset(cls) -> ScriptedFault:
        """Handle (apply) the request, then abort the connection mid-response."""
        return cls(kind="reset")

    @classmethod
    def slow_body(cls, *, chunks: int = 8, delay: float = 0.01) -> ScriptedFault:
        """Handle the request, then send the body in ``chunks`` pieces ``delay`` apart."""
        return cls(kind="slow_body", chunks=max(chunks, 2), seconds=delay)

    @property
    def label(self) -> str:
        """A short name for logs and counters: ``status:503``, ``reset``, ``applied_then:502``."""
        if self.kind in ("status", "applied_then", "echo"):
            return f"{self.kind}:{self.http_status}"
        return self.kind

    @property
    def retry_after_headers(self) -> dict[str, str]:
        """``Retry-After`` (whole seconds, rounded up) and ``retry-after-ms``, if any."""
        if self.retry_after is None:
            return {}
        return {
            "Retry-After": str(math.ceil(self.retry_after)),
            "retry-after-ms": str(round(self.retry_after * 1000)),
        }


ScriptEntry = ScriptedFault | int | str


def as_scripted_fault(entry: ScriptEntry) -> ScriptedFault:
    """Accept the shorthands of :meth:`FaultScript.add`: an int status or a name.

    Names: ``"ok"``, ``"hang"``, ``"reset"``, ``"slow_body"``, ``"rate_limit"``,
    ``"applied_then_<5xx>"`` and ``"echo_<code>"``; an int is :meth:`ScriptedFault.status`.
    """
    if isinstance(entry, ScriptedFault):
        return entry
    if isinstance(entry, bool):
        raise InvalidInputError("faults: a scripted fault cannot be a bool", argument="faults")
    if isinstance(entry, int):
        return ScriptedFault.status(entry)
    simple = {
        "ok": ScriptedFault.ok,
        "hang": ScriptedFault.hang,
        "reset": ScriptedFault.reset,
        "slow_body": ScriptedFault.slow_body,
        "rate_limit": ScriptedFault.rate_limit,
    }
    if entry in simple:
        return simple[entry]()
    makers = (("applied_then_", ScriptedFault.applied_then), ("echo_", ScriptedFault.echo))
    for prefix, make in makers:
        if entry.startswith(prefix) and entry[len(prefix) :].isdigit():
            return make(int(entry[len(prefix) :]))
    raise InvalidInputError(
        f"faults: unknown scripted fault {short_repr(entry)}", argument="faults"
    )


@frozen
class Decision:
    """What the injector decided for one request: extra latency and maybe a fault."""

    latency: float
    fault: ScriptedFault | None


_NO_DECISION: Final = Decision(0.0, None)


class FaultInjector:
    """Turns a :class:`Faults` config into one deterministic decision per request."""

    #: Random numbers drawn per request, whatever the outcome, so request k's decision
    #: depends only on k.
    DRAWS: Final = 8

    def __init__(self, faults: Faults) -> None:
        self.faults = faults
        self._rng = random.Random(faults.seed)
        self._burst_left = 0

    def __repr__(self) -> str:
        return f"<FaultInjector {self.faults!r} burst_left={self._burst_left}>"

    def decide(self, *, write: bool) -> Decision:
        """Return the decision for the next request (``write``: a POST or DELETE)."""
        faults = self.faults
        if faults.quiet:
            return _NO_DECISION
        draw = self._rng.random
        jitter, u_limit, u_hang, u_error, u_pick, u_applied, u_reset, u_slow = (
            draw() for _ in range(self.DRAWS)
        )
        latency = faults.latency + jitter * faults.latency_jitter
        fault: ScriptedFault | None = None
        if self._burst_left > 0:
            self._burst_left -= 1
            fault = ScriptedFault.rate_limit(faults.retry_after)
        elif u_limit < faults.rate_limit_rate:
            self._burst_left = faults.rate_limit_burst - 1
            fault = ScriptedFault.rate_limit(faults.retry_after)
        elif u_hang < faults.hang_rate:
            fault = ScriptedFault.hang()
        elif u_error < faults.error_rate:
            fault = _error_fault(faults, u_pick)
        elif write and u_applied < faults.applied_then_fail_rate:
            fault = ScriptedFault.applied_then(faults.applied_then_fail_status)
        elif u_reset < faults.reset_rate:
            fault = ScriptedFault.reset()
        elif u_slow < faults.slow_body_rate:
            fault = ScriptedFault.slow_body(
                chunks=faults.slow_body_chunks, delay=faults.slow_body_delay
            )
        return Decision(latency, fault)


def _error_fault(faults: Faults, u_pick: float) -> ScriptedFault:
    """The ``error_rate`` fault for draw ``u_pick``: a status, or an echo of the request.

    The echo's layout comes from the same draw, so the status sequence of a seed is the
    same with or without ``echo_request``.
    """
    statuses = faults.error_statuses
    code = statuses[int(u_pick * len(statuses))]
    if not faults.echo_request:
        return ScriptedFault.status(code)
    layout = int(u_pick * len(statuses) * len(ECHO_FORMATS)) % len(ECHO_FORMATS)
    return ScriptedFault.echo(code, body=ECHO_FORMATS[layout])


def normalize_path(path: str) -> str:
    """Make a script key path canonical: ``/members/me`` → ``/api/v1/members/me``.

    Placeholders are reduced to ``{}`` so ``{id}`` and ``{memberId}`` match alike.
    """
    if not path.startswith("/"):
        path = "/" + path
    if not path.startswith("/api/"):
        path = "/api/v1" + path
    if "{" not in path:
        return path
    return "/".join("{}" if part.startswith("{") else part for part in path.split("/"))


class FaultScript:
    """Per-route queues of scripted faults, consumed in order.

    A key is a method (``"*"`` for any) and either an exact path
    (``/api/v1/members/7``) or a route template (``/api/v1/members/{memberId}``, any
    placeholder name).  A request takes from the first non-empty queue of: exact
    method + path, exact method + template, ``*`` + path, ``*`` + template.
    """

    def __init__(self) -> None:
        self._queues: dict[tuple[str, str], deque[ScriptedFault]] = {}

    def __repr__(self) -> str:
        return f"<FaultScript pending={self.pending()}>"

    def add(self, method: str, path: str, entries: Iterable[ScriptEntry]) -> None:
        """Append faults to the queue of ``method`` + ``path`` (exact path or template)."""
        key = (method.upper(), normalize_path(path))
        faults = [as_scripted_fault(entry) for entry in entries]
        self._queues.setdefault(key, deque()).extend(faults)

    def pop(self, method: str, path: str, template: str | None) -> ScriptedFault | None:
        """Take the next scripted fault for this request, if any."""
        if not self._queues:
            return None
        keys = [(method, path), ("*", path)]
        if template is not None:
            pattern = normalize_path(template)
            keys = [(method, path), (method, pattern), ("*", path), ("*", pattern)]
        for key in keys:
            queue = self._queues.get(key)
            if queue:
                fault = queue.popleft()
                if not queue:
                    del self._queues[key]
                return fault
        return None

    def pending(self) -> dict[str, int]:
        """How many scripted faults are still queued, by ``"METHOD path"``."""
        return {f"{m} {p}": len(q) for (m, p), q in self._queues.items()}

    def clear(self) -> None:
        """Drop every queued fault."""
        self._queues.clear()

"""The sandbox's rate limiter: a token bucket in front of the app, as an API gateway's.

A request that finds no token is refused before authentication, so nothing is applied
and no ``jti`` is consumed; a refusal costs no token (the usual gateway behaviour).
How it refuses is the *style*:

* ``429``: ``429 Too Many Requests`` with a JSON body and no ``Retry-After``;
* ``429-date``: 429 with ``Retry-After`` as an HTTP date on the server's clock (which
  ``clock_offset`` may put ahead of ours) beside the answer's own ``Date``;
* ``503-retry-after``: a proxy's ``503`` HTML page with ``Retry-After`` in whole seconds.

HTTP dates and delta-seconds have one-second resolution, so both ask for at least the
rest of the current second, as real gateways do.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from email.utils import formatdate
from typing import Final, Literal, get_args

from attrs import Attribute, field, frozen, validators

from .._validation import check_choice, check_number
from ._wire import Reply, error_reply, proxy_error_reply

RateLimitStyle = Literal["429", "429-date", "503-retry-after"]
RATE_LIMIT_STYLES: Final = get_args(RateLimitStyle)


#: The SandboxAcademy argument each setting comes from, for error messages.
_ARGUMENT: Final = {"rate": "rate_limit", "style": "rate_limit_style", "burst": "rate_limit_burst"}


def _positive(name: str, value: object) -> None:
    check_number(value, field=_ARGUMENT[name], above_minimum=True)


def _style(_instance: object, attribute: Attribute[str], value: object) -> None:
    check_choice(value, field=_ARGUMENT[attribute.name], choices=RATE_LIMIT_STYLES)


@frozen(kw_only=True)
class RateLimit:
    """A limiter's settings: ``rate`` requests per second, bursts of ``burst`` (default: 1 s)."""

    rate: float = field(validator=lambda _, a, v: _positive(a.name, v))
    style: RateLimitStyle = field(default="429", validator=_style)
    burst: float | None = field(
        default=None, validator=validators.optional(lambda _, a, v: _positive(a.name, v))
    )

    @property
    def capacity(self) -> float:
        """Tokens the bucket holds when full: ``burst``, else a second's worth (at least 1)."""
        return max(1.0, self.rate if self.burst is None else self.burst)


class Limiter:
    """Admits or refuses each request; ``wall`` is the server's clock for dated answers."""

    def __init__(
        self,
        limit: RateLimit,
        *,
        clock: Callable[[], float] = time.monotonic,
        wall: Callable[[], float] = time.time,
    ) -> None:
        self.limit = limit
        self._clock = clock
        self._wall = wall
        self._tokens = limit.capacity
        self._stamp = clock()
        self.refused = 0

    def __repr__(self) -> str:
        return f"<Limiter {self.limit.rate:g}/s {self.limit.style} refused={self.refused}>"

    def admit(self) -> Reply | None:
        """None to let the request through (spending a token), else the refusal to answer."""
        now = self._clock()
        rate, capacity = self.limit.rate, self.limit.capacity
        self._tokens = min(capacity, self._tokens + (now - self._stamp) * rate)
        self._stamp = now
        if self._tokens >= 1.0:
            self._tokens -= 1.0
            return None
        self.refused += 1
        return self._refusal((1.0 - self._tokens) / rate)

    def _refusal(self, wait: float) -> Reply:
        style = self.limit.style
        if style == "429":
            return error_reply(429, "rate_limited", "Too Many Requests")
        if style == "429-date":
            # Whole seconds of the server's clock, rounded up: never earlier than meant.
            when = formatdate(math.ceil(self._wall() + wait), usegmt=True)
            return error_reply(429, "rate_limited", "Too Many Requests", {"Retry-After": when})
        return proxy_error_reply(503, {"Retry-After": str(max(1, math.ceil(wait)))})

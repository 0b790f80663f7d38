"""Rate-limit headers, sans I/O: what a server says of its quota before it refuses anything.

Understood: ``X-RateLimit-Remaining`` / ``X-RateLimit-Reset`` (delta seconds, or a Unix
time, measured against the answer's own ``Date``), the IETF draft's
``RateLimit-Remaining`` / ``RateLimit-Reset``, its one-field ``RateLimit``
(``"default";r=0;t=5`` or ``limit=100, remaining=0, reset=5``) and ``RateLimit-Policy``
(``100;w=60`` or ``"default";q=100;w=60``: a quota per window, i.e. a sustainable rate).
Anything unparseable is ignored: these headers only ever help.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

from attrs import frozen

from ._retry import http_date

#: A reset above this is a Unix time, not a number of seconds (2001-09-09 onwards).
_EPOCH_THRESHOLD = 1e9


@frozen
class QuotaHint:
    """What the headers said: requests left, seconds until the quota refills, a policy rate."""

    remaining: int | None = None
    reset: float | None = None
    rate: float | None = None

    @property
    def exhausted_for(self) -> float | None:
        """Seconds to hold off because nothing is left before the reset; None if not so."""
        if self.remaining is None or self.remaining > 0 or self.reset is None:
            return None
        return self.reset


def quota_hint(headers: Mapping[str, str], *, now: float) -> QuotaHint | None:
    """The quota the answer's headers describe, or None when it has none (the usual case).

    ``now`` is our wall clock, used for a Unix-time reset when the answer has no ``Date``.
    """
    remaining_raw = headers.get("x-ratelimit-remaining") or headers.get("ratelimit-remaining")
    reset_raw = headers.get("x-ratelimit-reset") or headers.get("ratelimit-reset")
    combined = headers.get("ratelimit")
    policy = headers.get("ratelimit-policy")
    if remaining_raw is None and reset_raw is None and combined is None and policy is None:
        return None
    if combined is not None:
        params = _params(combined)
        remaining_raw = remaining_raw or params.get("r") or params.get("remaining")
        reset_raw = reset_raw or params.get("t") or params.get("reset")
    remaining = _number(remaining_raw)
    reset = _number(reset_raw)
    if reset is not None and reset > _EPOCH_THRESHOLD:
        reset = max(reset - (http_date(headers.get("date")) or now), 0.0)
    return QuotaHint(
        remaining=None if remaining is None else int(remaining),
        reset=reset,
        rate=None if policy is None else policy_rate(policy),
    )


def policy_rate(value: str) -> float | None:
    """The sustainable requests per second of a ``RateLimit-Policy``: its strictest quota/window."""
    rates: list[float] = []
    for item in value.split(","):
        parts = [part.strip() for part in item.split(";")]
        params = _params(item)
        quota = _number(params.get("q") or (parts[0] if parts else None))
        window = _number(params.get("w"))
        if quota is not None and window is not None and window > 0:
            rates.append(quota / window)
    positive = [rate for rate in rates if rate > 0]
    return min(positive) if positive else None


def _params(value: str) -> dict[str, str]:
    """``k=v`` pairs of a structured header, whether separated by ``;`` or ``,``."""
    pairs: dict[str, str] = {}
    for token in value.replace(",", ";").split(";"):
        key, sep, raw = token.partition("=")
        if sep:
            pairs.setdefault(key.strip().lower(), raw.strip().strip('"'))
    return pairs


def _number(raw: str | None) -> float | None:
    """A finite, non-negative number, or None."""
    if raw is None:
        return None
    try:
        value = float(raw)
    except ValueError:
        return None
    return value if math.isfinite(value) and value >= 0 else None

"""What every benchmark shares: the sandbox process, a raw-loop signer, results and runs."""

from __future__ import annotations

import base64
import contextlib
import gc
import hashlib
import hmac
import itertools
import os
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Literal, TypeVar

import orjson

from ._util import HERE, free_port, server_process

T = TypeVar("T")

#: The sandbox's API key in every benchmark: a throwaway secret for a loopback server.
API_KEY = "benchmark-key-0123456789abcdef0123456789"
ADMIN = "admin@sandbox.test"


@contextlib.contextmanager
def sandbox(
    *,
    members: int = 20,
    latency: float = 0.0,
    latency_jitter: float = 0.0,
    error_rate: float = 0.0,
    error_statuses: str = "500,502,503",
    courses: int = 5,
    groups: int = 4,
    seed: int = 1,
) -> Iterator[str]:
    """A SandboxAcademy in its own process; yields its base URL."""
    port = free_port()
    args = [
        str(HERE / "_sandbox_server.py"),
        f"--port={port}",
        f"--api-key={API_KEY}",
        f"--members={members}",
        f"--latency={latency}",
        f"--latency-jitter={latency_jitter}",
        f"--error-rate={error_rate}",
        f"--error-statuses={error_statuses}",
        f"--courses={courses}",
        f"--groups={groups}",
        f"--seed={seed}",
    ]
    with server_process(args, port=port, ready_path="/api/v1/members/me") as url:
        yield url


def _b64url(data: bytes) -> bytes:
    return base64.urlsafe_b64encode(data).rstrip(b"=")


class PreparedSigner:
    """The raw loops' hand-written HS256 signer: a pre-keyed HMAC copied per token.

    This is what a careful raw-aiohttp user would write, so the baselines do not pay
    PyJWT's per-call key preparation and header encoding (``jwt.encode``).
    """

    __slots__ = ("_counter", "_header", "_mac", "_prefix")

    def __init__(self, api_key: str) -> None:
        self._mac = hmac.new(api_key.encode(), digestmod=hashlib.sha256)
        self._header = _b64url(orjson.dumps({"alg": "HS256", "typ": "JWT"})) + b"."
        self._prefix = f"raw-{os.getpid()}-{os.urandom(4).hex()}-"
        self._counter = itertools.count(1)

    def sign(self, email: str) -> str:
        """A fresh single-use token for ``email``."""
        claims = {
            "email": email,
            "iat": int(time.time()),
            "jti": f"{self._prefix}{next(self._counter)}",
        }
        signing_input = self._header + _b64url(orjson.dumps(claims))
        mac = self._mac.copy()
        mac.update(signing_input)
        return (signing_input + b"." + _b64url(mac.digest())).decode("ascii")


@dataclass(frozen=True)
class Threshold:
    """A bar or goal: ``op`` against ``value``, shown as ``text``."""

    op: Literal[">=", "<="]
    value: float
    text: str

    def met(self, measured: float) -> bool:
        """Whether ``measured`` satisfies this threshold."""
        return measured >= self.value if self.op == ">=" else measured <= self.value


def at_least(value: float, unit: str = "x") -> Threshold:
    """A ``≥ value`` threshold."""
    return Threshold(">=", value, f"≥ {value:g}{unit}")


def at_most(value: float, unit: str = "x") -> Threshold:
    """A ``≤ value`` threshold."""
    return Threshold("<=", value, f"≤ {value:g}{unit}")


@dataclass(frozen=True)
class Result:
    """One table row: the figures, the value checked against the bar/goal, and notes."""

    number: int
    title: str
    sdk: str
    baseline: str
    ratio: str
    measured: float
    bar: Threshold | None
    goal: Threshold | None
    notes: tuple[str, ...] = field(default=())

    @property
    def passed(self) -> bool | None:
        """True/False against the bar; ``None`` for report-only rows."""
        return None if self.bar is None else self.bar.met(self.measured)

    @property
    def verdict(self) -> str:
        """PASS/FAIL (or "report"), plus whether the goal was met."""
        head = {None: "report", True: "PASS", False: "FAIL"}[self.passed]
        if self.goal is not None:
            head += ", goal met" if self.goal.met(self.measured) else ", goal missed"
        return head


def interleaved(runs: int, variants: Mapping[str, Callable[[int], T]]) -> dict[str, list[T]]:
    """Run every variant once per round, rotating the order; returns each one's figures."""
    names = list(variants)
    figures: dict[str, list[T]] = {name: [] for name in names}
    for round_no in range(runs):
        shift = round_no % len(names)
        for name in names[shift:] + names[:shift]:
            gc.collect()
            figures[name].append(variants[name](round_no))
    return figures


def spread(values: list[float], fmt: str = "{:.0f}") -> str:
    """``min-max`` of a run's figures, for the notes."""
    return f"{fmt.format(min(values))}-{fmt.format(max(values))}"

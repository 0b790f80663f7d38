"""Benchmark 6: the cost of signing one per-request JWT, SDK ``TokenSigner`` vs ``jwt.encode``.

Both make the same HS256 token shape (``email``, ``iat``, a unique ``jti``); timed with
``timeit`` in interleaved rounds. The raw loops' hand-written prepared-key signer is
timed too, as the floor a pure-Python signer can reach.
"""

from __future__ import annotations

import itertools
import time
import timeit
from collections.abc import Callable

import jwt

from coursepath_async._auth import TokenSigner

from ._common import ADMIN, API_KEY, PreparedSigner, Result, at_most, interleaved
from ._util import median


def signing(*, quick: bool) -> list[Result]:
    """Microseconds per token: SDK signer, naive ``jwt.encode``, hand-written signer."""
    n, runs = (5_000, 3) if quick else (20_000, 5)
    sdk = TokenSigner(API_KEY)
    prepared = PreparedSigner(API_KEY)
    counter = itertools.count()

    def naive() -> str:
        claims = {"email": ADMIN, "iat": int(time.time()), "jti": f"naive-{next(counter)}"}
        return jwt.encode(claims, API_KEY, algorithm="HS256")

    def per_call(fn: Callable[[], object]) -> float:
        return timeit.timeit(fn, number=n) / n * 1e6

    figures = interleaved(
        runs,
        {
            "sdk": lambda _: per_call(lambda: sdk.sign(ADMIN)),
            "jwt": lambda _: per_call(naive),
            "prepared": lambda _: per_call(lambda: prepared.sign(ADMIN)),
        },
    )
    ours, theirs, floor = (median(figures[k]) for k in ("sdk", "jwt", "prepared"))
    return [
        Result(
            number=6,
            title="JWT signing per request",
            sdk=f"{ours:.1f} µs (TokenSigner.sign)",
            baseline=f"{theirs:.1f} µs (jwt.encode)",
            ratio=f"{theirs / ours:.1f}x faster",
            measured=ours,
            bar=at_most(25, " µs"),
            goal=at_most(10, " µs"),
            notes=(
                f"{n:,} tokens x {runs} interleaved rounds; the benchmarks' hand-written "
                f"prepared-key HMAC signer (PreparedSigner) takes {floor:.1f} µs",
            ),
        )
    ]

"""Benchmark 6: the cost of signing one per-request JWT, SDK ``TokenSigner`` vs PyJWT.

All make the same HS256 token shape (``email``, ``iat``, a unique ``jti``); timed with
``timeit`` in interleaved rounds. PyJWT is timed three ways: naive ``jwt.encode`` with
the key string, ``jwt.encode`` with a ``PyJWK`` key object built once, and
``PyJWS.encode`` on claims serialised with orjson and key bytes prepared once (PyJWT
still checks the key on every call: ``HMACAlgorithm.prepare_key`` runs inside
``encode`` whatever it is given). The raw loops' hand-written prepared-key signer is
timed too, as the floor a pure-Python signer can reach.
"""

from __future__ import annotations

import base64
import itertools
import time
import timeit
from collections.abc import Callable

import jwt
import orjson

from coursepath_async._auth import TokenSigner

from ._common import ADMIN, API_KEY, PreparedSigner, Result, at_most, interleaved, spread
from ._util import median


def _pyjwt_signers() -> dict[str, Callable[[], str]]:
    """PyJWT's ways to make the token: naive, with a key object, with prepared bytes."""
    counter = itertools.count()

    def claims() -> dict[str, object]:
        return {"email": ADMIN, "iat": int(time.time()), "jti": f"pyjwt-{next(counter)}"}

    secret = base64.urlsafe_b64encode(API_KEY.encode()).rstrip(b"=").decode()
    key_object = jwt.PyJWK({"kty": "oct", "k": secret}, "HS256")
    jws, key_bytes = jwt.PyJWS(), API_KEY.encode()
    return {
        "jwt": lambda: jwt.encode(claims(), API_KEY, algorithm="HS256"),
        "jwk": lambda: jwt.encode(claims(), key_object),
        "jws": lambda: jws.encode(orjson.dumps(claims()), key_bytes, algorithm="HS256"),
    }


def signing(*, quick: bool) -> list[Result]:
    """Microseconds per token: SDK signer, PyJWT naive and prepared, hand-written signer."""
    n, runs = (5_000, 3) if quick else (20_000, 5)
    sdk = TokenSigner(API_KEY)
    prepared = PreparedSigner(API_KEY)
    pyjwt = _pyjwt_signers()
    for make in pyjwt.values():  # every PyJWT variant makes a token the academy accepts
        jwt.decode(make(), API_KEY, algorithms=["HS256"])

    def per_call(fn: Callable[[], object]) -> float:
        return timeit.timeit(fn, number=n) / n * 1e6

    figures = interleaved(
        runs,
        {
            "sdk": lambda _: per_call(lambda: sdk.sign(ADMIN)),
            "jwt": lambda _: per_call(pyjwt["jwt"]),
            "jwk": lambda _: per_call(pyjwt["jwk"]),
            "jws": lambda _: per_call(pyjwt["jws"]),
            "prepared": lambda _: per_call(lambda: prepared.sign(ADMIN)),
        },
    )
    ours, naive, floor = (median(figures[k]) for k in ("sdk", "jwt", "prepared"))
    # PyJWT's best prepared-key way in this run, and the rounds' paired ratios against it.
    best = min(("jwk", "jws"), key=lambda k: median(figures[k]))
    theirs = median(figures[best])
    vs_naive = [t / o for t, o in zip(figures["jwt"], figures["sdk"], strict=True)]
    vs_best = [t / o for t, o in zip(figures[best], figures["sdk"], strict=True)]
    how = {"jwk": "jwt.encode, PyJWK key object", "jws": "PyJWS.encode, key bytes"}
    return [
        Result(
            number=6,
            title="JWT signing per request",
            sdk=f"{ours:.1f} µs (TokenSigner.sign)",
            baseline=(
                f"{naive:.1f} µs (jwt.encode); {theirs:.1f} µs (PyJWT, prepared key: {how[best]})"
            ),
            ratio=f"{median(vs_naive):.1f}x / {median(vs_best):.1f}x faster",
            measured=ours,
            bar=at_most(25, " µs"),
            goal=at_most(10, " µs"),
            notes=(
                f"{n:,} tokens x {runs} interleaved rounds; ratios are medians of the rounds' "
                f"paired ratios (vs jwt.encode {spread(vs_naive, '{:.1f}')}, vs prepared PyJWT "
                f"{spread(vs_best, '{:.1f}')}); µs per token: SDK "
                f"{spread(figures['sdk'], '{:.1f}')}, jwt.encode "
                f"{spread(figures['jwt'], '{:.1f}')}, jwt.encode with a PyJWK "
                f"{median(figures['jwk']):.1f} ({spread(figures['jwk'], '{:.1f}')}), PyJWS on "
                f"key bytes {median(figures['jws']):.1f} ({spread(figures['jws'], '{:.1f}')}): "
                f"PyJWT re-checks the key inside every encode whatever it is given; the "
                f"benchmarks' hand-written prepared-key HMAC signer "
                f"(PreparedSigner) takes {floor:.1f} µs",
            ),
        )
    ]

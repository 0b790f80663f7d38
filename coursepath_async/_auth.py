"""Per-attempt HS256 tokens: a fresh ``jti`` and ``iat`` every time, never cached.

The HMAC key is prepared once through PyJWT's HMAC algorithm and the JWT header is
encoded once, so signing costs one small JSON dump and one HMAC per request.
"""

from __future__ import annotations

import base64
import itertools
import os
import time

import orjson
from jwt.algorithms import HMACAlgorithm

_HEADER = orjson.dumps({"alg": "HS256", "typ": "JWT"})


def _b64url(data: bytes) -> bytes:
    return base64.urlsafe_b64encode(data).rstrip(b"=")


class TokenSigner:
    """Signs single-use Coursepath tokens with the academy's API key; prints no secret."""

    __slots__ = ("_algorithm", "_counter", "_header", "_jti_prefix", "_key")

    def __init__(self, api_key: str) -> None:
        self._algorithm = HMACAlgorithm(HMACAlgorithm.SHA256)
        self._key = self._algorithm.prepare_key(api_key)
        self._header = _b64url(_HEADER) + b"."
        # A random prefix per signer plus a counter: unique across processes and
        # restarts without paying for a random draw per token.
        self._jti_prefix = os.urandom(9).hex() + "-"
        self._counter = itertools.count(1)

    def sign(self, email: str) -> str:
        """A token for ``email`` issued now, with a never-before-used ``jti``."""
        claims = {
            "email": email,
            "iat": int(time.time()),
            "jti": f"{self._jti_prefix}{next(self._counter)}",
        }
        signing_input = self._header + _b64url(orjson.dumps(claims))
        signature = self._algorithm.sign(signing_input, self._key)
        return (signing_input + b"." + _b64url(signature)).decode("ascii")

    def __repr__(self) -> str:
        return "TokenSigner(api_key=<hidden>)"

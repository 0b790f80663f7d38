"""Per-attempt HS256 tokens: a fresh ``jti`` and ``iat`` every time, never cached.

PyJWT vets the key once (it refuses e.g. a PEM public key posing as an HMAC secret);
a keyed HMAC state is then copied per token and the JWT header is encoded once, so
signing costs one small JSON dump and one HMAC continuation per request.
"""

from __future__ import annotations

import binascii
import hashlib
import hmac
import itertools
import os
import time

import orjson
from jwt.algorithms import HMACAlgorithm

_HEADER = orjson.dumps({"alg": "HS256", "typ": "JWT"})
_URLSAFE = bytes.maketrans(b"+/", b"-_")


def _b64url(data: bytes) -> bytes:
    return binascii.b2a_base64(data, newline=False).translate(_URLSAFE).rstrip(b"=")


class TokenSigner:
    """Signs single-use Coursepath tokens with the academy's API key; prints no secret."""

    __slots__ = ("_counter", "_header", "_jti_prefix", "_mac")

    def __init__(self, api_key: str) -> None:
        key = HMACAlgorithm(HMACAlgorithm.SHA256).prepare_key(api_key)
        self._mac = hmac.new(key, digestmod=hashlib.sha256)
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
        mac = self._mac.copy()
        mac.update(signing_input)
        return (signing_input + b"." + _b64url(mac.digest())).decode("ascii")

    def __repr__(self) -> str:
        return "TokenSigner(api_key=<hidden>)"

"""Per-attempt HS256 tokens: a fresh ``jti`` and ``iat`` every time, never cached.

PyJWT vets the key once (it refuses e.g. a PEM public key posing as an HMAC secret),
imported only for a key it could refuse: importing it loads cryptography (~60 ms).
The HMAC's two keyed SHA-256 states (RFC 2104) are then prepared once and copied per
token, and the JWT header is encoded once, so signing costs one small JSON dump and two
hash continuations per request, all in C.
"""

from __future__ import annotations

import hashlib
import itertools
import os
import time
import weakref
from binascii import b2a_base64

import orjson

from ._exceptions import ConfigurationError

_HEADER = orjson.dumps({"alg": "HS256", "typ": "JWT"})
_URLSAFE = bytes.maketrans(b"+/", b"-_")
_BLOCK = 64  # SHA-256's block size, in bytes
_IPAD = bytes(byte ^ 0x36 for byte in range(256))
_OPAD = bytes(byte ^ 0x5C for byte in range(256))


def _b64url(data: bytes) -> bytes:
    return b2a_base64(data, newline=False).translate(_URLSAFE).rstrip(b"=")


def _keyed_states(key: bytes) -> tuple[hashlib._Hash, hashlib._Hash]:
    """HMAC-SHA256's inner and outer hash states for ``key`` (RFC 2104), ready to copy.

    The same digest as ``hmac.new(key, msg, sha256)``, without its Python wrapper's
    four method calls per token.
    """
    if len(key) > _BLOCK:
        key = hashlib.sha256(key).digest()
    key = key.ljust(_BLOCK, b"\0")
    return (
        hashlib.sha256(key.translate(_IPAD)),
        hashlib.sha256(key.translate(_OPAD)),
    )


def _key_bytes(api_key: str) -> bytes:
    """The HMAC key, vetted by PyJWT; a refusal is a ConfigurationError naming no key byte.

    The errors are raised outside the ``except`` blocks so that neither ``__cause__``
    nor ``__context__`` keeps the original exception, whose ``.object`` (for a
    UnicodeEncodeError) is the whole key.
    """
    try:
        raw: bytes | None = api_key.encode("utf-8")
    except UnicodeEncodeError:
        raw = None
    if raw is None:
        raise ConfigurationError(
            "the API key is not valid UTF-8 text (does COURSEPATH_API_KEY hold a non-UTF-8 "
            "byte?); copy the key again from the academy's API settings"
        )
    if not _pyjwt_could_refuse(raw):
        return raw
    from jwt.algorithms import HMACAlgorithm
    from jwt.exceptions import InvalidKeyError

    refused = False
    try:
        key = HMACAlgorithm(HMACAlgorithm.SHA256).prepare_key(raw)
    except (InvalidKeyError, TypeError, ValueError):
        refused = True
    if refused:
        raise ConfigurationError(
            "the API key looks like a PEM or SSH public/private key; Coursepath needs the "
            "academy's shared API secret"
        )
    return key


def _pyjwt_could_refuse(raw: bytes) -> bool:
    """Whether PyJWT's HMAC key check could refuse ``raw``: what each of its tests needs.

    It refuses an empty key, a PEM block (its markers hold "BEGIN"), an OpenSSH public
    key (it starts "ssh-" or "ecdsa-") and DER (a SEQUENCE, first byte 0x30, "0").
    Any other key passes all of them, so PyJWT is not imported to say so.
    """
    return not raw or raw.startswith((b"0", b"ssh-", b"ecdsa-")) or b"BEGIN" in raw


#: Every live signer, so that a forked child re-draws their ``jti`` prefixes; the hook
#: keeps the signing path free of a per-token ``os.getpid()`` check.
_SIGNERS: weakref.WeakSet[TokenSigner] = weakref.WeakSet()


def _redraw_after_fork() -> None:
    for signer in list(_SIGNERS):
        signer._new_jti_prefix()


if hasattr(os, "register_at_fork"):  # POSIX; elsewhere there is no fork to survive
    os.register_at_fork(after_in_child=_redraw_after_fork)


class TokenSigner:
    """Signs single-use Coursepath tokens with the academy's API key; prints no secret."""

    __slots__ = ("__weakref__", "_counter", "_header", "_inner", "_jti_prefix", "_outer")

    def __init__(self, api_key: str) -> None:
        self._inner, self._outer = _keyed_states(_key_bytes(api_key))
        self._header = _b64url(_HEADER) + b"."
        self._new_jti_prefix()
        _SIGNERS.add(self)

    def _new_jti_prefix(self) -> None:
        # A random prefix per signer plus a counter: unique across processes and
        # restarts without paying for a random draw per token. A forked child gets a
        # fresh prefix (see _redraw_after_fork), or it would replay the parent's jtis.
        self._jti_prefix = os.urandom(9).hex() + "-"
        self._counter = itertools.count(1)

    def sign(self, email: str, offset: float = 0.0) -> str:
        """A token for ``email`` issued now, with a never-before-used ``jti``.

        ``offset`` is how far the server's clock is ahead of ours (negative: behind), so
        that ``iat`` is now on the server's clock, which is the one that judges it.
        """
        claims = {
            "email": email,
            "iat": int(time.time() + offset),
            "jti": f"{self._jti_prefix}{next(self._counter)}",
        }
        # _b64url inlined: this runs once per request.
        payload = b2a_base64(orjson.dumps(claims), newline=False)
        signing_input = self._header + payload.translate(_URLSAFE).rstrip(b"=")
        inner = self._inner.copy()
        inner.update(signing_input)
        outer = self._outer.copy()
        outer.update(inner.digest())
        signature = b2a_base64(outer.digest(), newline=False).translate(_URLSAFE).rstrip(b"=")
        return (signing_input + b"." + signature).decode("ascii")

    def __repr__(self) -> str:
        return "TokenSigner(api_key=<hidden>)"

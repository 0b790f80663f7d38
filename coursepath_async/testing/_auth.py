"""Server-side verification of Coursepath JWTs, exactly as documented, and token minting.

A request must carry ``Authorization: Bearer <jwt>``; the JWT header must say
``"alg": "HS256"`` (anything else, ``"none"`` included, is rejected before the
signature is looked at); the HMAC-SHA256 signature must match the academy's API key;
the claims ``email``, ``iat`` and ``jti`` are required; ``iat`` may be at most
``max_age`` (120 s) old and at most ``max_skew`` (30 s) ahead; and each ``jti`` is
accepted once.  Whether the email belongs to a member is the caller's check (it needs
the academy state), reported with the ``unknown_member`` reason.

HS256 is verified here with ``hmac`` rather than PyJWT: it is a few lines, costs
microseconds per request, names the exact reason for each rejection, and does not warn
about short keys (which is the client's business, not the server's).

Replay memory: a token can only be valid until ``iat + max_age`` and ``iat`` can be at
most ``max_skew`` ahead of acceptance, so remembering each accepted ``jti`` for
``max_age + max_skew`` seconds after acceptance covers its whole life.  Acceptance
times only increase, so the memory is a FIFO pruned from the front: O(1) per request.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import time
from collections import deque
from collections.abc import Callable, Mapping
from typing import Final, Literal

import orjson
from attrs import frozen

RejectionReason = Literal[
    "missing",
    "malformed",
    "bad_alg",
    "bad_signature",
    "missing_claim",
    "bad_claim",
    "expired",
    "future",
    "replay",
    "unknown_member",
]

#: Every reason a token can be rejected for, as counted by the recorder.
REJECTION_REASONS: Final[tuple[RejectionReason, ...]] = (
    "missing",
    "malformed",
    "bad_alg",
    "bad_signature",
    "missing_claim",
    "bad_claim",
    "expired",
    "future",
    "replay",
    "unknown_member",
)

Jti = str | int


@frozen(kw_only=True)
class TokenClaims:
    """The claims of a token: verified when returned by :meth:`TokenVerifier.verify`."""

    email: str | None
    iat: float | None
    jti: Jti | None


class TokenRejectedError(Exception):
    """A token the academy does not accept; ``claims`` holds what could be read of it."""

    def __init__(
        self, reason: RejectionReason, message: str, claims: TokenClaims | None = None
    ) -> None:
        super().__init__(message)
        self.reason: RejectionReason = reason
        self.message = message
        self.claims = claims


_FROM_URLSAFE: Final = str.maketrans("-_", "+/")


def _b64url_decode(segment: str) -> bytes:
    padded = segment.translate(_FROM_URLSAFE) + "=" * (-len(segment) % 4)
    return binascii.a2b_base64(padded, strict_mode=True)


#: Distinct JWT headers remembered (a client sends one; forged ones are not piled up).
_MAX_HEADERS: Final = 16


def _b64url_encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def encode_token(claims: Mapping[str, object], key: str, *, alg: str = "HS256") -> str:
    """Sign ``claims`` as a compact JWT with HMAC-SHA256 (or an unsigned ``none`` token).

    Other ``alg`` values produce a header naming that algorithm with an HS256
    signature, which is all a test needs to see the academy reject them.
    """
    header = _b64url_encode(orjson.dumps({"typ": "JWT", "alg": alg}))
    payload = _b64url_encode(orjson.dumps(dict(claims)))
    signing_input = f"{header}.{payload}"
    if alg == "none":
        return signing_input + "."
    digest = hmac.new(key.encode(), signing_input.encode("ascii"), hashlib.sha256).digest()
    return f"{signing_input}.{_b64url_encode(digest)}"


def _claims_of(payload: Mapping[str, object]) -> TokenClaims:
    """Read the three claims leniently, for logging; types are checked separately."""
    email = payload.get("email")
    iat = payload.get("iat")
    jti = payload.get("jti")
    return TokenClaims(
        email=email if isinstance(email, str) else None,
        iat=float(iat) if isinstance(iat, int | float) and not isinstance(iat, bool) else None,
        jti=jti if isinstance(jti, str | int) and not isinstance(jti, bool) else None,
    )


def peek_claims(authorization: str | None) -> TokenClaims | None:
    """Read a token's claims WITHOUT verifying it, for the request log only."""
    if not authorization:
        return None
    token = authorization.partition(" ")[2].strip()
    parts = token.split(".")
    if len(parts) != 3:
        return None
    try:
        payload = orjson.loads(_b64url_decode(parts[1]))
    except (binascii.Error, ValueError):
        return None
    return _claims_of(payload) if isinstance(payload, dict) else None


class TokenVerifier:
    """Check ``Authorization`` headers against one academy's API key and replay memory."""

    def __init__(
        self,
        api_key: str,
        *,
        max_age: float = 120.0,
        max_skew: float = 30.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._mac = hmac.new(api_key.encode(), digestmod=hashlib.sha256)
        # Every token of one client has the same header segment: parse it once.
        self._headers: dict[str, object] = {}
        self._max_age = max_age
        self._max_skew = max_skew
        self._clock = clock
        self._seen: set[Jti] = set()
        self._expiries: deque[tuple[float, Jti]] = deque()

    def __repr__(self) -> str:
        return f"<TokenVerifier remembered_jtis={len(self._seen)}>"

    @property
    def remembered(self) -> int:
        """How many ``jti`` values are currently remembered for replay detection."""
        return len(self._seen)

    def verify(self, authorization: str | None) -> TokenClaims:
        """Return the verified claims, or raise :class:`TokenRejectedError` with a reason."""
        if not authorization:
            raise TokenRejectedError("missing", "missing Authorization header")
        scheme, _, token = authorization.partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token:
            raise TokenRejectedError("malformed", "expected 'Authorization: Bearer <token>'")
        parts = token.split(".")
        if len(parts) != 3:
            raise TokenRejectedError("malformed", "a JWT has three dot-separated parts")
        try:
            header = self._header(parts[0])
            payload = orjson.loads(_b64url_decode(parts[1]))
            signature = _b64url_decode(parts[2])
            signing_input = f"{parts[0]}.{parts[1]}".encode("ascii")
        except (binascii.Error, ValueError):
            raise TokenRejectedError("malformed", "token is not valid base64url JSON") from None
        if not isinstance(header, dict) or not isinstance(payload, dict):
            raise TokenRejectedError("malformed", "token header and payload must be objects")
        claims = _claims_of(payload)
        if header.get("alg") != "HS256":
            raise TokenRejectedError("bad_alg", "only HS256 tokens are accepted", claims)
        mac = self._mac.copy()
        mac.update(signing_input)
        if not hmac.compare_digest(mac.digest(), signature):
            raise TokenRejectedError("bad_signature", "token signature does not match", claims)
        for name in ("email", "iat", "jti"):
            if payload.get(name) is None:
                raise TokenRejectedError("missing_claim", f"token lacks the {name!r} claim", claims)
        if claims.email is None or claims.iat is None or claims.jti is None:
            raise TokenRejectedError(
                "bad_claim", "email must be a string, iat a number, jti a string or integer", claims
            )
        now = self._clock()
        if now - claims.iat > self._max_age:
            raise TokenRejectedError("expired", "token is too old (iat)", claims)
        if claims.iat - now > self._max_skew:
            raise TokenRejectedError("future", "token iat is in the future", claims)
        self._prune(now)
        if claims.jti in self._seen:
            raise TokenRejectedError("replay", "token replay", claims)
        self._seen.add(claims.jti)
        self._expiries.append((now + self._max_age + self._max_skew, claims.jti))
        return claims

    def _header(self, segment: str) -> object:
        """The decoded JWT header; the few distinct ones seen are remembered."""
        header = self._headers.get(segment)
        if header is None:
            header = orjson.loads(_b64url_decode(segment))
            if len(self._headers) < _MAX_HEADERS:
                self._headers[segment] = header
        return header

    def _prune(self, now: float) -> None:
        expiries = self._expiries
        while expiries and expiries[0][0] <= now:
            self._seen.discard(expiries.popleft()[1])

"""Per-attempt token signing, checked by decoding every token with PyJWT."""

from __future__ import annotations

from types import SimpleNamespace

import jwt
import pytest

from coursepath_async import _auth
from coursepath_async._auth import TokenSigner

# >= 32 bytes, so PyJWT does not warn about a short HMAC key.
KEY = "test-api-key-0123456789-abcdefghijklmnop"
EMAIL = "admin@acme.example.com"


def _decode(token: str, key: str = KEY) -> dict[str, object]:
    claims: dict[str, object] = jwt.decode(
        token, key, algorithms=["HS256"], options={"verify_iat": False}
    )
    return claims


def _freeze_time(monkeypatch: pytest.MonkeyPatch, now: float) -> None:
    monkeypatch.setattr(_auth, "time", SimpleNamespace(time=lambda: now))


def test_header_is_hs256_jwt() -> None:
    """The JOSE header is exactly {"alg": "HS256", "typ": "JWT"}."""
    token = TokenSigner(KEY).sign(EMAIL)
    assert jwt.get_unverified_header(token) == {"alg": "HS256", "typ": "JWT"}


def test_token_verifies_with_the_api_key_and_carries_the_claims() -> None:
    """The signature verifies with the API key; claims are exactly email, iat and jti."""
    claims = _decode(TokenSigner(KEY).sign(EMAIL))
    assert set(claims) == {"email", "iat", "jti"}
    assert claims["email"] == EMAIL
    assert isinstance(claims["iat"], int)
    assert isinstance(claims["jti"], str)
    assert claims["jti"]


def test_token_does_not_verify_with_another_key() -> None:
    """A token signed with one academy's key is refused with another key."""
    token = TokenSigner(KEY).sign(EMAIL)
    with pytest.raises(jwt.InvalidSignatureError):
        _decode(token, key="another-api-key-0123456789-abcdefghijkl")


def test_token_is_accepted_by_pyjwt_default_validation() -> None:
    """A token signed now passes PyJWT's own checks, including iat sanity."""
    claims = jwt.decode(TokenSigner(KEY).sign(EMAIL), KEY, algorithms=["HS256"])
    assert claims["email"] == EMAIL


def test_iat_is_the_signing_time(monkeypatch: pytest.MonkeyPatch) -> None:
    """Iat is the wall-clock second at which the token was signed."""
    signer = TokenSigner(KEY)
    _freeze_time(monkeypatch, 1_700_000_123.9)
    assert _decode(signer.sign(EMAIL))["iat"] == 1_700_000_123
    _freeze_time(monkeypatch, 1_700_000_456.0)
    assert _decode(signer.sign(EMAIL))["iat"] == 1_700_000_456


def test_jti_is_unique_over_many_tokens() -> None:
    """Ten thousand tokens from one signer carry ten thousand different jti values."""
    signer = TokenSigner(KEY)
    tokens = [signer.sign(EMAIL) for _ in range(10_000)]
    assert len(set(tokens)) == 10_000
    jtis = {_decode(t)["jti"] for t in tokens}
    assert len(jtis) == 10_000


def test_jti_is_unique_across_signers() -> None:
    """Two signers (two processes, or a restart) never produce the same jti."""
    first = {_decode(TokenSigner(KEY).sign(EMAIL))["jti"] for _ in range(200)}
    assert len(first) == 200


def test_each_token_is_for_the_given_email() -> None:
    """One signer serves several acting members; each token names its own."""
    signer = TokenSigner(KEY)
    assert _decode(signer.sign("a@x.co"))["email"] == "a@x.co"
    assert _decode(signer.sign("b@x.co"))["email"] == "b@x.co"


def test_repr_hides_the_key() -> None:
    """Neither repr nor str of a signer shows the API key."""
    signer = TokenSigner(KEY)
    assert KEY not in repr(signer)
    assert KEY not in str(signer)
    assert "hidden" in repr(signer)

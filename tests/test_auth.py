"""Per-attempt token signing, checked by decoding every token with PyJWT."""

from __future__ import annotations

import os
import subprocess
import sys
from types import SimpleNamespace

import jwt
import pytest
from conftest import API_KEY

from coursepath_async import ConfigurationError, _auth
from coursepath_async._auth import TokenSigner

# >= 32 bytes, so PyJWT does not warn about a short HMAC key.
EMAIL = "admin@acme.example.com"


def _decode(token: str, key: str = API_KEY) -> dict[str, object]:
    claims: dict[str, object] = jwt.decode(
        token, key, algorithms=["HS256"], options={"verify_iat": False}
    )
    return claims


def _freeze_time(monkeypatch: pytest.MonkeyPatch, now: float) -> None:
    monkeypatch.setattr(_auth, "time", SimpleNamespace(time=lambda: now))


def test_header_is_hs256_jwt() -> None:
    """The JOSE header is exactly {"alg": "HS256", "typ": "JWT"}."""
    token = TokenSigner(API_KEY).sign(EMAIL)
    assert jwt.get_unverified_header(token) == {"alg": "HS256", "typ": "JWT"}


def test_token_verifies_with_the_api_key_and_carries_the_claims() -> None:
    """The signature verifies with the API key; claims are exactly email, iat and jti."""
    claims = _decode(TokenSigner(API_KEY).sign(EMAIL))
    assert set(claims) == {"email", "iat", "jti"}
    assert claims["email"] == EMAIL
    assert isinstance(claims["iat"], int)
    assert isinstance(claims["jti"], str)
    assert claims["jti"]


def test_token_does_not_verify_with_another_key() -> None:
    """A token signed with one academy's key is refused with another key."""
    token = TokenSigner(API_KEY).sign(EMAIL)
    with pytest.raises(jwt.InvalidSignatureError):
        _decode(token, key="another-api-key-0123456789-abcdefghijkl")


@pytest.mark.parametrize(
    "key",
    [API_KEY, "k" * 63, "k" * 64, "k" * 65, "ключ-" * 40],
    ids=["usual", "block-1", "block", "block+1", "long-non-ascii"],
)
def test_signature_is_hmac_sha256_for_keys_of_any_length(key: str) -> None:
    """The hand-keyed HMAC matches PyJWT's for keys shorter, equal and longer than a block."""
    token = TokenSigner(key).sign(EMAIL)
    assert _decode(token, key=key)["email"] == EMAIL


def test_token_is_accepted_by_pyjwt_default_validation() -> None:
    """A token signed now passes PyJWT's own checks, including iat sanity."""
    claims = jwt.decode(TokenSigner(API_KEY).sign(EMAIL), API_KEY, algorithms=["HS256"])
    assert claims["email"] == EMAIL


def test_iat_is_the_signing_time(monkeypatch: pytest.MonkeyPatch) -> None:
    """Iat is the wall-clock second at which the token was signed."""
    signer = TokenSigner(API_KEY)
    _freeze_time(monkeypatch, 1_700_000_123.9)
    assert _decode(signer.sign(EMAIL))["iat"] == 1_700_000_123
    _freeze_time(monkeypatch, 1_700_000_456.0)
    assert _decode(signer.sign(EMAIL))["iat"] == 1_700_000_456


def test_jti_is_unique_over_many_tokens() -> None:
    """Ten thousand tokens from one signer carry ten thousand different jti values."""
    signer = TokenSigner(API_KEY)
    tokens = [signer.sign(EMAIL) for _ in range(10_000)]
    assert len(set(tokens)) == 10_000
    jtis = {_decode(t)["jti"] for t in tokens}
    assert len(jtis) == 10_000


def test_jti_is_unique_across_signers() -> None:
    """Two signers (two processes, or a restart) never produce the same jti."""
    first = {_decode(TokenSigner(API_KEY).sign(EMAIL))["jti"] for _ in range(200)}
    assert len(first) == 200


def test_each_token_is_for_the_given_email() -> None:
    """One signer serves several acting members; each token names its own."""
    signer = TokenSigner(API_KEY)
    assert _decode(signer.sign("a@x.co"))["email"] == "a@x.co"
    assert _decode(signer.sign("b@x.co"))["email"] == "b@x.co"


def test_repr_hides_the_key() -> None:
    """Neither repr nor str of a signer shows the API key."""
    signer = TokenSigner(API_KEY)
    assert API_KEY not in repr(signer)
    assert API_KEY not in str(signer)
    assert "hidden" in repr(signer)


def _secret_free(exc: BaseException, secret: str) -> bool:
    """Whether ``exc``, its chain and its attributes are all free of ``secret``."""
    seen: BaseException | None = exc
    while seen is not None:
        texts = [str(seen), repr(seen), *(repr(v) for v in vars(seen).values())]
        texts += [repr(a) for a in seen.args]
        if any(secret in text for text in texts):
            return False
        seen = seen.__cause__ or seen.__context__
    return True


def test_a_key_that_is_not_utf8_is_a_configuration_error_hiding_the_key() -> None:
    """A key with a lone surrogate (a non-UTF-8 byte) is refused without showing it."""
    secret = "academy-secret-\udce9-0123456789abcdefghijkl"
    with pytest.raises(ConfigurationError, match="UTF-8") as info:
        TokenSigner(secret)
    assert info.value.__cause__ is None
    assert info.value.__context__ is None
    assert _secret_free(info.value, "academy-secret")


@pytest.mark.parametrize(
    "key",
    [
        "-----BEGIN PUBLIC KEY-----\nMFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE\n"
        "-----END PUBLIC KEY-----",
        "ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAABAQC7 user@host",
    ],
)
def test_an_asymmetric_key_is_a_configuration_error(key: str) -> None:
    """A PEM or SSH key posing as the HMAC secret is a ConfigurationError, not a PyJWT one."""
    with pytest.raises(ConfigurationError, match="PEM or SSH") as info:
        TokenSigner(key)
    assert info.value.__context__ is None
    assert _secret_free(info.value, key)


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_a_forked_child_draws_its_own_jti_prefix() -> None:
    """A signer made before fork() gives the child jti values the parent never uses."""
    signer = TokenSigner(API_KEY)
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        try:
            jtis = ",".join(str(_decode(signer.sign(EMAIL))["jti"]) for _ in range(3))
            os.write(write_end, jtis.encode())
        finally:
            os._exit(0)
    os.close(write_end)
    os.waitpid(pid, 0)
    with os.fdopen(read_end, "rb") as pipe:
        child = set(pipe.read().decode().split(","))
    parent = {str(_decode(signer.sign(EMAIL))["jti"]) for _ in range(3)}
    assert len(child) == 3
    assert not parent & child


@pytest.mark.parametrize(
    "key",
    [
        API_KEY,
        "academy-secret-0123456789abcdefghijklmnop",
        "0123456789abcdef0123456789abcdef",  # starts like DER: PyJWT decides
        "ecdsa-sha2-nistp256 AAAAE2VjZHNhLXNoYTItbmlzdHAyNTYAAAAIbmlzdHAyNTYAAABB user@h",
        "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl",
        "a key with BEGIN in it, but no PEM block",
        "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n",
        "ssh-is-how-this-secret-happens-to-start-0123456789",
    ],
)
def test_the_key_check_agrees_with_pyjwt(key: str) -> None:
    """Accepted or refused as PyJWT's own HMAC check decides, with or without importing it."""
    from jwt.algorithms import HMACAlgorithm
    from jwt.exceptions import InvalidKeyError

    try:
        HMACAlgorithm(HMACAlgorithm.SHA256).prepare_key(key)
    except InvalidKeyError:
        with pytest.raises(ConfigurationError, match="PEM or SSH"):
            TokenSigner(key)
    else:
        TokenSigner(key)


def test_an_ordinary_key_does_not_import_pyjwt() -> None:
    """Signing with a shared secret loads neither PyJWT nor cryptography (~60 ms at start-up)."""
    code = (
        "import sys\n"
        "from coursepath_async import CoursepathClient\n"
        "from coursepath_async._auth import TokenSigner\n"
        f"TokenSigner({API_KEY!r}).sign('a@b.org')\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('jwt', 'cryptography')))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"

"""Token verification of the sandbox academy: every documented rule, every rejection."""

from __future__ import annotations

import base64
import time
from collections.abc import AsyncIterator
from typing import Any

import orjson
import pytest
from sandbox_raw import RawApi, running

from coursepath_async.testing import REJECTION_REASONS, SandboxAcademy
from coursepath_async.testing._auth import TokenRejectedError, TokenVerifier, encode_token

Env = tuple[SandboxAcademy, RawApi]


@pytest.fixture
async def env() -> AsyncIterator[Env]:
    async with running() as pair:
        yield pair


async def _rejected(api: RawApi, reason: str, **kwargs: Any) -> None:
    """Assert GET /members/me is a JSON 401 counted under ``reason``."""
    response = await api.get("/members/me", **kwargs)
    assert response.status == 401
    assert response.json()["error"] == "unauthorized"
    assert response.headers["WWW-Authenticate"].startswith("Bearer")
    assert api.academy.recorder.rejected_tokens[reason] == 1
    assert sum(api.academy.recorder.rejected_tokens.values()) == 1


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


async def test_a_fresh_hs256_token_is_accepted(env: Env) -> None:
    """A PyJWT HS256 token with email, iat and jti is accepted."""
    _, api = env
    assert (await api.get("/members/me")).status == 200


async def test_missing_header(env: Env) -> None:
    """No Authorization header → 401 ``missing``."""
    _, api = env
    await _rejected(api, "missing", authorization="")


@pytest.mark.parametrize("header", ["Basic abc", "Bearer", "Bearer not-a-jwt", "Bearer a.b.c"])
async def test_malformed_header_or_token(env: Env, header: str) -> None:
    """A wrong scheme or a token that is not a JWT → 401 ``malformed``."""
    _, api = env
    await _rejected(api, "malformed", authorization=header)


async def test_alg_none_is_rejected(env: Env) -> None:
    """An unsigned ``alg: none`` token → 401 ``bad_alg``."""
    _, api = env
    await _rejected(api, "bad_alg", token=api.token(alg="none"))


async def test_hs512_is_rejected(env: Env) -> None:
    """Only HS256 is accepted: HS512 → 401 ``bad_alg``."""
    _, api = env
    await _rejected(api, "bad_alg", token=api.token(alg="HS512", key="k" * 64))


async def test_wrong_key_is_a_bad_signature(env: Env) -> None:
    """A token signed with another key → 401 ``bad_signature``."""
    _, api = env
    await _rejected(api, "bad_signature", token=api.token(key="another-key-" * 4))


@pytest.mark.parametrize("claim", ["email", "iat", "jti"])
async def test_each_claim_is_required(env: Env, claim: str) -> None:
    """Leaving out email, iat or jti → 401 ``missing_claim``."""
    _, api = env
    await _rejected(api, "missing_claim", token=api.token(drop=(claim,)))


@pytest.mark.parametrize("claims", [{"jti": 1.5}, {"jti": [1]}, {"iat": "now"}, {"email": 7}])
async def test_claims_of_the_wrong_type(env: Env, claims: dict[str, object]) -> None:
    """A float/list jti, a string iat or a numeric email → 401 ``bad_claim``."""
    academy, api = env
    payload: dict[str, object] = {"email": academy.admin_email, "iat": int(time.time())}
    payload["jti"] = "j-1"
    payload.update(claims)
    await _rejected(api, "bad_claim", token=encode_token(payload, academy.api_key))


async def test_old_iat_is_expired(env: Env) -> None:
    """An iat more than 120 s old → 401 ``expired``; 110 s old is still fine."""
    _, api = env
    assert (await api.get("/members/me", token=api.token(iat=time.time() - 110))).status == 200
    await _rejected(api, "expired", token=api.token(iat=time.time() - 125))


async def test_future_iat_is_rejected(env: Env) -> None:
    """An iat more than 30 s ahead → 401 ``future``; 20 s ahead is tolerated."""
    _, api = env
    assert (await api.get("/members/me", token=api.token(iat=time.time() + 20))).status == 200
    await _rejected(api, "future", token=api.token(iat=time.time() + 40))


async def test_a_token_is_accepted_once(env: Env) -> None:
    """Presenting the same jti twice → the second is 401 ``replay``."""
    _, api = env
    token = api.token()
    assert (await api.get("/members/me", token=token)).status == 200
    response = await api.get("/members/me", token=token)
    assert response.status == 401
    assert response.json()["message"] == "token replay"
    assert api.academy.recorder.rejected_tokens["replay"] == 1


async def test_integer_and_string_jtis_are_both_fine(env: Env) -> None:
    """A jti may be an integer or a string (the documented example uses an integer)."""
    _, api = env
    assert (await api.get("/members/me", token=api.token(jti=508870138))).status == 200
    assert (await api.get("/members/me", token=api.token(jti="508870138"))).status == 200


async def test_unknown_email_is_rejected(env: Env) -> None:
    """A valid token for an email that is not a member → 401 ``unknown_member``."""
    _, api = env
    await _rejected(api, "unknown_member", email="ghost@nowhere.test")


async def test_rejected_writes_are_not_applied(env: Env) -> None:
    """A write with a rejected token changes nothing."""
    academy, api = env
    count = academy.state.member_count
    response = await api.post(
        "/members", token=api.token(key="wrong-key-" * 4), json={"email": "sneaky@x.com"}
    )
    assert response.status == 401
    assert academy.state.member_count == count


async def test_sign_token_mints_accepted_tokens(env: Env) -> None:
    """``academy.sign_token()`` makes a fresh, valid token for raw-HTTP tests."""
    academy, api = env
    learner = academy.state.members()[2]
    response = await api.get("/members/me", token=academy.sign_token(learner.email))
    assert response.json()["id"] == learner.id


async def test_forged_header_claiming_hs256_with_a_bad_segment(env: Env) -> None:
    """A non-base64 signature segment is ``malformed``, not a crash."""
    academy, api = env
    header = _b64(orjson.dumps({"alg": "HS256", "typ": "JWT"}))
    payload = _b64(orjson.dumps({"email": academy.admin_email, "iat": 1, "jti": 1}))
    await _rejected(api, "malformed", token=f"{header}.{payload}.!!!")


def test_replay_memory_is_pruned_after_the_iat_window() -> None:
    """A jti is remembered for max_age + max_skew seconds, then forgotten."""
    now = [1_000_000.0]
    verifier = TokenVerifier("k" * 32, clock=lambda: now[0])
    token = encode_token({"email": "a@b.c", "iat": now[0], "jti": 1}, "k" * 32)
    verifier.verify(f"Bearer {token}")
    with pytest.raises(TokenRejectedError) as replay:
        verifier.verify(f"Bearer {token}")
    assert replay.value.reason == "replay"
    now[0] += 150.0
    fresh = encode_token({"email": "a@b.c", "iat": now[0], "jti": 2}, "k" * 32)
    verifier.verify(f"Bearer {fresh}")
    assert verifier.remembered == 1
    with pytest.raises(TokenRejectedError) as expired:
        verifier.verify(f"Bearer {token}")
    assert expired.value.reason == "expired"


def test_rejection_reasons_are_public() -> None:
    """The reasons the recorder counts are listed for tests to iterate over."""
    assert set(REJECTION_REASONS) == {
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
    }

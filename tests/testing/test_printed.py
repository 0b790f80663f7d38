"""``printed_forms``: every printable form of an exception and its chain, each once."""

from __future__ import annotations

from coursepath_async import APIStatusError
from coursepath_async.testing import leaked_credentials, printed_forms


def test_the_whole_chain_and_the_body_are_covered() -> None:
    """Cause and context are followed; a response body is decoded; tracebacks included."""
    try:
        try:
            raise KeyError("inner-context")
        except KeyError:
            raise ValueError("middle") from OSError("root-cause")
    except ValueError as exc:
        outer = APIStatusError(
            "outer", status_code=500, method="GET", url="https://x.test/api/v1", body=b"body-text"
        )
        outer.__cause__ = exc
    texts = "\n".join(printed_forms(outer))
    for part in ("outer", "body-text", "middle", "root-cause", "Traceback"):
        assert part in texts
    assert "inner-context" not in texts  # behind an explicit cause: not what gets printed


def test_a_cycle_ends() -> None:
    """An exception chain that loops back is walked once."""
    first, second = ValueError("a"), ValueError("b")
    first.__context__, second.__context__ = second, first
    assert len(list(printed_forms(first))) == 8


def test_leaked_credentials_finds_the_key_markers_and_token_pieces() -> None:
    """The key, ``eyJ``, ``Bearer`` and a wrapped part of a token are named; clean text is not."""
    key = "printed-tests-api-key-0123456789"
    token = "eyJhbGciOiJIUzI1NiJ9.eyJlbWFpbCI6ImFAeC5vcmcifQ.c2lnbmF0dXJlLW9mLXRoZS10b2tlbg"
    assert leaked_credentials("all quiet", api_key=key, tokens=[token]) == []
    assert leaked_credentials(f"k={key}", api_key=key) == ["api key"]
    assert leaked_credentials("BEARER x eyJ", api_key=key) == ["'eyJ'", "'Bearer'"]
    wrapped = token[40:70]  # the middle of the token, no "eyJ" in it
    found = leaked_credentials(f"... {wrapped} ...", api_key=key, tokens=[token])
    assert found
    assert all(name.startswith("token piece") for name in found)

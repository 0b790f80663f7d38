"""``printed_forms``: every printable form of an exception and its chain, each once."""

from __future__ import annotations

from coursepath_async import APIStatusError
from coursepath_async.testing import printed_forms


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

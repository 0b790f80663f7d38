"""The line index: exact like a dict, whether its keys are in memory or spilled to disk."""

from __future__ import annotations

import pytest

from coursepath_async.bulk._seen import LineIndex


@pytest.mark.parametrize("memory_keys", [1, 2, 3, 1_000])
def test_the_index_answers_like_a_dict_across_spills(memory_keys: int) -> None:
    """First holder kept by setdefault, replaced by put, notes kept, same as a dict would."""
    index = LineIndex(memory_keys=memory_keys)
    model: dict[str, tuple[int, str | None]] = {}
    for line in range(2, 40):
        key = f"email:p{line % 13}@x.org"  # every key comes back, some after a spill
        assert index.setdefault(key, line, f"note {line}") == model.setdefault(
            key, (line, f"note {line}")
        )
        if line % 5 == 0:
            moved = [f"id:{line % 7}", key]
            index.put(moved, line)
            model.update(dict.fromkeys(moved, (line, None)))
        for probe in (key, f"id:{line % 7}", "email:never@x.org"):
            assert index.get(probe) == model.get(probe)
    assert all(index.get(key) == entry for key, entry in model.items())


def test_small_jobs_never_open_the_file_and_big_ones_keep_memory_bounded() -> None:
    """Below the bound nothing is spilled; past it, memory holds fewer keys than the bound."""
    index = LineIndex(memory_keys=100)
    for line in range(99):
        index.setdefault(f"k{line}", line)
    assert index._conn is None
    for line in range(99, 1_000):
        index.setdefault(f"k{line}", line)
        assert len(index._recent) < 100
    assert index.get("k0") == (0, None)
    assert index.get("k999") == (999, None)

"""The ``benchmarks.instructions parts`` child: every part it replaces still exists and runs."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks._get_parts import PARTS  # noqa: E402


@pytest.mark.parametrize("part", sorted(PARTS))
def test_each_part_names_an_sdk_attribute(part: str) -> None:
    """A refactor that renames a part's function fails here, not as a silent zero cost."""
    for owner, name, _ in PARTS[part]:
        assert hasattr(owner, name), (part, owner, name)


@pytest.mark.parametrize("args", [["raw"], ["sdk"], *(["sdk", part] for part in sorted(PARTS))])
def test_the_child_runs_each_side_and_part(args: list[str]) -> None:
    """The fake session answers every GET, whole and with each part replaced."""
    side, *part = args
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks._get_parts", side, "40", *part],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]

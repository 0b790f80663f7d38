"""Run the issue-6 fault soak outside pytest and print its figures.

Usage::

    python scripts/soak.py                 # the issue's 5,000 rows
    python scripts/soak.py --rows 20000 --seed 7 --dir /tmp/soak

It imports generated people into a sandbox academy with 10% 5xx answers, 3% connection
resets, 4% writes applied then answered 502 and 429 bursts with ``Retry-After``, then
prints rows, faults injected by kind, rows lost, duplicate invitations and the elapsed
time. Exit code 0 when nothing was lost or doubled, 1 otherwise. The soak itself lives
in ``tests/test_reliability_soak.py`` (``run_soak``), so CI and this script run the
same code.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import sys
import tempfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent


def _soak_module() -> Any:
    """``tests/test_reliability_soak.py``, imported the way pytest imports it (by name)."""
    sys.path.insert(0, str(ROOT / "tests"))
    sys.path.insert(0, str(ROOT))
    return importlib.import_module("test_reliability_soak")


def main(argv: list[str] | None = None) -> int:
    """Parse the arguments, run one soak, print its figures; 0 when it was clean."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=5_000, help="CSV rows (default: 5,000)")
    parser.add_argument("--seed", type=int, default=2026, help="data and fault seed")
    parser.add_argument("--dir", type=Path, help="where the CSV and journal go (default: temp)")
    args = parser.parse_args(argv)
    if args.rows < 10:
        parser.error("--rows must be at least 10")
    soak = _soak_module()
    with tempfile.TemporaryDirectory(prefix="coursepath-soak-") as scratch:
        folder = args.dir or Path(scratch)
        folder.mkdir(parents=True, exist_ok=True)
        print(f"soak: {args.rows:,} rows, seed {args.seed}, files in {folder}", flush=True)
        figures = asyncio.run(soak.run_soak(args.rows, folder, seed=args.seed))
    for line in figures.lines():
        print(f"  {line}")
    print("soak: clean" if figures.clean else "soak: PROBLEMS (see the figures above)")
    return 0 if figures.clean else 1


if __name__ == "__main__":
    sys.exit(main())

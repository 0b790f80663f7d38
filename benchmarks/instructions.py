"""Instructions per ``members.get`` at concurrency 32, SDK against raw aiohttp (callgrind).

Timing on a shared 2-core machine moves by a tenth between runs; counting the client's
instructions barely does (about half a percent here), so this tells a small change to
the hot path from noise where benchmark 14 cannot. Each side runs twice in a fresh
child under ``valgrind --tool=callgrind`` against a sandbox in its own process, with 300
and 1,300 GETs; the difference over 1,000 is the cost of one request, start-up cancelled
out.
Needs valgrind; takes about 90 seconds.

Run: python -m benchmarks.instructions
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys

from ._common import sandbox
from ._util import HERE

_SMALL, _LARGE = 300, 1300
_CHILD = """
import asyncio, sys
from benchmarks._throughput import raw_gets, sdk_gets
run = sdk_gets if sys.argv[2] == "sdk" else raw_gets
asyncio.run(run(sys.argv[1], int(sys.argv[3]), 32, 1000))
"""


def _instructions(url: str, side: str, n: int) -> int:
    """Instructions the client process ran for ``n`` GETs (start-up included)."""
    done = subprocess.run(
        [
            "valgrind",
            "--tool=callgrind",
            "--callgrind-out-file=/dev/null",
            sys.executable,
            "-c",
            _CHILD,
            url,
            side,
            str(n),
        ],
        cwd=HERE.parent,
        capture_output=True,
        text=True,
        check=True,
    )
    found = re.search(r"Collected : (\d+)", done.stderr)
    if found is None:
        raise RuntimeError(f"callgrind printed no total:\n{done.stderr[-2000:]}")
    return int(found.group(1))


def main() -> None:
    """Print each side's instructions per request and their ratio."""
    if shutil.which("valgrind") is None:
        raise SystemExit("valgrind is not installed")
    per_request: dict[str, float] = {}
    with sandbox(members=1000) as url:
        for side in ("sdk", "raw"):
            small, large = (_instructions(url, side, n) for n in (_SMALL, _LARGE))
            per_request[side] = (large - small) / (_LARGE - _SMALL)
    sdk, raw = per_request["sdk"], per_request["raw"]
    print(f"members.get, concurrency 32: SDK {sdk:,.0f} instructions per request, ", end="")
    print(f"raw aiohttp {raw:,.0f}; raw/SDK {raw / sdk:.3f}")


if __name__ == "__main__":
    main()

"""Instructions per ``members.get`` (benchmark 14) and per CLI import row (10), SDK vs raw.

Timing on a shared 2-core machine moves by a tenth between runs, and by half between
days; counting the client's instructions (callgrind) barely does, so this tells a small
change to the hot path from noise where benchmarks 10 and 14 cannot. Each side runs
twice in a fresh child under ``valgrind --tool=callgrind`` against a sandbox in its own
process, at two sizes; the difference over the extra requests (or rows) is the cost of
one, start-up cancelled out.

- ``get``: 300 and 1,300 GETs at concurrency 32, the SDK's ``members.get`` against raw
  aiohttp with a prepared-key signer (steady to about half a percent).
- ``import``: the CLI's ``import FILE --group G --course C --invite`` of 200 and 1,000
  new people, journal fsynced on disk, against benchmark 10's raw loop making the same
  four calls per row (steady to about 1.5%: a slowed client gathers fewer rows per
  commit, so the journal's share is counted somewhat high).

- ``parts``: where an SDK GET's own cost lies. ``members.get`` against an in-process
  fake of aiohttp's session (``_get_parts``), whole and with each part replaced by a
  no-op in turn (the model, the token, the URL, ...): what a part's absence saves is
  its cost. The raw loop on the same fake is the reference.

Needs valgrind; about 90 seconds for ``get``, 4 minutes for ``import``, 7 for ``parts``.

Run: python -m benchmarks.instructions [get] [import] [parts]   (get and import by default)
"""

from __future__ import annotations

import itertools
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

from ._cli_import import CONCURRENCY, COURSE_ID, GROUP, _env, write_csv
from ._common import sandbox
from ._get_parts import PARTS
from ._util import HERE

_GETS = (300, 1300)
_ROWS = (200, 1000)
_FAKE_GETS = (1000, 4000)
_GET_CHILD = """
import asyncio, sys
from benchmarks._throughput import raw_gets, sdk_gets
run = sdk_gets if sys.argv[2] == "sdk" else raw_gets
asyncio.run(run(sys.argv[1], int(sys.argv[3]), 32, 1000))
"""

#: A side's command (and environment) for ``n`` requests or rows: (argv, env or None).
Command = Callable[[int], tuple[list[str], dict[str, str] | None]]


def _instructions(argv: list[str], env: dict[str, str] | None) -> int:
    """Instructions the child process ran, every thread and start-up included."""
    done = subprocess.run(
        ["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null", *argv],
        cwd=HERE.parent,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    found = re.search(r"Collected : (\d+)", done.stderr)
    if done.returncode != 0 or found is None:
        raise RuntimeError(f"callgrind run failed ({done.returncode}):\n{done.stderr[-2000:]}")
    return int(found.group(1))


def _per_unit(command: Command, sizes: tuple[int, int]) -> float:
    """Instructions per request (or row): the two sizes' difference, start-up cancelled."""
    small, large = (_instructions(*command(n)) for n in sizes)
    return (large - small) / (sizes[1] - sizes[0])


def _gets() -> tuple[float, float]:
    """(SDK, raw) instructions per ``members.get`` at concurrency 32."""
    with sandbox(members=1000) as url:

        def side(name: str) -> Command:
            return lambda n: ([sys.executable, "-c", _GET_CHILD, url, name, str(n)], None)

        return _per_unit(side("sdk"), _GETS), _per_unit(side("raw"), _GETS)


def _import_rows() -> tuple[float, float]:
    """(CLI, raw) instructions per row of benchmark 10's import, fresh people each run."""
    with tempfile.TemporaryDirectory() as tmp, sandbox(members=1, courses=2, groups=1) as url:
        folder = Path(tmp)
        runs = itertools.count()  # a fresh file and people for every run

        def cli(n: int) -> tuple[list[str], dict[str, str] | None]:
            people = folder / f"cli{next(runs)}.csv"
            write_csv(people, people.stem, n)
            argv = [sys.executable, "-m", "coursepath_async", "import", str(people)]
            argv += ["--group", GROUP, "--course", str(COURSE_ID), "--invite"]
            return [*argv, "--concurrency", str(CONCURRENCY)], _env(url)

        def raw(n: int) -> tuple[list[str], dict[str, str] | None]:
            argv = [sys.executable, str(HERE / "_raw_import_child.py"), url, f"raw{next(runs)}"]
            return [*argv, str(n), str(CONCURRENCY), GROUP, str(COURSE_ID)], None

        return _per_unit(cli, _ROWS), _per_unit(raw, _ROWS)


def _parts() -> tuple[float, float, dict[str, float]]:
    """(SDK, raw) instructions per GET on the fake session, and what each part costs."""

    def side(name: str, *part: str) -> Command:
        child = [sys.executable, "-m", "benchmarks._get_parts", name]
        return lambda n: ([*child, str(n), *part], None)

    whole = _per_unit(side("sdk"), _FAKE_GETS)
    costs = {part: whole - _per_unit(side("sdk", part), _FAKE_GETS) for part in PARTS}
    return whole, _per_unit(side("raw"), _FAKE_GETS), costs


def main(argv: list[str] | None = None) -> None:
    """Print each side's instructions per request (or row) and their ratio."""
    chosen = (sys.argv[1:] if argv is None else argv) or ["get", "import"]
    unknown = set(chosen) - {"get", "import", "parts"}
    if unknown:
        raise SystemExit(f"unknown figure {sorted(unknown)}: choose get, import, parts")
    if shutil.which("valgrind") is None:
        raise SystemExit("valgrind is not installed")
    if "get" in chosen:
        sdk, raw = _gets()
        print(f"members.get, concurrency 32: SDK {sdk:,.0f} instructions per request, ", end="")
        print(f"raw aiohttp {raw:,.0f}; raw/SDK {raw / sdk:.3f}")
    if "import" in chosen:
        cli, raw = _import_rows()
        print(f"CLI import --invite, {CONCURRENCY} in flight: CLI {cli:,.0f} instructions ", end="")
        print(f"per row, raw aiohttp {raw:,.0f}; CLI/raw {cli / raw:.3f}")
    if "parts" in chosen:
        whole, raw, costs = _parts()
        print(f"members.get on a fake session: SDK {whole:,.0f} instructions, raw {raw:,.0f}")
        for part, cost in sorted(costs.items(), key=lambda item: -item[1]):
            print(f"  {part:<16} {cost:>8,.0f}  ({cost / whole:.1%} of the SDK's)")


if __name__ == "__main__":
    main()

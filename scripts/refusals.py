"""Measure how the CLI refuses unsafe bulk runs (issue 15's closing figures) and print them.

Usage::

    python scripts/refusals.py            # a 2,000-row file, as in the issue

Against a sandbox academy, through the real ``coursepath-async`` command in a subprocess:
``import --course 999 --invite`` (a typo), a wrong API key and an unreachable academy,
each with exit code, members created (must be 0) and seconds to refuse; then a sync
planned to remove 40 enrolments with ``--max-removals 5`` and the removals applied
(must be 0). Exit code 0 when every refusal held, 1 otherwise.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
import sys
import tempfile
import time
from pathlib import Path

from coursepath_async.testing import SandboxAcademy
from coursepath_async.testing._people import write_people_csv

KEY = "refusals-script-api-key-0123456789abcdefghijklmnop"


async def _cli(env: dict[str, str], *args: str) -> tuple[int, float, str]:
    """Run the command; its exit code, wall seconds and last stderr line."""
    started = time.perf_counter()
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "coursepath_async",
        *args,
        env=env,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )
    _, err = await process.communicate()
    assert process.returncode is not None
    lines = err.decode(errors="replace").strip().splitlines() or [""]
    return process.returncode, time.perf_counter() - started, lines[-1].strip()


def _env(url: str, key: str, user: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("COURSEPATH_")}
    env.update(
        COURSEPATH_URL=url, COURSEPATH_API_KEY=key, COURSEPATH_USER=user, COURSEPATH_ALLOW_HTTP="1"
    )
    return env


async def main(rows: int, folder: Path) -> int:
    """Print the figures; 0 when every refusal held."""
    ok = True
    _, startup, _ = await _cli(dict(os.environ), "--help")
    print(f"(the command's start-up alone, --help: {startup:.2f}s)")
    print(f"{'case':<24} {'exit':>4} {'created':>7} {'seconds':>7}  message")
    async with SandboxAcademy(members=20, courses=3, seed=15, api_key=KEY) as academy:
        people = write_people_csv(folder / "people.csv", rows=rows, seed=15, bad_rows=False)
        before = academy.state.member_count
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            free = probe.getsockname()[1]
        cases = (
            ("typo'd --course 999", _env(academy.url, KEY, academy.admin_email), "999"),
            ("wrong API key", _env(academy.url, KEY[::-1], academy.admin_email), "1"),
            (
                "unreachable academy",
                _env(f"http://127.0.0.1:{free}", KEY, academy.admin_email),
                "1",
            ),
        )
        for name, env, course in cases:
            code, seconds, message = await _cli(
                env, "import", str(people.path), "--course", course, "--invite"
            )
            created = academy.state.member_count - before
            ok &= code == 2 and created == 0
            print(f"{name:<24} {code:>4} {created:>7} {seconds:>7.2f}  {message[:70]}")
        lines = []
        for i in range(20):
            member = academy.state.add_member(f"learner{i}@school.test")
            academy.state.enrol(1, member.id)
            academy.state.enrol(2, member.id)
            lines.append(f"{member.email},\n")
        desired = folder / "desired.csv"
        desired.write_text("email,courses\n" + "".join(lines))
        enrolled = len(academy.state.enrolments(1)) + len(academy.state.enrolments(2))
        env = _env(academy.url, KEY, academy.admin_email)
        code, seconds, _ = await _cli(
            env, "sync", str(desired), "--unenroll", "--max-removals", "5", "--yes"
        )
        applied = enrolled - len(academy.state.enrolments(1)) - len(academy.state.enrolments(2))
        ok &= code == 2 and applied == 0
        print(f"sync removing 40, bound 5: exit {code}, removals applied {applied}, {seconds:.2f}s")
    return 0 if ok else 1


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=2000)
    parsed = parser.parse_args()
    with tempfile.TemporaryDirectory() as temporary:
        sys.exit(asyncio.run(main(parsed.rows, Path(temporary))))

"""Every ```python block of README.md runs, against a sandbox academy: none can rot.

The comment line right before a block says how it runs (README's Development section):

* no comment: a **script**, run as ``python -c`` in a scratch directory with
  ``COURSEPATH_URL``, ``COURSEPATH_API_KEY``, ``COURSEPATH_USER`` and
  ``COURSEPATH_ALLOW_HTTP=1`` pointing at a running sandbox;
* ``<!-- snippet: fragment -->``: the body of an ``async def`` given ``client`` (a
  ``CoursepathClient`` acting as the sandbox's admin), ``member_id``, ``member_ids`` and
  ``request_user_email`` (existing members), run in a scratch directory holding a
  ``people.csv``, with the same environment plus ``WEBHOOK_SECRET``;
* ``<!-- snippet: pytest -->``: files of a pytest project, each starting at a
  ``# name.py`` line, run by pytest in a subprocess, which must pass.

Any other comment fails the test, so a block cannot be skipped by a typo.
"""

from __future__ import annotations

import asyncio
import re
import sys
import textwrap
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from cli_env import cli_env

from coursepath_async import CoursepathClient
from coursepath_async.testing import SandboxAcademy

README = Path(__file__).resolve().parent.parent / "README.md"
_BLOCK = re.compile(
    r"(?:^<!-- snippet: (?P<kind>[^>]*?) -->\n)?^```python\n(?P<code>.*?)^```$",
    re.DOTALL | re.MULTILINE,
)
_FILE = re.compile(r"^# (?P<name>[\w/]+\.py)$", re.MULTILINE)
KINDS = ("script", "fragment", "pytest")
SECRET = "readme-webhook-secret-0123456789"


def readme_blocks(text: str) -> list[tuple[int, str, str]]:
    """(line number, kind, code) of each python block; an unmarked block is a script."""
    blocks = []
    for match in _BLOCK.finditer(text):
        line = text.count("\n", 0, match.start("code"))
        blocks.append((line, match["kind"] or "script", match["code"]))
    return blocks


BLOCKS = readme_blocks(README.read_text())


def test_every_python_block_is_found_with_a_known_kind() -> None:
    """Each ```python fence is one block, and each block's marker names a known kind."""
    text = README.read_text()
    assert len(BLOCKS) == text.count("```python\n") >= 8
    unknown = [(line, kind) for line, kind, _ in BLOCKS if kind not in KINDS]
    assert not unknown, f"README blocks with an unknown snippet kind: {unknown}"


def test_an_unmarked_fragment_is_a_script_and_fails() -> None:
    """A block without a marker runs standalone, so a fragment left unmarked cannot pass."""
    [(_, kind, code)] = readme_blocks("<!-- an aside -->\n```python\nawait f()\n```\n")
    assert kind == "script"
    with pytest.raises(SyntaxError):
        compile(code, "README.md", "exec")


@pytest.fixture
async def academy() -> AsyncIterator[SandboxAcademy]:
    async with SandboxAcademy(members=30, courses=12, groups=3, seed=8) as a:
        yield a


def _ids(blocks: list[tuple[int, str, str]]) -> list[Any]:
    return [pytest.param(line, kind, code, id=f"line {line} {kind}") for line, kind, code in blocks]


@pytest.mark.parametrize(("line", "kind", "code"), _ids(BLOCKS))
async def test_readme_block_runs(
    academy: SandboxAcademy,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    line: int,
    kind: str,
    code: str,
) -> None:
    """The block runs to the end against the sandbox (a pytest block: its tests pass)."""
    env = cli_env(academy, WEBHOOK_SECRET=SECRET)
    if kind == "script":
        await _subprocess(tmp_path, env, sys.executable, "-c", code)
    elif kind == "pytest":
        for name, source in _files(code).items():
            (tmp_path / name).write_text(source)
        await _subprocess(
            tmp_path, env, sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"
        )
    else:
        await _run_fragment(academy, tmp_path, monkeypatch, env, code, line)


async def _run_fragment(
    academy: SandboxAcademy,
    folder: Path,
    monkeypatch: pytest.MonkeyPatch,
    env: dict[str, str],
    code: str,
    line: int,
) -> None:
    (folder / "people.csv").write_text("email,name\nann@readme.test,Ann\nbob@readme.test,Bob\n")
    monkeypatch.chdir(folder)
    for name, value in env.items():
        if name.startswith("COURSEPATH_") or name == "WEBHOOK_SECRET":
            monkeypatch.setenv(name, value)
    # Padded so that a traceback points at the README's own line numbers.
    source = "\n" * (line - 1) + "async def __snippet():\n" + textwrap.indent(code, "    ")
    namespace: dict[str, Any] = {}
    exec(compile(source, str(README), "exec"), namespace)
    async with CoursepathClient() as client:  # all from the COURSEPATH_* environment
        members = [m async for m in client.members.list() if m.email != academy.admin_email]
        namespace.update(
            client=client,
            member_id=members[0].id,
            member_ids=[m.id for m in members[:5]],
            request_user_email=members[0].email,
        )
        await namespace["__snippet"]()


def _files(code: str) -> dict[str, str]:
    """The files of a pytest block: each ``# name.py`` line starts one."""
    starts = list(_FILE.finditer(code))
    assert starts, "a pytest block starts with a '# name.py' line"
    ends = [match.start() for match in starts[1:]] + [len(code)]
    return {match["name"]: code[match.end() : end] for match, end in zip(starts, ends, strict=True)}


async def _subprocess(folder: Path, env: dict[str, str], *argv: str) -> None:
    process = await asyncio.create_subprocess_exec(
        *argv,
        cwd=folder,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    async with asyncio.timeout(180):
        out, _ = await process.communicate()
    assert process.returncode == 0, out.decode("utf-8", "replace")

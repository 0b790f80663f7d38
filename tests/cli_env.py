"""The environment a ``coursepath-async`` subprocess gets in tests: one place builds it."""

from __future__ import annotations

import asyncio
import os
import sys

from coursepath_async.testing import SandboxAcademy


def cli_env(academy: SandboxAcademy | None, **extra: str) -> dict[str, str]:
    """Our environment minus any COURSEPATH_* setting, plus the academy's (if given)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("COURSEPATH_")}
    if academy is not None:
        env.update(
            COURSEPATH_URL=academy.url,
            COURSEPATH_API_KEY=academy.api_key,
            COURSEPATH_USER=academy.admin_email,
            COURSEPATH_ALLOW_HTTP="1",
        )
    env.update(extra)
    return env


async def run_cli(academy: SandboxAcademy | None, *args: str, **env: str) -> tuple[int, str, str]:
    """Run ``python -m coursepath_async *args`` against ``academy``: exit code, stdout, stderr.

    ``env`` adds or overrides variables (e.g. ``COURSEPATH_URL`` of an academy that is down).
    """
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "coursepath_async",
        *args,
        env=cli_env(academy, **env),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    async with asyncio.timeout(60):
        out, err = await process.communicate()
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode("utf-8", "replace")

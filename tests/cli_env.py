"""The environment a ``coursepath-async`` subprocess gets in tests: one place builds it."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

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


async def start_cli(
    academy: SandboxAcademy | None,
    *args: str,
    stderr: int = asyncio.subprocess.PIPE,
    **env: str,
) -> asyncio.subprocess.Process:
    """Start ``python -m coursepath_async *args`` against ``academy``, stdout piped."""
    return await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "coursepath_async",
        *args,
        env=cli_env(academy, **env),
        stdout=asyncio.subprocess.PIPE,
        stderr=stderr,
    )


async def run_cli(academy: SandboxAcademy | None, *args: str, **env: str) -> tuple[int, str, str]:
    """Run ``python -m coursepath_async *args`` against ``academy`` with ``env``: code, out, err."""
    process = await start_cli(academy, *args, stderr=asyncio.subprocess.PIPE, **env)
    async with asyncio.timeout(60):
        out, err = await process.communicate()
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode("utf-8", "replace")


@asynccontextmanager
async def served_sandbox(*args: str) -> AsyncIterator[tuple[str, list[str]]]:
    """Run ``coursepath-async sandbox --port 0 *args``: its URL and banner lines; Ctrl-C after."""
    process = await asyncio.create_subprocess_exec(
        *(sys.executable, "-m", "coursepath_async", "sandbox", "--port", "0", *args),
        env=cli_env(None),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    assert process.stdout is not None
    banner: list[str] = []
    try:
        async with asyncio.timeout(30):
            while not (line := (await process.stdout.readline()).decode()).startswith(
                "  export COURSEPATH_ALLOW_HTTP"
            ):
                banner.append(line)
        url = next(ln.split("=", 1)[1].strip() for ln in banner if "COURSEPATH_URL=" in ln)
        yield url, banner
    finally:
        process.send_signal(signal.SIGINT)
        await process.communicate()

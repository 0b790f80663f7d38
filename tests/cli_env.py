"""The environment a ``coursepath-async`` subprocess gets in tests: one place builds it."""

from __future__ import annotations

import os

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

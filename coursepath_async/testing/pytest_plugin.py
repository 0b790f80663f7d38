"""pytest fixtures for testing code against a sandbox Coursepath academy.

Enable them in a ``conftest.py``::

    pytest_plugins = ["coursepath_async.testing.pytest_plugin"]

then ask for ``coursepath_sandbox`` (a running :class:`SandboxAcademy`) and/or
``coursepath_client`` (a ``CoursepathClient`` connected to it as the admin, retrying
without waits).  Override ``coursepath_sandbox_options`` to seed a different academy::

    @pytest.fixture
    def coursepath_sandbox_options():
        return {"members": 1_000, "seed": 42, "faults": Faults(seed=1, error_rate=0.1)}

The fixtures are async (pytest-asyncio) and function-scoped: every test gets a fresh
academy, so state and recorder counts never leak between tests.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
import pytest_asyncio

from .._client import CoursepathClient
from .._retry import RetryPolicy
from ._server import SandboxAcademy

#: The academy the fixtures build unless ``coursepath_sandbox_options`` says otherwise:
#: small, so it starts in milliseconds, and seeded, so every run sees the same data.
DEFAULT_SANDBOX_OPTIONS: dict[str, Any] = {
    "members": 25,
    "courses": 5,
    "programs": 2,
    "groups": 4,
    "seed": 1234,
}


@pytest.fixture
def coursepath_sandbox_options() -> dict[str, Any]:
    """Keyword arguments for the ``coursepath_sandbox`` academy (override to change)."""
    return dict(DEFAULT_SANDBOX_OPTIONS)


@pytest_asyncio.fixture
async def coursepath_sandbox(
    coursepath_sandbox_options: dict[str, Any],
) -> AsyncIterator[SandboxAcademy]:
    """A running sandbox academy on 127.0.0.1, closed after the test."""
    async with SandboxAcademy(**coursepath_sandbox_options) as academy:
        yield academy


@pytest_asyncio.fixture
async def coursepath_client(
    coursepath_sandbox: SandboxAcademy,
) -> AsyncIterator[CoursepathClient]:
    """A ``CoursepathClient`` acting as the sandbox's admin, closed after the test.

    Retries are on (4 attempts) with zero backoff, so fault tests run fast.
    """
    async with CoursepathClient(
        coursepath_sandbox.url,
        api_key=coursepath_sandbox.api_key,
        user=coursepath_sandbox.admin_email,
        allow_http=True,
        retry=RetryPolicy(max_attempts=4, base_delay=0.0, max_delay=0.0),
    ) as client:
        yield client

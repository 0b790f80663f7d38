"""The suite's shared setup: the shipped pytest plugin, one API key, the client factories.

Every test directory gets the plugin's ``coursepath_sandbox`` / ``coursepath_client``
fixtures from here, as a user's ``conftest.py`` would.  Test modules import the
constants and factories by name (``from conftest import API_KEY, make_client``): pytest
puts this directory on ``sys.path`` (no ``__init__.py``), as it does for ``fake_api``.
"""

from __future__ import annotations

import ssl
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from typing import Any

import pytest
import trustme

from coursepath_async import CoursepathClient, RetryPolicy
from coursepath_async.testing import SandboxAcademy

pytest_plugins = ["coursepath_async.testing.pytest_plugin"]

#: The one API key of the suite; long enough for PyJWT's HS256 key-length check, which
#: would warn (= fail) otherwise.  Tests that prove a key never leaks look for this text.
API_KEY = "coursepath-tests-api-key-0123456789-abcdefghijklmnop"

#: The academy of clients that never connect (aioresponses, or refused before sending).
BASE_URL = "https://acme.example.com"
#: The member those clients act as.
USER = "admin@acme.example.com"

#: Retries on, waits off: fault tests run at loopback speed.
FAST_RETRY = RetryPolicy(max_attempts=4, base_delay=0.0, max_delay=0.0)


def sandbox(**options: Any) -> SandboxAcademy:
    """A (not yet started) sandbox academy signing with :data:`API_KEY` unless told otherwise."""
    options.setdefault("api_key", API_KEY)
    return SandboxAcademy(**options)


def make_client(academy: SandboxAcademy, **options: Any) -> CoursepathClient:
    """A client acting as the academy's admin over plain loopback http, retrying without waits."""
    settings: dict[str, Any] = {
        "api_key": academy.api_key,
        "user": academy.admin_email,
        "allow_http": True,
        "retry": FAST_RETRY,
        "timeout": 10.0,
    }
    settings.update(options)
    return CoursepathClient(academy.url, **settings)


@asynccontextmanager
async def academy_and_client(
    *, client: Mapping[str, Any] | None = None, **academy_options: Any
) -> AsyncIterator[tuple[SandboxAcademy, CoursepathClient]]:
    """Run :func:`sandbox` and a :func:`make_client` (``client`` options) on it; close both."""
    async with sandbox(**academy_options) as academy, make_client(academy, **(client or {})) as sdk:
        yield academy, sdk


def offline_client(**options: Any) -> CoursepathClient:
    """A client of :data:`BASE_URL` as :data:`USER` with :data:`API_KEY` (``options`` on top)."""
    settings: dict[str, Any] = {"api_key": API_KEY, "user": USER}
    settings.update(options)
    return CoursepathClient(BASE_URL, **settings)


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    """A throw-away certificate authority for the TLS tests (one per module)."""
    return trustme.CA()


def server_context(ca: trustme.CA) -> ssl.SSLContext:
    """A server TLS context with a certificate for 127.0.0.1 issued by ``ca``."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(context)
    return context


def client_context(ca: trustme.CA) -> ssl.SSLContext:
    """A client TLS context trusting ``ca`` (and nothing else)."""
    context = ssl.create_default_context()
    ca.configure_trust(context)
    return context

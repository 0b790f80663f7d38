"""A raw aiohttp + PyJWT driver for the sandbox tests (deliberately not the SDK).

It signs a fresh token per request with PyJWT, so the sandbox's verification is
checked against an independent implementation of the documented token format.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from typing import Any

import aiohttp
import jwt
import orjson
from attrs import frozen
from conftest import sandbox
from multidict import CIMultiDict

from coursepath_async.testing import SandboxAcademy


@frozen
class RawResponse:
    """Status, headers and body of one response."""

    status: int
    headers: Mapping[str, str]
    body: bytes

    def json(self) -> Any:
        """The body parsed as JSON."""
        return orjson.loads(self.body)


class RawApi:
    """Calls an academy over HTTP, signing a new token for every request."""

    def __init__(
        self, academy: SandboxAcademy, session: aiohttp.ClientSession, *, email: str | None = None
    ) -> None:
        self.academy = academy
        self.session = session
        self.email = email or academy.admin_email

    def token(
        self,
        email: str | None = None,
        *,
        iat: float | None = None,
        jti: object = None,
        key: str | None = None,
        alg: str = "HS256",
        drop: tuple[str, ...] = (),
    ) -> str:
        """Sign a token with PyJWT; ``drop`` leaves claims out."""
        claims: dict[str, object] = {
            "email": email or self.email,
            "iat": int(time.time()) if iat is None else iat,
            "jti": uuid.uuid4().hex if jti is None else jti,
        }
        for name in drop:
            claims.pop(name)
        signing_key = "" if alg == "none" else (key or self.academy.api_key)
        return jwt.encode(claims, signing_key, algorithm=alg)

    async def call(
        self,
        method: str,
        path: str,
        *,
        email: str | None = None,
        token: str | None = None,
        authorization: str | None = None,
        json: object = None,
        data: Any = None,
        params: Mapping[str, str] | None = None,
        headers: Mapping[str, str] | None = None,
        time_limit: float = 10.0,
    ) -> RawResponse:
        """Send one request with a fresh token (or the given one / raw header)."""
        all_headers = dict(headers or {})
        if authorization is None:
            authorization = f"Bearer {token or self.token(email)}"
        if authorization:
            all_headers["Authorization"] = authorization
        if not path.startswith("/"):
            path = "/" + path
        if not path.startswith("/api/"):
            path = "/api/v1" + path
        async with self.session.request(
            method,
            self.academy.url + path,
            json=json,
            data=data,
            params=params,
            headers=all_headers,
            timeout=aiohttp.ClientTimeout(total=time_limit),
        ) as response:
            body = await response.read()
            return RawResponse(response.status, CIMultiDict(response.headers), body)

    async def get(self, path: str, **kwargs: Any) -> RawResponse:
        """GET ``path`` (``/api/v1`` may be left out)."""
        return await self.call("GET", path, **kwargs)

    async def post(self, path: str, **kwargs: Any) -> RawResponse:
        """POST ``path``."""
        return await self.call("POST", path, **kwargs)

    async def delete(self, path: str, **kwargs: Any) -> RawResponse:
        """DELETE ``path``."""
        return await self.call("DELETE", path, **kwargs)


@asynccontextmanager
async def running(**kwargs: Any) -> AsyncIterator[tuple[SandboxAcademy, RawApi]]:
    """Run an academy (test API key, small seed by default) with a raw client on it."""
    options: dict[str, Any] = {"members": 12, "courses": 4, "groups": 3, "seed": 7}
    options.update(kwargs)
    async with sandbox(**options) as academy, one_attempt_session() as session:
        yield academy, RawApi(academy, session)


def one_attempt_session(**kwargs: Any) -> aiohttp.ClientSession:
    """A session that never resends a request behind the test's back.

    aiohttp silently retries an idempotent request once when the server drops the
    connection, with the same headers, hence the same (now spent) token; the tests
    want to see each attempt, so that private switch is turned off.
    """
    session = aiohttp.ClientSession(**kwargs)
    session._retry_connection = False
    return session


async def until_in_flight(academy: SandboxAcademy, count: int) -> None:
    """Wait (at most 5 s) until exactly ``count`` requests are inside the academy."""
    async with asyncio.timeout(5):
        await academy.recorder.wait_for(lambda recorder: recorder.in_flight == count)

"""The aiohttp edge: one attempt in, a RawResponse or a typed error out; no aiohttp leaks."""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from aioresponses import aioresponses
from conftest import BASE_URL, offline_client
from fake_api import Response, connection_key, refused
from yarl import URL

from coursepath_async import (
    APIConnectionError,
    APITimeoutError,
    CoursepathError,
    RetryPolicy,
    UncertainOutcomeError,
)
from coursepath_async._transport import Transport

URL_ = BASE_URL + "/api/v1/members/1"
HEADERS = {"Accept": "application/json"}


def _cert_error() -> aiohttp.ClientConnectorCertificateError:
    return aiohttp.ClientConnectorCertificateError(
        connection_key(BASE_URL), ssl.SSLCertVerificationError("self-signed certificate")
    )


# (id, exception raised by aiohttp, expected SDK error type, expected ``sent``, message part)
FAILURES: list[tuple[str, BaseException, type[APIConnectionError], bool, str]] = [
    (
        "refused",
        refused(BASE_URL),
        APIConnectionError,
        False,
        "cannot connect to acme.example.com:443: Connection refused",
    ),
    ("certificate", _cert_error(), APIConnectionError, False, "TLS certificate"),
    ("disconnected", aiohttp.ServerDisconnectedError(), APIConnectionError, True, "mid-request"),
    ("payload", aiohttp.ClientPayloadError("truncated"), APIConnectionError, True, "mid-request"),
    ("reset", aiohttp.ClientOSError(104, "reset by peer"), APIConnectionError, True, "mid-request"),
    ("oserror", ConnectionResetError(104, "reset"), APIConnectionError, True, "mid-request"),
    ("generic", aiohttp.ClientConnectionError("boom"), APIConnectionError, True, "mid-request"),
    ("timeout", TimeoutError(), APITimeoutError, True, "no complete answer within 5s"),
]


@pytest.fixture
def mock() -> Any:
    with aioresponses() as m:
        yield m


@pytest.fixture
async def transport() -> AsyncIterator[Transport]:
    t = Transport(limit=4, timeout=5.0)
    try:
        yield t
    finally:
        await t.aclose()


async def test_success_returns_status_headers_and_body(mock: Any, transport: Transport) -> None:
    """A response comes back whole: status, case-insensitive headers and the body bytes."""
    mock.get(URL_, body=b'{"id": 1}', headers={"X-Request-Id": "r-1"}, response_class=Response)
    response = await transport.request("GET", URL_, headers=HEADERS, data=None)
    assert response.status == 200
    assert response.headers["x-request-id"] == "r-1"
    assert response.body == b'{"id": 1}'


async def test_error_status_is_a_response_not_an_exception(mock: Any, transport: Transport) -> None:
    """4xx/5xx are answers to judge later, not transport errors."""
    mock.get(URL_, status=503, body=b"<html>", response_class=Response)
    response = await transport.request("GET", URL_, headers=HEADERS, data=None)
    assert (response.status, response.body) == (503, b"<html>")


async def test_session_opens_lazily_and_closes(mock: Any) -> None:
    """No session exists before the first request; ``aclose`` closes it, twice safely."""
    mock.get(URL_, payload={}, response_class=Response)
    transport = Transport(limit=2, timeout=1.0)
    assert not transport.opened
    await transport.request("GET", URL_, headers=HEADERS, data=None)
    assert transport.opened
    await transport.aclose()
    await transport.aclose()
    assert not transport.opened


@pytest.mark.parametrize(
    ("raised", "expected", "sent", "message"),
    [pytest.param(*row[1:], id=row[0]) for row in FAILURES],
)
async def test_aiohttp_errors_are_translated(
    mock: Any,
    transport: Transport,
    raised: BaseException,
    expected: type[APIConnectionError],
    sent: bool,
    message: str,
) -> None:
    """Every aiohttp/OS failure becomes an SDK error saying whether the request went out."""
    mock.get(URL_, exception=raised)
    with pytest.raises(CoursepathError) as info:
        await transport.request("GET", URL_, headers=HEADERS, data=None)
    err = info.value
    assert type(err) is expected
    assert isinstance(err, APIConnectionError)
    assert err.sent is sent
    assert message in str(err)
    assert (err.method, err.url) == ("GET", URL_)
    assert err.__cause__ is None
    assert err.__context__ is None  # aiohttp's error may hold the request's headers


@pytest.mark.parametrize(
    ("raised", "expected"),
    [pytest.param(row[1], row[2], id=row[0]) for row in FAILURES],
)
async def test_no_aiohttp_exception_reaches_the_caller(
    mock: Any, raised: BaseException, expected: type[APIConnectionError]
) -> None:
    """Through the client, after all retries, callers only ever see SDK errors."""
    mock.get(URL_, exception=raised, repeat=True)
    mock.post(BASE_URL + "/api/v1/members/1/invite", exception=raised, repeat=True)
    policy = RetryPolicy(max_attempts=2, base_delay=0, max_delay=0)
    async with offline_client(retry=policy) as client:
        with pytest.raises(CoursepathError) as info:
            await client.members.get(1)
        assert type(info.value) is expected
        with pytest.raises(CoursepathError) as info:
            await client.members.invite(1)
        assert not isinstance(info.value, aiohttp.ClientError | OSError | asyncio.TimeoutError)
        if isinstance(info.value, UncertainOutcomeError):
            assert isinstance(info.value.__cause__, CoursepathError)


async def test_aiohttp_never_resends_with_the_same_token(mock: Any, transport: Transport) -> None:
    """The hidden aiohttp resend on a dropped pooled connection is off (it replays the token)."""
    mock.get(URL_, payload={}, response_class=Response)
    await transport.request("GET", URL_, headers=HEADERS, data=None)
    session = transport._session
    assert session is not None
    assert session._retry_connection is False


async def test_slow_answer_times_out(mock: Any) -> None:
    """An attempt that takes longer than ``timeout`` raises APITimeoutError."""

    async def slow(url: URL, **kwargs: Any) -> None:
        await asyncio.Event().wait()

    mock.get(URL_, callback=slow)
    transport = Transport(limit=1, timeout=0.02)
    try:
        with pytest.raises(APITimeoutError, match=r"no complete answer within 0\.02s"):
            await transport.request("GET", URL_, headers=HEADERS, data=None)
    finally:
        await transport.aclose()


async def test_redirects_are_not_followed(mock: Any, transport: Transport) -> None:
    """A redirect is returned as is (a token must never be sent to another host)."""
    mock.get(
        URL_,
        status=302,
        headers={"Location": "https://elsewhere.example.com/"},
        response_class=Response,
    )
    mock.get("https://elsewhere.example.com/", payload={}, response_class=Response)
    response = await transport.request("GET", URL_, headers=HEADERS, data=None)
    assert response.status == 302
    assert list(mock.requests) == [("GET", URL(URL_))]


@pytest.mark.parametrize(
    "url",
    [
        "https://acme.coursepath.test/api/v1/members/5",
        "https://acme.coursepath.test:8443/api/v1/groups/Sales%20EU/members",
        "http://127.0.0.1:8080/api/v1/members/me",
        "http://[::1]:8080/api/v1/courses/3",
        "https://acme.coursepath.test/api/v1/members?limit=500&offset=1000",
        "https://acme.coursepath.test/api/v1/members/%C3%A9?email=a%2Bb%40x.org",
        "https://acme.coursepath.test",
    ],
)
def test_target_url_is_the_url_yarl_parses(url: str) -> None:
    """A path put on a cached origin is the URL parsing the whole string gives."""
    transport = Transport(limit=1, timeout=5.0)
    for _ in range(2):  # the origin parsed, then reused
        target = transport._target(url)
        assert target == URL(url, encoded=True)
        assert str(target) == url
        assert target.host_port_subcomponent == URL(url, encoded=True).host_port_subcomponent

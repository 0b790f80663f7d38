"""The one module that talks to aiohttp: one attempt in, a RawResponse or a typed error out."""

from __future__ import annotations

import ssl as ssl_module
from collections.abc import Mapping
from typing import Final

import aiohttp
from yarl import URL

from ._exceptions import (
    APIConnectionError,
    APIResponseValidationError,
    APITimeoutError,
    ClientStateError,
)
from ._proxy import Proxy
from ._sansio import RawResponse
from ._timeouts import AttemptTimeouts, Watch

SSLParam = ssl_module.SSLContext | bool

#: No Coursepath answer comes near this (a 500-member page is about 250 KB); a bigger
#: one is a broken proxy or server, refused before it exhausts memory.
MAX_RESPONSE_BYTES = 64 * 1024 * 1024
#: Origins whose parsed URL is kept (a client has one API root; its doctor, a few more).
_MAX_ORIGINS = 8
#: Sent on every request, the doctor's probes included.
USER_AGENT: Final = "coursepath-async/0.1"
#: What every request says of itself: set once on a session of our own (aiohttp merges a
#: session's headers into each request in C), sent with each request on a caller's.
CONSTANT_HEADERS: Final = {"Accept": "application/json", "User-Agent": USER_AGENT}


class Transport:
    """A pooled aiohttp session sized to the scheduler's budget, opened on first use.

    Or the caller's own ``session``, which is never closed here. Either way what the SDK
    relies on is set on every request, not left to the session: no redirects followed,
    no ``raise_for_status``, the proxy, and a connect timeout (the attempt as a whole is
    bounded by our own timer). aiohttp's silent resend is switched off on the session.
    """

    __slots__ = (
        "_call_headers",
        "_closed",
        "_limit",
        "_origins",
        "_own",
        "_proxy",
        "_proxy_headers",
        "_session",
        "_ssl",
        "_timeout",
        "_timeouts",
    )

    def __init__(
        self,
        *,
        limit: int,
        timeout: float,
        ssl: SSLParam = True,
        proxy: Proxy | None = None,
        session: aiohttp.ClientSession | None = None,
    ) -> None:
        self._limit = limit
        self._proxy = None if proxy is None else proxy.url
        self._proxy_headers = None if proxy is None else proxy.headers
        self._timeouts = AttemptTimeouts(timeout)
        # Only sock_connect here: total/connect would count time queued for a connection,
        # and sock_read would re-arm a timer on every chunk received, on the hot path. The
        # attempt as a whole is bounded by our own (coarse, cheap) timeouts in `request`.
        self._timeout = aiohttp.ClientTimeout(total=None, sock_connect=timeout)
        self._ssl = ssl
        self._own = session is None
        #: The headers each call must send itself: :data:`CONSTANT_HEADERS` on a
        #: caller's session (whose own defaults they override), none on ours.
        self._call_headers: dict[str, str] = {} if self._own else dict(CONSTANT_HEADERS)
        self._session: aiohttp.ClientSession | None = None
        if session is not None:
            self._session = _without_resend(session)
        self._closed = False
        #: Parsed ``scheme://host:port`` prefixes, which each request's URL is built on.
        self._origins: dict[str, URL] = {}

    def call_headers(self, content_type: str | None = None) -> dict[str, str]:
        """A fresh dict of the headers one call sends (its attempts add their token)."""
        headers = self._call_headers.copy()
        if content_type is not None:
            headers["Content-Type"] = content_type
        return headers

    @property
    def opened(self) -> bool:
        """Whether a session of our own (and its sockets) exists and needs closing."""
        return self._own and self._session is not None and not self._session.closed

    def _open(self) -> aiohttp.ClientSession:
        if self._closed:
            raise ClientStateError("the Coursepath client is closed")
        # The scheduler is the real bound; the pool matches it so no attempt ever waits
        # for a connection (aiohttp's default of 100 would throttle bigger budgets).
        connector = aiohttp.TCPConnector(limit=self._limit, limit_per_host=0, ssl=self._ssl)
        session = aiohttp.ClientSession(
            connector=connector,
            timeout=self._timeout,
            raise_for_status=False,
            headers=CONSTANT_HEADERS,
        )
        self._session = _without_resend(session)
        return session

    async def request(
        self,
        method: str,
        url: str,
        *,
        headers: Mapping[str, str],
        data: bytes | None,
        max_body: int | None = None,
    ) -> RawResponse:
        """Send one attempt and read the whole body (so the connection returns to the pool).

        A body over ``max_body`` bytes (never more than ``MAX_RESPONSE_BYTES``) is refused.
        """
        session = self._session if self._session is not None else self._open()
        limit = MAX_RESPONSE_BYTES if max_body is None else min(max_body, MAX_RESPONSE_BYTES)
        watch = self._timeouts.start()
        try:
            async with session.request(
                method,
                self._target(url),
                headers=headers,
                data=data,
                allow_redirects=False,
                raise_for_status=False,
                timeout=self._timeout,
                ssl=self._ssl,  # True defers to the connector's (a session of yours: its own)
                proxy=self._proxy,
                proxy_headers=self._proxy_headers,
            ) as response:
                status, response_headers = response.status, response.headers
                if status < 200:
                    raise _informational(response, method, url)
                # Content-Length counts compressed bytes: an encoded body is counted as
                # it inflates.
                length = response.content_length
                if (
                    length is not None
                    and length <= limit
                    and "Content-Encoding" not in response_headers
                ):
                    body = await response.read()  # the common case: one read, no chunk loop
                else:
                    body = await _read_capped(response, method, url, limit)
        except BaseException as exc:
            error = self._typed_error(exc, watch, method, url)
            if error is None:
                raise
        else:
            self._timeouts.stop(watch, None)
            return RawResponse(status, response_headers, body)
        # Raised here, after the except block: inside it, the aiohttp error would stay
        # reachable as __context__, and its request_info holds the Authorization header.
        raise error

    def _target(self, url: str) -> URL:
        """``url`` as yarl's URL: a path put on a parsed origin, when it has no query.

        Parsing each whole URL, then deriving the host, port and netloc that aiohttp reads
        from it, costs about 2 µs a request more than a path on an origin that has them.
        """
        slash = url.find("/", url.find("//") + 2)
        if slash < 0 or "?" in url or "#" in url:
            return URL(url, encoded=True)
        prefix = url[:slash]
        origin = self._origins.get(prefix)
        if origin is None:
            if len(self._origins) >= _MAX_ORIGINS:  # one client talks to one academy
                self._origins.clear()
            origin = self._origins[prefix] = URL(prefix, encoded=True)
        return origin.with_path(url[slash:], encoded=True)

    def _typed_error(
        self, exc: BaseException, watch: Watch, method: str, url: str
    ) -> APIConnectionError | None:
        """Our error for an attempt that ended in ``exc``; None to let ``exc`` through."""
        if self._timeouts.stop(watch, exc) or isinstance(exc, TimeoutError):
            # aiohttp raises this only while connecting: nothing of the request was sent.
            connecting = isinstance(exc, aiohttp.ConnectionTimeoutError)
            what = "could not connect" if connecting else "no complete answer"
            return APITimeoutError(
                f"{what} within {self._timeouts.timeout:g}s",
                method=method,
                url=url,
                sent=not connecting,
            )
        return _connection_error(exc, method, url)

    async def aclose(self) -> None:
        """Close the pool for good (a session of the caller's is left open); safe twice."""
        self._closed = True
        self._timeouts.close()
        if self._session is not None:
            session, self._session = self._session, None
            if self._own:
                await session.close()


def _without_resend(session: aiohttp.ClientSession) -> aiohttp.ClientSession:
    """Switch off aiohttp's silent resend of an idempotent request on a dropped connection.

    It would resend the same headers: the same single-use token, which Coursepath
    rejects as a replay. Retries are ours to make, each with a fresh token. There is no
    public switch; this is the one aiohttp's own test client uses.
    """
    if hasattr(session, "_retry_connection"):
        session._retry_connection = False
    return session


def _connection_error(exc: BaseException, method: str, url: str) -> APIConnectionError | None:
    """The typed error for an aiohttp or socket failure; None for anything else."""
    if isinstance(exc, aiohttp.ClientConnectorCertificateError):
        return APIConnectionError(
            f"TLS certificate of {exc.host} could not be verified "
            "(pass ssl= an SSLContext that trusts your private CA)",
            method=method,
            url=url,
            sent=False,
        )
    if isinstance(exc, aiohttp.ClientConnectorError):
        return APIConnectionError(
            f"cannot connect to {exc.host}:{exc.port}: {exc.os_error.strerror or exc}",
            method=method,
            url=url,
            sent=False,
        )
    if isinstance(exc, (aiohttp.ClientError, OSError)):
        return APIConnectionError(
            f"connection failed mid-request: {type(exc).__name__}", method=method, url=url
        )
    return None


def _informational(response: aiohttp.ClientResponse, method: str, url: str) -> APIConnectionError:
    """A 1xx as the final answer (aiohttp skips the others, but not 101): no HTTP answer.

    Nothing was asked to switch protocols, so the exchange ended without an answer to the
    request, which was sent and may have been acted on: a connection failure with
    ``sent=True``, so reads are retried and an invitation becomes an uncertain outcome.
    """
    response.close()  # the connection was handed to another protocol: never reuse it
    return APIConnectionError(
        f"the server answered {response.status} (informational), not a final answer",
        method=method,
        url=url,
    )


async def _read_capped(
    response: aiohttp.ClientResponse, method: str, url: str, limit: int
) -> bytes:
    """The whole body of unknown or encoded length, refusing one over ``limit`` bytes.

    Counted as it arrives, and refused before it is buffered whole.
    """
    length = response.content_length
    encoded = "Content-Encoding" in response.headers
    chunks: list[bytes] = []
    size = 0
    if length is None or encoded:
        async for chunk in response.content.iter_chunked(1 << 16):
            size += len(chunk)
            if size > limit:
                break
            chunks.append(chunk)
        else:
            return b"".join(chunks)
    response.close()  # drop the connection rather than drain the rest
    announced = f" (Content-Length {length:,})" if length is not None and not encoded else ""
    raise APIResponseValidationError(
        f"answer larger than {limit:,} bytes refused{announced}",
        method=method,
        url=url,
        body=b"",
    )

"""The exceptions raised by coursepath_async; no aiohttp exception reaches the caller.

Hierarchy::

    CoursepathError
    ├── InvalidInputError             an argument is invalid (also a ValueError); names it
    │   └── ConfigurationError        bad setup: missing key, plain http, bad URL
    ├── ClientStateError              the client is closed, or used from another event loop
    ├── UncertainOutcomeError         a non-retryable write may or may not have happened
    ├── APIResponseValidationError    a 2xx answer whose body is not what the API promises
    ├── APIConnectionError            the request did not get an HTTP answer
    │   └── APITimeoutError           ... because an attempt or the call's deadline ran out
    └── APIStatusError                the server answered with a 4xx/5xx status
        ├── BadRequestError           400
        ├── AuthenticationError       401
        ├── PermissionDeniedError     403
        ├── NotFoundError             404
        ├── ConflictError             409
        ├── UnprocessableEntityError  422
        ├── RateLimitError            429
        └── ServerError               >= 500

Messages carry the method and path, never a token or the API key. A server or proxy
may echo the request back, so whatever an answer says (its body, a header, the message
built from them) is redacted by the client before it gets here: JWT-shaped text,
``Bearer``/``Authorization`` values and the client's API key become ``[redacted]``, and
a text in which an encoded credential remains is withheld whole. ``body`` holds the
answer's bytes redacted so; the raw bytes are not kept anywhere.
"""

from __future__ import annotations

_BODY_EXCERPT = 500


class CoursepathError(Exception):
    """Root of every error this SDK raises."""


class InvalidInputError(CoursepathError, ValueError):
    """An argument to a public function or constructor is invalid; the message names it.

    Also a ``ValueError``, so code written against plain ``ValueError`` still catches it.
    ``argument`` is the parameter's name (e.g. ``"max_concurrency"``) when there is one.
    """

    def __init__(self, message: str, *, argument: str | None = None) -> None:
        super().__init__(message)
        self.argument = argument


class ConfigurationError(InvalidInputError):
    """The client was set up wrongly (missing key or user, plain http, malformed URL)."""


class ClientStateError(CoursepathError, RuntimeError):
    """The client cannot serve this call: it is closed, or bound to another event loop.

    A client belongs to the event loop of its first call (its connection pool lives
    there); a second ``asyncio.run`` needs a client of its own.
    """


class UncertainOutcomeError(CoursepathError):
    """A write that must not be repeated failed after it may have reached the server.

    Raised for invitations: the email may or may not have been sent, so the SDK does
    not retry. The original failure is chained as ``__cause__``.
    """

    def __init__(self, message: str, *, method: str, url: str) -> None:
        super().__init__(message)
        self.method = method
        self.url = url


class APIResponseValidationError(CoursepathError):
    """A successful answer whose body could not be decoded into the expected shape.

    ``body`` is the answer's bytes with credentials redacted (see the module docstring).
    """

    def __init__(self, message: str, *, method: str, url: str, body: bytes) -> None:
        super().__init__(f"{message} ({method} {url})")
        self.method = method
        self.url = url
        self.body = body


class APIConnectionError(CoursepathError):
    """No HTTP answer arrived: connection refused or reset, TLS failure, truncated body, a 1xx."""

    def __init__(self, message: str, *, method: str, url: str, sent: bool = True) -> None:
        super().__init__(f"{message} ({method} {url})")
        self.method = method
        self.url = url
        #: False only when the request certainly never reached the server.
        self.sent = sent


class APITimeoutError(APIConnectionError):
    """An attempt or the whole call ran past its time limit."""


class APIStatusError(CoursepathError):
    """The server answered with an error status.

    ``body`` holds the answer's bytes and ``request_id`` the id the server gave it
    (``X-Request-Id``, ``X-Correlation-Id`` or ``Request-Id``: quote it to support),
    both with credentials redacted (see the module docstring): safe to log, print or report.
    """

    def __init__(
        self,
        message: str,
        *,
        status_code: int,
        method: str,
        url: str,
        body: bytes,
        request_id: str | None = None,
        retry_after: float | None = None,
        after_unknown_outcome: bool = False,
    ) -> None:
        super().__init__(f"{status_code} {message} ({method} {url})")
        self.status_code = status_code
        self.method = method
        self.url = url
        self.body = body
        self.request_id = request_id
        #: The server's requested wait in seconds (``Retry-After``), when it sent one.
        self.retry_after = retry_after
        #: True when an earlier attempt of the same call may have been applied,
        #: e.g. a create answering 409 after a retried 502 (the first one worked).
        self.after_unknown_outcome = after_unknown_outcome


class BadRequestError(APIStatusError):
    """400: the request was malformed or missed a parameter."""


class AuthenticationError(APIStatusError):
    """401: the token was refused (wrong key, unknown member, stale or replayed token)."""


class PermissionDeniedError(APIStatusError):
    """403: the acting member may not do this."""


class NotFoundError(APIStatusError):
    """404: no such object (or, for group removal, not a member of that group)."""


class ConflictError(APIStatusError):
    """409: the object already exists, e.g. a member with that email."""


class UnprocessableEntityError(APIStatusError):
    """422: the request was understood but refused, e.g. an email already in use."""


class RateLimitError(APIStatusError):
    """429: too many requests; ``retry_after`` is the server's wait in seconds, if given."""


class ServerError(APIStatusError):
    """5xx: the server (or a proxy in front of it) failed."""


_STATUS_ERRORS: dict[int, type[APIStatusError]] = {
    400: BadRequestError,
    401: AuthenticationError,
    403: PermissionDeniedError,
    404: NotFoundError,
    409: ConflictError,
    422: UnprocessableEntityError,
    429: RateLimitError,
}


def status_error_class(status: int) -> type[APIStatusError]:
    """Return the exception class for an error status code."""
    if status >= 500:
        return ServerError
    return _STATUS_ERRORS.get(status, APIStatusError)


def body_excerpt(body: bytes) -> str:
    """A short, printable excerpt of an error body for messages."""
    text = body[:_BODY_EXCERPT].decode("utf-8", "replace").strip()
    return text + ("…" if len(body) > _BODY_EXCERPT else "")

"""The pure layer: describe a request, encode its body, decode and judge the answer.

Nothing here does I/O, so every rule is tested synchronously on recorded samples.
What an answer says goes into an error only through a :class:`Redactor`: the client's
own, which knows its API key, or by default the one that blanks tokens alone.
"""

from __future__ import annotations

import enum
import math
from collections.abc import Mapping
from decimal import Decimal
from typing import Any, Final, NamedTuple
from urllib.parse import urlencode

import orjson
from multidict import CIMultiDict, CIMultiDictProxy

from ._config import WireFormat
from ._exceptions import (
    APIResponseValidationError,
    APIStatusError,
    InvalidInputError,
    body_excerpt,
    status_error_class,
)
from ._redact import REDACT, Redactor

#: Keys under which a list endpoint might wrap its array instead of answering a bare one
#: (the doctor reads a page the same way).
LIST_KEYS: Final = ("data", "items", "results", "members", "courses", "groups", "records")


class RequestKind(enum.Enum):
    """How safe it is to repeat a request whose outcome is unknown."""

    READ = "read"  # GET: always safe
    IDEMPOTENT = "idempotent"  # updates, enrolments, group changes: same end state
    CREATE = "create"  # member creation: a repeat answers "exists", resolved by lookup
    AT_MOST_ONCE = "at_most_once"  # invitations: a repeat sends a second email


# ApiRequest and RawResponse are made once per call and per attempt: as named tuples
# they are as immutable as attrs' frozen classes, for half the cost of building one.


class ApiRequest(NamedTuple):
    """One logical API call; each attempt signs and sends it afresh."""

    method: str
    path: str
    params: tuple[tuple[str, str], ...] = ()
    body: Mapping[str, Any] | None = None
    kind: RequestKind = RequestKind.READ
    #: The largest answer body accepted, in bytes; None: the transport's own cap.
    max_body: int | None = None

    def target(self) -> str:
        """The path plus query string, relative to the API root."""
        return f"{self.path}?{urlencode(self.params)}" if self.params else self.path


class RawResponse(NamedTuple):
    """What one attempt got back: status, headers and the complete body."""

    status: int
    headers: CIMultiDictProxy[str] | Mapping[str, str]
    body: bytes

    def __repr__(self) -> str:
        # Not the headers nor the body: a server may echo a token or the key in them.
        return f"RawResponse(status={self.status})"


def _form_text(name: str, value: object) -> str:
    """One form value as the text JSON would carry; refuse what a form cannot say."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return str.__str__(value)  # the text itself, even for a (str, Enum) member
    if isinstance(value, int):
        return int.__repr__(value)  # the digits, even for an IntEnum member
    if isinstance(value, float):
        if not math.isfinite(value):
            raise InvalidInputError(
                f"form field {name!r} is {value!r}, which a form cannot carry", argument=name
            )
        # Positional notation with the shortest round-tripping digits: 1e16 is sent
        # as 10000000000000000, not as the text "1e+16".
        return format(Decimal(repr(value)), "f")
    what = "None" if value is None else f"a {type(value).__name__}"
    raise InvalidInputError(
        f"form field {name!r} is {what}, which form encoding cannot represent faithfully "
        "(only strings, numbers, bools and nested mappings); use body_format='json'",
        argument=name,
    )


def _flatten_form(body: Mapping[str, Any], prefix: str = "") -> list[tuple[str, str]]:
    pairs: list[tuple[str, str]] = []
    for key, value in body.items():
        name = f"{prefix}[{key}]" if prefix else str(key)
        if isinstance(value, Mapping):
            pairs.extend(_flatten_form(value, name))
        else:
            pairs.append((name, _form_text(name, value)))
    return pairs


def encode_body(body: Mapping[str, Any], body_format: WireFormat) -> tuple[bytes, str]:
    """Serialise a request body as JSON (the default) or as a form with ``mail[subject]`` keys.

    A form carries only text: a value it cannot represent as JSON would (a list, None,
    NaN, any other object) raises ValueError naming the field, before anything is sent.
    """
    if body_format == "form":
        return urlencode(_flatten_form(body)).encode(), "application/x-www-form-urlencoded"
    return orjson.dumps(body), "application/json"


def decode_json(
    request: ApiRequest, url: str, response: RawResponse, *, redact: Redactor = REDACT
) -> Any:
    """Parse a successful answer's JSON body; an empty body is ``None``."""
    body = response.body
    if not body or body.isspace():  # not body.strip(): no copy of every answer
        return None
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError:
        pass
    # Raised out here: the decode error quotes the body, and would stay as __context__.
    body = redact.body(response.body)
    raise APIResponseValidationError(
        f"expected JSON, got {redact(body_excerpt(body))!r}",
        method=request.method,
        url=url,
        body=body,
    )


def unwrap_list(
    request: ApiRequest, url: str, data: Any, body: bytes, *, redact: Redactor = REDACT
) -> list[Any]:
    """A list endpoint's records: a bare array, or an array wrapped in an object.

    Only an array says how many records a page holds: a 204, an empty body or ``null``
    is refused, never taken for an empty page that would end a listing silently.
    """
    if isinstance(data, list):
        return data
    if data is None:
        raise APIResponseValidationError(
            "expected a JSON array of records, got no records at all (a 204, an empty "
            "body or null); an empty page is []",
            method=request.method,
            url=url,
            body=redact.body(body),
        )
    if isinstance(data, dict):
        for key in LIST_KEYS:
            if isinstance(data.get(key), list):
                return data[key]  # type: ignore[no-any-return]
    raise APIResponseValidationError(
        f"expected a JSON array of records, got {type(data).__name__}",
        method=request.method,
        url=url,
        body=redact.body(body),
    )


def list_total(data: Any) -> int | None:
    """The listing's total a wrapped answer announces (``{"data": [...], "total": N}``).

    Only a non-negative JSON integer counts; anything else is no total at all, since a
    total only bounds how far a listing may go and is never handed out as data.
    """
    total = data.get("total") if isinstance(data, dict) else None
    if type(total) is int and total >= 0:
        return total
    return None


def error_message(body: bytes, redact: Redactor = REDACT) -> str:
    """The human part of an error body (JSON ``message``/``error``, else an excerpt), redacted."""
    return redact(_error_text(body))


def _error_text(body: bytes) -> str:
    """The human part of an error body, as the server wrote it."""
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError:
        data = None
    if isinstance(data, dict):
        parts = [str(data[k]) for k in ("error", "message") if isinstance(data.get(k), str)]
        if parts:
            return ": ".join(dict.fromkeys(parts))
    excerpt = body_excerpt(body)
    if excerpt.lstrip().startswith("<"):
        return "the server (or a proxy) answered with an HTML page"
    return excerpt or "no error details"


#: Answer headers naming the server's request id, the first one present wins.
REQUEST_ID_HEADERS: Final = ("X-Request-Id", "X-Correlation-Id", "Request-Id")


def request_id(
    headers: CIMultiDictProxy[str] | Mapping[str, str], redact: Redactor = REDACT
) -> str | None:
    """The id the server gave this answer, for users to quote to support; redacted.

    Servers and proxies use different names (see :data:`REQUEST_ID_HEADERS`); the
    value is the server's text, so credentials it may echo are scrubbed.
    """
    found = headers if isinstance(headers, CIMultiDictProxy) else CIMultiDict(headers)
    for name in REQUEST_ID_HEADERS:
        value = found.get(name)
        if value:
            return redact(value)
    return None


def status_error(
    request: ApiRequest,
    url: str,
    response: RawResponse,
    *,
    retry_after: float | None,
    after_unknown_outcome: bool,
    redact: Redactor = REDACT,
) -> APIStatusError:
    """The typed exception for an error status; what the server said is redacted."""
    cls = status_error_class(response.status)
    body = redact.body(response.body)
    return cls(
        error_message(body, redact),
        status_code=response.status,
        method=request.method,
        url=url,
        body=body,
        request_id=request_id(response.headers, redact),
        retry_after=retry_after,
        after_unknown_outcome=after_unknown_outcome,
    )

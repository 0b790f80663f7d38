"""Wire formats of the sandbox: replies, error bodies, request bodies and query params.

Pure functions over bytes and mappings, so the handlers stay free of aiohttp and the
parsing rules are in one place: JSON object bodies and urlencoded forms (with
``mail[subject]``-style keys) are both accepted and end up as the same nested dict.
"""

from __future__ import annotations

import base64
import html
import re
from collections.abc import Mapping
from http import HTTPStatus
from typing import Final, Literal
from urllib.parse import parse_qsl, quote, quote_plus

import attrs
import orjson
from attrs import field, frozen

from ._records import MEMBER_OPTIONAL_FIELDS

JSON_TYPE: Final = "application/json"
HTML_TYPE: Final = "text/html"
TEXT_TYPE: Final = "text/plain"

_INT = re.compile(r"[0-9]+")
# Deliberately loose, like most web apps: something@something.tld, no spaces.
_EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")


@frozen
class Reply:
    """A complete response: status, body bytes, content type and extra headers."""

    status: int
    body: bytes = b""
    content_type: str | None = JSON_TYPE
    headers: Mapping[str, str] = field(factory=dict)
    #: The status line's reason phrase; None for the standard one.
    reason: str | None = None


class ApiError(Exception):
    """An error answered as ``{"error": code, "message": message}`` with ``status``."""

    def __init__(
        self, status: int, error: str, message: str, headers: Mapping[str, str] | None = None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.error = error
        self.message = message
        self.headers = dict(headers or {})

    def reply(self) -> Reply:
        """Return this error as a JSON reply."""
        return error_reply(self.status, self.error, self.message, self.headers)


def json_reply(status: int, data: object) -> Reply:
    """Return ``data`` encoded with orjson."""
    return Reply(status, orjson.dumps(data))


def array_reply(items: list[bytes], *, total: int | None = None) -> Reply:
    """Return a 200 JSON array from already-encoded items (no re-encoding).

    With a ``total``, the array is wrapped as ``{"data": [...], "total": N}``.
    """
    array = b"[" + b",".join(items) + b"]"
    if total is None:
        return Reply(200, array)
    return Reply(200, b'{"data":' + array + b',"total":' + str(total).encode() + b"}")


def text_error(reply: Reply) -> Reply:
    """A JSON error reply as a ``text/plain`` one (``error: message``), as some servers answer."""
    if reply.content_type != JSON_TYPE or reply.status < 400:
        return reply
    try:
        data = orjson.loads(reply.body)
    except orjson.JSONDecodeError:
        return reply
    if not isinstance(data, dict):
        return reply
    line = ": ".join(str(data[key]) for key in ("error", "message") if key in data)
    return attrs.evolve(reply, body=line.encode(), content_type=TEXT_TYPE)


def error_reply(
    status: int, error: str, message: str, headers: Mapping[str, str] | None = None
) -> Reply:
    """Return a JSON error body as the app itself would send it."""
    body = orjson.dumps({"error": error, "message": message})
    return Reply(status, body, JSON_TYPE, dict(headers or {}))


def proxy_error_reply(status: int, headers: Mapping[str, str] | None = None) -> Reply:
    """Return the HTML page a reverse proxy sends for a 5xx (not JSON: clients must cope)."""
    try:
        phrase = HTTPStatus(status).phrase
    except ValueError:
        phrase = "Error"
    body = f"<html><body><h1>{status} {phrase}</h1></body></html>".encode()
    return Reply(status, body, HTML_TYPE, dict(headers or {}))


#: Where a wrapped token is cut, as a proxy's log formatter might.
_WRAP = 40


def echo_reply(
    status: int,
    layout: Literal["json", "text", "html"],
    *,
    authorization: str | None,
    api_key: str,
) -> Reply:
    """An answer that echoes the request's credentials, in every encoding a server might use.

    The ``Authorization`` header goes into the body (as sent, URL- and form-encoded,
    JSON-escaped, with escaped dots, wrapped across lines), into ``X-Request-Id`` and
    into the reason phrase; the academy's API key into the body (as is, URL-encoded,
    base64).
    """
    header = authorization or ""
    token = header.partition(" ")[2]
    echoed = {
        "authorization": header,
        "token": token,
        "url_encoded": quote(header, safe=""),
        "form_encoded": quote_plus(header),
        "json_escaped": orjson.dumps({"Authorization": header}).decode(),
        "dots_escaped": token.replace(".", "%2E"),
        "wrapped": "\n".join(token[i : i + _WRAP] for i in range(0, len(token), _WRAP)),
        "api_key": api_key,
        "api_key_url_encoded": quote(api_key, safe=""),
        "api_key_base64": base64.b64encode(api_key.encode()).decode(),
    }
    message = f"upstream refused Authorization: {header} (api key {api_key})"
    text = "\n".join([message, *(f"{name}: {value}" for name, value in echoed.items())])
    headers = {"X-Request-Id": header, "X-Echo-Authorization": header}
    reason = f"Refused {header}".strip()
    if layout == "json":
        body = orjson.dumps({"error": "echo", "message": message, "request": echoed})
        return Reply(status, body, JSON_TYPE, headers, reason)
    if layout == "text":
        return Reply(status, text.encode(), TEXT_TYPE, headers, reason)
    page = f"<html><body><h1>{status}</h1><pre>{html.escape(text)}</pre></body></html>"
    return Reply(status, page.encode(), HTML_TYPE, headers, reason)


#: The body encodings a server takes: both, form only or JSON only.
Encodings = Literal["any", "form", "json"]
_FORM_TYPE: Final = "application/x-www-form-urlencoded"


def parse_body(content_type: str, raw: bytes, accepts: Encodings = "any") -> dict[str, object]:
    """Parse a request body into a dict; raise :class:`ApiError` 400/415 when it is wrong.

    An empty body is an empty dict whatever its type.  Bracketed keys are nested one
    level: ``mail[subject]=Hi`` and ``{"mail[subject]": "Hi"}`` both become
    ``{"mail": {"subject": "Hi"}}``. A body in an encoding ``accepts`` excludes is a 415.
    """
    if not raw.strip():
        return {}
    mime = content_type.split(";", 1)[0].strip().lower()
    data: dict[str, object]
    json = mime == JSON_TYPE or mime.endswith("+json")
    if (accepts == "form" and json) or (accepts == "json" and mime == _FORM_TYPE):
        wanted = _FORM_TYPE if accepts == "form" else JSON_TYPE
        raise ApiError(415, "unsupported_media_type", f"send {wanted}")
    if json:
        try:
            loaded = orjson.loads(raw)
        except orjson.JSONDecodeError:
            raise ApiError(400, "invalid_json", "request body is not valid JSON") from None
        if not isinstance(loaded, dict):
            raise ApiError(400, "invalid_body", "request body must be a JSON object")
        data = loaded
    elif mime == _FORM_TYPE:
        try:
            data = dict(parse_qsl(raw.decode("utf-8"), keep_blank_values=True))
        except UnicodeDecodeError:
            raise ApiError(400, "invalid_body", "form body is not valid UTF-8") from None
    else:
        raise ApiError(
            415,
            "unsupported_media_type",
            "send application/json or application/x-www-form-urlencoded",
        )
    return _nest_brackets(data)


def _nest_brackets(data: dict[str, object]) -> dict[str, object]:
    if not any("[" in key for key in data):
        return data
    nested: dict[str, object] = {}
    for key, value in data.items():
        outer, bracket, rest = key.partition("[")
        if not bracket or not rest.endswith("]") or not outer:
            nested[key] = value
            continue
        inner = nested.setdefault(outer, {})
        if not isinstance(inner, dict):
            raise ApiError(400, "invalid_body", f"{outer!r} is both a value and a group")
        inner[rest[:-1]] = value
    return nested


def parse_page(query: Mapping[str, str], cap: int, *, honour: bool = False) -> tuple[int, int]:
    """Return ``(offset, limit)``: defaults 0 and ``cap``, ``limit`` silently capped.

    With ``honour``, a ``limit`` above the cap is served as asked instead.
    """
    offset = _non_negative(query, "offset", 0)
    limit = _non_negative(query, "limit", cap)
    return offset, limit if honour else min(limit, cap)


def _non_negative(query: Mapping[str, str], name: str, default: int) -> int:
    raw = query.get(name)
    if raw is None:
        return default
    if not _INT.fullmatch(raw.strip()):
        raise ApiError(400, "invalid_parameter", f"{name} must be a non-negative integer")
    return int(raw)


#: Member-list filters: query parameter → record attribute.
MEMBER_FILTERS: Final[Mapping[str, str]] = {"email": "email", **dict(MEMBER_OPTIONAL_FIELDS)}


def member_filters(query: Mapping[str, str]) -> dict[str, str]:
    """Return the member-list filters present in the query (unknown params ignored)."""
    return {attr: query[param] for param, attr in MEMBER_FILTERS.items() if param in query}


def optional_text(body: Mapping[str, object], name: str) -> str | None:
    """Return a text parameter; numbers are accepted as text, other types are a 422."""
    value = body.get(name)
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    raise ApiError(422, "invalid_parameter", f"{name} must be a string")


def required_text(body: Mapping[str, object], name: str) -> str:
    """Return a required, non-blank text parameter, or raise a 400."""
    value = optional_text(body, name)
    if value is None or not value.strip():
        raise ApiError(400, "missing_parameter", f"{name} is required")
    return value.strip()


def checked_email(value: str) -> str:
    """Return the email if it looks like one, else raise a 422."""
    if not _EMAIL.fullmatch(value):
        raise ApiError(422, "invalid_email", f"{value!r} is not a valid email address")
    return value


def member_fields(body: Mapping[str, object], *, creating: bool) -> dict[str, str | None]:
    """Return the member attributes a create/update body sets, validated.

    On create ``email`` is required; on update only the fields present change (an
    empty or null ``name`` falls back to the one derived from the email).
    """
    fields: dict[str, str | None] = {}
    if creating or body.get("email") is not None:
        fields["email"] = checked_email(required_text(body, "email"))
    if "name" in body:
        fields["name"] = optional_text(body, "name") or None
    for param, attr in MEMBER_OPTIONAL_FIELDS:
        if param in body:
            fields[attr] = optional_text(body, param)
    return fields


def mail_overrides(body: Mapping[str, object]) -> dict[str, str | None]:
    """Return the ``mail`` subject/body/action overrides of an invitation (all optional)."""
    mail = body.get("mail")
    if mail is None:
        return {"subject": None, "body": None, "action": None}
    if not isinstance(mail, dict):
        raise ApiError(422, "invalid_parameter", "mail must be an object")
    return {key: optional_text(mail, key) for key in ("subject", "body", "action")}

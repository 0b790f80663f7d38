"""Client configuration: resolved once from arguments and the environment, then frozen."""

from __future__ import annotations

import math
import os
import re
from enum import IntEnum
from typing import Literal, TypeGuard

from attrs import frozen
from yarl import URL

from ._exceptions import ConfigurationError
from ._validation import is_utf8_text, short_repr, validate_email

ENV_URL = "COURSEPATH_URL"
ENV_API_KEY = "COURSEPATH_API_KEY"
ENV_USER = "COURSEPATH_USER"
ENV_MAX_RATE = "COURSEPATH_MAX_RATE"
ENV_BODY_FORMAT = "COURSEPATH_BODY_FORMAT"
ENV_ALLOW_HTTP = "COURSEPATH_ALLOW_HTTP"

#: How request bodies are encoded: "auto" sends JSON until a server answers 415, then form.
BodyFormat = Literal["auto", "json", "form"]
#: The encoding one request body is actually sent in.
WireFormat = Literal["json", "form"]
BODY_FORMATS: tuple[BodyFormat, ...] = ("auto", "json", "form")


class Priority(IntEnum):
    """Scheduler lanes: a lower value is served first when slots are scarce."""

    INTERACTIVE = 0
    NORMAL = 1
    BULK = 2


@frozen(kw_only=True)
class ClientConfig:
    """Everything the client needs except the API key, which lives only in the signer."""

    base_url: URL
    user: str
    max_concurrency: int
    interactive_reserve: int
    timeout: float
    deadline: float | None
    body_format: BodyFormat
    #: The most records one listing may run to before it is refused as endless.
    max_listing_records: int
    #: Requests per second the whole client may send at most; None: only what it learns.
    max_rate: float | None = None

    @property
    def api_root(self) -> URL:
        """The ``/api/v1`` root every endpoint path hangs from."""
        return self.base_url / "api" / "v1"


_QUERY_OR_FRAGMENT = re.compile(r"[?#]")
# A DNS label: letters, digits and inner hyphens, 1 to 63 characters.
_HOST_LABEL = re.compile(r"(?!-)[A-Za-z0-9-]{1,63}(?<!-)")


def _valid_host(host: str | None) -> bool:
    if not host:
        return False
    if ":" in host or host.replace(".", "").isdigit():
        return True  # an IPv6 or IPv4 literal, already parsed by yarl
    return all(_HOST_LABEL.fullmatch(label) for label in host.rstrip(".").split("."))


def is_finite_number(value: object) -> TypeGuard[int | float]:
    """A real int or float (not a bool) that is finite; an int too big for a float is not."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return False
    try:
        return math.isfinite(value)
    except OverflowError:
        return False


def _shown(raw: str) -> str:
    """The URL as we may print it: userinfo masked, query and fragment dropped.

    Everything up to the *last* ``@`` is masked, because a pasted password may itself
    hold ``@``, ``/``, ``?`` or ``#``; masking comes first so that cutting the query
    off cannot leave half a password behind. Over-masking only costs a clearer echo.
    """
    text = raw.strip()
    at = text.rfind("@")
    if at != -1:
        slashes = text.find("//")
        start = slashes + 2 if -1 < slashes < at else 0
        text = f"{text[:start]}***{text[at:]}"
    return repr(_QUERY_OR_FRAGMENT.split(text, maxsplit=1)[0])


def resolve_base_url(value: str | None, *, allow_http: bool) -> URL:
    """Validate the academy URL: an http(s) origin, https unless explicitly allowed."""
    raw = value if value is not None else os.environ.get(ENV_URL)
    what = f"academy URL ({'base_url' if value is not None else ENV_URL})"
    if raw is not None and not isinstance(raw, str):
        raise ConfigurationError(
            f"{what} must be a string, got {type(raw).__name__}", argument="base_url"
        )
    if not raw:
        raise ConfigurationError(
            f"no academy URL: pass base_url or set {ENV_URL} (e.g. https://acme.coursepath.com)",
            argument="base_url",
        )
    try:
        url = URL(raw.strip())
        url.host  # noqa: B018 - decoded lazily: a bad IDNA (xn--) name fails here
        # Check the ASCII (punycode) form: bücher.example and xn--bcher-kva.example
        # are the same host, and only the encoded one is made of DNS-label characters.
        host = url.raw_host
    except (TypeError, ValueError, IndexError, UnicodeError):
        raise ConfigurationError(
            f"{what} {_shown(raw)} is not a valid URL", argument="base_url"
        ) from None
    if url.scheme not in ("http", "https") or not _valid_host(host):
        raise ConfigurationError(
            f"{what} {_shown(raw)} must look like https://acme.coursepath.com",
            argument="base_url",
        )
    if url.user or url.password or url.query_string or url.fragment:
        raise ConfigurationError(
            f"{what} {url.origin()} must not carry credentials, a query or a fragment",
            argument="base_url",
        )
    if url.scheme == "http" and not allow_http:
        raise ConfigurationError(
            f"{what} {url.origin()} uses plain http; Coursepath requires https "
            f"(pass allow_http=True or set {ENV_ALLOW_HTTP}=1, only for a local sandbox)",
            argument="base_url",
        )
    # Accept a URL pasted with the API prefix; endpoint paths add it back.
    path = url.path.rstrip("/")
    if path.endswith("/api/v1"):
        path = path[: -len("/api/v1")]
    return url.with_path(path or "/")


_YES, _NO = ("1", "true", "yes", "on"), ("", "0", "false", "no", "off")


def resolve_allow_http(value: object) -> bool:
    """``allow_http`` as given, else ``COURSEPATH_ALLOW_HTTP`` (1/true/yes or 0/false/no)."""
    if value is not None:
        if not isinstance(value, bool):
            raise ConfigurationError(
                f"allow_http must be True or False, got {short_repr(value)}", argument="allow_http"
            )
        return value
    raw = os.environ.get(ENV_ALLOW_HTTP, "").strip().lower()
    if raw not in _YES + _NO:
        raise ConfigurationError(
            f"{ENV_ALLOW_HTTP} must be 1 or 0 (true/false, yes/no), got {short_repr(raw)}",
            argument="allow_http",
        )
    return raw in _YES


def resolve_api_key(value: str | None) -> str:
    """The HS256 secret from the argument or the environment; never echoed back."""
    key = value if value is not None else os.environ.get(ENV_API_KEY)
    if key is not None and not isinstance(key, str):
        raise ConfigurationError(
            f"api_key must be a string, got {type(key).__name__}", argument="api_key"
        )
    if not key or not key.strip():
        raise ConfigurationError(
            f"no API key: pass api_key or set {ENV_API_KEY}", argument="api_key"
        )
    if not is_utf8_text(key):  # e.g. a Latin-1 byte in the variable, decoded as a surrogate
        source = "api_key" if value is not None else ENV_API_KEY
        raise ConfigurationError(
            f"{source} is not valid UTF-8 text; copy the API key again", argument="api_key"
        )
    return key


def resolve_user(value: str | None) -> str:
    """The acting member's email from the argument or the environment."""
    user = value if value is not None else os.environ.get(ENV_USER)
    if not user:
        raise ConfigurationError(f"no acting member: pass user or set {ENV_USER}", argument="user")
    if isinstance(user, str) and not is_utf8_text(user):
        source = "user" if value is not None else ENV_USER
        raise ConfigurationError(
            f"{source} is not valid UTF-8 text (a non-UTF-8 byte?)", argument="user"
        )
    try:
        return validate_email(user, field="user" if value is not None else ENV_USER)
    except ValueError as exc:
        raise ConfigurationError(str(exc), argument="user") from None


def check_positive_int(name: str, value: object, *, maximum: int | None = None) -> int:
    """A configuration count that must be an int >= 1 (and <= ``maximum`` when given)."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigurationError(
            f"{name} must be an integer >= 1, got {short_repr(value)}", argument=name
        )
    if maximum is not None and value > maximum:
        raise ConfigurationError(
            f"{name} must be at most {maximum:,}, got {short_repr(value)}", argument=name
        )
    return value


def check_count(name: str, value: object) -> int:
    """A configuration count that must be an int >= 0."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ConfigurationError(f"{name} must be an integer >= 0, got {value!r}", argument=name)
    return value


def check_optional_seconds(name: str, value: object) -> float | None:
    """Like :func:`check_seconds`, with ``None`` meaning "no limit"."""
    return None if value is None else check_seconds(name, value)


#: The shortest duration accepted: below it timers are meaningless, and a subnormal
#: float (5e-324) would even divide to zero when sliced into timer resolutions.
MIN_SECONDS = 0.001


def check_seconds(name: str, value: object) -> float:
    """A configuration duration that must be a finite number of seconds >= 1 ms."""
    if not is_finite_number(value) or value < MIN_SECONDS:
        raise ConfigurationError(
            f"{name} must be a number of seconds >= {MIN_SECONDS}, got {value!r}", argument=name
        )
    return float(value)


def check_optional_rate(name: str, value: object) -> float | None:
    """A cap in requests per second: a finite number >= MIN_RATE, or None for no cap."""
    return None if value is None else check_rate(name, value)


def check_rate(name: str, value: object) -> float:
    """A number of requests per second: finite and >= MIN_RATE."""
    if not is_finite_number(value) or value < MIN_RATE:
        raise ConfigurationError(
            f"{name} must be a number of requests per second >= {MIN_RATE:g}, got {value!r}",
            argument=name,
        )
    return float(value)


#: The slowest cap accepted: one request every ten seconds.
MIN_RATE = 0.1

_PER = {"": 1.0, "s": 1.0, "sec": 1.0, "m": 60.0, "min": 60.0, "h": 3600.0}


def parse_rate(text: str, *, name: str) -> float:
    """Requests per second from ``100``, ``100/s``, ``6000/min`` or ``360000/h`` (CLI, env)."""
    count, _, unit = text.strip().partition("/")
    try:
        value = float(count) / _PER[unit.strip().lower()]
    except (KeyError, ValueError):
        raise ConfigurationError(
            f"{name} must be a rate such as 100 or 100/s (or N/min, N/h), got {text!r}",
            argument=name,
        ) from None
    return check_rate(name, value)


def check_body_format(value: object, *, name: str = "body_format") -> BodyFormat:
    """One of ``auto``, ``json`` or ``form`` (exactly: a CLI flag or env var is the same)."""
    for choice in BODY_FORMATS:
        if value == choice and isinstance(value, str):
            return choice
    choices = ", ".join(repr(c) for c in BODY_FORMATS)
    raise ConfigurationError(
        f"{name} must be one of {choices}, got {short_repr(value)}", argument=name
    )


def check_priority(value: object) -> Priority:
    """A scheduler lane: a Priority member or its int value, never a bool."""
    if isinstance(value, Priority):
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        try:
            return Priority(value)
        except ValueError:
            pass
    choices = ", ".join(f"Priority.{p.name}" for p in Priority)
    raise ConfigurationError(
        f"priority must be one of {choices}, got {value!r}", argument="priority"
    )

"""Configuration: URL validation, environment variables, limits, and secret hygiene."""

from __future__ import annotations

import math
from typing import Any

import pytest
from conftest import API_KEY, USER

from coursepath_async import ConfigurationError, CoursepathClient, Priority, RetryPolicy
from coursepath_async._config import (
    ENV_API_KEY,
    ENV_URL,
    ENV_USER,
    check_optional_seconds,
    check_positive_int,
    check_seconds,
    parse_rate,
    resolve_api_key,
    resolve_base_url,
    resolve_user,
)


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in (ENV_URL, ENV_API_KEY, ENV_USER):
        monkeypatch.delenv(name, raising=False)


# --- base URL ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("https://acme.coursepath.com", "https://acme.coursepath.com/"),
        ("https://acme.coursepath.com/", "https://acme.coursepath.com/"),
        ("  https://acme.coursepath.com  ", "https://acme.coursepath.com/"),
        ("https://acme.coursepath.com/api/v1", "https://acme.coursepath.com/"),
        ("https://acme.coursepath.com/api/v1/", "https://acme.coursepath.com/"),
        ("https://acme.coursepath.com:8443", "https://acme.coursepath.com:8443/"),
        ("https://example.com/academy/api/v1", "https://example.com/academy"),
        ("https://example.com/academy/", "https://example.com/academy"),
    ],
)
def test_base_url_normalised(raw: str, expected: str) -> None:
    """The academy origin is kept; a pasted /api/v1 suffix and trailing slashes go."""
    assert str(resolve_base_url(raw, allow_http=False)) == expected


def test_api_root_adds_the_prefix_back() -> None:
    """Endpoint paths hang from <origin>/api/v1 whether or not the URL carried it."""
    for raw in ("https://acme.coursepath.com", "https://acme.coursepath.com/api/v1/"):
        with_prefix = resolve_base_url(raw, allow_http=False) / "api" / "v1"
        assert str(with_prefix) == "https://acme.coursepath.com/api/v1"


def test_plain_http_is_refused() -> None:
    """Coursepath is HTTPS only: plain http needs an explicit opt-in."""
    with pytest.raises(ConfigurationError, match="plain http"):
        resolve_base_url("http://acme.coursepath.com", allow_http=False)


def test_plain_http_allowed_for_a_sandbox() -> None:
    """``allow_http=True`` accepts a local sandbox URL."""
    url = resolve_base_url("http://127.0.0.1:8080", allow_http=True)
    assert (url.scheme, url.host, url.port) == ("http", "127.0.0.1", 8080)


@pytest.mark.parametrize(
    "raw",
    [
        "ftp://acme.coursepath.com",
        "acme.coursepath.com",
        "file:///etc/passwd",
        "https://",
        "https:///path-only",
        "//acme.coursepath.com",
        "mailto:admin@acme.com",
    ],
)
def test_bad_scheme_or_missing_host(raw: str) -> None:
    """Anything but an http(s) URL with a host is refused."""
    with pytest.raises(ConfigurationError):
        resolve_base_url(raw, allow_http=True)


@pytest.mark.parametrize(
    "raw",
    [
        "https://acme.coursepath.com/?token=x",
        "https://acme.coursepath.com/#frag",
        "https://user@acme.coursepath.com",
        "https://user:pw@acme.coursepath.com",
    ],
)
def test_query_fragment_and_credentials_refused(raw: str) -> None:
    """A base URL must not carry a query, a fragment or credentials."""
    with pytest.raises(ConfigurationError, match="must not carry"):
        resolve_base_url(raw, allow_http=False)


@pytest.mark.parametrize(
    "raw",
    [
        "https://admin:s3cr3t-pw@acme.coursepath.com",
        "http://admin:s3cr3t-pw@acme.coursepath.com",
        "htps://admin:s3cr3t-pw@acme.coursepath.com",
        "https://admin:s3cr3t-pw@",
    ],
)
def test_password_in_a_refused_url_is_not_echoed(raw: str) -> None:
    """A password pasted into the URL never appears in the error message."""
    with pytest.raises(ConfigurationError) as info:
        resolve_base_url(raw, allow_http=False)
    assert "s3cr3t-pw" not in str(info.value)
    assert "s3cr3t-pw" not in repr(info.value)


@pytest.mark.parametrize(
    "raw", ["https://xn--bcher-kva.example", "https://bücher.example", "https://BÜCHER.example/"]
)
def test_internationalised_hosts_are_accepted(raw: str) -> None:
    """An IDN host is accepted in its Unicode and its punycode form alike."""
    url = resolve_base_url(raw, allow_http=False)
    assert url.raw_host == "xn--bcher-kva.example"


def test_invalid_punycode_host_is_refused() -> None:
    """A host with a broken ``xn--`` label is still refused."""
    with pytest.raises(ConfigurationError, match="not a valid URL"):
        resolve_base_url("https://xn--zz.example", allow_http=False)


@pytest.mark.parametrize(
    ("raw", "secret"),
    [
        ("https://bad_host.example/?token=SUPERSECRET", "SUPERSECRET"),
        ("https://bad_host.example/#SUPERSECRET", "SUPERSECRET"),
        ("https://user:pa/SUPERSECRET@host.example", "SUPERSECRET"),
        ("https://user:p@SUPERSECRET@host:notaport", "SUPERSECRET"),
        ("https://user:pa?SUPERSECRET@bad_host.example", "SUPERSECRET"),
    ],
)
def test_refused_url_echo_hides_query_fragment_and_userinfo(raw: str, secret: str) -> None:
    """A refused URL is echoed without its query, fragment or any part of its userinfo."""
    with pytest.raises(ConfigurationError, match="academy URL") as info:
        resolve_base_url(raw, allow_http=False)
    assert secret not in str(info.value)
    assert secret not in repr(info.value)


def test_missing_url() -> None:
    """Without an argument or COURSEPATH_URL the client cannot start."""
    with pytest.raises(ConfigurationError, match=ENV_URL):
        resolve_base_url(None, allow_http=False)
    with pytest.raises(ConfigurationError):
        resolve_base_url("", allow_http=False)


# --- environment ------------------------------------------------------------


def test_values_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """COURSEPATH_URL, COURSEPATH_API_KEY and COURSEPATH_USER fill omitted arguments."""
    monkeypatch.setenv(ENV_URL, "https://env.coursepath.com")
    monkeypatch.setenv(ENV_API_KEY, API_KEY)
    monkeypatch.setenv(ENV_USER, "  env@acme.example.com ")
    assert str(resolve_base_url(None, allow_http=False)) == "https://env.coursepath.com/"
    assert resolve_api_key(None) == API_KEY
    assert resolve_user(None) == "env@acme.example.com"


def test_arguments_win_over_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """An explicit argument is used even when the variable is set."""
    monkeypatch.setenv(ENV_URL, "https://env.coursepath.com")
    monkeypatch.setenv(ENV_API_KEY, "env-key")
    monkeypatch.setenv(ENV_USER, "env@acme.example.com")
    assert str(resolve_base_url("https://arg.coursepath.com", allow_http=False)).startswith(
        "https://arg."
    )
    assert resolve_api_key(API_KEY) == API_KEY
    assert resolve_user(USER) == USER


async def test_client_from_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """A client can be built from the environment alone."""
    monkeypatch.setenv(ENV_URL, "https://env.coursepath.com/api/v1")
    monkeypatch.setenv(ENV_API_KEY, API_KEY)
    monkeypatch.setenv(ENV_USER, USER)
    async with CoursepathClient() as client:
        assert client.base_url == "https://env.coursepath.com"
        assert client.user == USER


@pytest.mark.parametrize("value", [None, "", "   "])
def test_missing_api_key(value: str | None) -> None:
    """A missing or blank key is a configuration error naming the variable."""
    with pytest.raises(ConfigurationError, match=ENV_API_KEY):
        resolve_api_key(value)


def test_api_key_not_utf8_from_the_environment_is_refused_without_echo(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A non-UTF-8 byte in the key variable is a ConfigurationError naming it, not the key."""
    monkeypatch.setenv(ENV_API_KEY, "academy-secret-\udce9-0123456789abcdefghijkl")
    with pytest.raises(ConfigurationError, match=ENV_API_KEY) as info:
        CoursepathClient("https://acme.coursepath.com", user=USER)
    assert "academy-secret" not in repr(info.value)
    assert info.value.__context__ is None


@pytest.mark.parametrize("value", [None, ""])
def test_missing_user(value: str | None) -> None:
    """The acting member is required."""
    with pytest.raises(ConfigurationError, match=ENV_USER):
        resolve_user(value)


@pytest.mark.parametrize("value", ["not-an-email", "a@b", "a b@c.de"])
def test_bad_user(value: str) -> None:
    """An acting member that is not an email address is a configuration error."""
    with pytest.raises(ConfigurationError, match="user"):
        resolve_user(value)


# --- limits -----------------------------------------------------------------


@pytest.mark.parametrize("value", [1, 16, 10_000])
def test_positive_int_ok(value: int) -> None:
    """Counts >= 1 are accepted unchanged."""
    assert check_positive_int("max_concurrency", value) == value


@pytest.mark.parametrize("value", [0, -1, 1.0, "4", True, None])
def test_positive_int_refused(value: object) -> None:
    """Zero, negatives, floats, strings, bools and None are refused, naming the setting."""
    with pytest.raises(ConfigurationError, match="max_concurrency"):
        check_positive_int("max_concurrency", value)


def test_positive_int_with_a_maximum_names_the_setting_and_the_bound() -> None:
    """A count above its maximum is refused with both named; an enormous int is not printed."""
    assert check_positive_int("page_window", 64, maximum=64) == 64
    with pytest.raises(ConfigurationError, match=r"page_window must be at most 64, got 1000000"):
        check_positive_int("page_window", 1_000_000, maximum=64)
    with pytest.raises(ConfigurationError, match=r"got <an integer of \d+ bits>"):
        check_positive_int("page_window", 10**5000, maximum=64)


@pytest.mark.parametrize(("value", "expected"), [(1, 1.0), (0.5, 0.5), (30, 30.0)])
def test_seconds_ok(value: float, expected: float) -> None:
    """Durations > 0 are accepted as floats."""
    assert check_seconds("timeout", value) == expected


@pytest.mark.parametrize("value", [0, -1, math.nan, math.inf, "5", True, None])
def test_seconds_refused(value: object) -> None:
    """Zero, negative, non-finite and non-numeric durations are refused."""
    with pytest.raises(ConfigurationError, match="timeout"):
        check_seconds("timeout", value)


def test_seconds_below_a_millisecond_are_refused() -> None:
    """A subnormal or sub-millisecond duration is refused; one millisecond is accepted."""
    with pytest.raises(ConfigurationError, match="timeout"):
        check_seconds("timeout", 5e-324)
    assert check_seconds("timeout", 0.001) == 0.001


def test_user_not_utf8_from_the_environment_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    """A non-UTF-8 byte in the acting member's variable is a ConfigurationError naming it."""
    monkeypatch.setenv(ENV_USER, "\udcffbob@acme.example.com")
    with pytest.raises(ConfigurationError, match=ENV_USER):
        resolve_user(None)


def test_optional_seconds() -> None:
    """``None`` means "no deadline"; anything else is a checked duration."""
    assert check_optional_seconds("deadline", None) is None
    assert check_optional_seconds("deadline", 2) == 2.0
    with pytest.raises(ConfigurationError, match="deadline"):
        check_optional_seconds("deadline", 0)


BAD_CLIENT_ARGS: list[dict[str, Any]] = [
    {"base_url": "http://acme.coursepath.com"},
    {"base_url": "ftp://acme.coursepath.com"},
    {"base_url": "https://acme.coursepath.com/?q=1"},
    {"user": "nobody"},
    {"max_concurrency": 0},
    {"max_concurrency": -3},
    {"max_concurrency": 2.5},
    {"timeout": 0},
    {"timeout": -1},
    {"timeout": math.inf},
    {"timeout": 5e-324},
    {"timeout": 0.0009},
    {"deadline": 5e-324},
    {"priority": True},
    {"priority": 7},
    {"priority": "BULK"},
    {"deadline": 0},
    {"deadline": -5},
    {"deadline": math.nan},
    {"page_window": 0},
    {"page_window": 65},
    {"page_window": 1_000_000},
    {"page_window": 10**5000},
    {"max_listing_records": 0},
    {"max_listing_records": 1.5},
    {"body_format": "xml"},
    {"retry": {"max_attempts": 3}},
    {"max_rate": 0},
    {"max_rate": -5},
    {"max_rate": math.nan},
    {"max_rate": math.inf},
    {"max_rate": "100"},
    {"max_rate": True},
    {"max_rate": 10**400},
]


@pytest.mark.parametrize("override", BAD_CLIENT_ARGS)
def test_client_refuses_bad_configuration(override: dict[str, Any]) -> None:
    """Each bad constructor argument raises ConfigurationError; the key is never echoed."""
    kwargs: dict[str, Any] = {
        "base_url": "https://acme.coursepath.com",
        "api_key": API_KEY,
        "user": USER,
        **override,
    }
    with pytest.raises(ConfigurationError) as info:
        CoursepathClient(**kwargs)
    assert API_KEY not in str(info.value)
    assert API_KEY not in repr(info.value)


def test_missing_key_error_does_not_echo_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Configuration errors raised with a key in the environment do not show it."""
    monkeypatch.setenv(ENV_API_KEY, API_KEY)
    with pytest.raises(ConfigurationError) as info:
        CoursepathClient("http://acme.coursepath.com", user=USER)
    assert API_KEY not in str(info.value)


async def test_client_accepts_good_configuration() -> None:
    """A fully specified client starts; its repr shows origin and user, never the key."""
    async with CoursepathClient(
        "https://acme.coursepath.com/api/v1/",
        api_key=API_KEY,
        user=USER,
        max_concurrency=4,
        retry=RetryPolicy(max_attempts=2),
        timeout=5,
        deadline=20,
        body_format="form",
        page_window=2,
        priority=Priority.BULK,
        max_rate=25,
    ) as client:
        assert client.base_url == "https://acme.coursepath.com"
        assert client.priority is Priority.BULK
        assert client.scheduler_stats().limit == 4
        assert (client.scheduler_stats().rate, client.scheduler_stats().max_rate) == (25, 25)
        assert API_KEY not in repr(client)
        assert repr(client) == f"<CoursepathClient https://acme.coursepath.com user={USER!r}>"


@pytest.mark.parametrize(
    ("text", "rate"),
    [("100", 100.0), ("100/s", 100.0), (" 2.5 /s ", 2.5), ("6000/min", 100.0), ("7200/h", 2.0)],
)
def test_rates_are_read_as_requests_per_second(text: str, rate: float) -> None:
    """``--max-rate`` and COURSEPATH_MAX_RATE take N, N/s, N/min or N/h."""
    assert parse_rate(text, name="--max-rate") == rate


@pytest.mark.parametrize("text", ["fast", "", "10/day", "0", "-1/s", "nan", "inf/s", "1/0"])
def test_bad_rates_are_refused_naming_the_setting(text: str) -> None:
    """A rate that is not a positive number per second, minute or hour is a clear error."""
    with pytest.raises(ConfigurationError, match="COURSEPATH_MAX_RATE"):
        parse_rate(text, name="COURSEPATH_MAX_RATE")

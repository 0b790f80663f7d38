"""Bad input to public entry points: a clear ValueError/TypeError/ConfigurationError, unsent.

Every call runs against a real sandbox academy, whose recorder proves that no request
left the client. What ``test_client.py``, ``test_config.py`` and ``test_validation.py``
already pin down (the basic id, email, field and size cases) is not repeated; this file
covers the wider net: every id-taking entry point against a catalogue of bad ids,
property-tested emails, paging and concurrency knobs, filters, invitation overrides,
configuration values of the wrong type or range, and the CLI's flags.
"""

from __future__ import annotations

import asyncio
import inspect
import math
import sys
from collections.abc import AsyncIterator, Callable
from decimal import Decimal
from fractions import Fraction
from pathlib import Path
from typing import Any

import pytest
from cli_env import cli_env
from conftest import API_KEY, make_client, sandbox
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from coursepath_async import (
    ConfigurationError,
    CoursepathClient,
    InvalidInputError,
    RetryPolicy,
)
from coursepath_async._validation import validate_email
from coursepath_async.bulk import ImportOptions, MappingRows, PlanOptions, open_journal
from coursepath_async.testing import SandboxAcademy

NEW = "new.person@inputs.test"
GOOD_URL = "https://acme.example.com"

Call = Callable[[CoursepathClient, Any], object]


@pytest.fixture
async def academy() -> AsyncIterator[SandboxAcademy]:
    async with sandbox(members=6, courses=2, programs=1, groups=2, seed=3) as a:
        yield a


@pytest.fixture
async def client(academy: SandboxAcademy) -> AsyncIterator[CoursepathClient]:
    async with make_client(academy) as sdk:
        yield sdk


async def invoke(result: object) -> None:
    """Await what a call returned when it is awaitable (paginators raise when built)."""
    if inspect.isawaitable(result):
        await result


async def refusal(call: Callable[..., object], *args: Any, **kwargs: Any) -> BaseException | None:
    """Make the call; return what it raised, or None when it went through."""
    try:
        await invoke(call(*args, **kwargs))
    except Exception as exc:
        return exc
    return None


def describe(value: object) -> str:
    """A short label of a bad value for failure messages (repr() refuses huge ints)."""
    if isinstance(value, int) and value.bit_length() > 64:
        return f"<int of {value.bit_length()} bits>"
    return repr(value)[:40]


# -- ids -------------------------------------------------------------------------------------

#: (entry point, the argument named in the error, the call with the bad value in that place)
ID_CALLS: list[tuple[str, str, Call]] = [
    ("members.get", "member_id", lambda c, v: c.members.get(v)),
    ("members.update", "member_id", lambda c, v: c.members.update(v, name="X")),
    ("members.invite", "member_id", lambda c, v: c.members.invite(v)),
    ("members.courses", "member_id", lambda c, v: c.members.courses(v)),
    ("members.groups", "member_id", lambda c, v: c.members.groups(v)),
    ("members.add_to_group", "member_id", lambda c, v: c.members.add_to_group(v, "Sales")),
    ("members.remove_from_group", "member_id", lambda c, v: c.members.remove_from_group(v, "S")),
    (
        "members.remove_from_all_groups",
        "member_id",
        lambda c, v: c.members.remove_from_all_groups(v),
    ),
    ("courses.get", "course_id", lambda c, v: c.courses.get(v)),
    ("courses.members", "course_id", lambda c, v: c.courses.members(v)),
    ("courses.create_member", "course_id", lambda c, v: c.courses.create_member(v, NEW)),
    ("courses.enroll/course", "course_id", lambda c, v: c.courses.enroll(v, 2)),
    ("courses.enroll/member", "member_id", lambda c, v: c.courses.enroll(1, v)),
    ("courses.result/course", "course_id", lambda c, v: c.courses.result(v, 2)),
    ("courses.result/member", "member_id", lambda c, v: c.courses.result(1, v)),
    ("courses.unenroll/course", "course_id", lambda c, v: c.courses.unenroll(v, 2)),
    ("courses.unenroll/member", "member_id", lambda c, v: c.courses.unenroll(1, v)),
    ("courses.invite/course", "course_id", lambda c, v: c.courses.invite(v, 2)),
    ("courses.invite/member", "member_id", lambda c, v: c.courses.invite(1, v)),
    ("programs.create_member", "program_id", lambda c, v: c.programs.create_member(v, NEW)),
    ("programs.enroll/program", "program_id", lambda c, v: c.programs.enroll(v, 2)),
    ("programs.enroll/member", "member_id", lambda c, v: c.programs.enroll(1, v)),
    ("programs.unenroll/program", "program_id", lambda c, v: c.programs.unenroll(v, 2)),
    ("programs.unenroll/member", "member_id", lambda c, v: c.programs.unenroll(1, v)),
    ("programs.invite/program", "program_id", lambda c, v: c.programs.invite(v, 2)),
    ("programs.invite/member", "member_id", lambda c, v: c.programs.invite(1, v)),
    ("groups.members", "group_id", lambda c, v: c.groups.members(v)),
]

BAD_IDS: list[object] = [
    0,
    -1,
    -(2**63),
    2**63,
    10**30,
    10**10_000,
    True,
    False,
    7.0,
    7.5,
    math.nan,
    math.inf,
    "7",
    " 7",
    "../1",
    "1/../2",
    "%2e%2e%2f1",
    "7?limit=1",
    "7#x",
    "\u0667",  # ARABIC-INDIC DIGIT SEVEN: str.isdigit() says yes
    b"7",
    Decimal(7),
    Fraction(7),
    complex(7, 0),
    None,
    [7],
    {"id": 7},
]


@pytest.mark.parametrize(("field", "call"), [pytest.param(f, c, id=n) for n, f, c in ID_CALLS])
async def test_every_id_argument_refuses_every_bad_id(
    academy: SandboxAcademy, client: CoursepathClient, field: str, call: Call
) -> None:
    """Each id argument of each entry point refuses each bad id, naming the argument."""
    offenders = []
    for value in BAD_IDS:
        raised = await refusal(call, client, value)
        message = str(raised)
        if not (
            isinstance(raised, ValueError) and message.startswith(f"{field} must be a positive")
        ):
            offenders.append(f"{describe(value)} -> {raised!r}")
        elif len(message) > 150:
            offenders.append(f"{describe(value)} -> a {len(message)}-character message")
    assert not offenders, "\n".join(offenders)
    assert academy.recorder.total == 0


class SneakyInt(int):
    """An int (so it passes ``isinstance``) that formats itself as a path."""

    def __str__(self) -> str:
        return "../1"

    def __format__(self, spec: str) -> str:
        return "../1"


async def test_an_int_subclass_cannot_smuggle_a_path_into_the_url(
    academy: SandboxAcademy, client: CoursepathClient
) -> None:
    """An int subclass that formats as "../1" is refused or sent as its plain integer value."""
    raised = await refusal(client.members.invite, SneakyInt(2))
    sent = [f"{r.method} {r.path}" for r in academy.recorder.requests]
    if isinstance(raised, ValueError):
        assert sent == []
    else:
        assert sent == ["POST /api/v1/members/2/invite"], raised


# -- emails ----------------------------------------------------------------------------------

#: (entry point, the argument named in the error, the call)
EMAIL_CALLS: list[tuple[str, str, Call]] = [
    ("members.create", "email", lambda c, v: c.members.create(v)),
    ("members.find_by_email", "email", lambda c, v: c.members.find_by_email(v)),
    ("members.update", "email", lambda c, v: c.members.update(2, email=v)),
    ("courses.create_member", "email", lambda c, v: c.courses.create_member(1, v)),
    ("programs.create_member", "email", lambda c, v: c.programs.create_member(1, v)),
    ("as_user", "user", lambda c, v: c.as_user(v)),
    ("with_options", "user", lambda c, v: c.with_options(user=v)),
]

_MANGLED_EMAILS = st.builds(
    lambda email, junk, at: email[:at] + junk + email[at:],
    st.emails().map(str),
    st.sampled_from(
        [" ", "\t", "\x00", "\n", ",", ";", "<", ">", "@", "..", '"', "\\", "\x7f", "()"]
    ),
    st.integers(min_value=0, max_value=64),
)


@settings(
    max_examples=150,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    value=st.one_of(
        st.text(max_size=300), _MANGLED_EMAILS, st.text(alphabet="a@.-_+ ", max_size=12)
    )
)
async def test_bad_email_text_is_refused_by_every_entry_point(
    academy: SandboxAcademy, client: CoursepathClient, value: str
) -> None:
    """Any text that is not an email is refused by every email-taking entry point, unsent."""
    try:
        validate_email(value)
    except ValueError:
        event("invalid")
    else:
        event("valid (skipped)")
        return
    for name, field, call in EMAIL_CALLS:
        raised = await refusal(call, client, value)
        assert isinstance(raised, ValueError), (name, raised)
        assert str(raised).startswith(f"{field} "), (name, str(raised))
    assert academy.recorder.total == 0


@pytest.mark.parametrize(
    "value", [None, 42, b"a@b.test", ["a@b.test"], {"email": "a@b.test"}], ids=describe
)
async def test_non_string_emails_are_refused_before_sending(
    academy: SandboxAcademy, client: CoursepathClient, value: object
) -> None:
    """None, numbers, bytes and containers are not emails: every entry point says so, unsent."""
    offenders = []
    for name, field, call in EMAIL_CALLS:
        if name in ("members.update", "with_options") and value is None:
            continue  # None there means "leave the email / acting member as it is"
        raised = await refusal(call, client, value)
        if not (isinstance(raised, ValueError) and str(raised).startswith(f"{field} ")):
            offenders.append(f"{name}: {raised!r}")
    assert not offenders, "\n".join(offenders)
    assert academy.recorder.total == 0


# -- member fields, filters, group names, invitation overrides -------------------------------

MEMBER_FIELDS = (
    "name",
    "company",
    "department",
    "country",
    "external_id",
    "association",
    "identification",
    "registration",
)
NOT_TEXT: list[object] = [5, 2.5, True, b"text", ["text"], {"text": 1}]


async def test_member_fields_must_be_text(
    academy: SandboxAcademy, client: CoursepathClient
) -> None:
    """Every member field of create, update and create-and-enrol refuses non-text values."""
    calls: list[tuple[str, Callable[..., object]]] = [
        ("members.create", lambda **kw: client.members.create(NEW, **kw)),
        ("members.update", lambda **kw: client.members.update(2, **kw)),
        ("courses.create_member", lambda **kw: client.courses.create_member(1, NEW, **kw)),
        ("programs.create_member", lambda **kw: client.programs.create_member(1, NEW, **kw)),
    ]
    offenders = []
    for name, call in calls:
        for field in MEMBER_FIELDS:
            for value in NOT_TEXT:
                raised = await refusal(call, **{field: value})
                expected = f"member field {field} must be a string"
                if not (isinstance(raised, ValueError) and str(raised).startswith(expected)):
                    offenders.append(f"{name}({field}={value!r}): {raised!r}")
    assert not offenders, "\n".join(offenders)
    assert academy.recorder.total == 0


async def test_member_filters_refuse_non_text_and_unknown_names(
    academy: SandboxAcademy, client: CoursepathClient
) -> None:
    """Filters take text only, by their snake_case names; paging keys cannot be smuggled in."""
    filters = ("email", *MEMBER_FIELDS[1:])
    listings: list[tuple[str, Callable[..., object]]] = [
        ("members.list", lambda **kw: client.members.list(**kw)),
        ("courses.members", lambda **kw: client.courses.members(1, **kw)),
    ]
    offenders = []
    for name, listing in listings:
        for field in filters:
            for value in NOT_TEXT:
                raised = await refusal(listing, **{field: value})
                expected = f"member filter {field} must be a string"
                if not (isinstance(raised, ValueError) and str(raised).startswith(expected)):
                    offenders.append(f"{name}({field}={value!r}): {raised!r}")
        for unknown in ("externalId", "Email", "offset", "limit", "name", "id", ""):
            raised = await refusal(listing, **{unknown: "x"})
            if not (isinstance(raised, InvalidInputError) and repr(unknown) in str(raised)):
                offenders.append(f"{name}({unknown}=...): {raised!r}")
    for value in NOT_TEXT:
        raised = await refusal(client.members.find_by_external_id, value)
        if not isinstance(raised, ValueError) or "external_id" not in str(raised):
            offenders.append(f"find_by_external_id({value!r}): {raised!r}")
    assert not offenders, "\n".join(offenders)
    assert academy.recorder.total == 0


async def test_filter_values_reach_the_server_intact(
    academy: SandboxAcademy, client: CoursepathClient
) -> None:
    """URL metacharacters in filter values are encoded: they filter, they never add parameters."""
    tricky = "A&limit=1&offset=9#frag %20/?x=\u00e9"
    wanted = academy.state.add_member("plus+tag@inputs.test", company=tricky, department="a;b")
    academy.state.add_member("other@inputs.test", company="A")
    assert [m.id for m in await client.members.list(company=tricky)] == [wanted.id]
    assert [m.id for m in await client.members.list(department="a;b")] == [wanted.id]
    found = await client.members.find_by_email("PLUS+tag@inputs.test")
    assert found is not None
    assert found.id == wanted.id


async def test_group_names_must_be_non_empty_text(
    academy: SandboxAcademy, client: CoursepathClient
) -> None:
    """Adding to or leaving a group refuses bytes, numbers, containers and blank names."""
    offenders = []
    for value in [*NOT_TEXT, "", " \t ", None]:
        for call in (client.members.add_to_group, client.members.remove_from_group):
            raised = await refusal(call, 2, value)
            if not (isinstance(raised, ValueError) and str(raised).startswith("name must be")):
                offenders.append(f"{call.__name__}({value!r}): {raised!r}")
    assert not offenders, "\n".join(offenders)
    assert academy.recorder.total == 0


async def test_invitation_overrides_must_be_text(
    academy: SandboxAcademy, client: CoursepathClient
) -> None:
    """subject/body/action of an invitation refuse non-text values before anything is sent."""
    invites: list[tuple[str, Callable[..., object]]] = [
        ("members.invite", lambda **kw: client.members.invite(2, **kw)),
        ("courses.invite", lambda **kw: client.courses.invite(1, 2, **kw)),
        ("programs.invite", lambda **kw: client.programs.invite(1, 2, **kw)),
    ]
    offenders = []
    for name, invite in invites:
        for field in ("subject", "body", "action"):
            for value in (5, b"hello", ["x"], {"x": 1}):
                before = academy.recorder.total
                raised = await refusal(invite, **{field: value})
                sent = academy.recorder.total - before
                if (
                    not isinstance(raised, ValueError | TypeError)
                    or field not in str(raised)
                    or sent
                ):
                    offenders.append(f"{name}({field}={value!r}): {raised!r}, {sent} sent")
    assert not offenders, "\n".join(offenders)
    assert academy.recorder.total == 0
    assert sum(academy.recorder.invitations.values()) == 0


# -- paging and concurrency knobs ------------------------------------------------------------

BAD_COUNTS: list[object] = [0, -1, True, 2.0, 2.5, "10", b"10", math.nan, 2**63, 10**30, [4]]


async def test_page_size_and_window_refuse_bad_values_on_every_listing(
    academy: SandboxAcademy, client: CoursepathClient
) -> None:
    """Every listing refuses each bad page_size and window, naming the argument."""
    listings: list[tuple[str, Callable[..., object]]] = [
        ("members.list", client.members.list),
        ("courses.list", client.courses.list),
        ("groups.list", client.groups.list),
        ("members.courses", lambda **kw: client.members.courses(2, **kw)),
        ("members.groups", lambda **kw: client.members.groups(2, **kw)),
        ("courses.members", lambda **kw: client.courses.members(1, **kw)),
        ("groups.members", lambda **kw: client.groups.members(1, **kw)),
    ]
    offenders = []
    for name, listing in listings:
        for knob in ("page_size", "window"):
            for value in BAD_COUNTS:
                raised = await refusal(listing, **{knob: value})
                if not (isinstance(raised, ValueError) and str(raised).startswith(knob)):
                    offenders.append(f"{name}({knob}={describe(value)}): {raised!r}")
    assert not offenders, "\n".join(offenders)
    assert academy.recorder.total == 0


async def test_map_and_import_concurrency_refuse_bad_values(
    academy: SandboxAcademy, client: CoursepathClient, tmp_path: Path
) -> None:
    """client.map and import_members refuse a bad concurrency before any row or request."""

    async def noop(item: int) -> int:
        return item

    rows = [{"email": f"p{i}@inputs.test"} for i in range(5)]
    offenders = []
    for index, value in enumerate([0, -1, True, 2.0, 2.5, "4", [2]]):
        raised = await refusal(client.map, noop, range(3), concurrency=value)
        if not (isinstance(raised, ConfigurationError) and "concurrency" in str(raised)):
            offenders.append(f"map(concurrency={value!r}): {raised!r}")
        journal_path = tmp_path / f"journal-{index}.sqlite"
        plan = PlanOptions(invite="new")
        with open_journal(
            str(journal_path), MappingRows(rows), kind="import", options=plan
        ) as journal:
            try:  # refused where it is given, before the job can start
                ImportOptions(plan=plan, concurrency=value)  # type: ignore[arg-type]
            except InvalidInputError as exc:
                if exc.argument != "concurrency" or "concurrency" not in str(exc):
                    offenders.append(f"ImportOptions(concurrency={value!r}): {exc!r}")
            else:
                offenders.append(f"ImportOptions(concurrency={value!r}) was accepted")
            assert journal.counts() == {}
    assert not offenders, "\n".join(offenders)
    assert academy.recorder.total == 0


# -- configuration ---------------------------------------------------------------------------


def build(**overrides: Any) -> CoursepathClient:
    """A client with good settings except the overrides (never used to send anything)."""
    settings_: dict[str, Any] = {"base_url": GOOD_URL, "api_key": API_KEY, "user": "a@inputs.test"}
    settings_.update(overrides)
    return CoursepathClient(**settings_)


def construction_error(**overrides: Any) -> BaseException | None:
    """What building a client with these settings raised, or None when it was accepted."""
    try:
        build(**overrides)
    except Exception as exc:
        return exc
    return None


@pytest.fixture(autouse=True)
def _no_connection_settings_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("COURSEPATH_URL", "COURSEPATH_API_KEY", "COURSEPATH_USER"):
        monkeypatch.delenv(name, raising=False)


# (setting, bad value, text the message must contain) beyond tests/test_config.py's table
BAD_SETTINGS: list[tuple[str, object, str]] = [
    ("timeout", "5", "timeout"),
    ("timeout", True, "timeout"),
    ("timeout", None, "timeout"),
    ("timeout", [5], "timeout"),
    ("timeout", -0.0, "timeout"),
    ("deadline", "1", "deadline"),
    ("deadline", math.inf, "deadline"),
    ("deadline", False, "deadline"),
    ("max_concurrency", "4", "max_concurrency"),
    ("max_concurrency", None, "max_concurrency"),
    ("max_concurrency", 4.0, "max_concurrency"),
    ("max_concurrency", True, "max_concurrency"),
    ("page_window", True, "page_window"),
    ("page_window", "2", "page_window"),
    ("page_window", -1, "page_window"),
    ("page_window", 1_000_000, "page_window"),
    ("max_listing_records", "10", "max_listing_records"),
    ("max_listing_records", -5, "max_listing_records"),
    ("body_format", "JSON", "body_format"),
    ("body_format", None, "body_format"),
    ("retry", "RetryPolicy()", "retry"),
    ("retry", RetryPolicy, "retry"),
    ("priority", 9, "Priority"),
    ("priority", "BULK", "Priority"),
    ("user", "", "user"),
    ("user", 5, "user"),
    ("user", "admin@inputs.test\n\nx", "user"),
    ("api_key", "", "API key"),
    ("base_url", "", "URL"),
    ("base_url", "   ", "URL"),
    ("base_url", "https://acme.example.com:99999", "URL"),
    ("base_url", "https://[::1", "URL"),
    ("base_url", "javascript:alert(1)", "URL"),
]


@pytest.mark.parametrize(
    ("setting", "value", "named"),
    [pytest.param(s, v, n, id=f"{s}={describe(v)}") for s, v, n in BAD_SETTINGS],
)
def test_bad_settings_are_refused_naming_the_setting(
    setting: str, value: object, named: str
) -> None:
    """Each bad constructor value is a ConfigurationError or ValueError naming the setting."""
    raised = construction_error(**{setting: value})
    assert isinstance(raised, ConfigurationError | ValueError), raised
    assert named in str(raised)


def test_url_and_key_of_the_wrong_type_are_configuration_errors() -> None:
    """A base_url or api_key that is not text is refused naming it, not with an AttributeError."""
    offenders = []
    for setting, named in (("base_url", ("URL", "base_url")), ("api_key", ("API key", "api_key"))):
        for value in (123, b"https://acme.example.com", ["text"], {"text": 1}):
            if setting == "api_key" and isinstance(value, bytes):
                continue  # a bytes HMAC key is usable
            raised = construction_error(**{setting: value})
            ok = isinstance(raised, ConfigurationError | TypeError) and any(
                n in str(raised) for n in named
            )
            if not ok:
                offenders.append(f"{setting}={value!r}: {raised!r}")
    assert not offenders, "\n".join(offenders)


MALFORMED_HOSTS = [
    "https://exa mple.com",
    "https://acme.example.com\x00",
    "https://ac\x00me.example.com",
    "https://a..b",
    "https://.",
    "https://xn--.com",
    "https://[]@",
]


def test_malformed_hosts_are_refused_at_construction() -> None:
    """A host that cannot be a DNS name is a ConfigurationError now, not a failure at first call."""
    offenders = []
    for url in MALFORMED_HOSTS:
        raised = construction_error(base_url=url)
        if not (isinstance(raised, ConfigurationError) and "academy URL" in str(raised)):
            offenders.append(f"{url!r}: {'accepted' if raised is None else repr(raised)}")
    assert not offenders, "\n".join(offenders)


@settings(max_examples=200, deadline=None, derandomize=True, database=None)
@given(
    url=st.builds(
        "{}://{}{}".format,
        st.sampled_from(["https", "http", "HTTPS", "ftp", ""]),
        st.text(alphabet="ab.-:@[]%0\u00e9\u0130 xn", max_size=16),
        st.sampled_from(["", "/", "/api/v1", "/x?y", "#z", "/../"]),
    )
)
def test_any_url_text_is_accepted_or_a_configuration_error(url: str) -> None:
    """Whatever URL text is given, building a client accepts it or raises ConfigurationError."""
    raised = construction_error(base_url=url, allow_http=True)
    event("accepted" if raised is None else type(raised).__name__)
    assert raised is None or isinstance(raised, ConfigurationError), repr(raised)


def test_durations_too_big_for_a_float_are_refused_cleanly() -> None:
    """An int too large for a float gets the documented error naming it, not OverflowError."""
    huge = 10**400
    attempts: list[tuple[str, Callable[[], object], type[Exception]]] = [
        ("timeout", lambda: build(timeout=huge), ConfigurationError),
        ("deadline", lambda: build(deadline=huge), ConfigurationError),
        ("deadline", lambda: build().with_options(deadline=huge), ConfigurationError),
        ("RetryPolicy.base_delay", lambda: RetryPolicy(base_delay=huge), ValueError),
        ("RetryPolicy.max_delay", lambda: RetryPolicy(max_delay=huge), ValueError),
        ("RetryPolicy.max_retry_after", lambda: RetryPolicy(max_retry_after=huge), ValueError),
        ("RetryPolicy.max_refusal_wait", lambda: RetryPolicy(max_refusal_wait=huge), ValueError),
        ("max_rate", lambda: build(max_rate=huge), ConfigurationError),
    ]
    offenders = []
    for named, attempt, expected in attempts:
        try:
            attempt()
        except Exception as exc:
            if not (isinstance(exc, expected) and named in str(exc)):
                offenders.append(f"{named}=10**400: {exc!r}")
        else:
            offenders.append(f"{named}=10**400: accepted")
    assert not offenders, "\n".join(offenders)


async def test_with_options_refuses_bad_values(client: CoursepathClient) -> None:
    """A view's user, lane and deadline are checked like the client's."""
    offenders = []
    cases: list[tuple[dict[str, object], str]] = [
        ({"priority": 9}, "Priority"),
        ({"priority": "interactive"}, "Priority"),
        ({"deadline": "5"}, "deadline"),
        ({"deadline": 0}, "deadline"),
        ({"deadline": math.nan}, "deadline"),
        ({"deadline": True}, "deadline"),
        ({"user": ""}, "user"),
        ({"user": b"a@b.test"}, "user"),
    ]
    for kwargs, named in cases:
        raised = await refusal(client.with_options, **kwargs)
        if not (isinstance(raised, ConfigurationError | ValueError) and named in str(raised)):
            offenders.append(f"with_options({kwargs}): {raised!r}")
    assert not offenders, "\n".join(offenders)


def test_ssl_of_the_wrong_type_is_refused_at_construction() -> None:
    """ssl= takes an SSLContext or a bool; anything else is refused when the client is built.

    Accepted, it fails only at the first call, with aiohttp's own TypeError.
    """
    offenders = []
    for value in ("yes", 1, "/etc/ssl/cert.pem", object()):
        raised = construction_error(ssl=value)
        if not (isinstance(raised, ConfigurationError | TypeError) and "ssl" in str(raised)):
            offenders.append(f"ssl={value!r}: {'accepted' if raised is None else repr(raised)}")
    assert not offenders, "\n".join(offenders)


def test_allow_http_must_be_a_real_bool() -> None:
    """allow_http="false" (say, from an environment variable) must not switch https off."""
    offenders = []
    for value in ("0", "false", "no", 1, None):
        raised = construction_error(base_url="http://acme.example.com", allow_http=value)
        if not (isinstance(raised, ConfigurationError | TypeError) and "http" in str(raised)):
            offenders.append(f"allow_http={value!r}: a plain-http client was built")
    assert not offenders, "\n".join(offenders)


# -- the command line ------------------------------------------------------------------------

CLI_BAD_FLAGS: list[tuple[tuple[str, ...], str]] = [
    (("--concurrency", "0"), "--concurrency must"),
    (("--concurrency", "-3"), "--concurrency must"),
    (("--timeout", "0"), "--timeout must"),
    (("--timeout", "nan"), "--timeout must"),
    (("--timeout", "inf"), "--timeout must"),
    (("--course", "../1"), "--course"),
    (("--course", "0"), "--course must"),
    (("--program", "-1"), "--program must"),
    (("--group", ""), "--group must"),
    (("--group", "   "), "--group must"),
    (("--delimiter", "ab"), "--delimiter must"),
    (("--invite", "maybe"), "--invite"),
    (("--url", "ftp://acme.example.com"), "academy URL (--url)"),
    (("--user", "nobody"), "--user 'nobody' is not a valid email"),
    (("--api-key-file", "/nonexistent/key"), "--api-key-file"),
    (("--ca-file", "/nonexistent/ca.pem"), "--ca-file"),
    (("--max-rate", "fast"), "--max-rate"),
    (("--max-rate", "0"), "--max-rate"),
]


async def test_cli_refuses_bad_flags_with_exit_2_and_sends_nothing(
    academy: SandboxAcademy, tmp_path: Path
) -> None:
    """Each bad flag of ``import`` exits 2 naming it, sends nothing and writes no journal."""
    people = tmp_path / "people.csv"
    people.write_text("email,name\nann@inputs.test,Ann\nbob@inputs.test,Bob\n")
    env = cli_env(academy)

    async def run(flags: tuple[str, ...]) -> tuple[int, str]:
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "coursepath_async",
            "import",
            str(people),
            *flags,
            env=env,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        _, err = await process.communicate()
        assert process.returncode is not None
        return process.returncode, err.decode()

    async with asyncio.timeout(60):
        results = await asyncio.gather(*(run(flags) for flags, _ in CLI_BAD_FLAGS))
    offenders = [
        f"{' '.join(flags)}: exit {code}, {err.strip()[-150:]!r}"
        for (flags, named), (code, err) in zip(CLI_BAD_FLAGS, results, strict=True)
        if code != 2 or named not in err or "Traceback" in err
    ]
    assert not offenders, "\n".join(offenders)
    assert academy.recorder.total == 0
    assert [p.name for p in await asyncio.to_thread(lambda: list(tmp_path.iterdir()))] == [
        "people.csv"
    ]

"""What the answers say, sans I/O: whom we act as, the clock, fields, rate limits, body format."""

from __future__ import annotations

import re
import statistics
from collections.abc import Iterable, Sequence
from typing import Any, Final

from attrs import frozen

from .._core import decode_model
from .._exceptions import APIResponseValidationError
from .._models import CourseMember, Member, wire_names
from .._ratelimit import quota_hint
from .._redact import REDACT, Redactor
from .._retry import http_date
from .._sansio import ApiRequest, error_message
from ._lists import page_records
from ._observed import Exchange, Observations

#: Beyond this many seconds between the clocks, tokens risk being refused as expired.
SKEW_WARNING: Final = 60.0


MEMBER_FIELDS: Final = wire_names(Member)
RESULT_FIELDS: Final = wire_names(CourseMember)

_ZONED = re.compile(r"\d{4}-\d\d-\d\d[T ]\d\d:\d\d(:\d\d(\.\d+)?)?(Z|[+-]\d\d(:?\d\d)?)", re.I)
_NAIVE = re.compile(r"\d{4}-\d\d-\d\d([T ]\d\d:\d\d(:\d\d(\.\d+)?)?)?")
_RATE_HEADER = re.compile(r"(x-)?ratelimit(-.*)?|retry-after(-ms)?")


def clock_skew(exchanges: Iterable[Exchange]) -> float | None:
    """Seconds the academy's clock runs ahead of ours (negative: behind), from ``Date`` headers.

    A ``Date`` names the second the answer was made, somewhere between our sending and
    receiving; the median over the answers is rounded to a tenth of a second.
    """
    estimates = []
    for exchange in exchanges:
        date = http_date(exchange.headers.get("date")) if exchange.status else None
        if date is not None:
            estimates.append(date + 0.5 - (exchange.sent_at + exchange.received_at) / 2)
    return round(statistics.median(estimates), 1) if estimates else None


@frozen(kw_only=True)
class AuthFinding:
    """Whether the key works, and as whom.

    ``state`` is ``ok``, ``learner`` (tokens work, admin endpoints answer 403),
    ``refused`` (401, or 403 on ``/members/me``), ``unreachable`` or ``error``.
    """

    state: str
    detail: str
    #: ``id``, ``email`` and ``name`` of the acting member, as the academy knows it.
    acting_member: dict[str, Any] | None = None


def judge_auth(
    observed: Observations, *, skew: float | None, redact: Redactor = REDACT
) -> AuthFinding:
    """Judge ``GET /members/me`` and whether admin endpoints answer."""
    me = observed.me
    if me.status is None:
        return AuthFinding(state="unreachable", detail=me.error or "no answer")
    said = error_message(me.body, redact)
    if me.status == 401:
        if observed.skew_refusals:
            why = (
                "the API key is wrong, or the academy does not know the acting member's email "
                f"(a token dated on the academy's clock, {_signed(me.signed_with)} s from ours, "
                "was refused too)"
            )
        elif skew is not None and abs(skew) > SKEW_WARNING:
            why = (
                f"the academy's clock is {_signed(skew)} s off ours, so our tokens look "
                "expired or from the future to it; fix this machine's clock (NTP). The API "
                "key may well be right"
            )
        else:
            why = "the API key is wrong, or the academy does not know the acting member's email"
        return AuthFinding(state="refused", detail=f"tokens refused (401: {said}): {why}")
    if me.status == 403:
        return AuthFinding(state="refused", detail=f"the acting member is refused (403: {said})")
    if not me.ok:
        return AuthFinding(state="error", detail=_not_an_api(me, said, redact))
    data = me.json()
    member = _acting_member(data)
    if member is None:
        detail = "GET /members/me answered no member object: is this a Coursepath academy?"
        return AuthFinding(state="error", detail=detail)
    refused = [p.path for p in observed.lists if p.first.status == 403]
    if refused:
        return AuthFinding(
            state="learner",
            detail=(
                f"{member['email']} is not an admin: {', '.join(refused)} answered 403; "
                "imports, syncs and exports need an admin's email (--user)"
            ),
            acting_member=member,
        )
    return AuthFinding(state="ok", detail="tokens accepted", acting_member=member)


def _not_an_api(me: Exchange, said: str, redact: Redactor) -> str:
    if me.status is not None and 300 <= me.status < 400:
        location = me.headers.get("location")
        where = f" to {redact(location)}" if location else ""
        return (
            f"GET /members/me answered {me.status} (a redirect{where}): is the URL the academy's?"
        )
    if me.status == 404:
        return "GET /members/me answered 404: there is no Coursepath API at this URL"
    return f"GET /members/me answered {me.status}: {said}"


def _acting_member(data: Any) -> dict[str, Any] | None:
    if not isinstance(data, dict) or type(data.get("id")) is not int:
        return None
    return {
        k: data.get(k) for k in ("id", "email", "name") if k == "id" or isinstance(data.get(k), str)
    }


def _signed(seconds: float) -> str:
    return f"{seconds:+.1f}"


@frozen(kw_only=True)
class FieldsFinding:
    """Which documented fields the sampled records carry, and whether the SDK reads them."""

    records: int
    #: Documented field → records carrying it (key present, null or not).
    present: dict[str, int]
    undocumented: tuple[str, ...] = ()
    #: Why the SDK's model refused a record; None when every record decoded.
    decode_error: str | None = None


def judge_fields(
    records: Sequence[Any], documented: Sequence[str], model: type[Any], *, redact: Redactor
) -> FieldsFinding:
    """Count the documented fields over ``records`` and decode each with the SDK's model."""
    objects = [r for r in records if isinstance(r, dict)]
    present = {name: sum(name in r for r in objects) for name in documented}
    extra = sorted({key for r in objects for key in r} - set(documented))
    request = ApiRequest(method="GET", path="(doctor sample)")
    problem = None
    for record in objects:
        try:
            decode_model(request, request.path, record, b"", model, redact=redact)
        except APIResponseValidationError as exc:
            problem = str(exc)
            break
    return FieldsFinding(
        records=len(objects), present=present, undocumented=tuple(extra), decode_error=problem
    )


def member_sample(observed: Observations) -> list[Any]:
    """Member records seen: the first page of ``/members`` (or just ``/members/me``)."""
    for probe in observed.lists:
        if probe.path == "/members" and probe.first.ok:
            records, _ = page_records(probe.first.json())
            if records:
                return records
    me = observed.me.json() if observed.me.ok else None
    return [me] if isinstance(me, dict) else []


def result_sample(observed: Observations) -> list[Any]:
    """The ``coursemember`` results fetched."""
    found = [e.json() for e in observed.results if e.ok]
    return [r for r in found if isinstance(r, dict)]


def date_kind(value: Any) -> str:
    """``absent``, ``offset`` (ISO 8601 with a zone), ``naive``, ``epoch`` or ``unparseable``."""
    if value is None or value == "":
        return "absent"
    if isinstance(value, int | float) and not isinstance(value, bool):
        return "epoch"
    if isinstance(value, str):
        if _ZONED.fullmatch(value.strip()):
            return "offset"
        if _NAIVE.fullmatch(value.strip()):
            return "naive"
    return "unparseable"


def created_date_format(records: Iterable[Any]) -> str:
    """The records' ``createdDate``: one :func:`date_kind`, ``mixed``, or ``unknown`` (none)."""
    kinds = {date_kind(r.get("createdDate")) for r in records if isinstance(r, dict)}
    if not kinds:
        return "unknown"
    return kinds.pop() if len(kinds) == 1 else "mixed"


@frozen(kw_only=True)
class RateFinding:
    """Rate-limit headers seen (name → last value), refusals for the rate, a policy's rate."""

    headers: dict[str, str]
    refusals: int
    policy_rate: float | None = None


def judge_rate(exchanges: Iterable[Exchange], *, redact: Redactor = REDACT) -> RateFinding:
    """Collect the rate-limit headers and the refusals (429, 503 with Retry-After) seen."""
    headers: dict[str, str] = {}
    refusals = 0
    rate = None
    for exchange in exchanges:
        for name, value in exchange.headers.items():
            if _RATE_HEADER.fullmatch(name):
                headers[name] = redact(value)
        if exchange.status == 429 or (exchange.status == 503 and "retry-after" in exchange.headers):
            refusals += 1
        hint = quota_hint(exchange.headers, now=exchange.received_at)
        if hint is not None and hint.rate is not None:
            rate = hint.rate
    return RateFinding(headers=dict(sorted(headers.items())), refusals=refusals, policy_rate=rate)


def judge_body_format(observed: Observations, *, redact: Redactor = REDACT) -> tuple[str, str]:
    """``json``, ``form`` or ``unknown``, and how the ``--write-check`` update showed it."""
    if not observed.write_check:
        return "unknown", "not checked (--write-check tries one harmless update)"
    if not observed.writes:
        return "unknown", "not checked: no acting member with an id and a name to write back"
    first = observed.writes[0]
    if first.ok:
        return "json", f"the update with a JSON body answered {first.status}"
    if first.status == 415 and len(observed.writes) > 1:
        form = observed.writes[1]
        if form.ok:
            return "form", f"a JSON body answered 415, the same update as a form {form.status}"
        return "unknown", f"a JSON body answered 415, a form {_failure(form, redact)}"
    return "unknown", f"the update with a JSON body answered {_failure(first, redact)}"


def _failure(exchange: Exchange, redact: Redactor) -> str:
    if exchange.status is None:
        return f"nothing: {exchange.error}"
    return f"{exchange.status} ({error_message(exchange.body, redact)})"

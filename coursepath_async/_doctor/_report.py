"""The doctor's verdict: findings → problems, warnings and what the SDK will do; its JSON.

Exit codes: 0 the academy is usable as configured, 1 usable with warnings, 2 not usable
(unreachable, tokens refused, the acting member is a learner, not a Coursepath API).
"""

from __future__ import annotations

from typing import Any, Final

from attrs import frozen

from .._cursor import DOCUMENTED_CAPS
from .._models import CourseMember, Member
from .._redact import REDACT, Redactor
from ._findings import (
    MEMBER_FIELDS,
    RESULT_FIELDS,
    SKEW_WARNING,
    AuthFinding,
    FieldsFinding,
    RateFinding,
    clock_skew,
    created_date_format,
    judge_auth,
    judge_body_format,
    judge_fields,
    judge_rate,
    member_sample,
    result_sample,
)
from ._lists import SDK_PAGE_SIZES, ListFinding, judge_list, overall_shape
from ._observed import Observations

EXIT_USABLE, EXIT_WARNINGS, EXIT_UNUSABLE = 0, 1, 2

_DOCUMENTED: Final = ", ".join(str(cap) for cap in sorted(DOCUMENTED_CAPS))


@frozen(kw_only=True)
class Report:
    """Everything the doctor found about one academy."""

    academy: str
    user: str
    auth: AuthFinding
    clock_skew_s: float | None
    lists: tuple[ListFinding, ...]
    members: FieldsFinding
    results: FieldsFinding
    created_date: str
    rate: RateFinding
    body_format: str
    body_format_detail: str
    problems: tuple[str, ...]
    warnings: tuple[str, ...]
    #: What the SDK will do with this academy, one sentence each.
    sdk: tuple[str, ...]

    @property
    def exit_code(self) -> int:
        """0 usable, 1 usable with warnings, 2 not usable."""
        if self.problems:
            return EXIT_UNUSABLE
        return EXIT_WARNINGS if self.warnings else EXIT_USABLE

    @property
    def list_shape(self) -> str:
        """``bare``, ``wrapped``, ``mixed`` or ``unknown``."""
        return overall_shape(list(self.lists))

    def as_json(self) -> dict[str, Any]:
        """The report as one JSON object (``--json``)."""
        return {
            "academy": self.academy,
            "user": self.user,
            "auth": self.auth.state,
            "auth_detail": self.auth.detail,
            "acting_member": self.auth.acting_member,
            "clock_skew_s": self.clock_skew_s,
            "list_shape": self.list_shape,
            "page_caps": {f.path: f.cap for f in self.lists},
            "page_caps_at_least": {f.path: f.at_least for f in self.lists if f.cap is None},
            "lists": {f.path: _list_json(f) for f in self.lists},
            "created_date": self.created_date,
            "fields": {
                "members": _fields_json(self.members),
                "results": _fields_json(self.results),
            },
            "rate_limit": {
                "headers": self.rate.headers,
                "refusals": self.rate.refusals,
                "policy_rate": self.rate.policy_rate,
            },
            "body_format": self.body_format,
            "body_format_detail": self.body_format_detail,
            "sdk": list(self.sdk),
            "warnings": list(self.warnings),
            "problems": list(self.problems),
            "exit_code": self.exit_code,
        }


def _list_json(finding: ListFinding) -> dict[str, Any]:
    return {
        "shape": finding.shape,
        "asked": finding.asked,
        "returned": finding.returned,
        "cap": finding.cap,
        "at_least": finding.at_least,
        "total": finding.total,
        "sdk_page_size": SDK_PAGE_SIZES.get(finding.path),
        "sdk_lists_all": finding.sdk_lists_all,
        "problem": finding.problem,
    }


def _fields_json(fields: FieldsFinding) -> dict[str, Any]:
    return {
        "records": fields.records,
        "present": fields.present,
        "undocumented": list(fields.undocumented),
        "decode_error": fields.decode_error,
    }


def diagnose(
    observed: Observations, *, academy: str, user: str, redact: Redactor = REDACT
) -> Report:
    """Judge everything the probes saw."""
    exchanges = observed.exchanges()
    skew = clock_skew(exchanges)
    auth = judge_auth(observed, skew=skew, redact=redact)
    lists = tuple(
        judge_list(probe, sdk_page_size=SDK_PAGE_SIZES.get(probe.path, probe.limit))
        for probe in observed.lists
    )
    member_records, result_records = member_sample(observed), result_sample(observed)
    members = judge_fields(member_records, MEMBER_FIELDS, Member, redact=redact)
    results = judge_fields(result_records, RESULT_FIELDS, CourseMember, redact=redact)
    created = created_date_format([*member_records, *result_records])
    rate = judge_rate(exchanges, redact=redact)
    body_format, body_detail = judge_body_format(observed, redact=redact)
    problems = () if auth.state == "ok" else (auth.detail,)
    warnings = _warnings(auth, skew, lists, members, results, observed, body_format, body_detail)
    return Report(
        academy=academy,
        user=user,
        auth=auth,
        clock_skew_s=skew,
        lists=lists,
        members=members,
        results=results,
        created_date=created,
        rate=rate,
        body_format=body_format,
        body_format_detail=body_detail,
        problems=problems,
        warnings=warnings,
        sdk=_sdk(auth, skew, lists, created, rate, body_format) if not problems else (),
    )


def _warnings(
    auth: AuthFinding,
    skew: float | None,
    lists: tuple[ListFinding, ...],
    members: FieldsFinding,
    results: FieldsFinding,
    observed: Observations,
    body_format: str,
    body_detail: str,
) -> tuple[str, ...]:
    out: list[str] = []
    misdated = len(observed.skew_refusals)
    if misdated and auth.state != "refused":
        off = "" if skew is None else f" {skew:+.1f} s"
        out.append(
            f"the academy's clock is{off} off ours: {misdated} token(s) dated on our clock "
            "were refused (401). The SDK learns the academy's clock from its Date headers "
            "and signs on it (so this check got through, and so will your jobs), resending "
            "a call refused that way once; fix this machine's clock (NTP)"
        )
    elif skew is not None and abs(skew) > SKEW_WARNING and auth.state != "refused":
        out.append(
            f"the academy's clock is {skew:+.1f} s off ours (more than {SKEW_WARNING:g} s): "
            "tokens older than a couple of minutes, or from the future, are refused; fix "
            "this machine's clock (NTP)"
        )
    if auth.state not in ("ok", "learner"):
        return tuple(out)
    for finding in lists:
        if finding.problem is not None and finding.status != 403:
            out.append(f"GET {finding.path}: {finding.problem}")
        elif finding.sdk_lists_all is False:
            size = SDK_PAGE_SIZES.get(finding.path, finding.asked)
            out.append(
                f"GET {finding.path} caps pages at {finding.cap}, below the {size} the SDK "
                f"asks for and not a documented cap ({_DOCUMENTED}): its listings would end "
                f"after {finding.cap} records"
            )
    for what, fields in (("members", members), ("course results", results)):
        if fields.decode_error is not None:
            out.append(f"the SDK cannot read the {what} this academy sends: {fields.decode_error}")
    if observed.write_check and body_format == "unknown":
        out.append(f"--write-check: {body_detail}")
    return tuple(out)


def _sdk(
    auth: AuthFinding,
    skew: float | None,
    lists: tuple[ListFinding, ...],
    created: str,
    rate: RateFinding,
    body_format: str,
) -> tuple[str, ...]:
    member = auth.acting_member or {}
    out = [
        f"act as {member.get('email', '?')} (member {member.get('id')}), signing a fresh "
        "single-use token for every attempt"
    ]
    if skew is not None and abs(skew) <= SKEW_WARNING:
        out.append(f"sign tokens whose iat the academy accepts: the clocks are {skew:+.1f} s apart")
    elif skew is not None:
        out.append(
            f"date every token's iat on the academy's clock ({skew:+.1f} s from ours, learnt "
            "from Date headers), and resend once a call whose token it refused as misdated"
        )
    answered = [f for f in lists if f.shape in ("bare", "wrapped")]
    if answered:
        sizes = ", ".join(_page_size(f) for f in answered)
        out.append(f"list in pages of {sizes}, advancing by what arrives")
    if any(f.shape == "wrapped" for f in answered):
        out.append("unwrap lists answered as an object, and bound each listing by its `total`")
    if created == "absent":
        out.append("leave created_date None: nothing in the SDK depends on createdDate")
    elif created in ("naive", "mixed"):
        out.append("read zone-less createdDate values as UTC")
    if rate.policy_rate is not None:
        out.append(
            f"pace requests at the {rate.policy_rate:g}/s the academy's RateLimit-Policy allows"
        )
    if rate.refusals:
        out.append(
            f"wait out refusals for the rate ({rate.refusals} seen here): the rate governor "
            "paces the whole client, and a refusal never fails a row"
        )
    if body_format == "form":
        out.append(
            "send writes form-encoded: the default body_format='auto' switches after the "
            "first 415 (nothing applied); body_format='form' skips that one refusal"
        )
    elif body_format == "json":
        out.append("send writes as JSON (the default body_format='auto' starts with JSON)")
    return tuple(out)


def _page_size(finding: ListFinding) -> str:
    """The page size a listing through the SDK gets from this endpoint, and how."""
    size = SDK_PAGE_SIZES.get(finding.path, finding.asked)
    if finding.cap is None or finding.cap >= size:
        return f"{finding.path} {size}"
    if finding.sdk_lists_all:
        return f"{finding.path} {finding.cap} (a documented cap, learnt from the first page)"
    return f"{finding.path} {finding.cap} and no further (see the warnings)"

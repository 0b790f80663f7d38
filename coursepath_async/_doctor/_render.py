"""The doctor's report as text for a terminal: one line per finding, then advice and warnings."""

from __future__ import annotations

from typing import Final

from ._findings import FieldsFinding, RateFinding
from ._lists import ListFinding
from ._report import Report

_DATE_KINDS: Final = {
    "offset": "ISO 8601 with a zone or offset",
    "naive": "ISO 8601 without a zone (read as UTC)",
    "epoch": "Unix time numbers",
    "absent": "absent from every record",
    "mixed": "several forms, or absent from some records",
    "unparseable": "present, but not a date",
    "unknown": "no records seen",
}


def render(report: Report) -> str:
    """The report as text for a terminal."""
    member = report.auth.acting_member
    lines = [f"coursepath-async doctor: {report.academy} as {report.user}"]
    who = ""
    if member is not None:
        who = f": member {member.get('id')} {member.get('email', '')} {member.get('name', '')}"
    lines.append(_row("auth", f"{report.auth.state}{who.rstrip()}"))
    if report.auth.state != "ok":
        lines.append(_row("", report.auth.detail))
    skew = report.clock_skew_s
    lines.append(
        _row("clock skew", "unknown (no Date header)" if skew is None else _skew_text(skew))
    )
    if report.lists:
        lines.append(_row("list shape", report.list_shape))
        lines.append("page caps (each list asked for limit=1000)")
        lines.extend(f"  {f.path:<24} {_cap_text(f)}" for f in report.lists)
        lines.append(_row("members", _fields_text(report.members)))
        lines.append(_row("results", _fields_text(report.results)))
        kind = report.created_date
        lines.append(_row("createdDate", f"{kind}: {_DATE_KINDS.get(kind, kind)}"))
    lines.append(_row("rate limits", _rate_text(report.rate)))
    lines.append(_row("body format", f"{report.body_format}: {report.body_format_detail}"))
    for title, items in (("the SDK will", report.sdk), ("warnings", report.warnings)):
        if items:
            lines.append(title)
            lines.extend(f"  - {item}" for item in items)
    verdict = {0: "usable", 1: "usable, with warnings", 2: "NOT usable"}[report.exit_code]
    lines.append(f"verdict: {verdict} (exit {report.exit_code})")
    return "\n".join(lines)


def _row(name: str, text: str) -> str:
    return f"{name:<14}{text}"


def _skew_text(skew: float) -> str:
    side = "ahead of" if skew > 0 else "behind" if skew < 0 else "level with"
    return f"{skew:+.1f} s (the academy's clock is {side} ours)"


def _cap_text(finding: ListFinding) -> str:
    if finding.problem is not None and finding.returned is None:
        return f"not checked: {finding.problem}"
    if finding.cap is not None:
        text = f"{finding.cap} (confirmed: more records follow a page of {finding.cap})"
    elif finding.at_least == finding.asked:
        text = f"at least {finding.asked} (the limit asked for was honoured)"
    elif finding.at_least:
        text = f"at least {finding.at_least} (all its {finding.at_least} records fit one page)"
    else:
        text = "unknown (no records)"
    if finding.shape == "wrapped":
        text += ", wrapped" + ("" if finding.total is None else f", total {finding.total}")
    return text + (f"; {finding.problem}" if finding.problem else "")


def _fields_text(fields: FieldsFinding) -> str:
    if not fields.records:
        return "none seen"
    have = [n for n, c in fields.present.items() if c == fields.records]
    some = [
        f"{n} ({c}/{fields.records})" for n, c in fields.present.items() if 0 < c < fields.records
    ]
    absent = [n for n, c in fields.present.items() if c == 0]
    parts = [f"{fields.records} seen; " + (" ".join(have) or "no documented field")]
    if some:
        parts.append("some: " + " ".join(some))
    if absent:
        parts.append("absent: " + " ".join(absent))
    if fields.undocumented:
        parts.append("also: " + " ".join(fields.undocumented[:10]))
    return "; ".join(parts)


def _rate_text(rate: RateFinding) -> str:
    parts = [f"{name}: {value}" for name, value in rate.headers.items()] or ["no headers seen"]
    if rate.refusals:
        parts.append(f"{rate.refusals} refusal(s) for the rate waited out")
    return "; ".join(parts)

"""The doctor's judgement, sans I/O: recorded answers in, findings, verdict and JSON out."""

from __future__ import annotations

from email.utils import formatdate
from typing import Any

import orjson
import pytest

from coursepath_async import Member
from coursepath_async._doctor._findings import (
    MEMBER_FIELDS,
    clock_skew,
    created_date_format,
    judge_auth,
    judge_body_format,
    judge_fields,
    judge_rate,
)
from coursepath_async._doctor._lists import judge_list, overall_shape, sdk_lists_all
from coursepath_async._doctor._observed import Exchange, ListProbe, Observations
from coursepath_async._doctor._probe import MAX_WAIT, refusal_wait
from coursepath_async._doctor._render import render
from coursepath_async._doctor._report import diagnose
from coursepath_async._redact import REDACT

NOW = 1_800_000_000.0
EMAIL = "admin@doctor.test"
ME: dict[str, Any] = {"id": 1, "email": EMAIL, "name": "Admin"}


def answer(
    path: str,
    body: Any = None,
    *,
    status: int = 200,
    headers: dict[str, str] | None = None,
    method: str = "GET",
    raw: bytes | None = None,
) -> Exchange:
    """A recorded exchange answered ``status`` with ``body`` as JSON, at NOW."""
    data = raw if raw is not None else (b"" if body is None else orjson.dumps(body))
    return Exchange(
        method=method,
        path=path,
        target=path,
        status=status,
        headers=headers or {},
        body=data,
        sent_at=NOW,
        received_at=NOW + 0.2,
    )


def members(first: int, count: int) -> list[dict[str, Any]]:
    """``count`` member records with ids from ``first``."""
    return [
        {"id": i, "email": f"m{i}@doctor.test", "name": f"M {i}"}
        for i in range(first, first + count)
    ]


def probe(path: str, first: Any, following: Any = None, **kwargs: Any) -> ListProbe:
    """A list probe: the first page, and the page after it when given."""
    after = None if following is None else answer(path, following)
    return ListProbe(path=path, limit=1000, first=answer(path, first, **kwargs), following=after)


def dated(offset: float) -> dict[str, str]:
    """A Date header on a clock ``offset`` seconds ahead of NOW."""
    return {"date": formatdate(NOW + offset, usegmt=True)}


def test_clock_skew_is_measured_from_date_headers_with_its_sign() -> None:
    """A Date 300 s ahead reads as about +300 s, 90 s behind as about -90 s; no Date, None."""
    ahead = clock_skew([answer("/members/me", ME, headers=dated(300))] * 3)
    behind = clock_skew([answer("/members/me", ME, headers=dated(-90))])
    assert ahead is not None
    assert 299 <= ahead <= 301
    assert behind is not None
    assert -91 <= behind <= -89
    assert clock_skew([answer("/members/me", ME)]) is None


def test_a_short_page_with_records_beyond_it_confirms_the_cap() -> None:
    """500 of 1000 asked, then a non-empty page after them: the cap is 500; the SDK lists it all."""
    found = judge_list(probe("/members", members(1, 500), members(501, 200)), sdk_page_size=500)
    assert (found.cap, found.at_least, found.sdk_lists_all) == (500, None, True)


def test_a_short_page_that_is_all_there_is_only_bounds_the_cap() -> None:
    """8 records and an empty page after them: the cap is at least 8, not 8."""
    found = judge_list(probe("/courses", members(1, 8), []), sdk_page_size=250)
    assert (found.cap, found.at_least) == (None, 8)


def test_a_wrapped_total_confirms_the_cap_without_the_next_page() -> None:
    """``{"data": [...100], "total": 340}``: wrapped, the cap is 100."""
    found = judge_list(probe("/groups", {"data": members(1, 100), "total": 340}), sdk_page_size=100)
    assert (found.shape, found.cap, found.total) == ("wrapped", 100, 340)


def test_an_honoured_limit_says_at_least_the_limit() -> None:
    """1000 records for limit=1000: the cap is at least 1000."""
    found = judge_list(probe("/members", members(1, 1000)), sdk_page_size=500)
    assert (found.cap, found.at_least, found.problem) == (None, 1000, None)


def test_more_records_than_asked_for_is_a_problem() -> None:
    """1001 records for limit=1000 is named as a page the SDK refuses."""
    found = judge_list(probe("/members", members(1, 1001)), sdk_page_size=500)
    assert found.problem is not None
    assert "1,001 records" in found.problem


def test_a_list_wrapped_under_an_unknown_key_is_unreadable() -> None:
    """``{"rows": [...]}`` is not a list the SDK reads: shape invalid, the keys it reads named."""
    found = judge_list(probe("/members", {"rows": members(1, 3)}), sdk_page_size=500)
    assert found.shape == "invalid"
    assert found.problem is not None
    assert "data, items" in found.problem


def test_a_server_ignoring_offset_is_named() -> None:
    """The page after a short first page repeats it: offset is ignored, listings would loop."""
    found = judge_list(probe("/members", members(1, 200), members(1, 200)), sdk_page_size=500)
    assert found.problem is not None
    assert "ignore offset" in found.problem
    assert found.sdk_lists_all is False


@pytest.mark.parametrize(
    ("cap", "size", "whole"),
    [(500, 500, True), (100, 500, True), (250, 500, True), (200, 500, False)],
)
def test_the_sdk_lists_a_whole_listing_only_at_sizes_its_cursor_can_learn(
    cap: int, size: int, whole: bool
) -> None:
    """A documented cap below the page size is learnt; an undocumented one (200) ends listings."""
    assert sdk_lists_all(cap, size) is whole


def test_list_shapes_combine_into_one() -> None:
    """Bare everywhere is bare; bare and wrapped is mixed; nothing answered is unknown."""
    bare = judge_list(probe("/members", []), sdk_page_size=500)
    wrapped = judge_list(probe("/groups", {"items": []}), sdk_page_size=100)
    assert overall_shape([bare, bare]) == "bare"
    assert overall_shape([bare, wrapped]) == "mixed"
    assert overall_shape([]) == "unknown"


@pytest.mark.parametrize(
    ("values", "kind"),
    [
        (["2026-12-02T08:31:05+01:00", "2026-12-02T07:31:05Z"], "offset"),
        (["2026-12-02 07:31:05"], "naive"),
        ([None, ""], "absent"),
        ([1764660665000], "epoch"),
        (["2026-12-02T07:31:05Z", None], "mixed"),
        (["yesterday"], "unparseable"),
    ],
)
def test_created_date_formats_are_told_apart(values: list[Any], kind: str) -> None:
    """Zoned, zone-less, absent, epoch, mixed and garbage createdDate values."""
    records = [{"id": 1, "createdDate": v} for v in values]
    assert created_date_format(records) == kind
    assert created_date_format([{"id": 1}]) == "absent"
    assert created_date_format([]) == "unknown"


def test_fields_are_counted_and_decoded_with_the_sdks_model() -> None:
    """Documented fields are counted, extras named, and a record the model refuses is reported."""
    records = [
        {**ME, "createdDate": "2026-12-02 07:31:05", "role": "admin"},
        {"id": 2, "email": "x@y.test"},
    ]
    found = judge_fields(records, MEMBER_FIELDS, Member, redact=REDACT)
    assert found.present["name"] == 1
    assert found.present["email"] == 2
    assert found.undocumented == ("role",)
    assert found.decode_error is None
    bad = judge_fields([{"id": "seven", "email": "x@y.test"}], MEMBER_FIELDS, Member, redact=REDACT)
    assert bad.decode_error is not None
    assert "Member" in bad.decode_error


def test_rate_limit_headers_and_refusals_are_collected() -> None:
    """Rate-limit headers are kept, 429s counted, and a RateLimit-Policy gives a rate."""
    exchanges = [
        answer(
            "/members", [], headers={"x-ratelimit-remaining": "7", "ratelimit-policy": "120;w=60"}
        ),
        answer("/groups", {"error": "slow down"}, status=429, headers={"retry-after": "1"}),
        answer("/courses", [], headers={"content-type": "application/json"}),
    ]
    found = judge_rate(exchanges)
    assert found.headers == {
        "ratelimit-policy": "120;w=60",
        "retry-after": "1",
        "x-ratelimit-remaining": "7",
    }
    assert (found.refusals, found.policy_rate) == (1, 2.0)


def _observed(*writes: Exchange, write_check: bool = True) -> Observations:
    return Observations(me=answer("/members/me", ME), writes=writes, write_check=write_check)


def test_the_body_format_comes_from_the_write_check_only() -> None:
    """JSON accepted → json; 415 then form accepted → form; not asked → unknown."""
    ok = answer("/members/{id}", ME, method="POST")
    refused = answer("/members/{id}", {"error": "unsupported"}, status=415, method="POST")
    assert judge_body_format(_observed(ok))[0] == "json"
    assert judge_body_format(_observed(refused, ok))[0] == "form"
    assert judge_body_format(_observed(refused, refused))[0] == "unknown"
    assert judge_body_format(_observed(write_check=False)) == (
        "unknown",
        "not checked (--write-check tries one harmless update)",
    )


def test_a_401_with_a_skewed_clock_blames_the_clock_not_the_key() -> None:
    """A 401 whose Date is 600 s ahead says the clock; a 401 on a true clock says the key."""
    refused = Observations(me=answer("/members/me", {"error": "unauthorized"}, status=401))
    clock = judge_auth(refused, skew=600.0)
    key = judge_auth(refused, skew=0.4)
    assert clock.state == key.state == "refused"
    assert "clock" in clock.detail
    assert "+600.0" in clock.detail
    assert "API key is wrong" in key.detail


def test_a_learner_is_told_that_admin_endpoints_refuse_it() -> None:
    """/members/me answers but /members is 403: auth is 'learner', exit 2, the lists named."""
    observed = Observations(
        me=answer("/members/me", ME),
        lists=(probe("/members", {"error": "forbidden"}, status=403),),
    )
    report = diagnose(observed, academy="https://acme.test", user=EMAIL)
    assert report.auth.state == "learner"
    assert "/members answered 403" in report.auth.detail
    assert report.exit_code == 2


def test_no_answer_and_no_api_are_not_usable() -> None:
    """A connection failure is 'unreachable', a 404 on /members/me 'error'; both exit 2."""
    gone = Exchange(method="GET", path="/members/me", target="/members/me", error="cannot connect")
    unreachable = diagnose(Observations(me=gone), academy="https://a.test", user="u@a.test")
    missing = diagnose(
        Observations(me=answer("/members/me", raw=b"<html>nope</html>", status=404)),
        academy="https://a.test",
        user="u@a.test",
    )
    assert (unreachable.auth.state, unreachable.exit_code) == ("unreachable", 2)
    assert (missing.auth.state, missing.exit_code) == ("error", 2)
    assert "no Coursepath API" in missing.auth.detail


def test_a_usable_academy_reports_every_required_key() -> None:
    """A clean academy exits 0 and its JSON carries auth, caps, shape, skew, dates, body format."""
    observed = Observations(
        me=answer("/members/me", ME, headers=dated(0)),
        lists=(probe("/members", members(1, 500), members(501, 10)), probe("/groups", [])),
    )
    report = diagnose(observed, academy="https://acme.test", user=EMAIL)
    data = report.as_json()
    assert report.exit_code == 0, report.warnings
    assert data["auth"] == "ok"
    assert data["acting_member"] == ME
    assert data["page_caps"] == {"/members": 500, "/groups": None}
    assert data["list_shape"] == "bare"
    assert data["body_format"] == "unknown"
    assert data["created_date"] == "absent"
    assert -1 <= data["clock_skew_s"] <= 1
    assert "verdict: usable (exit 0)" in render(report)


def test_an_undocumented_small_cap_and_a_skewed_clock_are_warnings() -> None:
    """A cap of 200 (the SDK would stop listings there) and a 90 s skew exit 1, each named."""
    observed = Observations(
        me=answer("/members/me", ME, headers=dated(90)),
        lists=(probe("/members", members(1, 200), members(201, 5)),),
    )
    report = diagnose(observed, academy="https://acme.test", user=EMAIL)
    assert report.exit_code == 1
    assert any("+90" in w or "+89" in w for w in report.warnings)
    assert any("end after 200 records" in w for w in report.warnings)


@pytest.mark.parametrize(
    ("status", "headers", "attempt", "wait"),
    [
        (429, {"retry-after": "2"}, 0, 2.0),
        (429, {}, 2, 2.0),
        (429, {"retry-after": "3600"}, 0, MAX_WAIT),
        (503, {"retry-after": "1"}, 0, 1.0),
        (503, {}, 0, None),
        (200, {}, 0, None),
    ],
)
def test_only_refusals_for_the_rate_are_waited_out(
    status: int, headers: dict[str, str], attempt: int, wait: float | None
) -> None:
    """429 (Retry-After, else backoff) and 503 with Retry-After wait, capped; others do not."""
    assert refusal_wait(answer("/members", [], status=status, headers=headers), attempt) == wait

"""The doctor against every academy dialect: usable everywhere, and it names what differs.

Each preset of ``DIALECTS`` is probed in process, with ``--write-check``, through the
client's own pool: no dialect may make the doctor call a working academy unusable, and
what the doctor can see (list shape, caps, createdDate, body format, clock skew) it
reports as the dialect sets it.
"""

from __future__ import annotations

from typing import Any

import pytest
from conftest import make_client, sandbox

from coursepath_async._doctor._probe import examine
from coursepath_async._doctor._report import Report, diagnose
from coursepath_async.testing import DIALECTS, SandboxAcademy

#: Per dialect, what the doctor's JSON must say beyond "usable".
EXPECTED: dict[str, dict[str, Any]] = {
    "naive_dates": {"created_date": "naive"},
    "no_dates": {"created_date": "absent"},
    "form_only": {"body_format": "form"},
    "json_only": {"body_format": "json"},
    "wrapped_lists": {"list_shape": "wrapped"},
    "all": {"list_shape": "wrapped", "created_date": "absent", "body_format": "form"},
}
#: Dialects whose clock is 300 s off ours: usable, with the skew as a warning (exit 1).
SKEWED = {"clock_ahead": 300.0, "clock_behind": -300.0, "all": 300.0}


async def check(dialect: str, **client_options: Any) -> tuple[Report, SandboxAcademy]:
    """The doctor's report (with ``--write-check``) on a sandbox speaking ``dialect``."""
    async with (
        sandbox(dialect=dialect, members=130, courses=2, groups=3, seed=5) as academy,
        make_client(academy, **client_options) as client,
    ):
        core = client._core
        observed = await examine(core, client.user, write_check=True)
        report = diagnose(observed, academy=client.base_url, user=client.user)
    return report, academy


@pytest.mark.parametrize("dialect", sorted(DIALECTS))
async def test_the_doctor_finds_every_dialect_usable_and_reports_what_it_sets(dialect: str) -> None:
    """Auth ok, no problem, and the dialect's shape, dates, body format and skew as set."""
    report, academy = await check(dialect)
    data = report.as_json()
    assert data["auth"] == "ok", data["auth_detail"]
    assert data["problems"] == []
    assert data["acting_member"]["email"] == academy.admin_email
    for key, value in EXPECTED.get(dialect, {}).items():
        assert data[key] == value, key
    if dialect == "swapped_caps":  # 130 members past a cap of 100: confirmed by the next page
        assert data["page_caps"]["/members"] == 100
    else:
        assert data["page_caps"]["/members"] is None  # no cap under 130, or limit honoured
    offset = SKEWED.get(dialect)
    if offset is None:
        assert data["exit_code"] == 0, data["warnings"]
        assert abs(data["clock_skew_s"]) < 5
        return
    assert data["exit_code"] == 1
    assert data["clock_skew_s"] == pytest.approx(offset, abs=5)
    (warning,) = data["warnings"]
    assert "1 token(s) dated on our clock were refused (401)" in warning
    assert "NTP" in warning
    assert any("on the academy's clock" in line for line in data["sdk"])
    # Once refused on our clock, every later token is dated on the academy's.
    assert academy.recorder.rejected_tokens
    assert sum(academy.recorder.rejected_tokens.values()) == 1


async def test_a_wrong_key_behind_a_skewed_clock_is_blamed_on_the_key_after_one_resend() -> None:
    """Resigned on the academy's clock and refused again: exit 2, the key named, no loop."""
    report, academy = await check(
        "clock_ahead", api_key="wrong-key-0123456789abcdefghijklmnopqrstuvw"
    )
    assert report.exit_code == 2
    assert report.auth.state == "refused"
    assert "API key is wrong" in report.auth.detail
    assert "refused too" in report.auth.detail
    me_calls = [r for r in academy.recorder.requests if r.path.endswith("/members/me")]
    assert len(me_calls) == 2  # ours, then one on the academy's clock

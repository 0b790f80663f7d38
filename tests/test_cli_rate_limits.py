"""The CLI behind a rate limiter: ``import --invite`` at the limiter's pace, ``--max-rate``."""

from __future__ import annotations

import email.utils
import time
from pathlib import Path

import aiohttp
import orjson
import pytest
from cli_env import run_cli, served_sandbox

from coursepath_async.testing import SandboxAcademy
from coursepath_async.testing._limiter import RATE_LIMIT_STYLES, RateLimitStyle


def _admitted(academy: SandboxAcademy) -> int:
    """Requests the limiter let through."""
    return sum(1 for r in academy.recorder.requests if r.fault != "rate_limited")


@pytest.mark.parametrize("style", RATE_LIMIT_STYLES)
async def test_the_cli_import_finishes_at_the_limiters_pace(
    style: RateLimitStyle, tmp_path: Path
) -> None:
    """``import FILE --invite`` with the CLI's defaults: 0 rows failed, 0 invitations lost."""
    # A small bucket at a low rate: the CLI's first concurrent requests overrun it on any
    # machine, however loaded, so refusals happen without depending on our speed.
    rows, rate = 80, 60.0
    people = tmp_path / "people.csv"
    people.write_text("email,name\n" + "".join(f"p{i}@pace.test,Person {i}\n" for i in range(rows)))
    report_path = tmp_path / "report.json"
    offset = 90.0 if style == "429-date" else 0.0
    async with SandboxAcademy(
        members=1,
        seed=3,
        rate_limit=rate,
        rate_limit_style=style,
        rate_limit_burst=2,
        clock_offset=offset,
    ) as academy:
        code, _, err = await run_cli(
            academy, "import", str(people), "--invite", f"--report={report_path}"
        )
        invitations = dict(academy.recorder.invitations)
        limiter = academy.limiter
    totals = orjson.loads(report_path.read_bytes())["totals"]
    assert code == 0, err[-500:]
    assert (totals["rows"], totals["succeeded"], totals["created"]) == (rows, rows, rows)
    assert totals["invitations_sent"] == rows
    assert len(invitations) == rows
    assert set(invitations.values()) == {1}
    assert limiter is not None
    assert limiter.refused > 0
    assert "rate limit:" in err
    # The pace is timed by the benchmark (python -m benchmarks --only 9), not asserted here.


async def test_max_rate_holds_the_cli_to_it(tmp_path: Path) -> None:
    """COURSEPATH_MAX_RATE=20 spreads 30 creates over 1.5 s, with no server limit at all."""
    people = tmp_path / "people.csv"
    people.write_text("email,name\n" + "".join(f"m{i}@cap.test,M {i}\n" for i in range(30)))
    async with SandboxAcademy(members=1, seed=3) as academy:
        code, _, err = await run_cli(academy, "import", str(people), COURSEPATH_MAX_RATE="20/s")
        # The creates: the preflight's two reads come before them.
        starts = sorted(r.started for r in academy.recorder.requests if r.method == "POST")
    assert code == 0, err[-500:]
    assert len(starts) == 30
    assert starts[-1] - starts[0] >= (30 - 2) / 20  # a bucket of one, then 20 a second
    assert "rate limit: 20 req/s" in err


async def test_the_sandbox_command_serves_a_limiter() -> None:
    """``sandbox --rate-limit 5/s --rate-limit-style 503-retry-after --clock-offset 90``."""
    limiter = ("--rate-limit", "5/s", "--rate-limit-burst", "1", "--rate-limit-style")
    options = ("--members", "2", *limiter, "503-retry-after", "--clock-offset", "90")
    async with served_sandbox(*options) as (url, banner), aiohttp.ClientSession() as session:
        statuses, headers = [], []
        for _ in range(2):
            async with session.get(url + "/api/v1/members/me") as response:
                statuses.append(response.status)
                headers.append(response.headers.copy())
    assert "rate limited to 5 requests/s (503-retry-after)" in "".join(banner)
    assert statuses == [401, 503]  # the gateway spends a token before the app says 401
    assert headers[1]["Retry-After"] == "1"
    date = email.utils.parsedate_to_datetime(headers[1]["Date"]).timestamp()
    assert 88 <= date - time.time() <= 91


async def test_a_bad_rate_limit_flag_is_a_usage_error() -> None:
    """``--rate-limit fast`` exits 2 naming the flag."""
    code, _, err = await run_cli(None, "sandbox", "--rate-limit", "fast")
    assert code == 2
    assert "--rate-limit" in err

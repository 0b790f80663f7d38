"""The sandbox's rate limiter (a gateway's token bucket) and its clock offset, over raw HTTP."""

from __future__ import annotations

import asyncio
import email.utils
import time

import pytest
from fake_clock import FakeClock
from sandbox_raw import running

from coursepath_async.testing._limiter import Limiter, RateLimit


def _limiter(style: str = "429", **options: float) -> tuple[Limiter, FakeClock]:
    clock = FakeClock(500.0)
    limit = RateLimit(rate=options.pop("rate", 10.0), style=style, **options)  # type: ignore[arg-type]
    return Limiter(limit, clock=clock, wall=lambda: 1_700_000_000.25 + clock.now), clock


def test_the_bucket_admits_a_burst_then_the_rate() -> None:
    """Full at first (a second's worth), then one admission per 1/rate seconds."""
    limiter, clock = _limiter(rate=10.0)
    assert [limiter.admit() is None for _ in range(11)] == [True] * 10 + [False]
    clock.now += 0.1
    assert limiter.admit() is None
    assert limiter.admit() is not None
    assert limiter.refused == 2


def test_a_refusal_costs_no_token() -> None:
    """Refused requests do not drain the bucket: a steady client at the rate gets through."""
    limiter, clock = _limiter(rate=10.0, burst=1.0)
    assert limiter.admit() is None
    for _ in range(50):  # hammering in between changes nothing
        assert limiter.admit() is not None
    clock.now += 0.1
    assert limiter.admit() is None


def test_the_429_style_names_no_wait() -> None:
    """A plain 429 with a JSON body and no Retry-After."""
    limiter, _ = _limiter("429", burst=1.0)
    limiter.admit()
    reply = limiter.admit()
    assert reply is not None
    assert (reply.status, dict(reply.headers)) == (429, {})
    assert b"rate_limited" in reply.body


def test_the_dated_style_asks_for_a_second_on_the_servers_clock() -> None:
    """A dated Retry-After: the server's time plus the wait, rounded up to the second."""
    limiter, _ = _limiter("429-date", burst=1.0)
    limiter.admit()
    reply = limiter.admit()
    assert reply is not None
    assert reply.status == 429
    when = email.utils.parsedate_to_datetime(reply.headers["Retry-After"]).timestamp()
    assert when == 1_700_000_501.0  # wall 1_700_000_500.25 + 0.1 s, rounded up


def test_the_503_style_is_a_proxy_page_asking_whole_seconds() -> None:
    """An HTML 503 with Retry-After: 1 (the wait is 0.1 s; a header says whole seconds)."""
    limiter, _ = _limiter("503-retry-after", burst=1.0)
    limiter.admit()
    reply = limiter.admit()
    assert reply is not None
    assert (reply.status, reply.headers["Retry-After"]) == (503, "1")
    assert reply.content_type == "text/html"


@pytest.mark.parametrize("bad", [{"rate": 0}, {"rate": -1.0}, {"rate": True}, {"burst": 0}])
def test_nonsense_limits_are_refused(bad: dict[str, float]) -> None:
    """A rate or burst that is not a positive number is refused when configured."""
    with pytest.raises(ValueError, match="rate_limit"):
        RateLimit(**{"rate": 10.0, **bad})  # type: ignore[arg-type]


async def test_refused_requests_reach_nothing_over_http() -> None:
    """Past the burst, a create is refused before the app: no member, no token consumed."""
    async with running(rate_limit=5.0, rate_limit_burst=2.0) as (academy, api):
        count = academy.state.member_count
        assert (await api.get("/members/me")).status == 200
        assert (await api.post("/members", json={"email": "one@x.com"})).status == 201
        token = api.token()
        refused = await api.post("/members", json={"email": "two@x.com"}, token=token)
        assert refused.status == 429
        assert "Retry-After" not in refused.headers
        assert academy.state.member_count == count + 1
        assert academy.recorder.fault_counts["rate_limited"] == 1
        assert academy.limiter is not None
        assert academy.limiter.refused == 1
        await asyncio.sleep(0.25)  # a token and a quarter refill at 5/s
        again = await api.post("/members", json={"email": "two@x.com"}, token=token)
        assert again.status == 201  # the refused token was never spent


async def test_a_server_clock_ahead_shifts_date_and_retry_after() -> None:
    """With clock_offset=90 both the Date header and a dated Retry-After are 90 s ahead."""
    async with running(
        rate_limit=5.0, rate_limit_burst=1.0, rate_limit_style="429-date", clock_offset=90.0
    ) as (academy, api):
        assert (await api.get("/members/me")).status == 200
        refused = await api.get("/members/me")
    date = email.utils.parsedate_to_datetime(refused.headers["Date"]).timestamp()
    retry_at = email.utils.parsedate_to_datetime(refused.headers["Retry-After"]).timestamp()
    assert refused.status == 429
    assert 88 <= date - time.time() <= 91
    assert 0 < retry_at - date <= 2
    assert abs(academy.server_time() - time.time() - 90.0) < 0.01


async def test_tokens_are_checked_on_the_servers_clock() -> None:
    """A server 90 s ahead still takes a fresh token (90 s old on its clock, under 120)."""
    async with running(clock_offset=90.0) as (_, api):
        assert (await api.get("/members/me")).status == 200
        stale = await api.get("/members/me", token=api.token(iat=time.time() - 40))
    assert stale.status == 401

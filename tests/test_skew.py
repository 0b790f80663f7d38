"""The clock-skew estimate, sans I/O: one Date's measurement, the median, what is ignored."""

from __future__ import annotations

import logging
from email.utils import formatdate

import pytest

from coursepath_async._skew import NEGLIGIBLE, ClockSkew, describe, measure

NOW = 1_800_000_000.0


def _date(at: float) -> str:
    return formatdate(at, usegmt=True)


def test_a_date_measures_the_midpoint_of_its_second_and_our_round_trip() -> None:
    """Date cuts to the second, so the server's time lay in [D, D+1): +0.5 against our midpoint."""
    assert measure(_date(NOW + 300), sent=NOW - 0.2, received=NOW + 0.2) == pytest.approx(300.5)
    assert measure(_date(NOW - 300), sent=NOW, received=NOW) == pytest.approx(-299.5)


_NOT_DATES = [None, "", "yesterday", "Wed, 32 Oct 2026 07:28:00 GMT", "2026-12-02T07:31:05"]


@pytest.mark.parametrize(
    "date",
    [*_NOT_DATES, _date(NOW + 2e5)],
)
def test_malformed_zoneless_and_absurd_dates_measure_nothing(date: str | None) -> None:
    """No date, a bad one, an ISO one (not an HTTP date) or one two days off: no sample."""
    assert measure(date, sent=NOW, received=NOW) is None


def test_the_offset_is_the_median_so_one_stray_date_cannot_move_it() -> None:
    """Three answers 300 s ahead and one proxy on our clock: the offset stays about 300."""
    skew = ClockSkew()
    for step, ahead in enumerate([300, 300, 0, 300]):
        at = NOW + step * 2
        skew.observe(_date(at + ahead), sent=at, received=at)
    assert skew.offset == pytest.approx(300.5)


def test_a_repeated_date_adds_no_sample_and_a_small_skew_is_not_applied() -> None:
    """The same Date twice is parsed once; an offset under NEGLIGIBLE leaves tokens on our clock."""
    skew = ClockSkew()
    date = _date(NOW + NEGLIGIBLE - 2)
    assert skew.observe(date, sent=NOW, received=NOW) is not None
    assert skew.observe(date, sent=NOW, received=NOW) is None
    assert skew.offset == 0.0
    assert "samples=1" in repr(skew)


def test_adopt_trusts_one_401s_measurement_and_warns_once_per_skew(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Samples of our clock, then a skewed 401: adopted at once; a second 401 like it is quiet."""
    caplog.set_level(logging.INFO, logger="coursepath_async")
    skew = ClockSkew()
    for step in range(5):
        at = NOW + step * 2
        skew.observe(_date(at), sent=at, received=at)
    skew.adopt(-312.0)
    skew.adopt(-311.5)
    assert skew.offset == -311.5
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert warnings[0].startswith("academy clock is 312 s behind ours")
    assert describe(312.4) == "academy clock is 312 s ahead of ours"

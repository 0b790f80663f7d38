"""The CLI's progress line: problems and, once the academy limits us, the rate governor."""

from __future__ import annotations

import io
import sys
import time
from typing import Any

import pytest

from coursepath_async import SchedulerStats
from coursepath_async._progress import Progress, governor_line


def _stats(**governor: Any) -> SchedulerStats:
    base: dict[str, Any] = {
        "limit": 16,
        "interactive_reserve": 2,
        "effective_limit": 16,
        "active": 3,
        "peak_active": 16,
        "pending": {"interactive": 0, "normal": 0, "bulk": 30},
        "paused_for": 0.0,
    }
    return SchedulerStats(**{**base, **governor})


class _Terminal(io.StringIO):
    """A text stream that says it is a terminal, so tqdm draws its bar into it."""

    def isatty(self) -> bool:
        return True


def test_an_unlimited_client_shows_nothing() -> None:
    """No refusal, no cap: the governor has nothing to say."""
    assert governor_line(_stats()) is None


@pytest.mark.parametrize(
    ("governor", "line"),
    [
        ({"rate": 97.4, "refusals": 12}, "97 req/s, 12 refused"),
        ({"rate": 50.0, "max_rate": 50.0}, "50 req/s"),
        ({"rate": 85.0, "refusals": 3, "paused_for": 0.84}, "85 req/s, 3 refused, paused 0.8s"),
        ({"refusals": 1, "paused_for": 2.0}, "no rate limit, 1 refused, paused 2.0s"),
    ],
)
def test_the_governor_in_a_few_words(governor: dict[str, Any], line: str) -> None:
    """Rate, refusals and any pause, as the progress line and the closing line show them."""
    assert governor_line(_stats(**governor)) == line


def test_the_bar_shows_problems_and_the_governor(monkeypatch: pytest.MonkeyPatch) -> None:
    """On a terminal the bar's postfix carries both, as the governor last was."""
    terminal = _Terminal()
    monkeypatch.setattr(sys, "stderr", terminal)
    states = iter(
        [_stats(), _stats(rate=90.0, refusals=4), _stats(rate=92.0, refusals=4, paused_for=1.0)]
    )
    latest = [_stats()]
    ticks = iter(range(100, 200))  # a second between rows: every row reads the governor
    monkeypatch.setattr(time, "monotonic", lambda: float(next(ticks)))

    def stats() -> SchedulerStats:
        latest[0] = next(states, latest[0])
        return latest[0]

    with Progress("import people.csv", total=3, stats=stats) as progress:
        progress.advance(ok=False)
        progress.advance()
        progress.advance()
    assert "problems=1, 92 req/s, 4 refused, paused 1.0s]" in terminal.getvalue()


def test_the_governor_is_read_at_most_every_tenth_of_a_second(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A thousand rows in one instant read the scheduler's statistics twice: first and last."""
    monkeypatch.setattr(sys, "stderr", _Terminal())
    monkeypatch.setattr(time, "monotonic", lambda: 100.0)
    reads = []

    def stats() -> SchedulerStats:
        reads.append(1)
        return _stats(rate=90.0)

    with Progress("import people.csv", total=1000, stats=stats) as progress:
        for _ in range(1000):
            progress.advance()
    assert len(reads) == 2


def test_a_bar_that_is_off_never_reads_the_governor(monkeypatch: pytest.MonkeyPatch) -> None:
    """Not a terminal (CI, a pipe): no bar, so the statistics are never built."""
    monkeypatch.setattr(sys, "stderr", io.StringIO())

    def stats() -> SchedulerStats:
        raise AssertionError("read for a bar nobody sees")

    with Progress("import people.csv", total=10, stats=stats) as progress:
        for _ in range(10):
            progress.advance()

"""Terminal progress for the CLI: a tqdm bar with rate and ETA, silent when not a TTY."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from types import TracebackType
from typing import Self

from ._exceptions import ConfigurationError
from ._scheduler import SchedulerStats

#: Seconds between two reads of the governor's state for the bar (tqdm's own redraw pace).
STATS_EVERY = 0.1


class Progress:
    """Counts rows (or records) with a live bar on stderr; tracks failures in the postfix.

    ``stats`` (the client's scheduler statistics) puts the rate governor in the postfix
    once it limits anything; it is read at most every :data:`STATS_EVERY` seconds and
    once more at the end, and never when the bar is off (stderr not a terminal).
    """

    def __init__(
        self,
        description: str,
        *,
        total: int | None,
        unit: str = "row",
        stats: Callable[[], SchedulerStats] | None = None,
    ) -> None:
        try:
            from tqdm import tqdm
        except ImportError:  # pragma: no cover - depends on how the package was installed
            raise ConfigurationError(
                "the command line needs the 'cli' extra: pip install 'coursepath-async[cli]'"
            ) from None
        self._bar = tqdm(
            total=total,
            desc=description,
            unit=unit,
            unit_scale=True,
            dynamic_ncols=True,
            file=sys.stderr,
            disable=None,  # off when stderr is not a terminal (CI, pipes, tests)
            smoothing=0.1,
        )
        self._problems = 0
        self._limits = ""
        self._stats = None if self._bar.disable else stats
        self._stats_due = 0.0

    def advance(self, *, ok: bool = True) -> None:
        """One more item done; ``ok=False`` counts it as a problem."""
        limits = self._limits
        if self._stats is not None and (now := time.monotonic()) >= self._stats_due:
            self._stats_due = now + STATS_EVERY
            limits = governor_line(self._stats()) or ""
        if not ok or limits != self._limits:
            self._problems += not ok
            self._show(limits)
        self._bar.update(1)

    def _show(self, limits: str) -> None:
        self._limits = limits
        problems = f"problems={self._problems}" if self._problems else ""
        self._bar.set_postfix_str(", ".join(filter(None, (problems, limits))), refresh=False)

    def note(self, message: str) -> None:
        """Print a line above the bar without breaking it."""
        self._bar.write(message, file=sys.stderr)

    def finish(self) -> None:
        """All the work is done: the bar ends at 100%, whatever total was estimated.

        The total of a CSV is a line count (quoted line breaks and blank lines make it
        more than the rows, a missing final newline less), so the count alone may stop
        at 97% or run past 100% on a run that did every row.
        """
        self._bar.total = self._bar.n
        self._bar.refresh()

    def close(self) -> None:
        """Close the bar, leaving it as it is (an interrupted run shows where it stopped).

        The governor is read once more, so the last line shows it as it ended.
        """
        if self._stats is not None:
            self._show(governor_line(self._stats()) or "")
        self._bar.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def governor_line(stats: SchedulerStats) -> str | None:
    """The rate governor's state in a few words (None while it limits nothing)."""
    if stats.rate is None and not stats.refusals and not stats.paused_for:
        return None
    parts = ["no rate limit" if stats.rate is None else f"{stats.rate:.0f} req/s"]
    if stats.refusals:
        parts.append(f"{stats.refusals} refused")
    if stats.paused_for > 0:
        parts.append(f"paused {stats.paused_for:.1f}s")
    return ", ".join(parts)


def count_data_lines(path: str) -> int | None:
    """A quick estimate of a CSV's data rows for the ETA (quoted line breaks overcount)."""
    try:
        with open(path, "rb") as handle:
            lines = sum(chunk.count(b"\n") for chunk in iter(lambda: handle.read(1 << 20), b""))
    except OSError:
        return None
    return max(lines - 1, 0)

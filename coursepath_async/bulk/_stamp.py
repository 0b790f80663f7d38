"""The UTC timestamps a job records (journal rows, report actions), one string per second."""

from __future__ import annotations

import functools
import time
from datetime import UTC, datetime

__all__ = ["utc_now"]


def utc_now() -> str:
    """Now, in UTC, as ISO 8601 to the second: ``2026-12-02T19:00:00+00:00``."""
    return _stamp(int(time.time()))


@functools.lru_cache(maxsize=1)
def _stamp(second: int) -> str:
    """Formatted once per second, however many rows a job writes in it (thousands)."""
    return datetime.fromtimestamp(second, UTC).isoformat()

"""Terminal progress for the CLI: a tqdm bar with rate and ETA, silent when not a TTY."""

from __future__ import annotations

import sys
from types import TracebackType
from typing import Self

from ._exceptions import ConfigurationError


class Progress:
    """Counts rows (or records) with a live bar on stderr; tracks failures in the postfix."""

    def __init__(self, description: str, *, total: int | None, unit: str = "row") -> None:
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

    def advance(self, *, ok: bool = True) -> None:
        """One more item done; ``ok=False`` counts it as a problem."""
        if not ok:
            self._problems += 1
            self._bar.set_postfix(problems=self._problems, refresh=False)
        self._bar.update(1)

    def note(self, message: str) -> None:
        """Print a line above the bar without breaking it."""
        self._bar.write(message, file=sys.stderr)

    def close(self) -> None:
        """Finish the bar."""
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


def count_data_lines(path: str) -> int | None:
    """A quick estimate of a CSV's data rows for the ETA (quoted line breaks overcount)."""
    try:
        with open(path, "rb") as handle:
            lines = sum(chunk.count(b"\n") for chunk in iter(lambda: handle.read(1 << 20), b""))
    except OSError:
        return None
    return max(lines - 1, 0)

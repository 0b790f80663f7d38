"""Log lines for machines: one JSON object per record, redacted like every other output.

``--log-format json`` puts :class:`JsonFormatter` on the CLI's handler. Each line has
``time`` (UTC, ISO 8601), ``level``, ``logger``, ``event`` (an ``extra={"event": ...}``
name, else the message's template, stable across values), ``message`` and, when a
record has them, ``fields`` (the record's ``extra`` values) and ``exception``. Every
string is passed through the redactor: a token or key in a message, a field or a
traceback is blanked.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any, Final

import orjson

from ._redact import REDACT, Redactor

__all__ = ["JsonFormatter"]

# What every LogRecord has: anything else on a record came from ``extra=``.
_STANDARD: Final = frozenset(
    vars(logging.LogRecord("", 0, "", 0, "", None, None)).keys() | {"message", "asctime"}
)


class JsonFormatter(logging.Formatter):
    """Formats a record as one line of JSON (see the module docstring for the keys)."""

    def __init__(self, redact: Redactor = REDACT) -> None:
        super().__init__()
        self._redact = redact

    def format(self, record: logging.LogRecord) -> str:
        """The record as one JSON object, without a trailing newline."""
        redact = self._redact
        extra = {k: v for k, v in vars(record).items() if k not in _STANDARD}
        event = extra.pop("event", None)
        line: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "event": redact(str(event if event is not None else record.msg)),
            "message": redact(record.getMessage()),
        }
        if extra:
            line["fields"] = _redacted(extra, redact)
        if record.exc_info:
            line["exception"] = redact(self.formatException(record.exc_info))
        return orjson.dumps(line, default=lambda value: redact(str(value))).decode()


def _redacted(value: Any, redact: Redactor) -> Any:
    """``value`` with every string in it redacted (dicts, lists and tuples walked)."""
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, dict):
        return {str(k): _redacted(v, redact) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_redacted(v, redact) for v in value]
    return value

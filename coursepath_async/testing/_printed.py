"""Every form in which an exception can reach a log, a terminal or a bug report.

For tests that prove no secret leaks: scan each form for the API key and tokens.
"""

from __future__ import annotations

import traceback
from collections.abc import Iterator


def printed_forms(exc: BaseException) -> Iterator[str]:
    """Each printable form of ``exc`` and of every exception chained behind it.

    That is ``str``, ``repr``, the formatted traceback, the attributes, and the
    response body if there is one; a cause or context is followed, each seen once.
    """
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield str(current)
        yield repr(current)
        yield "".join(traceback.format_exception(current))
        yield repr(vars(current))
        body = getattr(current, "body", None)
        if isinstance(body, bytes):
            yield body.decode("utf-8", "replace")
        current = current.__cause__ or current.__context__

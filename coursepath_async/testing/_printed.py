"""Every form in which an exception can reach a log, a terminal or a bug report.

For tests that prove no secret leaks: scan each form for the API key and tokens
(:func:`leaked_credentials` does the scanning, token pieces included).
"""

from __future__ import annotations

import base64
import traceback
from collections.abc import Iterable, Iterator
from urllib.parse import quote

#: Tokens are searched for in slices this long, so a token cut into parts is found too.
_PIECE = 12


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


def _pieces(token: str) -> Iterator[str]:
    """Slices of a token's claims and signature: any leaked part of 24+ chars holds one."""
    for segment in token.split(".")[1:]:
        for start in range(0, len(segment) - _PIECE + 1, _PIECE):
            yield segment[start : start + _PIECE]


def leaked_credentials(text: str, *, api_key: str, tokens: Iterable[str] = ()) -> list[str]:
    """What of the credentials shows in ``text``, by name; empty when it is clean.

    Searched: the API key (as is, URL-encoded, base64), ``eyJ`` (how every JWT
    starts), ``Bearer`` in any case, and slices of each of ``tokens`` (e.g.
    ``recorder.echoed_tokens``), so that a token cut or wrapped into parts is found.
    """
    forms = {api_key: "api key"}
    forms.setdefault(quote(api_key, safe=""), "api key, URL-encoded")
    forms.setdefault(base64.b64encode(api_key.encode()).decode(), "api key, base64")
    found = [name for form, name in forms.items() if form in text]
    if "eyJ" in text:
        found.append("'eyJ'")
    if "bearer" in text.lower():
        found.append("'Bearer'")
    found += sorted(
        {f"token piece {piece!r}" for t in tokens for piece in _pieces(t) if piece in text}
    )
    return found

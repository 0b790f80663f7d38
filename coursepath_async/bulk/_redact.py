"""Last-line defence for text that outlives the run: journal errors and report reasons.

The client already keeps tokens and keys out of its messages; bulk jobs write error text
to files people share, so anything that still looks like a credential is blanked here,
and the text is cut to a bounded length.
"""

from __future__ import annotations

import re

__all__ = ["scrub"]

_MAX_TEXT = 500
_CREDENTIAL = re.compile(
    r"eyJ[A-Za-z0-9_-]*\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*"  # a JWT: base64url '{"' header
    r"|(?i:bearer)\s+\S+"
    r"|(?i:(?:api[_-]?key|secret|token|password)\s*[=:]\s*)\S+"
)


def scrub(text: str, *, limit: int = _MAX_TEXT) -> str:
    """Return ``text`` with credential-looking parts replaced and cut to ``limit`` chars."""
    cleaned = _CREDENTIAL.sub("[redacted]", text)
    return cleaned if len(cleaned) <= limit else cleaned[:limit] + "..."

"""Credentials out of every text a server or proxy sends back: messages, logs and files.

A server or a proxy may echo the request in its error answer (the ``Authorization``
header, the token) or show the API key on a debug page. Before an answer's body or a
header value enters an exception, a log record, a journal, a report or the CLI's output,
a :class:`Redactor` blanks

* JWT-shaped text: ``eyJ`` (base64 of ``{"``) and the segments glued to it, whether the
  dots are plain or URL-, JSON- or HTML-escaped, and when the token is wrapped over lines;
* ``Bearer`` and what follows it, and the value of an echoed ``Authorization`` header;
* the client's own API key: as is, URL-encoded, JSON- and HTML-escaped, and in base64
  (also inside a longer base64 text, at any alignment).

Then it fails closed: when a URL-, JSON- or HTML-decoded view of what is left still
shows one of these, the whole text is withheld.

:func:`scrub` is for text written to files people share (journal errors, report
reasons): it also blanks ``name=value`` pairs naming a secret, and bounds the length.
"""

from __future__ import annotations

import base64
import functools
import html
import json
import re
from collections.abc import Iterable, Iterator
from urllib.parse import quote, quote_plus, unquote_plus

__all__ = ["REDACT", "REDACTED", "WITHHELD", "Redactor", "scrub"]

REDACTED = "[redacted]"
#: What is left of a text in which a decoded view still showed a credential.
WITHHELD = "[redacted: the text held an encoded credential]"
#: Shorter secret forms are not searched for: they would blank ordinary words.
MIN_SECRET = 8
_MAX_TEXT = 500

# Base64 text, URL-safe or standard with padding, also with a JSON-escaped "/" or a
# URL-escaped "+", "/" or "=".
_RUN = r"(?:[A-Za-z0-9_\-+/=]|\\/|%2[BbFf]|%3[Dd])+"
# Between a token's pieces: a dot, plain or escaped, and the line breaks (real or
# escaped) of a formatter that wrapped it.
_BREAK = r"(?:[\r\n\t]|\\[rnt]|%0[AaDd]|<br\s*/?>)"
_DOT = r"(?:\.|%2[Ee]|\\u002[Ee]|&#0*46;|&period;)"
_JWT = rf"eyJ{_RUN}(?:(?:{_BREAK}*{_DOT}{_BREAK}*|{_BREAK}+){_RUN}){{0,8}}"
# "Bearer" whatever follows it, up to where a value ends in JSON, HTML, a URL or prose.
_BEARER = r"(?i:bearer)(?:[\s:=+]|%20|%3[Aa]|\\u0020|&#0*32;|&nbsp;)*[^\s\"'<>&,;\\)\]}]*"
# An echoed header keeps its name: "Authorization: [redacted]".
_AUTHORIZATION = r"(?P<name>(?i:authorization)[\"']?\s*[:=]\s*[\"']?)[^\r\n\"'<>&,;\\]*"
_NAMED = re.compile(r"(?i:(?:api[_-]?key|secret|token|password)\s*[=:]\s*)\S+")
_JSON_ESCAPE = re.compile(r"\\(u[0-9A-Fa-f]{4}|.)", re.DOTALL)
_JSON_CHARS = {"n": "\n", "r": "\r", "t": "\t", "b": "\b", "f": "\f"}
_HEX_ESCAPE = re.compile(r"%[0-9A-F]{2}")


def _base64_forms(raw: bytes) -> Iterator[str]:
    """The base64 text of ``raw``: on its own, and the part fixed by ``raw`` at any alignment.

    Inside a longer base64 text (``Basic`` credentials, say) the bytes before it change
    the first characters and the bytes after it the last ones; what lies between
    depends on ``raw`` alone, for each of the three alignments.
    """
    yield base64.b64encode(raw).decode()
    for shift, cut in ((0, 0), (1, 2), (2, 3)):
        encoded = base64.b64encode(b"\0" * shift + raw).decode()
        yield encoded[cut : 4 * ((shift + len(raw)) // 3)]


def _secret_forms(secret: str) -> set[str]:
    """Every spelling of ``secret`` worth searching for, each at least MIN_SECRET long."""
    forms = {
        secret,
        quote(secret, safe=""),
        quote(secret),
        quote_plus(secret),
        json.dumps(secret)[1:-1],
        json.dumps(secret, ensure_ascii=False)[1:-1],
        html.escape(secret),
        secret.encode().decode("latin-1"),  # as it shows in a body's bytes (see body())
    }
    forms |= {_HEX_ESCAPE.sub(lambda m: m.group().lower(), form) for form in forms}
    for encoded in _base64_forms(secret.encode()):
        forms |= {encoded, encoded.rstrip("="), encoded.translate(str.maketrans("+/", "-_"))}
    return {form for form in forms if len(form) >= MIN_SECRET}


def _replacement(match: re.Match[str]) -> str:
    name = match.group("name")
    return REDACTED if name is None else name + REDACTED


def _json_unescape(text: str) -> str:
    r"""``text`` with its JSON string escapes decoded (``\u0065`` → ``e``, ``\/`` → ``/``)."""

    def one(match: re.Match[str]) -> str:
        escape = match.group(1)
        if escape[0] == "u" and len(escape) == 5:
            return chr(int(escape[1:], 16))
        return _JSON_CHARS.get(escape, escape)

    return _JSON_ESCAPE.sub(one, text)


def _decoded_views(text: str) -> Iterator[str]:
    """``text`` as a URL, a JSON string and HTML would decode it, where it has escapes."""
    if "%" in text or "+" in text:
        yield unquote_plus(text, errors="replace")
    if "\\" in text:
        yield _json_unescape(text)
    if "&" in text:
        yield html.unescape(text)


class Redactor:
    """Blanks credentials in server-provided text; its secrets never show in its repr."""

    __slots__ = ("_pattern",)

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        forms = {form for secret in secrets for form in _secret_forms(secret)}
        # Longest first: a secret's full spelling wins over a part of it.
        spelled = [re.escape(form) for form in sorted(forms, key=len, reverse=True)]
        self._pattern = re.compile("|".join([*spelled, _AUTHORIZATION, _BEARER, _JWT]), re.ASCII)

    def _sub(self, text: str) -> str:
        return self._pattern.sub(_replacement, text)

    def __call__(self, text: str) -> str:
        """``text`` with every credential blanked, or WITHHELD if an encoded one remains."""
        cleaned = self._sub(text)
        if any(self._sub(view) != view for view in _decoded_views(cleaned)):
            return WITHHELD
        return cleaned

    def body(self, data: bytes) -> bytes:
        """An answer's body with every credential blanked, the other bytes as they were."""
        # Latin-1 maps each byte to one character and back: a body in any encoding
        # survives, and the patterns (ASCII, with ASCII delimiters) never split a
        # multi-byte character.
        return self(data.decode("latin-1")).encode("latin-1")

    def __repr__(self) -> str:
        return "Redactor(<secrets hidden>)"


#: The redactor that knows no secret: tokens and Bearer values only.
REDACT = Redactor()


@functools.lru_cache(maxsize=1024)
def scrub(text: str, *, limit: int = _MAX_TEXT) -> str:
    """``text`` for a file: credentials and ``name=value`` secrets blanked, cut to ``limit``.

    Pure, so cached: a job writes the same few reasons on every row ("created and
    invited"), each scrubbed once rather than by a regex pass (~10 us) per row.
    """
    cleaned = _NAMED.sub(REDACTED, REDACT(text))
    return cleaned if len(cleaned) <= limit else cleaned[:limit] + "..."

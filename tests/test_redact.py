"""The redactor: tokens, Bearer values and the API key never survive, whatever the encoding."""

from __future__ import annotations

import base64
import binascii
import json
import re
from urllib.parse import quote, quote_plus

import jwt
import pytest
from conftest import API_KEY

from coursepath_async._redact import REDACT, REDACTED, WITHHELD, Redactor, scrub

#: A fixed token (fixed claims, fixed key): the same bytes on every run.
TOKEN = jwt.encode(
    {"email": "ann@example.test", "iat": 1_700_000_000, "jti": "redact-test-1"},
    API_KEY,
    algorithm="HS256",
)
HEADER, PAYLOAD, SIGNATURE = TOKEN.split(".")
REDACTOR = Redactor([API_KEY])


def wrapped(text: str, width: int, joiner: str) -> str:
    """``text`` cut every ``width`` characters and joined with ``joiner``."""
    return joiner.join(text[i : i + width] for i in range(0, len(text), width))


def key_in_base64(text: str) -> bool:
    """Whether any base64 run of ``text``, read at any alignment, decodes to part of API_KEY."""
    needle = API_KEY[4:-4].encode()
    for run in re.findall(r"[A-Za-z0-9+/_-]{8,}", text):
        run = run.replace("-", "+").replace("_", "/")
        for start in range(4):
            part = run[start:]
            part = part[: len(part) - len(part) % 4]
            try:
                decoded = base64.b64decode(part)
            except binascii.Error:
                continue
            if needle[:8] in decoded:
                return True
    return False


def assert_clean(text: str) -> None:
    """No piece of the token, no Bearer, no form of the key is left in ``text``."""
    for piece in (
        PAYLOAD,
        SIGNATURE,
        SIGNATURE[:16],
        SIGNATURE[-16:],
        "eyJ",
        API_KEY,
        quote(API_KEY),
    ):
        assert piece not in text, (piece, text)
    assert "bearer" not in text.lower(), text
    assert not key_in_base64(text), text


TRICKY = {
    "header echo": f"Authorization: Bearer {TOKEN}",
    "lower-case header in JSON": json.dumps({"authorization": f"bearer {TOKEN}"}),
    "raw token in prose": f"token {TOKEN} was refused.",
    "URL-encoded": quote(f"Bearer {TOKEN}", safe=""),
    "form-encoded": quote_plus(f"Bearer {TOKEN}"),
    "query string": f"/cb?auth=Bearer%20{TOKEN}&x=1",
    "URL-escaped dots": TOKEN.replace(".", "%2E"),
    "JSON-escaped dots": TOKEN.replace(".", "\\u002e"),
    "HTML-escaped dots": TOKEN.replace(".", "&#46;"),
    "JSON inside JSON": json.dumps(json.dumps({"Authorization": f"Bearer {TOKEN}"})),
    "JSON unicode escape": json.dumps({"m": f"Bearer {TOKEN}"}).replace("e", "\\u0065"),
    "wrapped over lines": wrapped(TOKEN, 40, "\n"),
    "wrapped, escaped newlines": wrapped(TOKEN, 40, "\\n"),
    "wrapped in HTML": wrapped(TOKEN, 40, "<br>"),
    "dots on their own lines": TOKEN.replace(".", "\n.\n"),
    "HTML page": f"<html><pre>Authorization: Bearer {TOKEN}</pre><td>bearer</td></html>",
    "HTML entity space": f"Bearer&#32;{TOKEN}",
    "percent-encoded bearer": f"b%65arer%20{TOKEN[3:]}",
    "no space after Bearer": f"Bearer:{TOKEN}",
    "the key": f"debug: API_KEY={API_KEY}",
    "the key URL-encoded": f"k={quote(API_KEY, safe='')}",
    "the key JSON-escaped": json.dumps({"key": API_KEY}),
    "the key in base64": base64.b64encode(API_KEY.encode()).decode(),
    "the key in URL-safe base64": base64.urlsafe_b64encode(API_KEY.encode()).decode().rstrip("="),
    "the key in Basic credentials": "Basic " + base64.b64encode(b"u:" + API_KEY.encode()).decode(),
    "the key at the third alignment": base64.b64encode(b"ab:" + API_KEY.encode() + b"!").decode(),
}


@pytest.mark.parametrize("text", TRICKY.values(), ids=TRICKY.keys())
def test_each_tricky_echo_does_hold_a_credential(text: str) -> None:
    """The check is not vacuous: every input, as given, fails it."""
    with pytest.raises(AssertionError):
        assert_clean(text)


@pytest.mark.parametrize("text", TRICKY.values(), ids=TRICKY.keys())
def test_tricky_echoes_are_redacted(text: str) -> None:
    """Each way a server might spell the token or the key comes out blanked."""
    assert_clean(REDACTOR(text))


@pytest.mark.parametrize("text", TRICKY.values(), ids=TRICKY.keys())
def test_tricky_echoes_are_redacted_in_bodies(text: str) -> None:
    """The same holds for an answer's raw bytes, in UTF-8 around non-ASCII text."""
    body = f"préfixe — {text} — suffixe ✓".encode()
    cleaned = REDACTOR.body(body)
    assert_clean(cleaned.decode("utf-8"))  # still valid UTF-8: nothing was cut mid-character


@pytest.mark.parametrize(
    "text",
    [
        "upstream timed out",
        "invalid_token: token expired",
        "conflict: email already exists",
        "not_found: no route for GET /api/v1/members/7",
        "a learner may only read their own records",
        "Ünïcödé and 100% sure + more",
        "<html><body><h1>502 Bad Gateway</h1></body></html>",
        '{"error": "unprocessable_entity", "message": "name too long"}',
    ],
)
def test_ordinary_text_is_left_alone(text: str) -> None:
    """Error text without a credential passes unchanged."""
    assert REDACTOR(text) == text
    assert REDACTOR.body(text.encode()) == text.encode()


def test_json_stays_json_and_keeps_its_other_fields() -> None:
    """A redacted JSON error body still parses, with only the credentials blanked."""
    body = json.dumps(
        {"error": "unavailable", "request": {"Authorization": f"Bearer {TOKEN}"}, "key": API_KEY}
    ).encode()
    data = json.loads(REDACTOR.body(body))
    assert data == {"error": "unavailable", "request": {"Authorization": REDACTED}, "key": REDACTED}


def test_a_header_name_is_kept_and_its_value_blanked() -> None:
    """An echoed header says which header it was, not what it held."""
    assert (
        REDACT(f"Authorization: Bearer {TOKEN}\r\nHost: x")
        == f"Authorization: {REDACTED}\r\nHost: x"
    )


def test_what_stays_encoded_is_withheld_whole() -> None:
    """When a decoded view still shows a credential, nothing of the text is given out."""
    assert REDACT("b%65arer abc") == WITHHELD
    assert REDACT("\\u0065yJhbGciOiJIUzI1NiJ9") == WITHHELD
    assert REDACTOR(f"k={quote(API_KEY, safe='').replace('-', '%2d')}") == WITHHELD


def test_the_key_is_only_known_to_its_redactor() -> None:
    """Without the key, its plain text is not recognised; with it, it never shows in a repr."""
    assert API_KEY in REDACT(API_KEY)
    assert REDACTOR(API_KEY) == REDACTED
    assert API_KEY not in repr(REDACTOR)
    assert repr(REDACTOR) == "Redactor(<secrets hidden>)"


def test_short_secrets_are_not_searched_for() -> None:
    """A secret shorter than eight characters would blank ordinary words; it is skipped."""
    assert Redactor(["abc"])("abc abc") == "abc abc"


def test_a_long_pathological_text_is_handled() -> None:
    """Long runs of breaks, dots and padding end in one pass (no catastrophic backtracking)."""
    text = "eyJa" + "\n" * 50_000 + "Bearer " + "=" * 50_000 + "." * 50_000 + "x"
    assert "eyJ" not in REDACT(text)


def test_scrub_adds_named_secrets_and_a_length_bound() -> None:
    """For files, ``name=value`` secrets are blanked too, and the text is bounded."""
    assert scrub("api_key=abc password: hunter2") == f"{REDACTED} {REDACTED}"
    assert scrub(f"Authorization: Bearer {TOKEN}") == f"Authorization: {REDACTED}"
    assert scrub("x" * 600) == "x" * 500 + "..."

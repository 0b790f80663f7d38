"""The pure layer: request bodies, JSON decoding, list unwrapping, status → exception."""

from __future__ import annotations

import math
import re
from typing import Any
from urllib.parse import parse_qsl

import orjson
import pytest
from conftest import API_KEY
from multidict import CIMultiDict, CIMultiDictProxy

from coursepath_async import (
    APIResponseValidationError,
    APIStatusError,
    AuthenticationError,
    BadRequestError,
    ConflictError,
    NotFoundError,
    PermissionDeniedError,
    RateLimitError,
    ServerError,
    UnprocessableEntityError,
)
from coursepath_async._redact import Redactor
from coursepath_async._sansio import (
    ApiRequest,
    RawResponse,
    RequestKind,
    decode_json,
    encode_body,
    error_message,
    list_total,
    request_id,
    status_error,
    unwrap_list,
)

URL = "https://acme.example.com/api/v1/members"
GET = ApiRequest(method="GET", path="/members")


def _response(status: int, body: bytes, headers: dict[str, str] | None = None) -> RawResponse:
    return RawResponse(status, CIMultiDictProxy(CIMultiDict(headers or {})), body)


# --- requests ---------------------------------------------------------------


def test_request_defaults_to_a_read_without_body() -> None:
    """An ApiRequest is a safe-to-repeat READ with no params and no body by default."""
    request = ApiRequest(method="GET", path="/courses")
    assert request.kind is RequestKind.READ
    assert request.params == ()
    assert request.body is None


def test_target_without_params_is_the_path() -> None:
    """A request without query parameters targets its bare path."""
    assert ApiRequest(method="GET", path="/members/me").target() == "/members/me"


def test_target_url_encodes_params_in_order() -> None:
    """Query parameters are URL-encoded and kept in the given order."""
    request = ApiRequest(
        method="GET",
        path="/members",
        params=(("email", "a+b@x.co"), ("offset", "0"), ("limit", "500")),
    )
    assert request.target() == "/members?email=a%2Bb%40x.co&offset=0&limit=500"


def test_encode_body_json() -> None:
    """The default body format is a JSON object with nested mail overrides."""
    body = {"email": "a@x.co", "mail": {"subject": "Hi", "body": "Welcome"}}
    data, content_type = encode_body(body, "json")
    assert content_type == "application/json"
    assert orjson.loads(data) == body


def test_encode_body_form_flattens_nested_keys() -> None:
    """Form encoding turns nested mappings into ``mail[subject]``-style keys."""
    body = {"name": "Sales & Ops", "mail": {"subject": "Hi there", "action": "Go"}}
    data, content_type = encode_body(body, "form")
    assert content_type == "application/x-www-form-urlencoded"
    assert parse_qsl(data.decode()) == [
        ("name", "Sales & Ops"),
        ("mail[subject]", "Hi there"),
        ("mail[action]", "Go"),
    ]


def test_encode_body_form_bools_and_numbers() -> None:
    """Form encoding writes bools as true/false and numbers as text."""
    body: dict[str, Any] = {"a": True, "b": False, "n": 3, "mail": {"x": 2.5}}
    data, _ = encode_body(body, "form")
    assert parse_qsl(data.decode()) == [
        ("a", "true"),
        ("b", "false"),
        ("n", "3"),
        ("mail[x]", "2.5"),
    ]


@pytest.mark.parametrize(
    ("value", "expected"),
    [(1e16, "10000000000000000"), (1.5e-05, "0.000015"), (-2.0, "-2.0"), (0.1, "0.1")],
)
def test_encode_body_form_floats_are_positional(value: float, expected: str) -> None:
    """Form floats carry their exact shortest digits without an exponent like ``1e+16``."""
    data, _ = encode_body({"score": value}, "form")
    assert parse_qsl(data.decode()) == [("score", expected)]


@pytest.mark.parametrize(
    ("body", "field", "what"),
    [
        ({"tags": ["x", "y"]}, "tags", "a list"),
        ({"tags": ("x",)}, "tags", "a tuple"),
        ({"tags": {"x"}}, "tags", "a set"),
        ({"manager": None}, "manager", "None"),
        ({"mail": {"x": None}}, "mail[x]", "None"),
        ({"score": math.nan}, "score", "nan"),
        ({"score": math.inf}, "score", "inf"),
        ({"raw": b"x"}, "raw", "a bytes"),
    ],
)
def test_encode_body_form_refuses_what_it_cannot_represent(
    body: dict[str, Any], field: str, what: str
) -> None:
    """Lists, None, non-finite floats and other objects are refused, naming the field."""
    with pytest.raises(ValueError, match=re.escape(f"form field {field!r} is {what}")):
        encode_body(body, "form")


def test_encode_body_form_deeply_nested() -> None:
    """Nested mappings of any depth keep bracketed keys."""
    data, _ = encode_body({"a": {"b": {"c": "d"}}}, "form")
    assert parse_qsl(data.decode()) == [("a[b][c]", "d")]


# --- decoding ---------------------------------------------------------------


def test_decode_json_object() -> None:
    """A JSON body is parsed."""
    response = _response(200, b'{"id": 1, "email": "a@x.co"}')
    assert decode_json(GET, URL, response) == {"id": 1, "email": "a@x.co"}


@pytest.mark.parametrize("body", [b"", b"   ", b"\n"])
def test_decode_json_empty_body_is_none(body: bytes) -> None:
    """An empty (or blank) 2xx body decodes to None, e.g. a 204 after an invite."""
    assert decode_json(GET, URL, _response(204, body)) is None


@pytest.mark.parametrize(
    "body", [b"<html><body>Bad gateway</body></html>", b"not json", b'{"id": 1', b"\xff\xfe"]
)
def test_decode_json_garbage_raises_validation_error(body: bytes) -> None:
    """A 2xx body that is not JSON raises APIResponseValidationError with the call's details."""
    with pytest.raises(APIResponseValidationError) as info:
        decode_json(GET, URL, _response(200, body))
    err = info.value
    assert err.method == "GET"
    assert err.url == URL
    assert err.body == body
    assert "expected JSON" in str(err)
    assert f"(GET {URL})" in str(err)


def test_unwrap_list_bare_array() -> None:
    """A bare JSON array is the list of records."""
    assert unwrap_list(GET, URL, [{"id": 1}], b"") == [{"id": 1}]


@pytest.mark.parametrize(
    "key", ["data", "items", "results", "members", "courses", "groups", "records"]
)
def test_unwrap_list_wrapped_array(key: str) -> None:
    """An object wrapping the array under a known key is accepted."""
    assert unwrap_list(GET, URL, {key: [{"id": 2}], "total": 1}, b"") == [{"id": 2}]


@pytest.mark.parametrize("body", [b"", b"null", b" \r\n"])
def test_unwrap_list_refuses_an_answer_without_an_array(body: bytes) -> None:
    """A 204, an empty body or null is no page: refused, so it cannot end a listing early."""
    assert unwrap_list(GET, URL, [], b"[]") == unwrap_list(GET, URL, {"data": []}, b"") == []
    data = decode_json(GET, URL, _response(204 if not body.strip() else 200, body))
    with pytest.raises(APIResponseValidationError, match="got no records at all") as info:
        unwrap_list(GET, URL, data, body)
    assert (info.value.url, info.value.body) == (URL, body)


@pytest.mark.parametrize(
    ("data", "total"),
    [
        ({"data": [], "total": 1200}, 1200),
        ({"data": [], "total": 0}, 0),
        ([{"id": 1}], None),
        ({"data": []}, None),
        ({"data": [], "total": "1200"}, None),
        ({"data": [], "total": -1}, None),
        ({"data": [], "total": True}, None),
        ({"data": [], "total": 12.5}, None),
    ],
)
def test_list_total_is_a_non_negative_integer_or_nothing(data: Any, total: int | None) -> None:
    """A wrapped answer's ``total`` counts only as a non-negative JSON integer."""
    assert list_total(data) == total


@pytest.mark.parametrize(
    "data",
    ["text", 42, 1.5, True, {"data": "not a list"}, {"unexpected": [1]}, {}],
)
def test_unwrap_list_bad_shapes_raise(data: Any) -> None:
    """Anything other than an array (bare or wrapped) raises APIResponseValidationError."""
    with pytest.raises(APIResponseValidationError, match="expected a JSON array") as info:
        unwrap_list(GET, URL, data, b"raw")
    assert info.value.body == b"raw"
    assert info.value.method == "GET"


# --- errors -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (b'{"error": "conflict", "message": "email exists"}', "conflict: email exists"),
        (b'{"message": "email exists"}', "email exists"),
        (b'{"error": "not found"}', "not found"),
        (b'{"error": "same", "message": "same"}', "same"),
        (b'{"error": 5, "message": "only strings count"}', "only strings count"),
    ],
)
def test_error_message_from_json(body: bytes, expected: str) -> None:
    """JSON error bodies contribute their ``error`` and ``message`` strings, once each."""
    assert error_message(body) == expected


@pytest.mark.parametrize(
    "body",
    [
        b"<html><head><title>502 Bad Gateway</title></head></html>",
        b"  <!DOCTYPE html><html></html>",
    ],
)
def test_error_message_from_html(body: bytes) -> None:
    """An HTML page (a proxy's 502) is summarised instead of dumped."""
    assert error_message(body) == "the server (or a proxy) answered with an HTML page"


def test_error_message_from_text() -> None:
    """A plain-text error body is used as is."""
    assert error_message(b"  upstream timed out\n") == "upstream timed out"


def test_error_message_json_without_strings_falls_back_to_text() -> None:
    """A JSON body without error/message strings is shown as text."""
    assert error_message(b'{"code": 7}') == '{"code": 7}'


def test_error_message_empty() -> None:
    """An empty error body still yields a message."""
    assert error_message(b"") == "no error details"


def test_error_message_long_text_is_truncated() -> None:
    """A huge error body is cut to a short excerpt with an ellipsis."""
    message = error_message(b"x" * 10_000)
    assert len(message) == 501
    assert message.endswith("…")


@pytest.mark.parametrize(
    ("status", "cls"),
    [
        (400, BadRequestError),
        (401, AuthenticationError),
        (403, PermissionDeniedError),
        (404, NotFoundError),
        (409, ConflictError),
        (422, UnprocessableEntityError),
        (429, RateLimitError),
        (500, ServerError),
        (502, ServerError),
        (503, ServerError),
        (504, ServerError),
        (418, APIStatusError),
        (405, APIStatusError),
    ],
)
def test_status_error_class(status: int, cls: type[APIStatusError]) -> None:
    """Each error status maps to its exception class; others to APIStatusError itself."""
    body = b'{"error": "boom"}'
    err = status_error(
        GET,
        URL,
        _response(status, body, {"X-Request-Id": "req-1"}),
        retry_after=None,
        after_unknown_outcome=False,
    )
    assert type(err) is cls
    assert err.status_code == status
    assert err.method == "GET"
    assert err.url == URL
    assert err.body == body
    assert err.request_id == "req-1"
    assert str(err) == f"{status} boom (GET {URL})"


def test_status_error_carries_retry_after_and_outcome_flag() -> None:
    """The parsed Retry-After and the unknown-outcome flag travel on the exception."""
    err = status_error(
        ApiRequest(method="POST", path="/members", kind=RequestKind.CREATE),
        URL,
        _response(409, b'{"error": "exists"}'),
        retry_after=2.5,
        after_unknown_outcome=True,
    )
    assert isinstance(err, ConflictError)
    assert err.retry_after == 2.5
    assert err.after_unknown_outcome is True
    assert err.request_id is None


def test_status_error_html_body_is_summarised() -> None:
    """A 502 HTML page from a proxy gives a short, readable message."""
    err = status_error(
        GET,
        URL,
        _response(502, b"<html>" + b"x" * 5000 + b"</html>"),
        retry_after=None,
        after_unknown_outcome=False,
    )
    assert isinstance(err, ServerError)
    assert "HTML page" in str(err)
    assert len(str(err)) < 200


# --- redaction --------------------------------------------------------------

TOKEN = "eyJhbGciOiJIUzI1NiJ9.eyJlbWFpbCI6ImFAeC5jbyJ9.c2lnbmF0dXJlLW9mLWl0"
ECHO = orjson.dumps({"error": "bad", "message": f"Authorization: Bearer {TOKEN}", "key": API_KEY})


def _no_credential(*texts: str) -> None:
    for text in texts:
        assert API_KEY not in text
        assert "eyJ" not in text
        assert "Bearer" not in text


def test_status_error_redacts_message_body_and_request_id_with_the_key() -> None:
    """An echoed token and key leave no trace in the message, ``.body`` or ``request_id``."""
    err = status_error(
        GET,
        URL,
        _response(400, ECHO, {"X-Request-Id": f"Bearer {TOKEN}"}),
        retry_after=None,
        after_unknown_outcome=False,
        redact=Redactor([API_KEY]),
    )
    _no_credential(str(err), repr(err), err.body.decode(), repr(err.request_id))
    assert str(err) == f"400 bad: Authorization: [redacted] (GET {URL})"
    assert orjson.loads(err.body) == {
        "error": "bad",
        "message": "Authorization: [redacted]",
        "key": "[redacted]",
    }


def test_status_error_without_a_key_still_blanks_tokens() -> None:
    """The default redactor knows no key, but tokens and Bearer values never pass."""
    err = status_error(
        GET, URL, _response(503, ECHO), retry_after=None, after_unknown_outcome=False
    )
    assert "eyJ" not in str(err) + err.body.decode()
    assert "Bearer" not in str(err) + err.body.decode()


def test_error_message_redacts_what_json_decoding_unescapes() -> None:
    """A token hidden behind JSON escapes is caught once the message is decoded."""
    body = b'{"message": "\\u0065yJhbGciOiJIUzI1NiJ9 was refused"}'
    assert "eyJ" not in error_message(body)


def test_validation_errors_are_redacted_and_keep_no_decoding_error() -> None:
    """A 2xx echo that is not JSON, or not a list, gives a clean error with no chained cause."""
    body = f"proxy says: Bearer {TOKEN} / {API_KEY}".encode()
    redact = Redactor([API_KEY])
    with pytest.raises(APIResponseValidationError) as not_json:
        decode_json(GET, URL, _response(200, body), redact=redact)
    with pytest.raises(APIResponseValidationError) as not_list:
        unwrap_list(GET, URL, {"echo": "x"}, body, redact=redact)
    for err in (not_json.value, not_list.value):
        _no_credential(str(err), err.body.decode())
        assert err.__context__ is None
        assert err.__cause__ is None


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({"X-Correlation-Id": "corr-7"}, "corr-7"),
        ({"request-id": "req-8"}, "req-8"),
        ({"Request-Id": "plain", "X-Request-Id": "x-first"}, "x-first"),
        ({"Request-Id": "plain", "X-Correlation-Id": "corr-first"}, "corr-first"),
        ({"X-Request-Id": "", "Request-Id": "non-empty-wins"}, "non-empty-wins"),
        ({"X-Trace": "not-an-id"}, None),
    ],
)
def test_status_error_takes_the_request_id_from_any_header_that_names_it(
    headers: dict[str, str], expected: str | None
) -> None:
    """``X-Request-Id``, then ``X-Correlation-Id``, then ``Request-Id``: the first one present."""
    err = status_error(
        GET, URL, _response(500, b"{}", headers), retry_after=None, after_unknown_outcome=False
    )
    assert err.request_id == expected
    assert request_id(headers) == expected  # a plain mapping, any case, reads the same


def test_a_correlation_id_echoing_the_key_is_redacted() -> None:
    """A credential inside ``X-Correlation-Id`` or ``Request-Id`` is scrubbed like the rest."""
    for name in ("X-Correlation-Id", "Request-Id"):
        err = status_error(
            GET,
            URL,
            _response(400, b"{}", {name: f"Bearer {TOKEN}"}),
            retry_after=None,
            after_unknown_outcome=False,
            redact=Redactor([API_KEY]),
        )
        assert err.request_id is not None
        _no_credential(repr(err.request_id))

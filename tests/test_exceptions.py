"""The exception hierarchy and what each error carries."""

from __future__ import annotations

import pytest

import coursepath_async as cp
from coursepath_async._exceptions import body_excerpt, status_error_class

URL = "https://acme.example.com/api/v1/members/7"


@pytest.mark.parametrize(
    ("cls", "parent"),
    [
        (cp.ConfigurationError, cp.InvalidInputError),
        (cp.UncertainOutcomeError, cp.CoursepathError),
        (cp.APIResponseValidationError, cp.CoursepathError),
        (cp.APIConnectionError, cp.CoursepathError),
        (cp.APITimeoutError, cp.APIConnectionError),
        (cp.APIStatusError, cp.CoursepathError),
        (cp.BadRequestError, cp.APIStatusError),
        (cp.AuthenticationError, cp.APIStatusError),
        (cp.PermissionDeniedError, cp.APIStatusError),
        (cp.NotFoundError, cp.APIStatusError),
        (cp.ConflictError, cp.APIStatusError),
        (cp.UnprocessableEntityError, cp.APIStatusError),
        (cp.RateLimitError, cp.APIStatusError),
        (cp.ServerError, cp.APIStatusError),
    ],
)
def test_hierarchy(cls: type[Exception], parent: type[Exception]) -> None:
    """Each error has its documented direct parent, and all share CoursepathError."""
    assert cls.__bases__ == (parent,)
    assert issubclass(cls, cp.CoursepathError)


def test_input_and_state_errors_keep_their_builtin_catches() -> None:
    """InvalidInputError is a ValueError and ClientStateError a RuntimeError, both SDK errors."""
    assert cp.InvalidInputError.__bases__ == (cp.CoursepathError, ValueError)
    assert cp.ClientStateError.__bases__ == (cp.CoursepathError, RuntimeError)
    error = cp.InvalidInputError("timeout must be a number", argument="timeout")
    assert error.argument == "timeout"
    assert str(error) == "timeout must be a number"


def test_timeouts_are_not_builtin_timeouts() -> None:
    """APITimeoutError is an SDK error, not asyncio's TimeoutError (no accidental catches)."""
    assert not issubclass(cp.APITimeoutError, TimeoutError)


def test_status_error_attributes_and_message() -> None:
    """A status error carries status, method, URL, body, request id and flags."""
    err = cp.NotFoundError(
        "no such member",
        status_code=404,
        method="GET",
        url=URL,
        body=b'{"error":"no such member"}',
        request_id="r-1",
        retry_after=None,
    )
    assert str(err) == f"404 no such member (GET {URL})"
    assert (err.status_code, err.method, err.url, err.request_id) == (404, "GET", URL, "r-1")
    assert err.body == b'{"error":"no such member"}'
    assert err.retry_after is None
    assert err.after_unknown_outcome is False


def test_connection_error_attributes() -> None:
    """A connection error says where it happened and whether the request went out."""
    err = cp.APIConnectionError("refused", method="POST", url=URL, sent=False)
    assert str(err) == f"refused (POST {URL})"
    assert err.sent is False
    assert cp.APITimeoutError("slow", method="GET", url=URL).sent is True


def test_uncertain_outcome_attributes() -> None:
    """An uncertain-outcome error names the call."""
    err = cp.UncertainOutcomeError("maybe sent", method="POST", url=URL)
    assert (str(err), err.method, err.url) == ("maybe sent", "POST", URL)


def test_validation_error_attributes() -> None:
    """A response validation error keeps the raw body for debugging."""
    err = cp.APIResponseValidationError("bad", method="GET", url=URL, body=b"<html>")
    assert str(err) == f"bad (GET {URL})"
    assert err.body == b"<html>"


@pytest.mark.parametrize(
    ("status", "cls"),
    [
        (400, cp.BadRequestError),
        (401, cp.AuthenticationError),
        (403, cp.PermissionDeniedError),
        (404, cp.NotFoundError),
        (409, cp.ConflictError),
        (422, cp.UnprocessableEntityError),
        (429, cp.RateLimitError),
        (500, cp.ServerError),
        (502, cp.ServerError),
        (503, cp.ServerError),
        (599, cp.ServerError),
        (402, cp.APIStatusError),
        (418, cp.APIStatusError),
    ],
)
def test_status_error_class(status: int, cls: type[cp.APIStatusError]) -> None:
    """Statuses map to their classes; unknown 4xx to the APIStatusError base."""
    assert status_error_class(status) is cls


def test_body_excerpt() -> None:
    """Bodies are decoded leniently, stripped and cut at 500 characters."""
    assert body_excerpt(b"  hello \n") == "hello"
    assert body_excerpt(b"\xff") == "\ufffd"
    long = body_excerpt(b"a" * 501)
    assert long == "a" * 500 + "…"
    assert body_excerpt(b"a" * 500) == "a" * 500

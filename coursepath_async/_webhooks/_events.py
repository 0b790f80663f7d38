"""Parse a Coursepath webhook delivery into a typed event, or say exactly why not.

Pure (no I/O), so it is tested synchronously and usable under any web framework.
Coursepath posts ``courseId``, ``memberId`` and ``event`` as a UTF-8
``application/x-www-form-urlencoded`` form. Anything else is refused with the HTTP
status to answer (400, 413 or 415) and a stable ``reason`` used as a counter key.
Ids must be canonical decimals (``"12"``; not ``" 12 "``, ``"012"``, ``"1.0"``,
``"-1"`` or ``"../1"``): Coursepath writes ids that way, so anything looser is either
broken or forged and must never reach an API path. Unknown extra fields are ignored so
that a field Coursepath adds later does not make every delivery fail; a repeated
known field is refused, since which copy is meant cannot be told.
"""

from __future__ import annotations

import re
from enum import Enum
from typing import Final, Literal
from urllib.parse import parse_qsl

from attrs import field, frozen

from .._exceptions import CoursepathError
from .._validation import check_choice, validate_id

__all__ = [
    "EventKind",
    "FORM_CONTENT_TYPE",
    "InvalidWebhookError",
    "MAX_BODY",
    "RejectReason",
    "WebhookEvent",
    "check_content_encoding",
    "check_content_type",
    "check_size",
    "parse_webhook",
]

#: The largest body accepted, in bytes; a real delivery is under 100.
MAX_BODY: Final = 4096

FORM_CONTENT_TYPE: Final = "application/x-www-form-urlencoded"
_CHARSETS: Final = frozenset({"utf-8", "utf8", "us-ascii"})
_FIELDS: Final = ("courseId", "memberId", "event")
_MAX_FIELDS: Final = 32
_CANONICAL_ID: Final = re.compile(r"[1-9][0-9]{0,18}")
_EXCERPT: Final = 40

RejectReason = Literal[
    "unsupported_content_type",
    "unsupported_encoding",
    "body_too_large",
    "invalid_encoding",
    "malformed_form",
    "missing_field",
    "repeated_field",
    "unknown_event",
    "invalid_id",
]


class EventKind(Enum):
    """What happened to a course enrolment, as Coursepath names it on the wire."""

    COURSEMEMBER_CREATED = "COURSEMEMBER_CREATED"
    COURSEMEMBER_COMPLETED = "COURSEMEMBER_COMPLETED"
    COURSEMEMBER_DELETED = "COURSEMEMBER_DELETED"


def _positive_id(_instance: object, attribute: object, value: int) -> None:
    validate_id(value, field=getattr(attribute, "name", "id"))


def _event_kind(value: object) -> EventKind:
    if isinstance(value, EventKind):
        return value
    return EventKind(check_choice(value, field="event", choices=[k.value for k in EventKind]))


@frozen(kw_only=True)
class WebhookEvent:
    """One parsed delivery: *claimed* by an unsigned POST, not yet verified."""

    course_id: int = field(validator=_positive_id)
    member_id: int = field(validator=_positive_id)
    event: EventKind = field(converter=_event_kind)

    @property
    def key(self) -> tuple[EventKind, int, int]:
        """What makes two deliveries "the same event" for de-duplication."""
        return (self.event, self.course_id, self.member_id)


class InvalidWebhookError(CoursepathError, ValueError):
    """A delivery that is not a well-formed Coursepath webhook; answer ``status``.

    ``reason`` is a stable slug (see :data:`RejectReason`) for counters and the JSON
    error body; ``message`` says what was wrong in words and quotes at most a short,
    ``repr``-escaped excerpt of the input.
    """

    def __init__(self, reason: RejectReason, message: str, *, status: int = 400) -> None:
        super().__init__(f"{status} {reason}: {message}")
        self.reason: RejectReason = reason
        self.message = message
        self.status = status


def _excerpt(value: str) -> str:
    text = repr(value)
    return text if len(text) <= _EXCERPT else text[: _EXCERPT - 1] + "…"


def check_content_type(header: str | None) -> None:
    """Refuse (415) anything but a UTF-8 (or ASCII, or unlabelled) urlencoded form."""
    mime, _, parameters = (header or "").partition(";")
    if mime.strip().lower() != FORM_CONTENT_TYPE:
        raise InvalidWebhookError(
            "unsupported_content_type",
            f"expected Content-Type {FORM_CONTENT_TYPE}, got {_excerpt(mime.strip())}",
            status=415,
        )
    for parameter in parameters.split(";"):
        name, _, value = parameter.partition("=")
        charset = value.strip().strip('"').lower()
        if name.strip().lower() == "charset" and charset not in _CHARSETS:
            raise InvalidWebhookError(
                "unsupported_content_type",
                f"expected a UTF-8 form, got charset {_excerpt(charset)}",
                status=415,
            )


def check_content_encoding(header: str | None) -> None:
    """Refuse (415) a compressed or otherwise encoded body: Coursepath sends plain forms.

    Checked from the header alone, before any of the body is read, so a small gzip
    post that would inflate to hundreds of megabytes costs nothing.
    """
    encoding = (header or "identity").strip().lower()
    if encoding not in ("", "identity"):
        raise InvalidWebhookError(
            "unsupported_encoding",
            f"expected a plain body, got Content-Encoding {_excerpt(encoding)}",
            status=415,
        )


def check_size(size: int, *, max_body: int = MAX_BODY) -> None:
    """Refuse (413) a body, or a declared Content-Length, over ``max_body`` bytes."""
    if size > max_body:
        raise InvalidWebhookError(
            "body_too_large", f"the body exceeds {max_body} bytes", status=413
        )


def parse_webhook(
    body: bytes, *, content_type: str | None = FORM_CONTENT_TYPE, max_body: int = MAX_BODY
) -> WebhookEvent:
    """Turn a delivery's raw body (and its Content-Type header) into a :class:`WebhookEvent`.

    Raises :class:`InvalidWebhookError` naming the problem; never touches the network.
    """
    check_content_type(content_type)
    check_size(len(body), max_body=max_body)
    try:
        text = body.decode("utf-8")
        pairs = parse_qsl(
            text,
            keep_blank_values=True,
            strict_parsing=True,
            encoding="utf-8",
            errors="strict",
            max_num_fields=_MAX_FIELDS,
        )
    except UnicodeDecodeError:
        raise InvalidWebhookError("invalid_encoding", "the form is not valid UTF-8") from None
    except ValueError as exc:
        # parse_qsl quotes the whole offending field: keep only a short, escaped excerpt.
        raise InvalidWebhookError(
            "malformed_form", f"not a urlencoded form: {_excerpt(str(exc))}"
        ) from None
    values: dict[str, str] = {}
    for name, value in pairs:
        if name not in _FIELDS:
            continue  # forward compatible: a field Coursepath adds must not drop events
        if name in values:
            raise InvalidWebhookError("repeated_field", f"{name} appears more than once")
        values[name] = value
    missing = [name for name in _FIELDS if name not in values]
    if missing:
        raise InvalidWebhookError("missing_field", f"missing {', '.join(missing)}")
    return WebhookEvent(
        course_id=_parse_id(values["courseId"], "courseId"),
        member_id=_parse_id(values["memberId"], "memberId"),
        event=_parse_event(values["event"]),
    )


def _parse_id(value: str, name: str) -> int:
    if _CANONICAL_ID.fullmatch(value) is None:
        raise InvalidWebhookError(
            "invalid_id", f"{name} must be a positive decimal integer, got {_excerpt(value)}"
        )
    try:
        return validate_id(int(value), field=name)
    except ValueError as exc:  # above 2**63 - 1
        raise InvalidWebhookError("invalid_id", str(exc)) from None


def _parse_event(value: str) -> EventKind:
    try:
        return EventKind(value)
    except ValueError:
        known = ", ".join(kind.value for kind in EventKind)
        raise InvalidWebhookError(
            "unknown_event", f"event must be one of {known}, got {_excerpt(value)}"
        ) from None

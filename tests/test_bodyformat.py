"""The body format switch, sans I/O: auto turns to form once, fixed formats never do."""

from __future__ import annotations

import logging

import pytest

from coursepath_async._bodyformat import BodyFormats


def test_auto_switches_on_a_json_415_once_and_logs_once(caplog: pytest.LogCaptureFixture) -> None:
    """The first JSON 415 switches to form; later JSON 415s (sent before it) resend, quietly."""
    caplog.set_level(logging.INFO, logger="coursepath_async")
    formats = BodyFormats("auto")
    assert formats.current == "json"
    assert formats.refused("json") is True
    assert formats.refused("json") is True
    assert str(formats.current) == "form"
    assert len(caplog.records) == 1
    assert repr(formats) == "<BodyFormats form (auto)>"


def test_a_form_415_is_final_whatever_the_setting() -> None:
    """A 415 to a form body is never resent: the server takes neither format."""
    assert BodyFormats("auto").refused("form") is False
    assert BodyFormats("form").refused("form") is False


def test_a_fixed_json_client_never_switches() -> None:
    """body_format='json' keeps JSON after a 415."""
    formats = BodyFormats("json")
    assert formats.refused("json") is False
    assert formats.current == "json"

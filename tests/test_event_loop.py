"""The CLI's loop choice: uvloop when installed, the standard loop on request, clear errors."""

from __future__ import annotations

import asyncio
import importlib.util

import pytest

from coursepath_async import ConfigurationError
from coursepath_async import _event_loop as event_loop


def _without_uvloop(monkeypatch: pytest.MonkeyPatch) -> None:
    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util,
        "find_spec",
        lambda name, *a: None if name == "uvloop" else real(name, *a),
    )


@pytest.mark.parametrize(("setting", "expected"), [("", "uvloop"), (" Auto ", "uvloop")])
def test_auto_takes_uvloop_when_installed(
    monkeypatch: pytest.MonkeyPatch, setting: str, expected: str
) -> None:
    """Unset or ``auto`` (any case, spaces ignored) picks uvloop if it can be imported."""
    pytest.importorskip("uvloop")
    monkeypatch.setenv("COURSEPATH_LOOP", setting)
    assert event_loop.choose_loop() == expected


def test_auto_falls_back_to_asyncio(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without uvloop, ``auto`` quietly uses the standard loop."""
    _without_uvloop(monkeypatch)
    monkeypatch.delenv("COURSEPATH_LOOP", raising=False)
    assert event_loop.choose_loop() == "asyncio"


def test_asking_for_uvloop_without_it_says_how_to_install_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """``COURSEPATH_LOOP=uvloop`` without uvloop is an error naming the extra."""
    _without_uvloop(monkeypatch)
    monkeypatch.setenv("COURSEPATH_LOOP", "uvloop")
    with pytest.raises(ConfigurationError, match=r"coursepath-async\[speed\]"):
        event_loop.choose_loop()


def test_an_unknown_setting_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    """Anything but auto/asyncio/uvloop is refused, quoting what was given."""
    monkeypatch.setenv("COURSEPATH_LOOP", "trio")
    with pytest.raises(ConfigurationError, match="must be auto, asyncio or uvloop, got 'trio'"):
        event_loop.choose_loop()


@pytest.mark.parametrize("setting", ["asyncio", "uvloop"])
def test_run_uses_the_chosen_loop(monkeypatch: pytest.MonkeyPatch, setting: str) -> None:
    """``run`` drives the coroutine on the loop it chose and returns its result."""
    if setting == "uvloop":
        pytest.importorskip("uvloop")
    monkeypatch.setenv("COURSEPATH_LOOP", setting)

    async def which() -> str:
        await asyncio.sleep(0)
        return type(asyncio.get_running_loop()).__module__.split(".")[0]

    assert event_loop.run(which) == setting

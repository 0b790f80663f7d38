"""The CLI's loop choice: uvloop when installed, the standard loop on request, clear errors."""

from __future__ import annotations

import asyncio
import gc
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


def test_run_tunes_the_collector_only_while_the_command_runs() -> None:
    """During ``run`` the job thresholds hold and start-up's objects are frozen; both are undone."""
    before = gc.get_threshold()
    seen: list[tuple[tuple[int, int, int], int]] = []

    async def job() -> None:
        seen.append((gc.get_threshold(), gc.get_freeze_count()))

    event_loop.run(job)
    [(threshold, frozen)] = seen
    assert threshold == event_loop.JOB_GC_THRESHOLD
    assert frozen > 1000
    assert gc.get_threshold() == before
    assert gc.get_freeze_count() == 0


def test_the_collector_is_restored_when_the_command_fails() -> None:
    """A command that raises still leaves the caller's collector as it was."""
    before = gc.get_threshold()

    async def job() -> None:
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        event_loop.run(job)
    assert gc.get_threshold() == before
    assert gc.get_freeze_count() == 0

"""Unit tests of the hooks' pure parts: path templates, guarded calls, option checks."""

from __future__ import annotations

import asyncio
import logging

import pytest
from conftest import offline_client
from fake_clock import FakeClock

from coursepath_async import ConfigurationError, Hooks
from coursepath_async._hooks import LOG_INTERVAL, _Guard
from coursepath_async._records import path_template


@pytest.mark.parametrize(
    ("path", "template"),
    [
        ("/members/12", "/members/{memberId}"),
        ("/members/12/groups", "/members/{memberId}/groups"),
        (
            "/courses/3/members/9/coursemember",
            "/courses/{courseId}/members/{memberId}/coursemember",
        ),
        ("/programs/4/members/77/invite", "/programs/{programId}/members/{memberId}/invite"),
        ("/groups/5/members", "/groups/{groupId}/members"),
        ("/members/me", "/members/me"),
        ("/members", "/members"),
        ("/widgets/8", "/widgets/{id}"),
    ],
)
def test_path_template_names_each_id_after_its_collection(path: str, template: str) -> None:
    """Every id segment becomes the API reference's name for it; other segments stay."""
    assert path_template(path) == template


def _boom(record: object) -> None:
    raise RuntimeError("hook bug")


def test_a_failing_hook_is_logged_at_most_once_a_minute(caplog: pytest.LogCaptureFixture) -> None:
    """Three failures within a minute log one warning; the next, later, logs the count."""
    clock = FakeClock(0.0)
    guard = _Guard(Hooks(on_call=_boom), clock)
    caplog.set_level(logging.WARNING, logger="coursepath_async.hooks")
    for t in (0.0, 1.0, 2.0):
        clock.now = t
        guard.run("call_ended", guard.instrumentation.call_ended, None, None)
    assert len(caplog.records) == 1
    assert "Hooks.call_ended raised (1 time(s)" in caplog.records[0].getMessage()
    assert caplog.records[0].exc_info is not None  # the hook's traceback, for its author
    clock.now = 2.0 + LOG_INTERVAL
    guard.run("call_ended", guard.instrumentation.call_ended, None, None)
    assert len(caplog.records) == 2
    assert "(3 time(s) since last logged)" in caplog.records[1].getMessage()


async def test_async_hooks_beyond_max_pending_are_dropped_and_logged(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """With one background task still running, a second record is not handed on: logged."""
    release = asyncio.Event()
    seen: list[object] = []

    async def slow(record: object) -> None:
        await release.wait()
        seen.append(record)

    guard = _Guard(Hooks(on_call=slow, max_pending=1), FakeClock(0.0))
    caplog.set_level(logging.WARNING, logger="coursepath_async.hooks")
    guard.run("call_ended", guard.instrumentation.call_ended, None, "first")
    guard.run("call_ended", guard.instrumentation.call_ended, None, "second")
    messages = [r.getMessage() for r in caplog.records]
    assert len(messages) == 1
    assert "1 background tasks still running" in messages[0]
    release.set()
    await guard.drain(5.0)
    assert seen == ["first"]


async def test_drain_cancels_background_hooks_that_outlive_the_wait() -> None:
    """A hook still blocked when the wait ends is cancelled, not left running."""
    started = asyncio.Event()
    cancelled: list[bool] = []

    async def stuck(record: object) -> None:
        started.set()
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            cancelled.append(True)
            raise

    guard = _Guard(Hooks(on_attempt=stuck), FakeClock(0.0))
    guard.run("attempt_ended", guard.instrumentation.attempt_ended, None, "r")
    await started.wait()
    await guard.drain(0.0)
    assert cancelled == [True]


@pytest.mark.parametrize("value", [0, -1, 1.5, True, "8"])
def test_hooks_refuses_a_max_pending_that_is_not_a_positive_int(value: object) -> None:
    """``max_pending`` names itself and the bad value."""
    with pytest.raises(ValueError, match="max_pending"):
        Hooks(max_pending=value)  # type: ignore[arg-type]


@pytest.mark.parametrize("hooks", [print, [Hooks(), print], "otel", {Hooks()}])
def test_client_refuses_hooks_that_are_no_instrumentation(hooks: object) -> None:
    """``hooks=`` takes a Hooks, an Instrumentation or a list of them; anything else is named."""
    with pytest.raises(ConfigurationError, match="hooks must be a Hooks"):
        offline_client(hooks=hooks)

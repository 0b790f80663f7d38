"""Event hooks through the sandbox: a record per attempt and per call, safe, never in the way."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import pytest
from _support import serving

from coursepath_async import (
    APITimeoutError,
    AttemptRecord,
    CallRecord,
    CallStart,
    Hooks,
    Instrumentation,
    JobRecord,
    NotFoundError,
    Priority,
    UncertainOutcomeError,
)
from coursepath_async.bulk import MappingRows, SyncOptions, export_members, sync_members
from coursepath_async.testing import ScriptedFault


class Seen:
    """Collects what the hooks were handed, in order."""

    def __init__(self) -> None:
        self.attempts: list[AttemptRecord] = []
        self.calls: list[CallRecord] = []

    def hooks(self, **options: object) -> Hooks:
        return Hooks(
            on_attempt=self.attempts.append,
            on_call=self.calls.append,
            **options,  # type: ignore[arg-type]
        )


async def test_a_retried_call_is_two_attempt_records_and_one_call_record() -> None:
    """A 503 then a 200: the fault says it will be retried, the call says two attempts."""
    seen = Seen()
    async with serving(client={"hooks": seen.hooks()}) as (academy, client):
        academy.script("GET", "/members/{id}", 503)
        await client.members.get(3)
    first, second = seen.attempts
    assert (first.attempt, first.outcome, first.status, first.error) == (
        1,
        "fault",
        503,
        "ServerError",
    )
    assert first.will_retry
    assert first.retry_wait == 0.0
    assert (second.attempt, second.outcome, second.status, second.error) == (
        2,
        "success",
        200,
        None,
    )
    assert not second.will_retry
    assert second.retry_wait is None
    assert {r.method for r in seen.attempts} == {"GET"}
    assert {r.path_template for r in seen.attempts} == {"/members/{memberId}"}
    assert all(r.elapsed > 0 and r.lane is Priority.NORMAL for r in seen.attempts)
    (call,) = seen.calls
    assert (call.attempts, call.status, call.error, call.ok) == (2, 200, None, True)
    assert call.path_template == "/members/{memberId}"
    assert call.elapsed >= first.elapsed + second.elapsed


async def test_each_attempt_record_carries_its_answers_request_id_and_the_call_the_last() -> None:
    """A 503 then a 200: two server request ids, the call keeps the answer's; none without one."""
    seen = Seen()
    async with serving(client={"hooks": seen.hooks()}) as (academy, client):
        academy.script("GET", "/members/{id}", 503)
        await client.members.get(3)
        academy.script("GET", "/members/{id}", "reset")
        academy.script("GET", "/members/{id}", 404)
        with pytest.raises(NotFoundError):
            await client.members.get(3)
    served = [entry.request_id for entry in academy.recorder.requests]
    first, second, reset, missing = seen.attempts
    assert first.request_id in served
    assert second.request_id in served
    assert first.request_id != second.request_id
    assert reset.request_id is None  # no answer, no id
    assert missing.request_id in served
    answered, failed = seen.calls
    assert answered.request_id == second.request_id
    assert failed.request_id == missing.request_id


async def test_an_echoed_request_id_is_redacted_in_the_records() -> None:
    """A proxy echoing the token into X-Request-Id: the record keeps no credential."""
    seen = Seen()
    async with serving(client={"hooks": seen.hooks()}) as (academy, client):
        academy.script("GET", "/members/{id}", ScriptedFault.echo(503))
        await client.members.get(3)
    echoed, _ = seen.attempts
    assert echoed.request_id is not None
    assert academy.recorder.echoed_tokens  # the proxy did echo the token
    for token in academy.recorder.echoed_tokens:
        assert token not in echoed.request_id
    assert academy.api_key not in echoed.request_id


async def test_refusals_faults_and_rejections_are_told_apart() -> None:
    """A 429 is a refusal with the server's wait, a 404 a rejection the call raises."""
    seen = Seen()
    async with serving(client={"hooks": seen.hooks()}) as (academy, client):
        academy.script("GET", "/members/{id}", ScriptedFault.status(503, retry_after=0.05))
        await client.members.get(2)
        with pytest.raises(NotFoundError):
            await client.members.get(99_999)
    refused, ok, rejected = seen.attempts
    assert (refused.outcome, refused.status, refused.will_retry) == ("refusal", 503, True)
    assert refused.retry_wait == pytest.approx(0.05)
    assert ok.outcome == "success"
    assert (rejected.outcome, rejected.status, rejected.will_retry) == ("rejection", 404, False)
    assert seen.calls[0].retry_wait == pytest.approx(0.05)
    failed = seen.calls[1]
    assert (failed.attempts, failed.status, failed.error, failed.ok) == (
        1,
        404,
        "NotFoundError",
        False,
    )


async def test_records_carry_no_key_token_email_body_or_filled_path() -> None:
    """Everything a record prints is free of secrets, people and ids."""
    seen = Seen()
    async with serving(client={"hooks": seen.hooks()}) as (academy, client):
        academy.script("POST", "/members/{id}", 500)
        member = await client.members.get(4)
        await client.members.update(member.id, name="Grace Hopper")
        await client.members.create("new.person@example.com", name="New Person")
        printed = repr(seen.attempts) + repr(seen.calls)
    for secret in (academy.api_key, academy.admin_email, member.email, "new.person", "Bearer"):
        assert secret not in printed
    assert "Grace" not in printed
    assert "New Person" not in printed
    assert f"/{member.id}" not in printed  # the template, not the path
    assert {r.path_template for r in seen.calls} == {"/members/{memberId}", "/members"}


async def test_an_uncertain_invitation_records_the_attempts_fault_and_the_calls_error() -> None:
    """A 502 after an invite was applied ends the call uncertain; the attempt says 502."""
    seen = Seen()
    async with serving(client={"hooks": seen.hooks()}) as (academy, client):
        academy.script("POST", "/members/{id}/invite", "applied_then_502")
        with pytest.raises(UncertainOutcomeError):
            await client.members.invite(5)
    (attempt,) = seen.attempts
    assert (attempt.outcome, attempt.status, attempt.will_retry) == ("fault", 502, False)
    assert attempt.path_template == "/members/{memberId}/invite"
    (call,) = seen.calls
    assert (call.attempts, call.status, call.error) == (1, None, "UncertainOutcomeError")


async def test_a_raising_hook_is_logged_and_never_breaks_a_call(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Hooks that raise on every record: the calls still succeed, and a warning says so."""

    def broken(record: object) -> None:
        raise RuntimeError("bug in the hook")

    hooks = Hooks(on_attempt=broken, on_call=broken)
    caplog.set_level(logging.WARNING, logger="coursepath_async.hooks")
    async with serving(client={"hooks": hooks}) as (academy, client):
        for _ in range(3):
            assert (await client.members.me()).email == academy.admin_email
    messages = [r.getMessage() for r in caplog.records if r.name == "coursepath_async.hooks"]
    assert len(messages) == 2  # once per hook, not once per call
    assert any("Hooks.attempt_ended raised" in m for m in messages)
    assert any("Hooks.call_ended raised" in m for m in messages)


async def test_an_async_hook_runs_in_the_background_and_never_delays_the_call() -> None:
    """The call returns while its async hook still waits; closing the client lets it finish."""
    release = asyncio.Event()
    order: list[str] = []

    async def slow(record: CallRecord) -> None:
        await release.wait()
        order.append(f"hook {record.path_template}")

    async with serving(client={"hooks": Hooks(on_call=slow)}) as (_, client):
        await client.members.me()
        order.append("call returned")
        release.set()
    # Closed: aclose waited for the hook it had started.
    assert order == ["call returned", "hook /members/me"]


async def test_views_share_the_clients_hooks_and_report_their_lane() -> None:
    """An ``as_user`` view and an interactive view go through the same hooks."""
    seen = Seen()
    async with serving(client={"hooks": seen.hooks()}) as (_academy, client):
        member = await client.members.get(6)
        await client.as_user(member.email).members.me()
        await client.with_options(priority=Priority.INTERACTIVE).courses.list().collect()
    assert [(c.path_template, c.lane) for c in seen.calls] == [
        ("/members/{memberId}", Priority.NORMAL),
        ("/members/me", Priority.NORMAL),
        ("/courses", Priority.INTERACTIVE),
    ]


async def test_a_call_that_queued_for_a_slot_records_its_wait() -> None:
    """With one slot, the second of two concurrent calls waits for it, and says how long."""
    seen = Seen()
    options = {"hooks": seen.hooks(), "max_concurrency": 1, "interactive_reserve": 0}
    async with serving(client=options) as (_, client):
        await asyncio.gather(client.members.get(1), client.members.get(2))
    waits = sorted(r.queue_wait for r in seen.attempts)
    assert waits[0] == 0.0
    assert waits[1] > 0.0
    assert sorted(c.queue_wait for c in seen.calls) == waits


async def test_a_call_cut_by_its_deadline_records_the_timeout_and_no_attempt() -> None:
    """A hung attempt cut by the deadline: no attempt ended, the call raised a timeout."""
    seen = Seen()
    async with serving(client={"hooks": seen.hooks()}) as (academy, client):
        academy.script("GET", "/members/me", "hang")
        with pytest.raises(APITimeoutError, match="deadline"):
            await client.with_options(deadline=0.2).members.me()
    assert seen.attempts == []
    (call,) = seen.calls
    assert (call.attempts, call.error) == (0, "APITimeoutError")


async def test_bulk_jobs_report_their_counters_when_they_end(tmp_path: Path) -> None:
    """A sync and an export each end with one job record holding their counts."""
    jobs: list[JobRecord] = []
    seen = Seen()
    hooks = [seen.hooks(), Hooks(on_job=jobs.append)]
    async with serving(client={"hooks": hooks}) as (academy, client):
        rows = MappingRows([{"email": academy.admin_email}, {"email": "new.one@example.com"}])
        await sync_members(client, rows, journal=None, options=SyncOptions(dry_run=True))
        stats = await export_members(client, tmp_path / "members.csv", format="csv")
    sync, export = jobs
    assert (sync.kind, sync.error) == ("sync", None)
    assert sync.counts["rows"] == 2
    assert (export.kind, export.counts, export.error) == (
        "export_members",
        {"records": stats.records},
        None,
    )
    assert stats.records == 20
    assert {c.lane for c in seen.calls} == {Priority.BULK}


async def test_a_job_that_raises_reports_the_error_class(tmp_path: Path) -> None:
    """An export refused because its file exists still ends its job record, with the error."""
    jobs: list[JobRecord] = []
    out = tmp_path / "members.csv"
    out.write_text("keep me")
    async with serving(client={"hooks": Hooks(on_job=jobs.append)}) as (_, client):
        with pytest.raises(FileExistsError):
            await export_members(client, out, format="csv")
    (job,) = jobs
    assert (job.kind, job.counts, job.error) == (
        "export_members",
        {"records": 0},
        "FileExistsError",
    )


class _Tracer(Instrumentation):
    """An instrumentation that refuses its first call's start, and notes what it is told."""

    def __init__(self) -> None:
        self.told: list[str] = []

    def call_started(self, start: CallStart) -> object:
        if not self.told:
            self.told.append("refused")
            raise RuntimeError("tracer not ready")
        self.told.append(f"start {start.url_template}")
        return start.path_template

    def attempt_ended(self, state: object, record: AttemptRecord) -> None:
        self.told.append(f"attempt {record.attempt} of {state}")

    def call_ended(self, state: object, record: CallRecord) -> None:
        self.told.append(f"end of {state}")


async def test_an_instrumentation_whose_start_raised_hears_nothing_more_of_that_call() -> None:
    """The first call's start raised: the call succeeds, and only the second is reported."""
    tracer = _Tracer()
    async with serving(client={"hooks": tracer}) as (_, client):
        await client.members.me()
        await client.members.get(2)
    assert tracer.told == [
        "refused",
        "start /api/v1/members/{memberId}",
        "attempt 1 of /members/{memberId}",
        "end of /members/{memberId}",
    ]

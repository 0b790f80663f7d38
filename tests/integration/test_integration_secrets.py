"""No API key or token in logs (DEBUG on), reprs or exception text, under faults and failures."""

from __future__ import annotations

import asyncio
import logging

import pytest
from _support import serving
from conftest import make_client

from coursepath_async import (
    APIResponseValidationError,
    APIStatusError,
    APITimeoutError,
    AuthenticationError,
    BadRequestError,
    CoursepathError,
    NotFoundError,
    PermissionDeniedError,
    RetryPolicy,
    ServerError,
    UncertainOutcomeError,
)
from coursepath_async.testing import Faults, ScriptedFault, leaked_credentials, printed_forms

WRONG_KEY = "not-the-academy-key-but-also-secret-0123456789abcdef"


async def test_no_secret_in_logs_reprs_or_errors(caplog: pytest.LogCaptureFixture) -> None:
    """A faulty batch at DEBUG leaves the API key and every token out of all captured text."""
    caplog.set_level(logging.DEBUG, logger="coursepath_async")
    faults = Faults(
        seed=7,
        error_rate=0.2,
        reset_rate=0.1,
        rate_limit_rate=0.05,
        retry_after=0.01,
        applied_then_fail_rate=0.1,
    )
    retry = RetryPolicy(max_attempts=3, base_delay=0.0, max_delay=0.0)
    async with serving(members=30, faults=faults, client={"retry": retry}) as (academy, client):
        state = academy.state
        ids = [r.id for r in state.members()]
        learner = client.as_user(state.members()[3].email)
        calls = [
            *(client.members.get(i) for i in ids),
            *(client.members.update(i, department="Sec") for i in ids[1:10]),
            *(client.members.invite(i) for i in ids[10:20]),
            client.members.list(page_size=4).collect(),
        ]
        outcomes: list[object] = [*await asyncio.gather(*calls, return_exceptions=True)]

        # Then one failure of each kind, deterministically (random faults off, scripted ones on).
        academy.faults = Faults()
        academy.script("POST", "/members/{m}/invite", "applied_then_502")
        academy.script("GET", "/members/me", "hang")
        failing = [
            client.members.get(99_999),
            learner.members.list().collect(),
            client.members.invite(ids[1]),
            client.with_options(deadline=0.2).members.me(),
        ]
        outcomes.extend(await asyncio.gather(*failing, return_exceptions=True))

        async with make_client(academy, api_key=WRONG_KEY) as wrong:
            with pytest.raises(AuthenticationError) as refused:
                await wrong.members.me()
            texts = [repr(wrong)]

        errors: list[BaseException] = [o for o in outcomes if isinstance(o, BaseException)]
        errors.append(refused.value)
        assert all(isinstance(e, CoursepathError) for e in errors), errors
        kinds = {type(e) for e in errors}
        assert NotFoundError in kinds
        assert PermissionDeniedError in kinds
        assert UncertainOutcomeError in kinds
        assert APITimeoutError in kinds

        paginator = client.members.list()
        texts += [
            caplog.text,
            *(f"{r.getMessage()} {r.args!r}" for r in caplog.records),
            repr(client),
            repr(learner),
            repr(paginator),
            repr(client.scheduler_stats()),
            repr(client.members),
            repr(outcomes),
        ]
        for error in errors:
            texts.extend(printed_forms(error))

        recorder = academy.recorder
        secret_values = [academy.api_key, WRONG_KEY, *(str(jti) for jti in recorder.jtis)]
        assert len(recorder.jtis) == recorder.total  # every request carried a token
        blob = "\n".join(texts)
        leaked = [s for s in secret_values if s in blob]
        assert leaked == []
        # Any JWT (header or claims) is base64url JSON, which always starts "eyJ".
        assert "eyJ" not in blob
        assert "Bearer" not in blob

        # The test is not vacuous: DEBUG lines per attempt and INFO lines per retry were logged.
        messages = [r.getMessage() for r in caplog.records if r.name == "coursepath_async"]
        assert any(" -> 200 (attempt 1," in m for m in messages)
        assert any(m.startswith("retrying") for m in messages)


@pytest.mark.parametrize("level", [logging.DEBUG, logging.INFO, logging.WARNING])
async def test_a_server_echoing_credentials_leaks_none(
    caplog: pytest.LogCaptureFixture, level: int
) -> None:
    """Echoed tokens and key (JSON, text, HTML; body, header, reason) reach no error or log."""
    caplog.set_level(level)  # the root logger: the SDK's, aiohttp's, asyncio's...
    retry = RetryPolicy(max_attempts=3, base_delay=0.0, max_delay=0.0)
    echo = ScriptedFault.echo
    async with serving(members=8, client={"retry": retry}) as (academy, client):
        member = academy.state.members()[2].id
        # Retried 5xx answers until the attempts run out; a 5xx then a final 400; an
        # invitation answered 503 (uncertain); 2xx answers that are not what was asked.
        academy.script(
            "GET", f"/members/{member}", echo(503), echo(500, body="text"), echo(502, body="html")
        )
        academy.script("GET", "/members/me", echo(503, body="text"), echo(400))
        academy.script("POST", "/members/{memberId}/invite", echo(503, body="html"))
        academy.script("GET", "/groups", echo(200, body="text"))
        academy.script("GET", "/courses/{courseId}", echo(200))
        outcomes = await asyncio.gather(
            client.members.get(member),
            client.members.me(),
            client.members.invite(member),
            client.groups.list().collect(),
            client.courses.get(1),
            return_exceptions=True,
        )
        texts = [repr(client), repr(outcomes)]

    kinds = [type(outcome) for outcome in outcomes]
    assert kinds == [
        ServerError,
        BadRequestError,
        UncertainOutcomeError,
        APIResponseValidationError,
        APIResponseValidationError,
    ]
    errors = [o for o in outcomes if isinstance(o, CoursepathError)]
    for error in errors:
        texts.extend(printed_forms(error))
        texts.append(repr(getattr(error, "request_id", None)))
    assert isinstance(errors[2].__cause__, ServerError)
    texts += [
        caplog.text,
        *(f"{r.getMessage()} {r.args!r} {r.exc_text or ''}" for r in caplog.records),
    ]
    recorder = academy.recorder
    assert len(recorder.echoed_tokens) == 8
    found = leaked_credentials(
        "\n".join(texts), api_key=academy.api_key, tokens=recorder.echoed_tokens
    )
    assert found == [], f"{len(found)} leaks: {found[:5]}"

    # Not vacuous: the errors still say what happened, and the retries were logged.
    status_errors = [e for e in errors if isinstance(e, APIStatusError)]
    assert [e.status_code for e in status_errors] == [502, 400]
    assert "[redacted]" in str(errors[1])
    assert b"[redacted]" in status_errors[0].body
    retries = [r.getMessage() for r in caplog.records if r.getMessage().startswith("retrying")]
    assert len(retries) == (3 if level <= logging.INFO else 0)

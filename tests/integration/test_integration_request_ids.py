"""Request ids through real HTTP: the academy's ``X-Request-Id`` reaches errors and DEBUG lines."""

from __future__ import annotations

import logging

import pytest
from _support import serving

from coursepath_async import NotFoundError, RetryPolicy, ServerError


async def test_an_error_carries_the_request_id_the_academy_gave_it() -> None:
    """A 404 raised to the caller names the id of the very answer the academy sent."""
    async with serving() as (academy, client):
        with pytest.raises(NotFoundError) as caught:
            await client.members.get(987_654)
        [record] = academy.recorder.requests
        assert record.request_id.startswith("sbx-")
        assert caught.value.request_id == record.request_id


async def test_the_final_error_after_retries_names_the_last_answer() -> None:
    """After retried 502s, the error raised carries the request id of the last attempt."""
    retry = RetryPolicy(max_attempts=2, base_delay=0.0, max_delay=0.0)
    async with serving(client={"retry": retry}) as (academy, client):
        academy.script("GET", "/members/me", 502, 502)
        with pytest.raises(ServerError) as caught:
            await client.members.me()
        first, last = academy.recorder.requests
        assert caught.value.request_id == last.request_id != first.request_id


async def test_each_attempts_debug_line_names_its_request_id(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A retried call logs one DEBUG line per attempt, each with that answer's request id."""
    caplog.set_level(logging.DEBUG, logger="coursepath_async")
    async with serving() as (academy, client):
        academy.script("GET", "/members/me", 503)
        await client.members.me()
        ids = [record.request_id for record in academy.recorder.requests]
    lines = [r.getMessage() for r in caplog.records if "/members/me ->" in r.getMessage()]
    assert len(lines) == len(ids) == 2
    for line, request_id in zip(lines, ids, strict=True):
        assert line.endswith(f"request id {request_id})")

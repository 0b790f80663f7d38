"""``--log-format json``: one redacted JSON object per log line, the job summary among them."""

from __future__ import annotations

import io
import logging
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from cli_env import run_cli
from conftest import API_KEY, sandbox

from coursepath_async._logformat import JsonFormatter
from coursepath_async.testing import SandboxAcademy

TOKEN = "eyJhbGciOiJIUzI1NiJ9.eyJlbWFpbCI6ImFAYi5leGFtcGxlIn0.c2lnbmF0dXJlLWhlcmUtMDEyMw"


@pytest.fixture
async def academy() -> AsyncIterator[SandboxAcademy]:
    async with sandbox(members=3, seed=4) as a:
        yield a


def _records(stderr: str) -> list[dict[str, Any]]:
    """Every JSON log line of ``stderr`` (the progress and closing lines are not logs)."""
    return [orjson.loads(line) for line in stderr.splitlines() if line.startswith("{")]


async def test_an_import_logs_json_lines_and_one_summary_record(
    academy: SandboxAcademy, tmp_path: Path
) -> None:
    """Each DEBUG attempt line and the job summary are JSON objects; no token appears."""
    people = tmp_path / "people.csv"
    people.write_text("email,name\n" + "".join(f"j{i}@json.test,J {i}\n" for i in range(3)))
    code, _, err = await run_cli(
        academy, "--log-format", "json", "--log-level", "debug", "import", str(people)
    )
    assert code == 0, err
    records = _records(err)
    assert records
    for record in records:
        assert {"time", "level", "logger", "event", "message"} <= record.keys()
    attempts = [r for r in records if " -> " in r["message"] and "request id sbx-" in r["message"]]
    assert len(attempts) == academy.recorder.total
    [summary] = [r for r in records if r["event"] == "job_summary"]
    assert summary["level"] == "info"
    assert summary["fields"]["totals"]["created"] == 3
    assert summary["fields"]["exit_code"] == 0
    assert "Bearer" not in err
    assert API_KEY not in err


async def test_json_is_the_env_default_and_shows_info(
    academy: SandboxAcademy, tmp_path: Path
) -> None:
    """``COURSEPATH_LOG_FORMAT=json`` alone gives JSON at info: the summary, no DEBUG lines."""
    people = tmp_path / "people.csv"
    people.write_text("email,name\nsolo@json.test,Solo\n")
    code, _, err = await run_cli(academy, "import", str(people), COURSEPATH_LOG_FORMAT="json")
    assert code == 0, err
    records = _records(err)
    assert [r["event"] for r in records if r["event"] == "job_summary"] == ["job_summary"]
    assert {r["level"] for r in records} <= {"info", "warning", "error"}


async def test_a_bad_log_format_in_the_env_is_a_usage_error(academy: SandboxAcademy) -> None:
    """An unknown ``COURSEPATH_LOG_FORMAT`` stops the command with exit code 2, naming it."""
    code, _, err = await run_cli(academy, "import", "x.csv", COURSEPATH_LOG_FORMAT="yaml")
    assert code == 2
    assert "COURSEPATH_LOG_FORMAT must be 'text' or 'json'" in err


def test_the_formatter_redacts_message_fields_and_traceback() -> None:
    """A token in the message, an ``extra`` field or an exception is blanked; one line each."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    logger = logging.getLogger("coursepath_async.test_json")
    logger.addHandler(handler)
    logger.propagate = False
    try:
        logger.warning("sent %s", f"Bearer {TOKEN}", extra={"event": "sent", "auth": [TOKEN]})
        try:
            raise ValueError(f"token {TOKEN}")
        except ValueError:
            logger.exception("failed")
    finally:
        logger.removeHandler(handler)
        logger.propagate = True
    lines = stream.getvalue().splitlines()
    assert len(lines) == 2
    first, second = (orjson.loads(line) for line in lines)
    assert (first["event"], first["level"], first["logger"]) == (
        "sent",
        "warning",
        "coursepath_async.test_json",
    )
    assert first["message"].startswith("sent ")
    assert second["event"] == "failed"
    assert "ValueError" in second["exception"]
    assert TOKEN not in stream.getvalue()
    assert TOKEN.rsplit(".", 1)[1] not in stream.getvalue()

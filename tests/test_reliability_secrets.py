"""Secrets: a whole import, faults and failures included, leaks neither the API key nor a token.

Two runs, each scanned in full afterwards for the API key, for every ``jti`` the sandbox
saw, for ``eyJ`` (how every JWT starts) and for ``Bearer``:

* in process: ``import_members`` with the root logger at DEBUG (caplog), a progress bar
  on a fake terminal, and a spy on the client's send path that keeps every exception
  raised through it; scanned are the log text and records, the reprs of the client,
  its views, resources, scheduler and its stats, the journal and the reader, every
  exception (str, repr, traceback, attributes, body), the report (JSON and summary),
  the progress output and the journal's raw bytes;
* the CLI: ``python -m coursepath_async --log-level debug import ...`` with its stderr on
  a pseudo-terminal (so the tqdm bar is drawn), scanned are stdout, stderr, the report
  file and the journal's raw bytes.

Then the same through an academy whose error answers echo the request's credentials
(``ScriptedFault.echo``: the ``Authorization`` header as sent, URL-encoded, JSON-escaped
and wrapped, the API key, in JSON, text and HTML bodies, a header and the reason
phrase): an import in process at DEBUG, and the CLI's import and a failing export at
every log level; each output is also searched for any piece of an echoed token.
"""

from __future__ import annotations

import argparse
import asyncio
import fcntl
import io
import logging
import os
import pty
import struct
import sys
import termios
from pathlib import Path

import pytest
from cli_env import cli_env, run_cli
from conftest import API_KEY, make_client, sandbox

from coursepath_async import (
    APIStatusError,
    CoursepathClient,
    CoursepathError,
    Priority,
    RetryPolicy,
    UncertainOutcomeError,
    _cli,
)
from coursepath_async._auth import TokenSigner
from coursepath_async._core import CallContext, Core
from coursepath_async._progress import Progress
from coursepath_async._sansio import ApiRequest, RawResponse
from coursepath_async.bulk import (
    CsvRows,
    ImportOptions,
    ImportReport,
    PlanOptions,
    RowReport,
    import_members,
    open_journal,
)
from coursepath_async.bulk._apply import row_failure
from coursepath_async.testing import (
    Faults,
    Recorder,
    SandboxAcademy,
    ScriptedFault,
    leaked_credentials,
    printed_forms,
)
from coursepath_async.testing._people import write_people_csv

#: A course id the academy does not have: rows asking for it fail with a 404.
MISSING_COURSE = 404


def secrets_seen(academy: SandboxAcademy) -> list[str]:
    """The API key and every token id the academy was shown."""
    return [academy.api_key, *(str(jti) for jti in academy.recorder.jtis)]


def leaks(secrets: list[str], text: str) -> list[str]:
    """Which secrets (or token-shaped strings) occur in ``text``."""
    found = [s if s == secrets[0] else f"jti {s}" for s in secrets if s in text]
    found += [marker for marker in ("eyJ", "Bearer", "bearer ") if marker in text]
    return found


def byte_leaks(secrets: list[str], data: bytes) -> list[str]:
    """Which secrets (or token-shaped strings) occur in raw bytes."""
    return leaks(secrets, data.decode("latin-1"))


def journal_bytes(journal_path: Path) -> bytes:
    """The journal file and any WAL/SHM companion, raw."""
    parts = sorted(journal_path.parent.glob(journal_path.name + "*"))
    assert journal_path in parts
    return b"".join(part.read_bytes() for part in parts)


class FakeTerminal(io.StringIO):
    """A text stream that says it is a terminal, so tqdm draws its bar into it."""

    def isatty(self) -> bool:
        return True


def spy_on_send(monkeypatch: pytest.MonkeyPatch) -> list[BaseException]:
    """Keep every exception raised through the client's send path, in the returned list."""
    raised: list[BaseException] = []
    real_send = Core.send

    async def spying_send(
        self: Core, request: ApiRequest, ctx: CallContext
    ) -> tuple[str, RawResponse]:
        try:
            return await real_send(self, request, ctx)
        except BaseException as exc:
            raised.append(exc)
            raise

    monkeypatch.setattr(Core, "send", spying_send)
    return raised


def fast_client(academy: SandboxAcademy, *, max_attempts: int) -> CoursepathClient:
    """A client acting as the academy's admin, 8 calls at a time, retrying almost at once."""
    return make_client(
        academy,
        retry=RetryPolicy(max_attempts=max_attempts, base_delay=0.001, max_delay=0.01),
        max_concurrency=8,
    )


FAULTS = Faults(
    seed=23,
    latency=0.001,
    error_rate=0.10,
    reset_rate=0.03,
    applied_then_fail_rate=0.05,
    rate_limit_rate=0.02,
    retry_after=0.02,
)


async def test_in_process_import_leaks_no_secret(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A faulty import at DEBUG leaves no key or token in logs, reprs, errors, report, journal."""
    caplog.set_level(logging.DEBUG)  # the root logger: the SDK's, aiohttp's, asyncio's...
    raised = spy_on_send(monkeypatch)
    terminal = FakeTerminal()
    monkeypatch.setattr(sys, "stderr", terminal)

    async with sandbox(members=30, courses=2, groups=2, seed=6, faults=FAULTS) as academy:
        existing = [m.email for m in academy.state.members()[1:20]]
        people = write_people_csv(
            tmp_path / "people.csv",
            rows=300,
            seed=12,
            existing_emails=existing,
            course_ids=(1, 2, MISSING_COURSE),
        )
        academy.script("POST", "/members", 403, 400)  # two creates refused outright
        plan = PlanOptions(groups=("Secret Keepers",), invite="new")
        journal_path = tmp_path / "people.journal.sqlite"
        reports: list[RowReport] = []
        async with fast_client(academy, max_attempts=6) as client:
            with (
                CsvRows(people.path) as rows,
                open_journal(str(journal_path), rows, kind="import", options=plan) as journal,
                Progress("import people.csv", total=people.rows) as progress,
            ):

                def on_row(row: RowReport) -> None:
                    reports.append(row)
                    progress.advance(ok=row.ok)

                # No preflight: the missing course must fail rows one by one, with 404s.
                report: ImportReport = await import_members(
                    client,
                    rows,
                    journal=journal,
                    options=ImportOptions(plan=plan),
                    on_row=on_row,
                    preflight=False,
                )
                texts = [repr(journal), repr(rows), repr(progress)]
            learner = client.as_user(existing[0])
            bulk = client.with_options(priority=Priority.BULK, deadline=30)
            texts += [
                repr(client),
                repr(learner),
                repr(bulk),
                repr(client.members),
                repr(bulk.courses),
                repr(client.members.list()),
                repr(client.scheduler_stats()),
                repr(bulk.scheduler_stats()),
                repr(client._core.scheduler),
                repr(client._core.transport),
                repr(client._core.signer),
                repr(client._core.config),
            ]

        # The run was not a quiet one: retries, 4xx failures, uncertain invitations.
        assert report.consistent
        totals = report.totals
        assert totals.failed > 0
        assert totals.invitations_uncertain > 0
        assert totals.skipped_invalid == len(people.bad_lines)
        kinds = {type(e) for e in raised}
        assert UncertainOutcomeError in kinds
        assert any(isinstance(e, APIStatusError) and e.status_code < 500 for e in raised)
        assert all(isinstance(e, CoursepathError) for e in raised), kinds
        messages = [r.getMessage() for r in caplog.records if r.name == "coursepath_async"]
        assert any(" -> 201 (attempt 1," in m for m in messages)
        assert any(m.startswith("retrying") for m in messages)
        recorder: Recorder = academy.recorder
        assert len(recorder.jtis) == recorder.total > 1000
        assert sum(recorder.fault_counts.values()) > 100

        texts += [
            caplog.text,
            *(f"{r.getMessage()} {r.args!r} {r.exc_text or ''}" for r in caplog.records),
            report.to_json().decode(),
            report.summary(limit=10_000),
            repr(report.rows),
            repr(reports),
            terminal.getvalue(),
        ]
        for error in raised:
            texts.extend(printed_forms(error))
        assert "it/s" in terminal.getvalue() or "row/s" in terminal.getvalue()

        secrets = secrets_seen(academy)
        found = leaks(secrets, "\n".join(texts))
        found += byte_leaks(secrets, journal_bytes(journal_path))
        assert found == [], f"{len(found)} secret hits: {found[:5]}"


def _read_all(fd: int) -> bytes:
    """Drain a pty master until the other side closes (EIO on Linux)."""
    chunks = []
    while True:
        try:
            data = os.read(fd, 1 << 16)
        except OSError:
            break
        if not data:
            break
        chunks.append(data)
    os.close(fd)
    return b"".join(chunks)


async def test_cli_import_at_debug_leaks_no_secret(tmp_path: Path) -> None:
    """``--log-level debug import`` prints and writes no key or token, bar and all."""
    faults = Faults(
        seed=29,
        latency=0.001,
        error_rate=0.05,
        reset_rate=0.02,
        applied_then_fail_rate=0.04,
        rate_limit_rate=0.01,
        retry_after=0.02,
    )
    async with sandbox(members=12, courses=2, groups=1, seed=9, faults=faults) as academy:
        people = write_people_csv(tmp_path / "people.csv", rows=150, seed=4, course_ids=(1, 2))
        academy.script("POST", "/members", 403)
        # The CLI's preflight refuses a missing course named by the file: enrolments
        # refused one by one are the row-level 404s here.
        academy.script("POST", "/courses/{c}/members/{m}/coursemember", *([404] * 10))
        env = cli_env(academy)
        master, terminal = pty.openpty()
        fcntl.ioctl(terminal, termios.TIOCSWINSZ, struct.pack("HHHH", 30, 120, 0, 0))
        try:
            process = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "coursepath_async",
                "--log-level",
                "debug",
                "import",
                str(people.path),
                "--invite",
                "--group",
                "Quiet",
                "--concurrency",
                "8",
                env=env,
                stdout=asyncio.subprocess.PIPE,
                stderr=terminal,
            )
        finally:
            os.close(terminal)
        stderr_reader = asyncio.create_task(asyncio.to_thread(_read_all, master))
        async with asyncio.timeout(60):
            out, _ = await process.communicate()
            err = await stderr_reader
        assert process.returncode == 1  # bad rows, a 403 and refused enrolments

        stdout_text, stderr_text = out.decode(), err.decode("utf-8", "replace")
        assert " -> 201 (attempt 1," in stderr_text  # DEBUG lines were written...
        assert "retrying" in stderr_text
        assert "row/s" in stderr_text or "it/s" in stderr_text  # ...and the progress bar
        assert "403" in stdout_text  # the refused create is in the summary
        report_bytes = (tmp_path / "people.csv.report.json").read_bytes()
        assert b'"failed": 0' not in report_bytes

        secrets = secrets_seen(academy)
        assert len(secrets) > 400
        found = leaks(secrets, stdout_text + stderr_text)
        found += byte_leaks(secrets, report_bytes)
        found += byte_leaks(secrets, journal_bytes(tmp_path / "people.csv.journal.sqlite"))
        assert found == [], f"{len(found)} secret hits: {found[:5]}"


async def test_a_malformed_answer_leaves_no_token_in_the_error_chain() -> None:
    """The parse error of aiohttp holds the request headers; it never stays in our chain."""

    async def bad_header(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nBad Header Line\r\n\r\n[]")
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(bad_header, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    key = "malformed-answer-key-0123456789-abcdefghij"
    try:
        async with CoursepathClient(
            f"http://127.0.0.1:{port}",
            api_key=key,
            user="admin@example.test",
            allow_http=True,
            retry=RetryPolicy(max_attempts=1),
        ) as client:
            with pytest.raises(CoursepathError) as info:
                await client.members.me()
    finally:
        server.close()
        await server.wait_closed()
    printed = "\n".join(printed_forms(info.value))
    assert "Bearer" not in printed
    assert key not in printed
    assert info.value.__context__ is None


# -- an academy whose error answers echo the request's credentials ------------------------

#: A tenth of the answers are 5xx pages (JSON, text or HTML) echoing token and key.
ECHO_FAULTS = Faults(seed=31, latency=0.001, error_rate=0.10, echo_request=True)


def script_echoes(academy: SandboxAcademy) -> None:
    """Echoing answers that fail rows for good: refused creates, invitations, a group add."""
    echo = ScriptedFault.echo
    academy.script("POST", "/members", echo(400), echo(422, body="text"))
    academy.script("POST", "/members/{memberId}/invite", echo(503, body="html"), echo(500))
    academy.script("POST", "/members/{memberId}/groups", echo(403, body="text"))


def echo_leaks(academy: SandboxAcademy, text: str) -> list[str]:
    """Every credential of the run in ``text``: key, jtis, ``eyJ``, Bearer, echoed token pieces."""
    found = leaks(secrets_seen(academy), text)
    recorder = academy.recorder
    return found + leaked_credentials(text, api_key=API_KEY, tokens=recorder.echoed_tokens)


async def test_import_against_an_echoing_academy_leaks_no_secret(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Errors echoing token and key leave neither in logs, errors, report or journal (DEBUG)."""
    caplog.set_level(logging.DEBUG)  # the root logger
    raised = spy_on_send(monkeypatch)
    async with sandbox(members=20, courses=2, groups=2, seed=8, faults=ECHO_FAULTS) as academy:
        people = write_people_csv(tmp_path / "people.csv", rows=120, seed=14, course_ids=(1, 2))
        script_echoes(academy)
        plan = PlanOptions(groups=("Echo Chamber",), invite="new")
        journal_path = tmp_path / "people.journal.sqlite"
        async with fast_client(academy, max_attempts=4) as client:
            with (
                CsvRows(people.path) as rows,
                open_journal(str(journal_path), rows, kind="import", options=plan) as journal,
            ):
                options = ImportOptions(plan=plan)
                report = await import_members(client, rows, journal=journal, options=options)

    # Not vacuous: echoes were answered, retried (INFO), and failed rows and invitations.
    assert report.consistent
    assert report.totals.failed >= 3
    assert report.totals.invitations_uncertain >= 2
    assert len(academy.recorder.echoed_tokens) > 20
    messages = [r.getMessage() for r in caplog.records if r.name == "coursepath_async"]
    assert any(m.startswith("retrying") for m in messages)
    assert any(isinstance(e, UncertainOutcomeError) for e in raised)

    texts = [
        caplog.text,
        *(f"{r.getMessage()} {r.args!r} {r.exc_text or ''}" for r in caplog.records),
        report.to_json().decode(),
        report.summary(limit=10_000),
        repr(report.rows),
    ]
    for error in raised:
        texts.extend(printed_forms(error))
    found = echo_leaks(academy, "\n".join(texts))
    found += echo_leaks(academy, journal_bytes(journal_path).decode("latin-1"))
    assert found == [], f"{len(found)} secret hits: {found[:5]}"


@pytest.mark.parametrize("level", [None, "info", "debug"])
async def test_cli_against_an_echoing_academy_leaks_no_secret(
    tmp_path: Path, level: str | None
) -> None:
    """The CLI's import and failing export print and write no echoed credential, any level."""
    async with sandbox(members=12, courses=2, groups=1, seed=10, faults=ECHO_FAULTS) as academy:
        people = write_people_csv(tmp_path / "people.csv", rows=60, seed=5, course_ids=(1,))
        script_echoes(academy)
        flags = [] if level is None else ["--log-level", level]
        imported = await run_cli(
            academy, *flags, "import", str(people.path), "--invite", "--group", "Echo Chamber"
        )
        academy.script("GET", "/members", ScriptedFault.echo(400, body="text"))
        out_file = tmp_path / "members.csv"
        exported = await run_cli(academy, *flags, "export", "members", "--out", str(out_file))

        code, stdout, stderr = imported
        assert code == 1  # refused creates, a refused group add, uncertain invitations
        assert ("retrying" in stderr) == (level is not None)
        assert exported[0] == 1
        assert "coursepath-async: failed: 400" in exported[2]  # the line that used to leak
        report_bytes = (tmp_path / "people.csv.report.json").read_bytes()
        assert b'"failed": 0' not in report_bytes
        journal = journal_bytes(tmp_path / "people.csv.journal.sqlite")
        assert len(academy.recorder.echoed_tokens) > 5
        texts = [stdout, stderr, exported[1], exported[2], report_bytes.decode()]
        found = echo_leaks(academy, "\n".join(texts))
        found += echo_leaks(academy, journal.decode("latin-1"))
    assert found == [], f"{len(found)} secret hits: {found[:5]}"


def test_an_unexpected_row_error_logs_its_traceback_without_the_token(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A bug's error quoting an answer is logged with its traceback, credentials blanked."""
    caplog.set_level(logging.DEBUG)
    token = TokenSigner(API_KEY).sign("ann@example.test")
    try:
        raise KeyError(f"odd answer: {{'Authorization': 'Bearer {token}'}}")
    except KeyError as exc:
        reason = row_failure(None, "ann@example.test", 7, exc)
    assert "line 7: unexpected error" in caplog.text
    assert "Traceback" in caplog.text
    assert "KeyError" in reason
    found = leaked_credentials(caplog.text + reason, api_key=API_KEY, tokens=[token])
    assert found == [], found


def test_the_cli_blanks_a_token_in_any_error_it_prints(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The CLI's ``failed:`` line is redacted again, even for an error the SDK did not build."""
    token = TokenSigner(API_KEY).sign("ann@example.test")

    def handler(args: argparse.Namespace) -> int:
        raise CoursepathError(f"upstream said: Bearer {token}")

    parser = argparse.ArgumentParser()
    parser.add_argument("--log-level", default="warning")
    parser.add_argument("--log-format")
    parser.set_defaults(handler=handler)
    monkeypatch.setattr(_cli, "_parser", lambda: parser)
    assert _cli.main([]) == _cli.EXIT_ROWS_FAILED
    err = capsys.readouterr().err
    assert err == "coursepath-async: failed: upstream said: [redacted]\n"

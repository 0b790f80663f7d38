"""The CLI against dialects: --body-format, COURSEPATH_BODY_FORMAT, sandbox --dialect."""

from __future__ import annotations

import time
from pathlib import Path

import aiohttp
import orjson
import pytest
from cli_env import run_cli, served_sandbox

from coursepath_async.testing import DEFAULT_ADMIN_EMAIL, DIALECTS, SandboxAcademy
from coursepath_async.testing._auth import encode_token


async def test_import_invite_and_export_on_every_variation_at_once(tmp_path: Path) -> None:
    """``import FILE --invite``, then ``export members``, on dialect ``all``: exit 0, complete."""
    people = tmp_path / "people.csv"
    people.write_text("email,name\n" + "".join(f"p{i}@all.test,P {i}\n" for i in range(8)))
    report, out = tmp_path / "report.json", tmp_path / "members.csv"
    async with SandboxAcademy(dialect="all", members=105, seed=2) as academy:
        code, _, err = await run_cli(
            academy, "import", str(people), "--invite", f"--report={report}"
        )
        assert code == 0, err[-800:]
        code, _, err = await run_cli(academy, "export", "members", "--out", str(out))
        assert code == 0, err[-800:]
        members = academy.state.member_count
        invitations = dict(academy.recorder.invitations)
    totals = orjson.loads(report.read_bytes())["totals"]
    assert (totals["failed"], totals["created"], totals["invitations_sent"]) == (0, 8, 8)
    assert set(invitations.values()) == {1}
    assert len(out.read_text().splitlines()) == 1 + members == 1 + 105 + 8


@pytest.mark.parametrize(
    ("flag", "env"), [(["--body-format", "json"], {}), ([], {"COURSEPATH_BODY_FORMAT": "json"})]
)
async def test_a_fixed_json_body_format_fails_the_rows_a_form_only_academy_refuses(
    flag: list[str], env: dict[str, str], tmp_path: Path
) -> None:
    """``--body-format json`` (or the env var) is honoured: each create gets its 415, rows fail."""
    people = tmp_path / "people.csv"
    people.write_text("email\nj1@form.test\nj2@form.test\n")
    async with SandboxAcademy(dialect="form_only", members=2, seed=2) as academy:
        code, _, err = await run_cli(academy, "import", str(people), *flag, **env)
        statuses = {r.status for r in academy.recorder.requests if r.method == "POST"}
    assert code == 1, err[-800:]
    assert statuses == {415}


async def test_a_bad_body_format_in_the_environment_is_a_usage_error(tmp_path: Path) -> None:
    """COURSEPATH_BODY_FORMAT=xml exits 2 naming the variable and the valid values."""
    people = tmp_path / "people.csv"
    people.write_text("email\nx@form.test\n")
    async with SandboxAcademy(members=1, seed=2) as academy:
        code, _, err = await run_cli(academy, "import", str(people), COURSEPATH_BODY_FORMAT="xml")
        assert len(academy.recorder.requests) == 0
    assert code == 2
    assert "COURSEPATH_BODY_FORMAT must be one of 'auto', 'json', 'form', got 'xml'" in err


async def test_the_sandbox_command_refuses_an_unknown_dialect_and_lists_them() -> None:
    """``sandbox --dialect nope`` exits 2 listing every preset; ``--help`` lists them too."""
    code, _, err = await run_cli(None, "sandbox", "--dialect", "form_only,nope")
    assert code == 2
    assert "unknown dialect 'nope'; valid names: " + ", ".join(DIALECTS) in err
    code, out, _ = await run_cli(None, "sandbox", "--help")
    assert code == 0
    assert all(name in " ".join(out.split()) for name in DIALECTS)


async def test_the_sandbox_command_serves_a_dialect() -> None:
    """``sandbox --dialect form_only,text_errors`` says so and answers a JSON body 415 in text."""
    options = ("--members", "2", "--dialect", "form_only,text_errors", "--api-key", "k" * 40)
    async with served_sandbox(*options) as (url, banner), aiohttp.ClientSession() as session:
        claims = {"email": DEFAULT_ADMIN_EMAIL, "iat": int(time.time()), "jti": "cli-dialect-1"}
        headers = {"Authorization": f"Bearer {encode_token(claims, 'k' * 40)}"}
        async with session.post(url + "/api/v1/members", json={}, headers=headers) as answer:
            status, body = answer.status, await answer.read()
    assert "  dialect form_only,text_errors: body_encodings='form', error_body='text'\n" in banner
    assert status == 415
    assert body.startswith(b"unsupported_media_type: ")

"""HTTPS to the sandbox through a real CONNECT proxy on loopback: explicit, from env, refused."""

from __future__ import annotations

import logging
import ssl
from pathlib import Path
from typing import Any

import pytest
import trustme
from cli_env import run_cli
from conftest import API_KEY, client_context, sandbox, server_context
from connect_proxy import connect_proxy

from coursepath_async import APIConnectionError, ConfigurationError, CoursepathClient, RetryPolicy

ONE_RETRY = RetryPolicy(max_attempts=2, base_delay=0.0, max_delay=0.0)
PASSWORD = "proxy-pa55word-do-not-print"


def contexts(ca: trustme.CA) -> tuple[ssl.SSLContext, ssl.SSLContext]:
    """The sandbox's server context and a client context trusting the test CA."""
    return server_context(ca), client_context(ca)


async def test_https_through_a_proxy_with_credentials_in_its_url(
    ca: trustme.CA, caplog: pytest.LogCaptureFixture
) -> None:
    """``proxy=`` with user:password tunnels TLS via CONNECT; the password is never shown."""
    caplog.set_level(logging.DEBUG)
    server, client_tls = contexts(ca)
    async with (
        sandbox(members=5, ssl=server) as academy,
        connect_proxy(credentials=("syncbot", PASSWORD)) as proxy,
    ):
        port = academy.url.split(":")[2].split("/")[0]
        with_credentials = proxy.url.replace("http://", f"http://syncbot:{PASSWORD}@")
        async with CoursepathClient(
            academy.url,
            api_key=API_KEY,
            user=academy.admin_email,
            ssl=client_tls,
            retry=ONE_RETRY,
            proxy=with_credentials,
        ) as client:
            assert (await client.members.me()).email == academy.admin_email
            assert PASSWORD not in repr(client)
        assert proxy.connects == [f"CONNECT 127.0.0.1:{port}"]
        assert academy.recorder.total == 1
    assert PASSWORD not in caplog.text


async def test_https_proxy_from_the_environment_and_no_proxy(
    ca: trustme.CA, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``HTTPS_PROXY`` is honoured; ``NO_PROXY`` naming the host or ``trust_env=False`` skip it."""
    server, client_tls = contexts(ca)
    async with (
        sandbox(members=5, ssl=server) as academy,
        connect_proxy() as proxy,
    ):
        monkeypatch.setenv("HTTPS_PROXY", proxy.url)
        monkeypatch.delenv("NO_PROXY", raising=False)
        monkeypatch.delenv("no_proxy", raising=False)
        options: dict[str, Any] = {
            "api_key": API_KEY,
            "user": academy.admin_email,
            "ssl": client_tls,
        }
        async with CoursepathClient(academy.url, retry=ONE_RETRY, **options) as client:
            await client.members.me()
        assert len(proxy.connects) == 1
        async with CoursepathClient(
            academy.url, retry=ONE_RETRY, trust_env=False, **options
        ) as client:
            await client.members.me()
        monkeypatch.setenv("NO_PROXY", "127.0.0.1")
        async with CoursepathClient(academy.url, retry=ONE_RETRY, **options) as client:
            await client.members.me()
        assert len(proxy.connects) == 1  # neither went through it
        assert academy.recorder.total == 3


async def test_a_proxy_refusing_the_credentials_is_a_connection_error_without_them(
    ca: trustme.CA,
) -> None:
    """A 407 from the proxy is an ``APIConnectionError`` whose text holds no password."""
    server, client_tls = contexts(ca)
    async with (
        sandbox(members=5, ssl=server) as academy,
        connect_proxy(credentials=("syncbot", "another-password")) as proxy,
        CoursepathClient(
            academy.url,
            api_key=API_KEY,
            user=academy.admin_email,
            ssl=client_tls,
            retry=ONE_RETRY,
            proxy=proxy.url,
            proxy_auth=("syncbot", PASSWORD),
        ) as client,
    ):
        with pytest.raises(APIConnectionError) as caught:
            await client.members.me()
        assert PASSWORD not in f"{caught.value!s} {caught.value!r}"
        assert academy.recorder.total == 0


@pytest.mark.parametrize(
    "proxy",
    ["ftp://proxy.example:21", "proxy.example:3128", f"socks5://u:{PASSWORD}@proxy.example"],
)
def test_a_bad_proxy_url_is_refused_without_its_password(proxy: str) -> None:
    """Only http(s) proxy URLs with a host; the error never quotes a password."""
    with pytest.raises(ConfigurationError, match="proxy must be") as caught:
        CoursepathClient(
            "https://acme.example.com", api_key=API_KEY, user="a@b.example", proxy=proxy
        )
    assert PASSWORD not in str(caught.value)


async def test_the_cli_goes_through_proxy(ca: trustme.CA, tmp_path: Path) -> None:
    """``--proxy`` with credentials tunnels the CLI's calls; its output never shows the password."""
    server, _ = contexts(ca)
    ca_file = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    async with (
        sandbox(members=5, ssl=server) as academy,
        connect_proxy(credentials=("syncbot", PASSWORD)) as proxy,
    ):
        with_credentials = proxy.url.replace("http://", f"http://syncbot:{PASSWORD}@")
        code, out, err = await run_cli(
            academy,
            "export",
            "members",
            "--out",
            str(tmp_path / "members.csv"),
            "--ca-file",
            str(ca_file),
            "--proxy",
            with_credentials,
        )
        assert code == 0, err
        assert proxy.connects
        assert all(c.startswith("CONNECT 127.0.0.1:") for c in proxy.connects)
        assert PASSWORD not in out + err
        assert (tmp_path / "members.csv").read_text().count("\n") == 6  # a header and 5 rows

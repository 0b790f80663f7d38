"""HTTPS against the sandbox with a private CA (trustme), and plain http refused unless allowed."""

from __future__ import annotations

import pytest
import trustme
from conftest import FAST_RETRY, client_context, make_client, sandbox, server_context

from coursepath_async import (
    APIConnectionError,
    APITimeoutError,
    ConfigurationError,
    CoursepathClient,
)


async def test_https_with_a_trusted_private_ca(ca: trustme.CA) -> None:
    """A client given ``ssl=`` a context trusting the CA works over HTTPS, without allow_http."""
    async with sandbox(members=30, ssl=server_context(ca)) as academy:
        assert academy.url.startswith("https://")
        async with CoursepathClient(
            academy.url,
            api_key=academy.api_key,
            user=academy.admin_email,
            ssl=client_context(ca),
            retry=FAST_RETRY,
        ) as client:
            assert (await client.members.me()).email == academy.admin_email
            members = await client.members.list(page_size=7)
            assert [m.id for m in members] == [r.id for r in academy.state.members()]
            created = await client.members.create("tls.user@example.org")
            assert academy.state.member_by_email("tls.user@example.org") is not None
            await client.members.invite(created.id)
        assert academy.recorder.invitations[created.id] == 1
        assert academy.recorder.rejected_tokens == {}


async def test_untrusted_certificate_is_a_connection_error_naming_it(ca: trustme.CA) -> None:
    """Not trusting the private CA gives ``APIConnectionError`` naming the certificate."""
    async with (
        sandbox(members=3, ssl=server_context(ca)) as academy,
        CoursepathClient(
            academy.url, api_key=academy.api_key, user=academy.admin_email, retry=FAST_RETRY
        ) as client,
    ):
        with pytest.raises(APIConnectionError) as caught:
            await client.members.me()
        assert not isinstance(caught.value, APITimeoutError)
        assert "certificate" in str(caught.value).lower()
        assert caught.value.sent is False
        assert academy.recorder.total == 0  # no request got through the handshake


async def test_plain_http_is_refused_before_any_request() -> None:
    """An http:// academy URL without ``allow_http`` is a ``ConfigurationError`` at construction."""
    async with sandbox(members=3) as academy:
        assert academy.url.startswith("http://")
        with pytest.raises(ConfigurationError) as caught:
            CoursepathClient(academy.url, api_key=academy.api_key, user=academy.admin_email)
        assert "https" in str(caught.value)
        assert academy.api_key not in str(caught.value)
        async with make_client(academy) as allowed:  # allow_http=True: the sandbox is reachable
            assert (await allowed.members.me()).id == 1
        assert academy.recorder.total == 1

"""Which forward proxy the client goes through, decided once, credentials kept apart.

An explicit ``proxy=`` wins; otherwise, with ``trust_env``, ``HTTPS_PROXY`` (or
``HTTP_PROXY`` for a plain-http base URL) is honoured unless ``NO_PROXY`` names the
academy's host. Reading the environment once here, rather than through aiohttp's
``trust_env``, keeps a thread hop per request off the hot path and keeps ``.netrc``
out (aiohttp would add its credentials and then refuse our own Authorization header).
Credentials in a proxy URL (or ``proxy_auth=(login, password)``) become one
``Proxy-Authorization`` header kept out of every repr, and the URL is kept without
them, so no repr, log line or error can print the password.
"""

from __future__ import annotations

import base64
import urllib.request

from attrs import field, frozen
from yarl import URL

from ._exceptions import ConfigurationError

__all__ = ["Proxy", "resolve_proxy"]


@frozen
class Proxy:
    """A proxy URL without credentials, and its ``Proxy-Authorization`` (never in the repr)."""

    url: URL
    headers: dict[str, str] = field(factory=dict, repr=False)
    #: What a redactor must blank: the password, and the header carrying it.
    secrets: tuple[str, ...] = field(default=(), repr=False)


def resolve_proxy(
    proxy: str | URL | None,
    proxy_auth: tuple[str, str] | None,
    *,
    base_url: URL,
    trust_env: bool,
) -> Proxy | None:
    """The proxy to use for ``base_url``, or None for a direct connection."""
    if proxy_auth is not None and not (
        isinstance(proxy_auth, tuple)
        and len(proxy_auth) == 2
        and all(isinstance(part, str) for part in proxy_auth)
    ):
        raise ConfigurationError("proxy_auth must be a (login, password) tuple of strings")
    if proxy is None:
        if not isinstance(trust_env, bool):
            raise ConfigurationError(f"trust_env must be True or False, got {trust_env!r}")
        if not trust_env or base_url.host is None:
            return None
        if urllib.request.proxy_bypass(base_url.host):  # NO_PROXY (and the OS's list)
            return None
        proxy = urllib.request.getproxies().get(base_url.scheme)
        if not proxy:
            return None
    url = _parse(proxy)
    auth = proxy_auth
    if url.user is not None:
        if auth is not None:
            raise ConfigurationError("give proxy credentials in the URL or proxy_auth, not both")
        auth = (url.user, url.password or "")
    if auth is None:
        return Proxy(url.with_user(None))
    token = base64.b64encode(f"{auth[0]}:{auth[1]}".encode()).decode("ascii")
    secrets = tuple(s for s in (auth[1], token) if len(s) >= 4)
    return Proxy(
        url.with_user(None), headers={"Proxy-Authorization": f"Basic {token}"}, secrets=secrets
    )


def _parse(proxy: str | URL) -> URL:
    try:
        url = URL(proxy) if isinstance(proxy, str) else proxy
    except (TypeError, ValueError):
        raise ConfigurationError("proxy is not a valid URL") from None
    if url.scheme not in ("http", "https") or not url.host:
        # Shown without its credentials, which may be in it.
        shown = url.with_user(None) if url.host else "<not a URL>"
        raise ConfigurationError(
            f"proxy must be an http:// or https:// URL with a host, got {shown}"
        )
    return url

"""Child of ``benchmarks.instructions parts``: ``members.get`` against an in-process fake.

The fake stands for aiohttp's session (one loop turn per answer, the sandbox's own
headers and body), so what is counted is the SDK's own work per call. With a part named
in ``argv[3]``, that part is replaced by a no-op first: the count it saves is its cost.
The ``raw`` side is the benchmark-14 raw loop (prepared-key signer, ``orjson.loads``)
on the same fake. Not an SDK code path: a way to see where an SDK call's cost lies.

Run: python -m benchmarks._get_parts {sdk|raw} N [part]
"""

from __future__ import annotations

import asyncio
import sys
import time
from collections.abc import Callable
from types import TracebackType
from typing import Any

import orjson
from multidict import CIMultiDict, CIMultiDictProxy
from yarl import URL

from coursepath_async import CoursepathClient, _core, _governor, _timeouts, _transport
from coursepath_async._auth import TokenSigner
from coursepath_async._resources import _base

from ._common import ADMIN, API_KEY, PreparedSigner

_ROOT = "http://127.0.0.1:9"
_BODY = (
    b'{"id":7,"email":"sara.schmidt@vandelay.test","name":"Sara Schmidt",'
    b'"company":"Vandelay Industries","department":"Operations","country":"GB",'
    b'"externalId":"E100007","association":null,"identification":null,'
    b'"registration":"R50472","createdDate":"2021-02-03T12:37:51Z"}'
)
_HEADERS = CIMultiDictProxy(
    CIMultiDict(
        {
            "X-Request-ID": "sbx-2",
            "Content-Type": "application/json",
            "Content-Length": str(len(_BODY)),
            "Date": time.strftime("%a, %d %b %Y %H:%M:%S GMT", time.gmtime()),
            "Server": "Python/3.11 aiohttp/3.14.5",
        }
    )
)


class _Response:
    status = 200
    headers = _HEADERS
    content_length = len(_BODY)

    async def read(self) -> bytes:
        return _BODY


class _Exchange:
    async def __aenter__(self) -> _Response:
        await asyncio.sleep(0)  # the answer arrives on a later loop turn, as a real one does
        return _Response()

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        return None


class _Session:
    closed = False

    def request(self, method: str, url: object, **_: Any) -> _Exchange:
        return _Exchange()

    async def close(self) -> None:
        return None


def _noop(*_: Any, **__: Any) -> None:
    return None


_URL = URL(_ROOT + "/api/v1/members/1", encoded=True)

#: Each part, and how it is replaced by (nearly) nothing: (object, attribute, stand-in).
PARTS: dict[str, list[tuple[object, str, Callable[..., Any]]]] = {
    "model": [(_core, "structure", lambda value, cls: value)],
    "json+model": [
        (_base, "decode_json", _noop),
        (_base, "decode_model", _noop),
    ],
    "token": [(TokenSigner, "sign", lambda self, email, offset=0.0: "x.y.z")],
    "url": [(_transport.Transport, "_target", lambda self, url: _URL)],
    "attempt timer": [
        (_timeouts.AttemptTimeouts, "start", _noop),
        (_timeouts.AttemptTimeouts, "stop", lambda self, watch, exc: False),
    ],
    "quota headers": [(_core, "quota_hint", _noop)],
    "governor window": [(_governor.RateGovernor, "accepted", _noop)],
}


def _replace(part: str) -> None:
    for owner, name, stand_in in PARTS[part]:
        if not hasattr(owner, name):  # the SDK changed: say so rather than count nothing
            raise SystemExit(f"part {part!r}: {owner!r} has no {name!r} any more")
        setattr(owner, name, stand_in)


async def _sdk(n: int) -> None:
    async with CoursepathClient(
        _ROOT, api_key=API_KEY, user=ADMIN, allow_http=True, max_concurrency=32
    ) as client:
        client._core.transport._session = _Session()  # type: ignore[assignment]
        indices = iter(range(n))

        async def worker() -> None:
            for i in indices:
                await client.members.get(i % 1000 + 1)

        await asyncio.gather(*(worker() for _ in range(32)))


async def _raw(n: int) -> None:
    signer, session = PreparedSigner(API_KEY), _Session()
    indices = iter(range(n))

    async def worker() -> None:
        for i in indices:
            headers = {"Authorization": "Bearer " + signer.sign(ADMIN)}
            async with session.request(
                "GET", f"{_ROOT}/api/v1/members/{i % 1000 + 1}", headers=headers
            ) as response:
                body = await response.read()
                if response.status >= 300:
                    raise RuntimeError(f"raw get failed: {response.status}")
                orjson.loads(body)

    await asyncio.gather(*(worker() for _ in range(32)))


def main(argv: list[str]) -> None:
    """Run N fake GETs on one side, with at most one part replaced."""
    side, n, *part = argv
    if part:
        _replace(part[0])
    asyncio.run((_sdk if side == "sdk" else _raw)(int(n)))


if __name__ == "__main__":
    main(sys.argv[1:])

"""A minimal aiohttp server answering fixed member JSON, run in its own process.

It does no auth and no work, so a benchmark against it measures the client's cost;
with a latency (seconds, the second argument) it only sleeps that long first, the
reference for what a latency-bound client can reach on this machine.
Usage: python benchmarks/_echo_server.py PORT [LATENCY]
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Awaitable, Callable

import orjson
from aiohttp import web

_MEMBER = orjson.dumps(
    {
        "id": 1,
        "email": "ada.lovelace@example.com",
        "name": "Ada Lovelace",
        "company": "Analytical Engines",
        "department": "R&D",
        "country": "GB",
        "externalId": "E-1",
        "createdDate": "2024-05-01T09:30:00Z",
    }
)


async def _member(request: web.Request) -> web.Response:
    return web.Response(body=_MEMBER, content_type="application/json")


def _sleeping(latency: float) -> Callable[[web.Request], Awaitable[web.Response]]:
    async def member(request: web.Request) -> web.Response:
        await asyncio.sleep(latency)
        return web.Response(body=_MEMBER, content_type="application/json")

    return member


def main() -> None:
    app = web.Application()
    latency = float(sys.argv[2]) if len(sys.argv) > 2 else 0.0
    handler = _sleeping(latency) if latency > 0 else _member
    app.router.add_route("*", "/api/v1/members", handler)
    app.router.add_route("*", "/api/v1/members/{tail:.*}", handler)
    port = int(sys.argv[1]) if len(sys.argv) > 1 else 0
    web.run_app(app, host="127.0.0.1", port=port, print=None, access_log=None)


if __name__ == "__main__":
    main()

"""A tiny server that makes member pages on the fly, for the client-memory benchmark.

``GET /api/v1/members?offset=&limit=`` answers a page of generated members (up to 500,
the endpoint's cap) of a listing of ``total`` members, in id order, without storing any
of them, so a million-member listing costs the server nothing to seed. It checks no
token: what is measured is the client's memory. ``GET /__stats`` answers the bytes of
page bodies served so far. Usage: python benchmarks/_page_server.py PORT TOTAL
"""

from __future__ import annotations

import sys

import orjson
from aiohttp import web

PAGE_CAP = 500
_COMPANIES = ("Acme Logistics", "Brightwave Energy", "Northwind Foods", "Globex Health")
_DEPARTMENTS = ("Sales", "Support", "Engineering", "Finance", "Operations")
_COUNTRIES = ("BE", "NL", "DE", "FR", "GB")


def _member(i: int) -> dict[str, object]:
    return {
        "id": i,
        "email": f"member.{i}@people.test",
        "name": f"Member Number {i}",
        "company": _COMPANIES[i % 4],
        "department": _DEPARTMENTS[i % 5],
        "country": _COUNTRIES[i % 5],
        "externalId": f"HR-{i:08d}",
        "association": None,
        "identification": None,
        "registration": None,
        "createdDate": f"2024-{i % 12 + 1:02d}-{i % 28 + 1:02d}T09:30:00Z",
    }


def make_app(total: int) -> web.Application:
    """The app serving a listing of ``total`` generated members."""
    served = [0]

    async def members(request: web.Request) -> web.Response:
        offset = int(request.query.get("offset", "0"))
        limit = min(int(request.query.get("limit", str(PAGE_CAP))), PAGE_CAP)
        first, last = offset + 1, min(offset + limit, total)
        body = orjson.dumps([_member(i) for i in range(first, last + 1)])
        served[0] += len(body)
        return web.Response(body=body, content_type="application/json")

    async def stats(request: web.Request) -> web.Response:
        return web.json_response({"bytes": served[0]})

    app = web.Application()
    app.router.add_get("/api/v1/members", members)
    app.router.add_get("/__stats", stats)
    return app


def main() -> None:
    port, total = int(sys.argv[1]), int(sys.argv[2])
    web.run_app(make_app(total), host="127.0.0.1", port=port, print=None, access_log=None)


if __name__ == "__main__":
    main()

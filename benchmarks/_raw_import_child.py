"""Benchmark 10's baseline, in its own process: the four calls per row through raw aiohttp.

Usage: python benchmarks/_raw_import_child.py URL PREFIX ROWS CONCURRENCY GROUP COURSE.
Create, add to group, enrol, invite, for each of ROWS new people, CONCURRENCY in flight,
signed with a prepared HMAC; nothing is written to disk. Exits 1 on any failed call.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import aiohttp
import orjson

from benchmarks._common import ADMIN, API_KEY, PreparedSigner


async def main(url: str, prefix: str, n: int, concurrency: int, group: str, course: int) -> None:
    """Import ``n`` people the raw way; raise on any non-2xx answer."""
    signer = PreparedSigner(API_KEY)
    people: Iterator[int] = iter(range(n))
    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector) as session:

        async def call(path: str, body: dict[str, Any] | None) -> Any:
            headers = {
                "Authorization": "Bearer " + signer.sign(ADMIN),
                "Accept": "application/json",
            }
            data = None
            if body is not None:
                headers["Content-Type"] = "application/json"
                data = orjson.dumps(body)
            async with session.post(f"{url}/api/v1{path}", data=data, headers=headers) as answer:
                raw = await answer.read()
                if answer.status >= 300:
                    raise RuntimeError(f"POST {path} -> {answer.status}")
                return orjson.loads(raw) if raw else None

        async def worker() -> None:
            for i in people:
                email = f"{prefix}-{i}@bench.test"
                member = await call("/members", {"email": email, "name": f"Imported Person {i}"})
                member_id = member["id"]
                await call(f"/members/{member_id}/groups", {"name": group})
                await call(f"/courses/{course}/members/{member_id}/coursemember", None)
                await call(f"/members/{member_id}/invite", None)

        await asyncio.gather(*(worker() for _ in range(concurrency)))


if __name__ == "__main__":
    url, prefix, rows, concurrency, group, course = sys.argv[1:7]
    asyncio.run(main(url, prefix, int(rows), int(concurrency), group, int(course)))

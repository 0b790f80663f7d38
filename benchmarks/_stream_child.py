"""Child process of benchmark 5: stream a listing with ``async for`` and report peak RSS growth.

Usage: python -m benchmarks._stream_child URL TOTAL. With the client built, the kernel's
peak-RSS mark is reset (``/proc/self/clear_refs``); a warm-up listing of 3,000 records
opens the pool and compiles the decode hooks; the mark is reset again and the whole
listing is streamed, counting records and checking their order. Prints one JSON line:
records, seconds, RSS and peak RSS (KiB) around the warm-up and the stream, and the
page bytes streamed.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import re
import sys
import time

import aiohttp
import orjson

from coursepath_async import CoursepathClient

from ._common import ADMIN, API_KEY


def _status_kib(field: str) -> int:
    with open("/proc/self/status") as status:
        found = re.search(rf"^{field}:\s+(\d+) kB", status.read(), re.MULTILINE)
    if found is None:
        raise RuntimeError(f"no {field} in /proc/self/status")
    return int(found.group(1))


def _reset_peak() -> bool:
    try:
        with open("/proc/self/clear_refs", "w") as refs:
            refs.write("5")  # resets VmHWM to the current RSS (Linux >= 4.0)
    except OSError:
        return False
    return True


async def _served_bytes(url: str) -> int:
    async with aiohttp.ClientSession() as session, session.get(f"{url}/__stats") as response:
        return int(orjson.loads(await response.read())["bytes"])


async def _run(url: str, total: int) -> dict[str, object]:
    async with CoursepathClient(url, api_key=API_KEY, user=ADMIN, allow_http=True) as client:
        gc.collect()
        reset = _reset_peak()
        rss_start = _status_kib("VmRSS") if reset else _status_kib("VmHWM")
        warm = 0
        async with contextlib.aclosing(client.members.list().pages()) as pages:
            async for page in pages:
                warm += len(page)
                if warm >= 3000:
                    break
        bytes_before = await _served_bytes(url)
        warm_peak = _status_kib("VmHWM")
        gc.collect()
        reset = reset and _reset_peak()
        rss_before = _status_kib("VmRSS") if reset else _status_kib("VmHWM")
        started = time.perf_counter()
        count, expected = 0, 1
        async for member in client.members.list():
            if member.id != expected:
                raise RuntimeError(f"record {count}: id {member.id}, expected {expected}")
            count += 1
            expected += 1
        seconds = time.perf_counter() - started
        peak = _status_kib("VmHWM")
        streamed = await _served_bytes(url) - bytes_before
    if count != total:
        raise RuntimeError(f"streamed {count} records, expected {total}")
    return {
        "records": count,
        "seconds": seconds,
        "rss_start_kib": rss_start,
        "warm_peak_kib": warm_peak,
        "rss_before_kib": rss_before,
        "peak_kib": peak,
        "bytes_streamed": streamed,
        "peak_reset": reset,
    }


def main() -> None:
    url, total = sys.argv[1], int(sys.argv[2])
    print(orjson.dumps(asyncio.run(_run(url, total))).decode())


if __name__ == "__main__":
    main()

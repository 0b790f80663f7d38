"""Profile the client side of benchmark 1 (creates), 4 (windowed listing) or 7 (import).

The sandbox runs in its own process as in the suite; only the client process is
profiled. Default: cProfile (stdlib), printing the functions with the most self time
and the SDK's own functions by cumulative time. With ``--pyinstrument`` (``pip install
pyinstrument``, a sampling profiler that distorts less): its call tree, then exclusive
time per package and per function. Usage: python -m benchmarks.profile {1,4}
[--pyinstrument] [--limit N]; for 7, python -m benchmarks.profile 7 ...
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import importlib
import io
import pstats
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

from ._common import sandbox
from ._import_bench import sdk_import
from ._listing import WINDOW, sdk_listing
from ._throughput import sdk_creates

_PACKAGES = ("coursepath_async", "aiohttp", "asyncio", "yarl", "multidict", "cattrs", "attr")


def _top(times: dict[str, float], limit: int) -> list[tuple[str, float]]:
    return sorted(times.items(), key=lambda item: item[1], reverse=True)[:limit]


def _self_times(profiler: Any, limit: int) -> str:
    """Exclusive time per function and per package from a pyinstrument session."""
    root = profiler.last_session.root_frame()
    total = float(root.time)
    by_function: defaultdict[str, float] = defaultdict(float)
    by_package: defaultdict[str, float] = defaultdict(float)

    def walk(frame: Any, parent_key: str, parent_path: str) -> None:
        path = str(frame.file_path or "<built-in>")
        key = f"{frame.function}  {path.split('site-packages/')[-1]}:{frame.line_no}"
        if frame.is_synthetic:  # pyinstrument's "[self]" leaves belong to their parent
            key, path = parent_key, parent_path
        own = float(frame.time) - sum(float(child.time) for child in frame.children)
        by_function[key] += own
        by_package[next((p for p in _PACKAGES if p in path), "other")] += own
        for child in frame.children:
            walk(child, key, path)

    walk(root, "<root>", "")
    lines = [f"== exclusive time of {total:.2f}s by package =="]
    lines += [f"{100 * t / total:6.1f}%  {name}" for name, t in _top(by_package, 20)]
    lines.append("== exclusive time by function ==")
    lines += [f"{100 * t / total:6.1f}%  {name}" for name, t in _top(by_function, limit)]
    return "\n".join(lines)


def _profiled(
    work: Callable[[], Coroutine[Any, Any, object]], *, use_pyinstrument: bool, limit: int
) -> str:
    if use_pyinstrument:
        module: Any = importlib.import_module("pyinstrument")
        profiler = module.Profiler(interval=0.0005, async_mode="disabled")
        profiler.start()
        asyncio.run(work())
        profiler.stop()
        tree = str(profiler.output_text(unicode=True, color=False, show_all=False))
        return tree + "\n" + _self_times(profiler, limit)
    profile = cProfile.Profile()
    profile.enable()
    asyncio.run(work())
    profile.disable()
    out = io.StringIO()
    stats = pstats.Stats(profile, stream=out)
    out.write("== most self time ==\n")
    stats.sort_stats("tottime").print_stats(limit)
    out.write("== coursepath_async by cumulative time ==\n")
    stats.sort_stats("cumtime").print_stats("coursepath_async", limit)
    return out.getvalue()


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.profile", description=__doc__)
    parser.add_argument("benchmark", type=int, choices=(1, 4, 7))
    parser.add_argument("--pyinstrument", action="store_true")
    parser.add_argument("--limit", type=int, default=30)
    args = parser.parse_args()
    if args.benchmark == 1:
        with sandbox(members=20) as url:
            asyncio.run(sdk_creates(url, 500, 32, "warm"))  # server warm-up, not profiled

            async def creates() -> object:
                return await sdk_creates(url, 3000, 32, f"prof{time.time_ns()}")

            print(_profiled(creates, use_pyinstrument=args.pyinstrument, limit=args.limit))
    elif args.benchmark == 7:
        with (
            sandbox(members=1, courses=2, groups=1, error_rate=0.05) as url,
            tempfile.TemporaryDirectory() as tmp,
        ):
            asyncio.run(sdk_import(url, "warm", 300, Path(tmp)))

            async def rows() -> object:
                return await sdk_import(url, f"prof{time.time_ns()}", 3000, Path(tmp))

            print(_profiled(rows, use_pyinstrument=args.pyinstrument, limit=args.limit))
    else:
        with sandbox(members=100_000, latency=0.05) as url:

            async def listing() -> object:
                return await sdk_listing(url, WINDOW)

            print(_profiled(listing, use_pyinstrument=args.pyinstrument, limit=args.limit))


if __name__ == "__main__":
    main()

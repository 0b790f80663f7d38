"""Run a :class:`SandboxAcademy` in its own process, so client and server never share a loop.

Usage: python benchmarks/_sandbox_server.py --port P --api-key K [--members N]
[--latency S] [--latency-jitter S] [--error-rate R] [--error-statuses 500,502,503]
[--seed N]. Jti recording is off and the request log is small, so a million requests
cost no memory. Stops on SIGTERM or SIGINT.
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys

from coursepath_async.testing import Faults, SandboxAcademy


def _args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--api-key", required=True)
    parser.add_argument("--members", type=int, default=20)
    parser.add_argument("--courses", type=int, default=5)
    parser.add_argument("--groups", type=int, default=4)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "--latency", type=float, default=0.0, help="seconds from a request's arrival to its answer"
    )
    parser.add_argument(
        "--latency-jitter", type=float, default=0.0, help="plus uniform [0, this) seconds"
    )
    parser.add_argument("--error-rate", type=float, default=0.0, help="share of 5xx answers")
    parser.add_argument(
        "--error-statuses", default="500,502,503", help="comma-separated 5xx codes to inject"
    )
    parser.add_argument("--max-log", type=int, default=100)
    return parser.parse_args(argv)


async def _serve(args: argparse.Namespace) -> None:
    statuses = tuple(int(code) for code in args.error_statuses.split(","))
    faults = Faults(
        seed=args.seed,
        latency=args.latency,
        latency_jitter=args.latency_jitter,
        error_rate=args.error_rate,
        error_statuses=statuses,
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    async with SandboxAcademy(
        members=args.members,
        courses=args.courses,
        groups=args.groups,
        programs=1,
        seed=args.seed,
        api_key=args.api_key,
        port=args.port,
        faults=faults,
        max_log=args.max_log,
        record_jtis=False,
    ):
        await stop.wait()


def main() -> None:
    asyncio.run(_serve(_args(sys.argv[1:])))


if __name__ == "__main__":
    main()

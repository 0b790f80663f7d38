"""Shared benchmark helpers: free ports, server subprocesses, medians."""

from __future__ import annotations

import contextlib
import os
import socket
import statistics
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Sequence
from pathlib import Path

HERE = Path(__file__).resolve().parent
#: The process of each running server, by URL, so a benchmark can read its CPU.
_SERVERS: dict[str, int] = {}


def free_port() -> int:
    """A TCP port on loopback that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.contextmanager
def server_process(
    args: Sequence[str], *, port: int, ready_path: str, start_timeout: float = 60.0
) -> Iterator[str]:
    """Run a server in its own process (so client and server don't share a loop).

    Yields its loopback URL once ``ready_path`` answers (any HTTP status counts);
    the process is terminated, and killed if it lingers, however the block ends.
    """
    proc = subprocess.Popen([sys.executable, *args], stdout=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + start_timeout
        while True:
            try:
                urllib.request.urlopen(url + ready_path, timeout=1).close()
                break
            except urllib.error.HTTPError:
                break  # it answers: up (auth errors are fine)
            except OSError:
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise RuntimeError(f"server {args} did not start") from None
                time.sleep(0.05)
        _SERVERS[url] = proc.pid
        yield url
    finally:
        _SERVERS.pop(url, None)
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)


def server_cpu(url: str) -> float | None:
    """CPU seconds (user + system) the server at ``url`` has used so far; None without /proc.

    A benchmark whose client and server share the machine reads it around each run, to
    show how much of the machine the two used together.
    """
    pid = _SERVERS.get(url)
    if pid is None:
        return None
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    # utime and stime, the 14th and 15th fields (the 12th and 13th after the name).
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def median(values: Sequence[float]) -> float:
    """The median, for figures taken over interleaved runs."""
    return statistics.median(values)

"""Shared benchmark helpers: free ports, server subprocesses, medians."""

from __future__ import annotations

import contextlib
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
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)


def median(values: Sequence[float]) -> float:
    """The median, for figures taken over interleaved runs."""
    return statistics.median(values)

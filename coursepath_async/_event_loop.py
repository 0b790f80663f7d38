"""The command line's event loop: uvloop when the ``speed`` extra is installed.

Only the CLI picks a loop; the library runs on whatever loop its caller uses. What uvloop
saves a bulk job in CPU per row is benchmark 15's figure (paired against asyncio: a
few percent at most). ``COURSEPATH_LOOP=asyncio`` forces the standard loop,
``uvloop`` insists on uvloop, ``auto`` (the default) takes it if it is there.
"""

from __future__ import annotations

import asyncio
import importlib.util
import logging
import os
from collections.abc import Callable, Coroutine
from typing import Any, Literal, TypeVar

from ._exceptions import ConfigurationError

T = TypeVar("T")

ENV_LOOP = "COURSEPATH_LOOP"
LoopName = Literal["asyncio", "uvloop"]

log = logging.getLogger("coursepath_async.cli")


def choose_loop() -> LoopName:
    """The loop ``COURSEPATH_LOOP`` asks for, or uvloop if installed; says what is wrong."""
    wanted = os.environ.get(ENV_LOOP, "").strip().lower() or "auto"
    if wanted not in ("auto", "asyncio", "uvloop"):
        raise ConfigurationError(
            f"{ENV_LOOP} must be auto, asyncio or uvloop, got {os.environ[ENV_LOOP]!r}"
        )
    if wanted == "asyncio":
        return "asyncio"
    if importlib.util.find_spec("uvloop") is not None:
        return "uvloop"
    if wanted == "uvloop":
        raise ConfigurationError(
            f"{ENV_LOOP}=uvloop but uvloop is not installed: "
            "pip install 'coursepath-async[speed]' (not available on Windows)"
        )
    return "asyncio"


def run(main: Callable[[], Coroutine[Any, Any, T]]) -> T:
    """Run ``main()`` to completion on the chosen loop (chosen before it is created)."""
    loop = choose_loop()
    log.debug("event loop: %s", loop)
    if loop == "uvloop":
        import uvloop

        return uvloop.run(main())
    return asyncio.run(main())

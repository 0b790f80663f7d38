"""The command line's event loop: uvloop when the ``speed`` extra is installed.

Only the CLI picks a loop; the library runs on whatever loop its caller uses. What uvloop
saves a bulk job in CPU per row is benchmark 15's figure (paired against asyncio: a
few percent at most). ``COURSEPATH_LOOP=asyncio`` forces the standard loop,
``uvloop`` insists on uvloop, ``auto`` (the default) takes it if it is there.

The CLI owns its process, so while a command runs it also tunes the garbage collector
for a long job (:func:`long_job_collector`); the library never touches it.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import importlib.util
import logging
import os
from collections.abc import Callable, Coroutine, Iterator
from typing import Any, Literal, TypeVar

from ._exceptions import ConfigurationError

T = TypeVar("T")

ENV_LOOP = "COURSEPATH_LOOP"
LoopName = Literal["asyncio", "uvloop"]

log = logging.getLogger("coursepath_async.cli")

#: The collector's thresholds during a command. CPython's first-generation threshold of
#: 700 runs a young collection every few requests of a bulk job (about 70 per 1,000
#: rows); at 10,000 the job spends about a quarter of the time collecting that it did.
JOB_GC_THRESHOLD = (10_000, 20, 20)


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
    with long_job_collector():
        if loop == "uvloop":
            import uvloop

            return uvloop.run(main())
        return asyncio.run(main())


@contextlib.contextmanager
def long_job_collector() -> Iterator[None]:
    """Collect less often during a command, and never re-scan what start-up loaded.

    ``gc.freeze`` sets the objects alive now (the modules, classes and functions the
    imports made, about 50,000 of them) aside, so that the full collections a long job
    triggers do not walk them again. Both are undone on the way out, for a caller (a
    test, say) that runs the CLI inside its own process.
    """
    before = gc.get_threshold()
    gc.freeze()
    gc.set_threshold(*JOB_GC_THRESHOLD)
    try:
        yield
    finally:
        gc.set_threshold(*before)
        gc.unfreeze()

"""Which event loop runs a command: asyncio's own, or uvloop when asked for.

uvloop (``pip install 'bulkpolyv[fast]'``) is a drop-in event loop on libuv that spends
less CPU per request than asyncio's. ``BULKPOLYV_LOOP=uvloop`` runs on it (and says how to
install it when it is missing); ``BULKPOLYV_LOOP=auto`` runs on it when it is installed.
The default stays asyncio's loop even when uvloop is installed: on uvloop one end-to-end
rate-limit test behaves differently (tests/test_apply_e2e.py::
test_a_429_storm_causes_one_cooldown_and_no_violation: no request meets the simulator's
0.4 s block, 3 runs of 3; it passes on asyncio's loop), and that is not understood yet.
"""

from __future__ import annotations

import asyncio
import importlib
import os
from collections.abc import Callable, Coroutine, Mapping
from types import ModuleType
from typing import Any, TypeVar

from bulkpolyv.errors import BulkPolyvError

T = TypeVar("T")
LoopFactory = Callable[[], asyncio.AbstractEventLoop]


def loop_factory(
    environ: Mapping[str, str] = os.environ,
    import_module: Callable[[str], ModuleType] = importlib.import_module,
) -> LoopFactory | None:
    """uvloop's ``new_event_loop`` when asked for (and installed); ``None`` means asyncio's."""
    choice = environ.get("BULKPOLYV_LOOP", "").strip().lower()
    if choice not in ("", "asyncio", "auto", "uvloop"):
        raise BulkPolyvError(f"BULKPOLYV_LOOP={choice!r}: give asyncio, auto or uvloop")
    if choice in ("", "asyncio"):
        return None
    try:
        uvloop = import_module("uvloop")
    except ImportError:
        if choice == "uvloop":
            raise BulkPolyvError(
                "BULKPOLYV_LOOP=uvloop but uvloop is not installed: pip install 'bulkpolyv[fast]'"
            ) from None
        return None
    factory: LoopFactory = uvloop.new_event_loop
    return factory


def run(main: Coroutine[Any, Any, T], *, factory: LoopFactory | None = None) -> T:
    """``asyncio.run`` on the loop :func:`loop_factory` picks (or on ``factory``)."""
    try:
        chosen = factory or loop_factory()
    except BulkPolyvError:
        main.close()  # never run: no "coroutine was never awaited" warning under the error
        raise
    with asyncio.Runner(loop_factory=chosen) as runner:
        return runner.run(main)

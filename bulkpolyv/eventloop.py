"""Which event loop runs a command: uvloop when it is installed, asyncio's own otherwise.

uvloop (``pip install 'bulkpolyv[fast]'``) is a drop-in event loop on libuv that spends
less CPU per request than asyncio's (``bench/efficiency.py --loop uvloop``); bulkpolyv
behaves the same on either, so it is an optional extra, not a dependency.
``BULKPOLYV_LOOP=asyncio`` keeps asyncio's loop even when uvloop is installed (to compare,
or to rule uvloop out when chasing a problem); ``BULKPOLYV_LOOP=uvloop`` insists on it and
says how to install it when it is missing; ``auto`` (the default) picks.
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
    """uvloop's ``new_event_loop`` when installed and not declined; ``None`` means asyncio's."""
    choice = environ.get("BULKPOLYV_LOOP", "").strip().lower()
    if choice not in ("", "asyncio", "auto", "uvloop"):
        raise BulkPolyvError(f"BULKPOLYV_LOOP={choice!r}: give asyncio, auto or uvloop")
    if choice == "asyncio":
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
    with asyncio.Runner(loop_factory=factory or loop_factory()) as runner:
        return runner.run(main)

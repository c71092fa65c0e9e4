"""Which event loop runs a command: asyncio's own, or uvloop when asked for.

uvloop (``pip install 'bulkpolyv[fast]'``) is a drop-in event loop on libuv.
``BULKPOLYV_LOOP=uvloop`` runs on it (and says how to install it when it is missing);
``BULKPOLYV_LOOP=auto`` runs on it when it is installed. The default stays asyncio's loop
even when uvloop is installed, because bulkpolyv measured no gain from it (issue 16, on
2 shared cores). uvloop cuts the instructions per request by 15 % (bench/efficiency.py
--instructions: 806k against 946k), but not bulkpolyv's CPU seconds. The bench gave
0.613 s per 1,000 requests against 0.619 s (median of 5). A pinned A/B gave 0.58 against
0.55 ms per request. Only the bare aiohttp loop gains (0.37 against 0.43). The whole test
suite passes on either loop.
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

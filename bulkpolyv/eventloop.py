"""Which event loop runs a command: asyncio's own, or uvloop when asked for.

uvloop (``pip install 'bulkpolyv[fast]'``) is a drop-in event loop on libuv that spends
less CPU per request than asyncio's. ``BULKPOLYV_LOOP=uvloop`` runs on it (and says how to
install it when it is missing); ``BULKPOLYV_LOOP=auto`` runs on it when it is installed.
The default stays asyncio's loop even when uvloop is installed, because one promise does
not hold on uvloop yet: after a signal, requests in flight get a 1.5 s grace and the run
ends within 2 s on asyncio, but took 2.4-3.2 s on uvloop 0.23
(tests/test_edges_e2e.py::test_requests_in_flight_at_a_signal_get_a_grace_then_are_reported_maybe_applied
with ``BULKPOLYV_LOOP=uvloop``).
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
    with asyncio.Runner(loop_factory=factory or loop_factory()) as runner:
        return runner.run(main)

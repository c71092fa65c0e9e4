"""Virtual time for asyncio tests: the running loop's clock jumps instead of waiting.

While the loop has nothing ready to run, the next timer's delay is added to the virtual
clock instead of being slept, so ``asyncio.sleep(10)`` returns at once with ``clock()``
10 s later — and many tasks sleeping concurrently see one consistent timeline (a fake
``sleep`` that just adds to a counter cannot model concurrent waits). Only for tests that
do no real I/O on the loop while it is active.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterator


class VirtualClock:
    def __init__(self) -> None:
        self.now = 0.0

    def clock(self) -> float:
        return self.now


@contextlib.contextmanager
def virtual_time() -> Iterator[VirtualClock]:
    loop = asyncio.get_running_loop()
    virtual = VirtualClock()
    selector = loop._selector  # type: ignore[attr-defined]  # the SelectorEventLoop's own
    real_select = selector.select

    def select(timeout: float | None = None):  # type: ignore[no-untyped-def]
        events = real_select(0)
        if not events and timeout is not None and timeout > 0:
            virtual.now += timeout
        return events

    loop.time = virtual.clock  # type: ignore[method-assign]
    selector.select = select
    try:
        yield virtual
    finally:
        del loop.time
        selector.select = real_select

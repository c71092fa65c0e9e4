"""How many requests to keep in flight: ``auto`` concurrency and a resizable semaphore.

The rate limiter, not the concurrency cap, is what protects POLYV; the cap only has to be
high enough that the limiter is the bottleneck. Reaching R requests per W seconds at an
answer time of L seconds needs R/W·L requests in flight (Little's law), so a fixed 32
caps a 120/s budget at 0.26 of it once latency reaches 1 s. :class:`AutoConcurrency`
follows the observed latency instead: target = ceil(margin·R/W·latency), clamped to
[floor, ceiling] (a number the user gave lowers the ceiling). It grows at once when latency
rises — being short costs throughput — and shrinks only after latency has stayed low for
``shrink_after`` seconds, so one fast answer does not throw away connections just opened.

:class:`ResizableSemaphore` is the primitive that applies the target: an asyncio semaphore
whose capacity can change while tasks hold and wait for it.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections import deque
from collections.abc import Callable
from types import TracebackType

DEFAULT_CEILING = 256


class AutoConcurrency:
    """The in-flight target for a rate of ``requests`` per ``per_seconds``."""

    def __init__(
        self,
        requests: int,
        per_seconds: float,
        *,
        cap: int | None = None,
        floor: int = 4,
        ceiling: int = DEFAULT_CEILING,
        margin: float = 1.25,
        initial_latency: float = 0.2,
        smoothing: float = 0.1,
        shrink_after: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if requests <= 0 or per_seconds <= 0 or not 0 < smoothing <= 1:
            raise ValueError("auto concurrency needs a positive rate and 0 < smoothing <= 1")
        self.rate = requests / per_seconds
        self.ceiling = min(ceiling, cap) if cap is not None else ceiling
        self.floor = min(floor, self.ceiling)
        self.margin = margin
        self.latency = initial_latency
        self._smoothing = smoothing
        self._shrink_after = shrink_after
        self._clock = clock
        self._lower_since: float | None = None
        self.target = self._wanted()

    def observe(self, latency: float) -> int:
        """Fold in one answer time (seconds, send to answer); return the new target."""
        self.latency += self._smoothing * (max(latency, 0.0) - self.latency)
        wanted = self._wanted()
        if wanted >= self.target:
            self.target = wanted
            self._lower_since = None
        elif self._lower_since is None:
            self._lower_since = self._clock()
        elif self._clock() - self._lower_since >= self._shrink_after:
            self.target = wanted
            self._lower_since = None
        return self.target

    def _wanted(self) -> int:
        wanted = math.ceil(self.margin * self.rate * self.latency)
        return max(self.floor, min(self.ceiling, wanted))


class ResizableSemaphore:
    """At most ``capacity`` holders; ``resize`` may raise or lower it at any time.

    Lowering it below the number of current holders takes nobody's place away: new
    holders wait until enough have left. Waiters are served first come, first served; a
    waiter cancelled after it was granted gives its place back.
    """

    def __init__(self, capacity: int) -> None:
        if capacity < 1:
            raise ValueError("a semaphore needs a capacity of at least 1")
        self.capacity = capacity
        self.in_use = 0
        self._waiters: deque[asyncio.Future[None]] = deque()

    def resize(self, capacity: int) -> None:
        if capacity < 1:
            raise ValueError("a semaphore needs a capacity of at least 1")
        self.capacity = capacity
        self._wake()

    def try_acquire(self) -> bool:
        """Take a place at once if one is free and nobody waits; False otherwise."""
        if self.in_use < self.capacity and not self._waiters:
            self.in_use += 1
            return True
        return False

    async def acquire(self) -> None:
        if self.try_acquire():
            return
        granted: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.append(granted)
        try:
            await granted
        except asyncio.CancelledError:
            if granted.done() and not granted.cancelled():
                self.release()  # granted just as we were cancelled: hand it on
            elif granted in self._waiters:  # _wake may have dropped it (cancelled) already
                self._waiters.remove(granted)
            raise

    def release(self) -> None:
        if self.in_use <= 0:
            raise RuntimeError("release() without acquire()")
        self.in_use -= 1
        if self._waiters:
            self._wake()

    def _wake(self) -> None:
        while self._waiters and self.in_use < self.capacity:
            granted = self._waiters.popleft()
            if not granted.done():
                self.in_use += 1
                granted.set_result(None)

    async def __aenter__(self) -> None:
        await self.acquire()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.release()

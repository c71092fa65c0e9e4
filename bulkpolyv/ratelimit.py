"""When a request may be sent: the sliding-window limiter, the shared cool-down, the gate.

POLYV blocks an IP for five minutes once it sees more than 1,500 requests in *any* 10 s.
A token bucket of 1,500 tokens refilled at 150/s does not respect that: it lets a full
bucket go out at once and then keeps refilling, so up to ~3,000 requests can land in one
10 s window. :class:`SlidingWindowLimiter` instead remembers the send times of the last
``requests`` permits and lets a new one go only when the oldest of them is more than
``per_seconds`` (plus a little slack for network jitter) old. That makes "never more than N
in any window" true by construction, at the cost of O(N) memory — 1,200 floats.

A window's worth of requests sent at once is legal, but not safe: POLYV counts requests when
they *arrive*, and a burst queues up on the way (connection set-up, the server's own
queue), so its last requests can arrive late enough to share a window with the next burst.
:class:`PacedWindowLimiter` therefore adds a second, ten-times-shorter window (at most R/10
per W/10): the same average rate, sent in small steps, and the whole-window bound kept.

:class:`CoolDown` is the pause every worker honours after POLYV says "rate limited": one
pause per block, however many in-flight requests come back with a 429. :class:`RequestGate`
puts both together with the concurrency cap; the client sends every request, reads
included, through ``gate.slot()``.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import time
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable

from bulkpolyv.errors import ErrorKind, PolyvError
from bulkpolyv.events import RunEvents

Clock = Callable[[], float]
Sleep = Callable[[float], Awaitable[None]]


class SlidingWindowLimiter:
    """At most ``requests`` permits in any ``per_seconds + slack`` window."""

    def __init__(
        self,
        requests: int,
        per_seconds: float,
        *,
        slack: float | None = None,
        clock: Clock = time.monotonic,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        if requests <= 0 or per_seconds <= 0:
            raise ValueError("a rate limit needs a positive count and window")
        self.requests = requests
        # Slack covers the difference between when we send and when POLYV counts: two
        # requests sent exactly one window apart may arrive less than a window apart.
        self.window = per_seconds + (slack if slack is not None else max(0.05, per_seconds / 100))
        self._sent: deque[float] = deque(maxlen=requests)
        self._clock = clock
        self._sleep = sleep
        self._lock = asyncio.Lock()

    async def acquire(self) -> float:
        """Wait for a permit (first come, first served); return the time it was granted."""
        async with self._lock:
            while len(self._sent) == self.requests:
                wait = self._sent[0] + self.window - self._clock()
                if wait <= 0:
                    break
                await self._sleep(wait)
            now = self._clock()
            self._sent.append(now)
            return now


class PacedWindowLimiter:
    """At most ``requests`` in any ``per_seconds`` (+ slack), and at most a ``1/parts``
    share of them in any ``1/parts`` of the window."""

    def __init__(
        self,
        requests: int,
        per_seconds: float,
        *,
        parts: int = 10,
        slack: float | None = None,
        clock: Clock = time.monotonic,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        self.window = SlidingWindowLimiter(
            requests, per_seconds, slack=slack, clock=clock, sleep=sleep
        )
        self.pace = SlidingWindowLimiter(
            max(1, math.ceil(requests / parts)),
            per_seconds / parts,
            slack=0.0,
            clock=clock,
            sleep=sleep,
        )

    async def acquire(self) -> float:
        await self.pace.acquire()
        return await self.window.acquire()


class CoolDown:
    """A pause shared by every worker. Each trip is tagged with a generation so that the
    429s of requests sent before the pause began do not start another one."""

    def __init__(
        self, seconds: float, *, clock: Clock = time.monotonic, sleep: Sleep = asyncio.sleep
    ) -> None:
        self.seconds = seconds
        self.generation = 0
        self.trips = 0
        self.until = 0.0
        self._clock = clock
        self._sleep = sleep

    @property
    def active(self) -> bool:
        return self._clock() < self.until

    def remaining(self) -> float:
        return max(0.0, self.until - self._clock())

    def trip(self, sent_in_generation: int, seconds: float | None = None) -> bool:
        """Start a pause, unless one already began after this request was sent."""
        if sent_in_generation != self.generation:
            return False
        self.generation += 1
        self.trips += 1
        self.until = self._clock() + (seconds if seconds is not None else self.seconds)
        return True

    async def wait(self) -> None:
        while (left := self.until - self._clock()) > 0:
            await self._sleep(left)


class RequestGate:
    """Concurrency cap + cool-down + sliding window, in that order, around every send.

    It also watches what comes back: a rate-limit answer trips the cool-down, and so does a
    burst of connection failures (an IP block may look like refused connections).
    """

    def __init__(
        self,
        limiter: SlidingWindowLimiter | PacedWindowLimiter,
        cooldown: CoolDown,
        concurrency: int,
        *,
        connection_failure_burst: int = 50,
        events: RunEvents | None = None,
    ) -> None:
        self.limiter = limiter
        self.cooldown = cooldown
        self.sent = 0
        self._semaphore = asyncio.Semaphore(concurrency)
        self._burst = connection_failure_burst
        self._failures_in_a_row = 0
        self.events = events or RunEvents()

    @contextlib.asynccontextmanager
    async def _slot(self) -> AsyncIterator[None]:
        async with self._semaphore:
            while True:
                await self.cooldown.wait()
                await self.limiter.acquire()
                if not self.cooldown.active:
                    break
            generation = self.cooldown.generation
            self.sent += 1
            try:
                yield
            except PolyvError as error:
                self._observe(error, generation)
                raise
            self._failures_in_a_row = 0

    def slot(self) -> contextlib.AbstractAsyncContextManager[None]:
        return self._slot()

    def _observe(self, error: PolyvError, generation: int) -> None:
        if error.kind is ErrorKind.RATE_LIMITED:
            self._trip(generation, error.retry_after)
            return
        if error.kind is ErrorKind.TRANSIENT and error.http_status is None:
            self._failures_in_a_row += 1
            if self._failures_in_a_row >= self._burst:
                self._failures_in_a_row = 0
                self._trip(generation, None)
            return
        self._failures_in_a_row = 0

    def _trip(self, generation: int, seconds: float | None) -> None:
        if self.cooldown.trip(generation, seconds):
            self.events.cooldown(self.cooldown.remaining())

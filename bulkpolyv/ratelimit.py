"""When a request may be sent: the arrival-safe window and the shared cool-down.

POLYV blocks an IP for five minutes once *more than N requests arrive* in any W seconds
(1,500 in 10 s). We cannot see arrivals; we only know that a request arrives somewhere
between the moment we send it and the moment its answer (or its failure) comes back.

**The rule.** Every request holds a place in the window from *before it is sent* until *W
after its answer came back* (or after it failed or timed out); a new request is let go only
while fewer than N places are held. :class:`ArrivalWindowLimiter` implements it as a
reservation: :meth:`~ArrivalWindowLimiter.acquire` takes a place (counted from now), and the
caller calls :meth:`Permit.complete` when the answer comes, which makes the place last W
more seconds from then.

**Why it bounds arrivals, whatever the network does.** Suppose N+1 requests arrived within
less than W of one another, at times a_i, the earliest a_min. Let T be the latest of their
reservation times. Each request i was reserved at r_i <= T and sent after r_i, so it arrived
at a_i >= r_i; its answer came back at c_i >= a_i, and its place lasts until c_i + W. For
the request j reserved last, T = r_j <= a_j < a_min + W <= a_i + W <= c_i + W for every i:
at time T all N+1 places were held at once — but a place is granted only while fewer than
N are held. Contradiction. Nothing in the argument depends on how long a request spent on
the wire, queued in a proxy or retransmitted: delay only makes places last longer. It needs
two things: the client gives up on a request before its *lease* runs out (the lease, W +
``max_request_seconds``, frees the places of a process that died without completing them),
and times come from one clock (the host's monotonic clock, or the Redis server's).

**Why a token or leaky bucket is not enough.** A bucket bounds the *average* rate of
permits: a full bucket of N goes at once and refills during the window, so ~2N can land in
one window; and whatever it counts, it counts at *send* time. A sliding window over send
times (what this module did before) fixes the first but not the second: two requests sent
W apart arrive less than W apart when the first is delayed, and no fixed slack covers a GC
pause or a TCP retransmission (we measured 52–55 ms late arrivals against 50 ms of slack).
Holding the place until W after the answer needs no slack at all.

The cost: a place is held for W + latency, so at most N per (W + latency) go out — 0.91 of
the configured rate at 1 s of latency and 10 s windows. **Pacing** (this process's grants
follow a schedule of N per W, at most N/``parts`` ahead of it) stays for smoothness only —
a burst queues up on the way and is answered slowly; the rule alone makes the bound hold.

The places live in a :class:`~bulkpolyv.budget.WindowStore`, so every process on a host (or
a fleet, with Redis) shares one window; each still honours its own N against the shared
count. :class:`CoolDown` is the pause every worker honours after POLYV says "rate
limited". :class:`~bulkpolyv.gate.RequestGate` puts them together with the concurrency cap;
the client sends every request, reads included, through ``gate.slot()``.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import time
from collections.abc import Awaitable, Callable

from bulkpolyv.budget import MemoryStore, ReservationIds, WindowStore
from bulkpolyv.budget.base import BudgetUnavailable
from bulkpolyv.stopping import Stop

Clock = Callable[[], float]
Sleep = Callable[[float], Awaitable[None]]

# The shortest poll: a store that says "a place frees in 0.2 ms" is not asked 5,000 times.
MIN_POLL = 0.001


async def sleep_unless_stopped(
    seconds: float, stop: asyncio.Event | Stop | None, sleep: Sleep
) -> bool:
    """Sleep ``seconds`` or until ``stop`` is set; True when stopped."""
    if stop is None:
        await sleep(seconds)
        return False
    if stop.is_set():
        return True
    sleeper = asyncio.ensure_future(sleep(seconds))
    stopper = asyncio.ensure_future(stop.wait())
    try:
        await asyncio.wait({sleeper, stopper}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        sleeper.cancel()
        stopper.cancel()
    return stop.is_set()


class Permit:
    """One held place in the window. Call :meth:`complete` once the request was answered,
    failed or timed out — or may have been sent at all; :meth:`cancel` only if it was
    certainly never sent. Both are idempotent, and the first one wins."""

    __slots__ = ("_done", "_hold", "_store", "granted_at", "id")

    def __init__(self, store: WindowStore, id: str, hold: float, granted_at: float) -> None:
        self._store = store
        self._hold = hold
        self._done = False
        self.id = id
        self.granted_at = granted_at

    def try_complete(self) -> bool:
        """True once nothing is left to do: completed now, the store needing no I/O for
        it, or completed or cancelled before. False (nothing done): await :meth:`complete`."""
        if not self._done and self._store.try_complete(self.id, self._hold):
            self._done = True
        return self._done

    async def complete(self) -> None:
        if not self.try_complete():
            self._done = True
            # Shielded: a cancelled worker still stamps its answer time, or the place would
            # fall back to its (longer) lease and be counted for longer than needed — never
            # shorter, so shielding is about throughput, not safety.
            await _shielded(self._store.complete(self.id, self._hold))

    async def cancel(self) -> None:
        if not self._done:
            self._done = True
            await _shielded(self._store.cancel(self.id))


async def _shielded(work: Awaitable[None]) -> None:
    """``work`` carried on even if the caller is cancelled; a failure it meets after the
    caller is gone is left to the lease, not printed as "Task exception was never
    retrieved" on the user's terminal."""
    task = asyncio.ensure_future(work)
    task.add_done_callback(lambda done: done.cancelled() or done.exception())
    await asyncio.shield(task)


class ArrivalWindowLimiter:
    """At most ``requests`` places held in ``store`` at once, each from before its send
    until ``per_seconds`` after its answer: at most ``requests`` *arrivals* in any window.

    ``max_request_seconds`` must exceed the longest a request can take from its grant to its
    answer (the client's total timeout, connection-pool wait included): a place whose lease
    runs out before :meth:`Permit.complete` no longer counts.
    """

    def __init__(
        self,
        requests: int,
        per_seconds: float,
        *,
        store: WindowStore | None = None,
        max_request_seconds: float = 60.0,
        parts: int = 10,
        max_poll: float = 0.25,
        clock: Clock = time.monotonic,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        if requests <= 0 or per_seconds <= 0 or max_request_seconds <= 0:
            raise ValueError("a rate limit needs a positive count, window and request time")
        self.requests = requests
        self.window = per_seconds
        self.lease = per_seconds + max_request_seconds
        self.store: WindowStore = store if store is not None else MemoryStore(clock=clock)
        # Pacing as a virtual schedule (GCRA): one grant every W/N on average, a burst of
        # N/parts at most ahead of it. A grant that comes late does not push the schedule
        # back, so a busy loop or a slow store costs no rate over a long run.
        self._interval = per_seconds / requests
        self._tolerance = max(1, math.ceil(requests / parts) - 1) * self._interval
        self._schedule: float | None = None  # when the next grant is due on the schedule
        self._max_poll = max_poll
        self._ids = ReservationIds()
        self.clock = clock
        self._sleep = sleep
        # One local waiter asks the store at a time: first come, first served within the
        # process, and the store is polled once per wait, not once per worker.
        self._lock = asyncio.Lock()
        # Requests in _acquire (waiting for the lock, the pace or the store): while there
        # are any, try_acquire takes nothing, so no request overtakes one already waiting.
        self._waiting = 0
        # Until when the store last said the window is full (a poll, bounded by max_poll):
        # nobody asks it again before then, on either path.
        self._full_until = 0.0

    def try_acquire(self) -> Permit | None:
        """A place at once, or None when it takes a wait: for the pace, for a waiter
        before us, or for the store (the window is full, a lock, I/O)."""
        if self._waiting or self._pace_wait() > 0 or self.clock() < self._full_until:
            return None
        reservation_id = self._ids()
        wait = self.store.try_reserve(reservation_id, self.requests, self.lease)
        if wait is None:
            return None
        if wait > 0:
            self._full(wait)
            return None
        return self._granted(reservation_id)

    def _full(self, wait: float) -> None:
        self._full_until = self.clock() + min(max(wait, MIN_POLL), self._max_poll)

    def _granted(self, reservation_id: str) -> Permit:
        granted_at = self.clock()
        due = self._schedule if self._schedule is not None else granted_at
        self._schedule = max(due, granted_at) + self._interval
        return Permit(self.store, reservation_id, self.window, granted_at)

    async def acquire(self) -> Permit:
        """Wait for a place; cancellable (a cancelled wait holds no place afterwards)."""
        permit = await self._acquire(None)
        assert permit is not None  # only a stop ends the wait without a place
        return permit

    async def acquire_until(self, stop: asyncio.Event) -> Permit | None:
        """Like :meth:`acquire`, but None (and no place held) once ``stop`` is set."""
        return await self._acquire(stop)

    async def _acquire(self, stop: asyncio.Event | None) -> Permit | None:
        self._waiting += 1
        try:
            return await self._acquire_in_turn(stop)
        finally:
            self._waiting -= 1

    async def _acquire_in_turn(self, stop: asyncio.Event | None) -> Permit | None:
        async with self._lock:
            while (pace := self._pace_wait()) > 0:
                if await sleep_unless_stopped(pace, stop, self._sleep):
                    return None
            while True:
                if stop is not None and stop.is_set():
                    return None
                poll = self._full_until - self.clock()
                if poll > 0 and await sleep_unless_stopped(poll, stop, self._sleep):
                    return None
                reservation_id = self._ids()
                wait = await self._reserve(reservation_id)
                if wait <= 0:
                    return self._granted(reservation_id)
                self._full(wait)

    def _pace_wait(self) -> float:
        if self._schedule is None:
            return 0.0
        return self._schedule - self._tolerance - self.clock()

    async def _reserve(self, reservation_id: str) -> float:
        try:
            return await self.store.reserve(reservation_id, self.requests, self.lease)
        except asyncio.CancelledError:
            # The store may have taken the place before the cancel reached us: give it back
            # (an unknown id is ignored). If even that fails, the lease frees it.
            with contextlib.suppress(BudgetUnavailable):
                await asyncio.shield(self.store.cancel(reservation_id))
            raise


class CoolDown:
    """A pause shared by every worker. Each trip is tagged with a generation so that the
    429s of requests sent before the pause began do not start another one. No pause is
    longer than ``seconds`` (``--cooldown``), whatever a ``Retry-After`` asks for: a 429
    saying ``Retry-After: 100000`` must not park a nightly run for 27 hours."""

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
        """Start a pause (at most ``self.seconds``), unless one already began after this
        request was sent."""
        if sent_in_generation != self.generation:
            return False
        pause = self.seconds if seconds is None else min(max(seconds, 0.0), self.seconds)
        self.generation += 1
        self.trips += 1
        self.until = self._clock() + pause
        return True

    async def wait(self, stop: asyncio.Event | Stop | None = None) -> bool:
        """Wait for the pause to end; False (at once) when ``stop`` is set first."""
        while (left := self.until - self._clock()) > 0:
            if await sleep_unless_stopped(left, stop, self._sleep):
                return False
        return stop is None or not stop.is_set()

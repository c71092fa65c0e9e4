"""The gate every request goes through: the concurrency cap, the cool-down and the
arrival-safe window (:mod:`bulkpolyv.ratelimit`), in that order, and what the answers say
about the host (:class:`~bulkpolyv.reachability.Reachability`).

A request that finds a free place in flight and in the window, outside a cool-down, goes
through without a single await: each coroutine on the way down cost instructions on every
such request. That is nearly every request of a run below its rate; a run held to its rate
waits for the pace or for places, and takes the awaited path, as does any request that
finds a waiter in line, a cool-down, or a store that needs I/O or a lock (Redis, always).
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

from bulkpolyv.budget.base import BudgetUnavailable
from bulkpolyv.concurrency import AutoConcurrency, ResizableSemaphore
from bulkpolyv.errors import ErrorKind, PolyvError
from bulkpolyv.events import RunEvents
from bulkpolyv.ratelimit import ArrivalWindowLimiter, CoolDown, Permit
from bulkpolyv.reachability import Reachability
from bulkpolyv.stopping import Stop, StopKind, Stopped


def _succeeded(task: asyncio.Future[Any]) -> bool:
    return task.done() and not task.cancelled() and task.exception() is None


class RequestGate:
    """Concurrency cap + cool-down + sliding window, in that order, around every send.

    ``concurrency`` is a fixed number of requests in flight, or an :class:`AutoConcurrency`
    that the gate feeds with each request's time from its place being granted to its answer
    (waiting for a pooled connection included) and follows: :attr:`ceiling` is the most it
    will ever let go, what the worker pool and the connection pool are sized to.

    It also watches what comes back: a rate-limit answer trips the cool-down; an
    unreachable host, or a wall of failures that outlasts one cool-down, stops the run
    (:class:`Reachability`). Every wait in :meth:`slot` races ``stop``, and ``stop`` is
    checked once more right before the request goes out: nothing is sent after a stop. A
    budget store that fails (:class:`BudgetUnavailable`) stops the run too (aborted, with
    the store's sentence): without the shared count nothing may be sent.
    """

    def __init__(
        self,
        limiter: ArrivalWindowLimiter,
        cooldown: CoolDown,
        concurrency: int | AutoConcurrency,
        *,
        connection_failure_burst: int = 50,
        events: RunEvents | None = None,
        stop: Stop | None = None,
    ) -> None:
        self.limiter = limiter
        self.cooldown = cooldown
        self.sent = 0
        self.auto = concurrency if isinstance(concurrency, AutoConcurrency) else None
        self.ceiling = self.auto.ceiling if self.auto is not None else int(concurrency)
        self.in_flight = ResizableSemaphore(
            self.auto.target if self.auto is not None else self.ceiling
        )
        self.reachability = Reachability(connection_failure_burst)
        self.events = events or RunEvents()
        self.stop = stop or Stop()

    async def _enter_in_flight(self) -> None:
        """A place among the requests in flight, unless the run stops first: then
        :class:`Stopped` at once (a request waiting here was never sent, and must not wait
        for the requests on the wire to be cancelled before it can say so)."""
        self.stop.check()  # (the caller already tried for a place without a wait)
        acquiring = asyncio.ensure_future(self.in_flight.acquire())
        stopping = asyncio.ensure_future(self.stop.wait())
        try:
            await asyncio.wait({acquiring, stopping}, return_when=asyncio.FIRST_COMPLETED)
        except BaseException:  # this task was cancelled: hold nothing
            stopping.cancel()
            if _succeeded(acquiring):
                self.in_flight.release()
            acquiring.cancel()
            raise
        stopping.cancel()
        if not acquiring.done():
            acquiring.cancel()  # the semaphore gives up a cancelled waiter's turn
        elif _succeeded(acquiring) and self.stop.is_set():
            self.in_flight.release()
        elif _succeeded(acquiring):
            return
        self.stop.check()

    def _permit_at_once(self) -> Permit | None:
        """A place in the window without a wait, or None (then :meth:`_permit`)."""
        if self.stop.is_set() or self.cooldown.active:
            return None
        try:
            return self.limiter.try_acquire()
        except BudgetUnavailable as error:
            raise self._budget_failed(error) from error

    async def _permit(self) -> Permit:
        """A place in the window, outside any cool-down, unless the run stops first
        (:class:`Stopped`)."""
        while True:
            if self.cooldown.active:
                await self.cooldown.wait(self.stop)
            try:
                permit = await self.limiter.acquire_until(self.stop)  # type: ignore[arg-type]
                if permit is not None and (self.stop.is_set() or self.cooldown.active):
                    # stopping, or a pause began while we waited: nothing was sent
                    await permit.cancel()
                    permit = None
            except BudgetUnavailable as error:
                raise self._budget_failed(error) from error
            if permit is None:
                self.stop.check()  # stopped while waiting for a place
                continue
            return permit

    async def _complete(self, permit: Permit) -> None:
        # The answer is in, so this request's outcome stands even if the store fails now:
        # its place stays counted until its lease runs out (longer than W after the
        # answer), so the bound holds; the stop keeps anything else from being sent.
        try:
            await permit.complete()
        except BudgetUnavailable as error:
            self._budget_failed(error)
        self._answered_in(permit)

    def _completed_at_once(self, permit: Permit) -> bool:
        """:meth:`_complete` if the store can do it at once; False (nothing done) if not."""
        try:
            if not permit.try_complete():
                return False
        except BudgetUnavailable as error:
            self._budget_failed(error)
        self._answered_in(permit)
        return True

    def _answered_in(self, permit: Permit) -> None:
        if self.auto is not None:
            target = self.auto.observe(self.limiter.clock() - permit.granted_at)
            if target != self.in_flight.capacity:  # (it moves now and then, not per answer)
                self.in_flight.resize(target)

    def _budget_failed(self, error: BudgetUnavailable) -> Stopped:
        self.stop.set(str(error), kind=StopKind.ABORTED)
        return Stopped(self.stop.reason or str(error))

    def slot(self) -> contextlib.AbstractAsyncContextManager[None]:
        return _Slot(self)

    def _observe(self, error: PolyvError, generation: int) -> None:
        if error.kind is ErrorKind.UNREACHABLE:
            # The host never answered: every request would fail the same way.
            self.stop.set(error.message, kind=StopKind.UNREACHABLE)
            return
        if error.kind is ErrorKind.RATE_LIMITED:
            self.reachability.answered()  # POLYV itself answered
            self._trip(generation, error.retry_after)
            return
        wall_like = error.foreign or (
            error.kind is ErrorKind.TRANSIENT and error.http_status is None
        )
        if not wall_like:
            self.reachability.answered()
            return
        verdict = self.reachability.failed(generation, page=error.foreign)
        if verdict == "cooldown":
            self._trip(generation, None)
        elif verdict == "unreachable":
            self.stop.set(
                f"the API host stopped answering after answering normally, and still fails "
                f"after a {self.cooldown.seconds:g} s pause (possibly this IP is blocked): "
                f"{error.message}",
                kind=StopKind.UNREACHABLE,
            )
        elif verdict == "not the API":
            self.stop.set(
                f"{error}: this API base has not answered like POLYV's API (check "
                "--api-base, or the manifest's api_base; if it is POLYV's, this IP may be "
                "blocked: try again in 5 minutes)",
                kind=StopKind.UNREACHABLE,
            )

    def _trip(self, generation: int, seconds: float | None) -> None:
        if self.cooldown.trip(generation, seconds):
            self.events.cooldown(self.cooldown.remaining())


class _Slot:
    """One request's way through a :class:`RequestGate` (``async with gate.slot()``): a
    place in flight, then a place in the window; on the way out the window's place is
    completed (answered, failed, timed out or cancelled mid-send: it may have arrived, so
    it is held W from now — rule 1 — never given back). A class rather than an
    ``asynccontextmanager``: this runs for every request."""

    __slots__ = ("_gate", "_generation", "_permit")

    def __init__(self, gate: RequestGate) -> None:
        self._gate = gate

    async def __aenter__(self) -> None:
        gate = self._gate
        # The common case without a single await: a free place in flight and in the window.
        if gate.stop.is_set() or not gate.in_flight.try_acquire():
            await gate._enter_in_flight()
        try:
            permit = gate._permit_at_once()
            self._permit = permit if permit is not None else await gate._permit()
        except BaseException:
            gate.in_flight.release()
            raise
        self._generation = gate.cooldown.generation
        gate.sent += 1

    async def __aexit__(self, exc_type: Any, error: BaseException | None, _tb: Any) -> None:
        gate = self._gate
        try:
            try:
                if isinstance(error, PolyvError):
                    gate._observe(error, self._generation)
            finally:
                if not gate._completed_at_once(self._permit):
                    await gate._complete(self._permit)
            if error is None:
                gate.reachability.answered()
        finally:
            gate.in_flight.release()

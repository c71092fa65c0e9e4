"""The worker pool that reads live state and applies a plan, under the gate, with retries.

A fixed number of workers pull items from one shared iterator (no task per item, so
100,000 items cost 100,000 small objects, not 100,000 tasks). Each request goes through
:class:`~bulkpolyv.retry.RetryingCaller` (retries, the per-account circuit, the stop
signal, the channel circuit). A stop (a signal, an unreachable host, a journal that
cannot be written, an unexpected error) stops dispatching at once; requests already in
flight get :data:`IN_FLIGHT_GRACE` seconds to be answered, then are cancelled and reported
as failed: they may have been applied. A write whose ``sending`` line cannot be journaled
is not sent. Observers (journal, progress display, tests) get a :class:`~bulkpolyv.events.RunEvents`
when the executor is built.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Iterable, Iterator
from typing import Any, TypeVar

from bulkpolyv.answers import ApiResult
from bulkpolyv.client import PolyvClient
from bulkpolyv.errors import BulkPolyvError, ErrorKind, PolyvError
from bulkpolyv.events import RunEvents
from bulkpolyv.heap import long_lived
from bulkpolyv.manifest.model import Manifest
from bulkpolyv.operations import (
    NotStuck,
    Read,
    as_planned,
    check_stuck,
    fetch,
    live_fields,
    live_read,
    reads_for,
    send,
    store,
)
from bulkpolyv.plan import LiveState, Operation, Plan
from bulkpolyv.records import Credentials
from bulkpolyv.report import ItemOutcome, Status, not_attempted, settled_outcomes
from bulkpolyv.retry import Attempted, ChannelFailed, RetryingCaller, RetryPolicy, Skip
from bulkpolyv.stopping import Stop, StopKind
from bulkpolyv.urls import redact_text

T = TypeVar("T")
R = TypeVar("R")
log = logging.getLogger(__name__)

# How long requests already sent may take to be answered after a stop, before they are
# cancelled: short enough that a stop ends the run within 2 s (systemd, ssh hang-ups),
# with a second left for the journal, the report and a busy host.
IN_FLIGHT_GRACE = 1.0
IN_FLIGHT = "interrupted while in flight — it may have been applied; plan again to see"


class Conflict(Exception):
    """The live value is no longer what the reviewed plan was made against."""


# Given an operation and the live values of its fields just read, why it must not be
# written (a reviewed plan's conflict check), or None.
ConflictCheck = Callable[[Operation, dict[str, str | None] | None], str | None]


class Executor:
    def __init__(
        self,
        client: PolyvClient,
        *,
        concurrency: int,
        policy: RetryPolicy | None = None,
        clock: Callable[[], float] = time.monotonic,
        events: RunEvents | None = None,
        stop: Stop | None = None,
    ) -> None:
        self.client = client
        self.concurrency = concurrency
        self.clock = clock
        self.events = events or RunEvents()
        self.stopping = stop or Stop()
        self.requests = RetryingCaller(policy or RetryPolicy(), self.events, self.stopping)

    def stop(self, reason: str = "stopped", kind: StopKind = StopKind.INTERRUPTED) -> None:
        self.stopping.set(reason, kind=kind)

    def abort(self, what: str, error: BaseException) -> None:
        """Stop the run for an error nobody expected; the traceback goes to the debug log."""
        log.debug("abort: %s", what, exc_info=error)
        # Our own errors are sentences already; anything else gets its type for the reader.
        said = str(error)
        if not isinstance(error, BulkPolyvError):
            said = f"{type(error).__name__}: {said}"
        text = redact_text(said)[:300]
        self.stop(f"{what}: {text}", StopKind.ABORTED)

    async def _pool(
        self,
        items: Iterable[T],
        work: Callable[[T], Awaitable[R]],
        done: Callable[[R], None] | None = None,
        unexpected: Callable[[T, Exception], R] | None = None,
    ) -> None:
        """Each of ``items`` to ``work`` by :attr:`concurrency` workers, each result to
        ``done``, and for an error ``work`` did not expect, ``unexpected``'s result instead
        (callbacks, not a coroutine wrapped around ``work``: every level of coroutines is
        one more frame for each resumption of each request)."""
        iterator: Iterator[T] = iter(items)

        async def worker() -> None:
            for item in iterator:  # shared: each item goes to exactly one worker
                if self.stopping.is_set():
                    return
                try:
                    result = await work(item)
                except Exception as error:
                    if unexpected is None:
                        raise
                    result = unexpected(item, error)
                if done is not None:
                    done(result)

        with long_lived():  # the manifest and the plan, out of the collector's way
            await self._run_workers(
                [asyncio.ensure_future(worker()) for _ in range(self.concurrency)]
            )

    async def _run_workers(self, workers: list[asyncio.Future[None]]) -> None:
        stopped = asyncio.ensure_future(self.stopping.wait())
        try:
            while not all(w.done() for w in workers) and not stopped.done():
                await asyncio.wait([*workers, stopped], return_when=asyncio.FIRST_COMPLETED)
            if not all(w.done() for w in workers):
                # Stopped: what is in flight gets a short grace, then is cancelled (each
                # work function turns its cancellation into an outcome).
                await asyncio.wait(workers, timeout=IN_FLIGHT_GRACE)
        finally:
            stopped.cancel()
            for pending in workers:  # also when this pool itself is cancelled
                pending.cancel()
            results = await asyncio.gather(*workers, return_exceptions=True)
        for result in results:
            if isinstance(result, BaseException) and not isinstance(result, asyncio.CancelledError):
                raise result

    # --- reading live state ---------------------------------------------------------------

    async def refresh(self, manifest: Manifest, reads: Iterable[Read] | None = None) -> LiveState:
        """Read the live state ``manifest`` manages (:func:`~bulkpolyv.operations.reads_for`),
        or exactly ``reads``."""
        live = LiveState()

        async def read(item: Read) -> None:
            try:
                await self._read(live, item)
            except asyncio.CancelledError:
                if not self.stopping.is_set():
                    raise
                _uncancel()  # stopped: the plan of a stopped read phase is never applied
                return
            except Exception as error:  # becomes an aborted run, not a traceback
                self.abort("unexpected error while reading the live state", error)
                return
            self.events.read_done()

        await self._pool(reads_for(manifest) if reads is None else reads, read)
        return live

    async def _read(self, live: LiveState, read: Read) -> None:
        record = Attempted()
        try:
            answer = await self.requests.call(
                read.account, lambda: fetch(self.client, read), record
            )
            store(live, read, answer)
        except PolyvError as error:
            reason = f"could not read the live state: {error}"
            if error.kind is ErrorKind.AUTH:
                live.account_failures.setdefault(read.account, reason)
            else:
                live.failures[read.failure_key] = reason
        except Skip as skipped:  # the account's circuit opened during the reads
            live.account_failures.setdefault(read.account, str(skipped))

    # --- applying -------------------------------------------------------------------------

    async def read_fields(
        self, credentials: Credentials, op: Operation
    ) -> dict[str, str | None] | None:
        """The live values of the fields ``op`` changes (a field POLYV does not return is
        absent); None when the monitor is gone."""
        answer = await self.requests.call(
            op.key.account, live_read(self.client, credentials, op.key), Attempted()
        )
        return live_fields(op, answer)

    async def apply(
        self, plan: Plan, *, conflicts: ConflictCheck | None = None, verify: bool = False
    ) -> list[ItemOutcome]:
        """Carry out ``plan``. With ``conflicts``, each item is read again just before its
        write and skipped as a conflict when the check objects; with ``verify``, each write
        is read back and counted as failed when it did not stick. Every operation gets an
        outcome, also when the run stops (the rest are skipped, with the stop's reason)."""
        outcomes: list[ItemOutcome] = []

        def finish(outcome: ItemOutcome) -> None:
            outcomes.append(outcome)
            log_outcome(outcome, after_stop=self.stopping.is_set())
            try:
                self.events.outcome(outcome)
            except Exception as error:  # the journal is full, for instance
                self.abort("the run's record cannot be written", error)

        for outcome in settled_outcomes(plan):
            finish(outcome)

        def write(op: Operation) -> Awaitable[ItemOutcome]:
            return self._write(op, plan.credentials[op.key.account], conflicts, verify)

        def unexpected(op: Operation, error: Exception) -> ItemOutcome:
            self.abort(f"unexpected error on {op.key}", error)  # a bug: the run stops
            return ItemOutcome.of_operation(
                op, Status.FAILED, message=f"not known: {self.stopping.reason}"
            )

        settled = len(outcomes)
        try:
            await self._pool(plan.operations, write, finish, unexpected)
        except Exception as error:  # any error: the run is aborted, with a record
            self.abort("unexpected error", error)
        if len(outcomes) - settled < len(plan.operations):
            # Some were never dispatched (stopped). Only then the set of what is done: at
            # the end of a full run, a million keys hashed into a set were its peak of
            # memory.
            reason = f"not attempted: {self.stopping.reason or 'the run was interrupted'}"
            for outcome in not_attempted(plan.operations, {o.key for o in outcomes}, reason):
                finish(outcome)
        return outcomes

    async def _write(
        self,
        op: Operation,
        credentials: Credentials,
        conflicts: ConflictCheck | None,
        verify: bool,
    ) -> ItemOutcome:
        """Check, send and (with ``verify``) read back one operation; never raises for
        what POLYV answers, nor when cancelled after a stop (a bug's error goes to the
        pool's ``unexpected``)."""
        started, record = self.clock(), Attempted()
        answer: ApiResult | None = None
        try:
            self._check_circuits(op)
            if conflicts is not None:
                settled = await self._settled(op, credentials, conflicts)
                if settled is not None:
                    return settled
            self._journal_sending(op)
            answer = await self.requests.call(
                op.key.account, lambda: send(self.client, credentials, op), record
            )
            verified, note = None, ""
            if verify:
                verified, note = check_stuck(op, await self.read_fields(credentials, op))
            # The outcome of nearly every item, built from what is at hand: no dict of
            # details to be unpacked again.
            return ItemOutcome.of_operation(
                op,
                Status.CHANGED,
                attempts=record.attempts,
                http_status=answer.http_status,
                message=note,
                request_id=answer.request_id,
                duration=self.clock() - started,
                verified=verified,
            )
        except asyncio.CancelledError:
            if not self.stopping.is_set():
                raise
            _uncancel()
            details = _cancelled(answer, record.attempts, self.stopping)
        except (NotStuck, Conflict, PolyvError, ChannelFailed, Skip) as error:
            details = self._failure(op, error, answer, record)
        return ItemOutcome.of_operation(
            op, attempts=record.attempts, duration=self.clock() - started, **details
        )

    async def _settled(
        self, op: Operation, credentials: Credentials, conflicts: ConflictCheck
    ) -> ItemOutcome | None:
        """A reviewed plan's item read again before its write: its outcome when it is
        already as planned (the plan's second apply), None when it is to be written;
        raises :class:`Conflict` when its live value moved since the plan."""
        live = await self.read_fields(credentials, op)
        done = as_planned(op, live)
        if done is True:
            return ItemOutcome.of_operation(op, Status.UNCHANGED, message="already as planned")
        reason = None if done is None else conflicts(op, live)
        if reason:
            raise Conflict(reason)
        return None

    def _failure(
        self, op: Operation, error: Exception, answer: ApiResult | None, record: Attempted
    ) -> dict[str, Any]:
        """What an item's outcome says when its write, or the read back after it (then
        ``answer`` is the write's), raised ``error``."""
        details: dict[str, Any] = {"status": Status.FAILED}
        if answer is not None:
            details.update(_written(answer))
        if isinstance(error, NotStuck):
            details.update(status=Status.FAILED, message=str(error), verified=False)
        elif isinstance(error, Conflict):
            details.update(status=Status.CONFLICT, message=str(error))
        elif isinstance(error, PolyvError):
            details.update(failure_details(error))
            if error.kind is ErrorKind.FEATURE_MISSING and not op.key.is_callback:
                self.requests.channels.trip(op.key.account, op.key.channel_id, error)
        elif isinstance(error, ChannelFailed):
            details.update(failure_details(error.error))
        else:
            assert isinstance(error, Skip)
            if answer is not None:  # stopped before the read back: the write stands
                details.update(message=f"written; not read back: {error}")
                return details
            details.update(status=Status.SKIPPED, message=str(error))
            if record.error is not None:
                details.update(
                    polyv_code=record.error.polyv_code, http_status=record.error.http_status
                )
        return details

    def _check_circuits(self, op: Operation) -> None:
        self.requests.circuit.check(op.key.account)
        if not op.key.is_callback:
            self.requests.channels.check(op.key.account, op.key.channel_id)

    def _journal_sending(self, op: Operation) -> None:
        """Record that ``op`` is about to be sent; when that cannot be recorded, the write
        is not sent and the run stops (an unrecorded write is a write nobody can account
        for after a crash)."""
        try:
            self.events.sending(op)
        except Exception as error:  # the journal's disk is full, for instance
            self.abort("the run's record cannot be written", error)
            raise Skip(f"not sent: {self.stopping.reason}") from None


def _written(answer: ApiResult) -> dict[str, Any]:
    """What an outcome says of a write POLYV accepted."""
    return {
        "status": Status.CHANGED,
        "request_id": answer.request_id,
        "http_status": answer.http_status,
    }


def _cancelled(answer: ApiResult | None, attempts: int, stop: Stop) -> dict[str, Any]:
    """What an item cancelled after a stop reports: a write already answered keeps its
    status; one still on the wire may have been applied; one never sent was skipped."""
    if answer is not None:
        return {**_written(answer), "message": "written; not read back: the run was stopped"}
    if attempts:
        return {"status": Status.FAILED, "message": IN_FLIGHT}
    return {"status": Status.SKIPPED, "message": f"not attempted: {stop.reason}"}


def _uncancel() -> None:
    """The cancellation came from our own stop and is handled: clear it on the task."""
    task = asyncio.current_task()
    if task is not None:
        task.uncancel()


def failure_details(error: PolyvError) -> dict[str, Any]:
    """What an outcome says about a request POLYV (or the network) refused."""
    message = error.message
    if error.kind is ErrorKind.AUTH:
        message = f"authentication failed: {error.message}"
    return {
        "message": message,
        "polyv_code": error.polyv_code,
        "request_id": error.request_id,
        "http_status": error.http_status,
    }


def log_outcome(outcome: ItemOutcome, *, after_stop: bool = False) -> None:
    """One log line per item. Failures are INFO: the command prints them grouped by cause
    at the end, one line per cause rather than one per item; -v shows each. Items skipped
    because the run stopped are debug lines (the run's summary says it once)."""
    level = logging.INFO if outcome.status is not Status.UNCHANGED else logging.DEBUG
    if after_stop and outcome.status is Status.SKIPPED:
        level = logging.DEBUG
    if not log.isEnabledFor(level):
        return  # (its extra fields are built for every item otherwise)
    key = outcome.key
    log.log(
        level,
        "apply: item=%s status=%s attempts=%d code=%s requestId=%s%s",
        key,
        outcome.status.value,
        outcome.attempts,
        outcome.polyv_code,
        outcome.request_id,
        f" {outcome.message}" if outcome.message else "",
        extra={
            "event": "outcome",
            "account": key.account,
            "channel": key.channel_id or None,
            "monitor": key.monitor_id or None,
            "status": outcome.status.value,
            "attempts": outcome.attempts,
            "http_status": outcome.http_status,
            "polyv_code": outcome.polyv_code,
            "request_id": outcome.request_id,
        },
    )

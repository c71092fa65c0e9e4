"""The worker pool that reads live state and applies a plan, under the gate, with retries.

A fixed number of workers pull items from one shared iterator (no task per item, so
100,000 items cost 100,000 small objects, not 100,000 tasks). Each request goes through
:class:`~bulkpolyv.retry.RetryingCaller` (retries, the per-account circuit, the stop
signal). A stop request (Ctrl-C) stops dispatching; requests already sent finish.
Observers (journal, progress display, tests) get a :class:`~bulkpolyv.events.RunEvents`
when the executor is built.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Iterable, Iterator
from typing import Any, TypeVar

from bulkpolyv.client import PolyvClient
from bulkpolyv.errors import ErrorKind, PolyvError
from bulkpolyv.events import RunEvents
from bulkpolyv.manifest.model import Manifest
from bulkpolyv.operations import (
    NotStuck,
    Read,
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
from bulkpolyv.retry import Attempted, RetryingCaller, RetryPolicy, Skip

T = TypeVar("T")
log = logging.getLogger(__name__)


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
    ) -> None:
        self.client = client
        self.concurrency = concurrency
        self.clock = clock
        self.events = events or RunEvents()
        self.requests = RetryingCaller(policy or RetryPolicy(), self.events)
        self.stopping = self.requests.stopping

    def stop(self) -> None:
        self.stopping.set()

    async def _pool(self, items: Iterable[T], work: Callable[[T], Awaitable[None]]) -> None:
        iterator: Iterator[T] = iter(items)

        async def worker() -> None:
            for item in iterator:  # shared: each item goes to exactly one worker
                if self.stopping.is_set():
                    return
                await work(item)

        await asyncio.gather(*(worker() for _ in range(self.concurrency)))

    # --- reading live state ---------------------------------------------------------------

    async def refresh(self, manifest: Manifest, reads: Iterable[Read] | None = None) -> LiveState:
        """Read the live state ``manifest`` manages (:func:`~bulkpolyv.operations.reads_for`),
        or exactly ``reads``."""
        live = LiveState()

        async def read(item: Read) -> None:
            await self._read(live, item)
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
        is read back and counted as failed when it did not stick."""
        outcomes: list[ItemOutcome] = []

        def finish(outcome: ItemOutcome) -> None:
            outcomes.append(outcome)
            log_outcome(outcome)
            self.events.outcome(outcome)

        for outcome in settled_outcomes(plan):
            finish(outcome)

        async def write(op: Operation) -> None:
            finish(await self._write(op, plan.credentials[op.key.account], conflicts, verify))

        await self._pool(plan.operations, write)
        for outcome in not_attempted(plan.operations, {o.key for o in outcomes}):
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
        what POLYV answers."""
        started, record = self.clock(), Attempted()
        details: dict[str, Any] = {"status": Status.FAILED}
        try:
            self.requests.circuit.check(op.key.account)
            if conflicts is not None:
                reason = conflicts(op, await self.read_fields(credentials, op))
                if reason:
                    raise Conflict(reason)
            self.events.sending(op)
            answer = await self.requests.call(
                op.key.account, lambda: send(self.client, credentials, op), record
            )
            details.update(
                status=Status.CHANGED,
                request_id=answer.request_id,
                http_status=answer.http_status,
            )
            if verify:
                verified, note = check_stuck(op, await self.read_fields(credentials, op))
                details.update(verified=verified, message=note)
        except NotStuck as not_stuck:
            details.update(status=Status.FAILED, message=str(not_stuck), verified=False)
        except Conflict as conflict:
            details.update(status=Status.CONFLICT, message=f"conflict: {conflict}")
        except PolyvError as error:
            details.update(failure_details(error))
        except Skip as skipped:
            details.update(status=Status.SKIPPED, message=str(skipped))
            if record.error is not None:
                details.update(
                    polyv_code=record.error.polyv_code, http_status=record.error.http_status
                )
        return ItemOutcome.of_operation(
            op, attempts=record.attempts, duration=self.clock() - started, **details
        )


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


def log_outcome(outcome: ItemOutcome) -> None:
    # Failures are INFO: the command prints them grouped by cause at the end, one line
    # per cause rather than one per item; -v shows each.
    level = logging.INFO if outcome.status is not Status.UNCHANGED else logging.DEBUG
    key = outcome.key
    log.log(
        level,
        "apply: item=%s status=%s attempts=%d code=%s requestId=%s %s",
        key,
        outcome.status.value,
        outcome.attempts,
        outcome.polyv_code,
        outcome.request_id,
        outcome.message,
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

"""The worker pool that reads live state and applies a plan, under the gate, with retries.

A fixed number of workers pull items from one shared iterator (no task per item, so
100,000 items cost 100,000 small objects, not 100,000 tasks). Each request is retried by
tenacity according to :class:`RetryPolicy`: transient errors back off with full jitter
(``Retry-After`` wins when POLYV sends one), rate-limit answers wait for the gate's
cool-down, permanent errors fail the item at once. An ``auth`` error opens the account's
circuit: its remaining items are skipped, with the reason, and the rest of the run goes on.
A stop request (Ctrl-C) stops dispatching; requests already sent finish.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Awaitable, Callable, Iterable, Iterator
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, TypeVar

from tenacity import AsyncRetrying, RetryCallState, retry_if_exception, stop_after_attempt

from bulkpolyv.client import PolyvClient
from bulkpolyv.errors import ErrorKind, PolyvError
from bulkpolyv.manifest.model import DesiredAccount, Manifest
from bulkpolyv.plan import ItemKey, LiveState, Operation, OpKind, Plan, normalise_url
from bulkpolyv.records import Credentials, MonitorUpdate

T = TypeVar("T")
log = logging.getLogger(__name__)
Sleep = Callable[[float], Awaitable[None]]


class Status(StrEnum):
    CHANGED = "changed"
    UNCHANGED = "unchanged"
    FAILED = "failed"
    SKIPPED = "skipped"
    CONFLICT = "conflict"  # a reviewed plan's item whose live value moved since the plan


@dataclass
class ItemOutcome:
    key: ItemKey
    status: Status
    operation: str = ""
    changes: list[dict[str, Any]] = field(default_factory=list)
    attempts: int = 0
    http_status: int | None = None
    polyv_code: int | str | None = None
    message: str = ""
    request_id: str | None = None
    source: str = ""
    duration: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "account": self.key.account,
            "channel_id": self.key.channel_id or None,
            "monitor_id": self.key.monitor_id or None,
            "operation": self.operation,
            "changes": self.changes,
            "status": self.status.value,
            "attempts": self.attempts,
            "http_status": self.http_status,
            "polyv_code": self.polyv_code,
            "message": self.message,
            "request_id": self.request_id,
            "source": self.source,
            "duration": round(self.duration, 3),
        }


@dataclass
class RetryPolicy:
    """How often and how long to wait; tiny and injectable so tests assert the waits."""

    attempts: int = 5
    backoff_base: float = 0.5
    backoff_cap: float = 30.0
    rng: random.Random = field(default_factory=random.Random)
    sleep: Sleep = asyncio.sleep

    def wait(self, state: RetryCallState) -> float:
        error = state.outcome.exception() if state.outcome else None
        if isinstance(error, PolyvError):
            if error.retry_after is not None:
                return min(error.retry_after, self.backoff_cap * 10)
            if error.kind is ErrorKind.RATE_LIMITED:
                return 0.0  # the gate holds every request until the cool-down is over
        ceiling = min(self.backoff_cap, self.backoff_base * 2 ** (state.attempt_number - 1))
        return self.rng.uniform(0, ceiling)  # full jitter


class Skip(Exception):
    """An item not attempted (or not attempted again), with the reason."""


class Interrupted(Skip):
    pass


class Conflict(Exception):
    """The live value is no longer what the reviewed plan was made against."""


class NotStuck(Exception):
    """POLYV accepted a write, but reading it back shows the old value."""


# Given an operation and the live values of its fields just read, why it must not be
# written (a reviewed plan's conflict check), or None.
ConflictCheck = Callable[[Operation, dict[str, str | None] | None], str | None]


class AccountCircuit:
    """Accounts whose credentials POLYV refused; nothing more is sent for them."""

    def __init__(self) -> None:
        self.open: dict[str, str] = {}

    def check(self, account: str) -> None:
        reason = self.open.get(account)
        if reason is not None:
            raise Skip(f"account skipped after an authentication error: {reason}")

    def trip(self, account: str, error: PolyvError) -> None:
        self.open.setdefault(account, str(error))


@dataclass
class Attempted:
    """The last attempt of one request: how many tries, and what POLYV last said."""

    attempts: int = 0
    error: PolyvError | None = None
    request_id: str | None = None
    http_status: int | None = None


class Executor:
    def __init__(
        self,
        client: PolyvClient,
        *,
        concurrency: int,
        policy: RetryPolicy | None = None,
        clock: Callable[[], float] = time.monotonic,
        on_outcome: Callable[[ItemOutcome], None] | None = None,
        before_write: Callable[[Operation], None] | None = None,
    ) -> None:
        self.client = client
        self.concurrency = concurrency
        self.policy = policy or RetryPolicy()
        self.circuit = AccountCircuit()
        self.stopping = asyncio.Event()
        self.clock = clock
        self.on_outcome = on_outcome
        self.before_write = before_write

    def stop(self) -> None:
        self.stopping.set()

    # --- the pool -------------------------------------------------------------------------

    async def _pool(self, items: Iterable[T], work: Callable[[T], Awaitable[None]]) -> None:
        iterator: Iterator[T] = iter(items)

        async def worker() -> None:
            for item in iterator:  # shared: each item goes to exactly one worker
                if self.stopping.is_set():
                    return
                await work(item)

        await asyncio.gather(*(worker() for _ in range(self.concurrency)))

    async def _attempt(
        self, account: str, call: Callable[[], Awaitable[T]], record: Attempted
    ) -> T:
        if self.stopping.is_set():
            raise Interrupted("interrupted before this request was sent")
        self.circuit.check(account)
        record.attempts += 1
        try:
            return await call()
        except PolyvError as error:
            record.error = error
            record.request_id = error.request_id or record.request_id
            record.http_status = error.http_status
            if error.kind is ErrorKind.AUTH:
                self.circuit.trip(account, error)
            raise

    async def _request(
        self, account: str, call: Callable[[], Awaitable[T]], record: Attempted
    ) -> T:
        # The first attempt runs bare: nearly every request succeeds at once, and a
        # tenacity controller per request was a tenth of the runner's CPU. A retryable
        # failure is handed to tenacity as its attempt 1, so the policy is unchanged.
        try:
            return await self._attempt(account, call, record)
        except PolyvError as error:
            if not error.retryable:
                raise
            first_failure: PolyvError | None = error

        def before_sleep(state: RetryCallState) -> None:
            error = state.outcome.exception() if state.outcome else None
            log.info(
                "retry: account=%s attempt=%d wait=%.2fs reason=%s",
                account,
                state.attempt_number,
                state.upcoming_sleep,
                error,
            )

        retrying = AsyncRetrying(
            stop=stop_after_attempt(self.policy.attempts),
            wait=self.policy.wait,
            before_sleep=before_sleep,
            retry=retry_if_exception(lambda e: isinstance(e, PolyvError) and e.retryable),
            sleep=self.policy.sleep,
            reraise=True,
        )
        async for attempt in retrying:
            with attempt:
                if first_failure is not None:
                    replayed, first_failure = first_failure, None
                    raise replayed
                return await self._attempt(account, call, record)
        raise AssertionError("unreachable: tenacity reraises")  # pragma: no cover

    # --- reading live state ---------------------------------------------------------------

    async def refresh(
        self, manifest: Manifest, *, on_read: Callable[[], None] | None = None
    ) -> LiveState:
        """One callback read per managed account, one monitor list per managed channel."""
        live = LiveState()
        reads = list(reads_for(manifest))

        async def read(item: tuple[DesiredAccount, int]) -> None:
            account, channel_id = item
            credentials = credentials_of(account)
            record = Attempted()
            try:
                if channel_id == 0:
                    live.callbacks[account.name] = await self._request(
                        account.name, lambda: self.client.get_callback_settings(credentials), record
                    )
                else:
                    monitors = await self._request(
                        account.name,
                        lambda: self.client.list_monitors(credentials, channel_id),
                        record,
                    )
                    live.monitors[(account.name, channel_id)] = {m.id: m for m in monitors}
            except PolyvError as error:
                reason = f"could not read the live state: {error}"
                if error.kind is ErrorKind.AUTH:
                    live.account_failures.setdefault(account.name, reason)
                else:
                    live.failures[ItemKey(account.name, channel_id)] = reason
            except Skip as skipped:  # the account's circuit opened during the reads
                live.account_failures.setdefault(account.name, str(skipped))

        async def read_and_count(item: tuple[DesiredAccount, int]) -> None:
            await read(item)
            if on_read is not None:
                on_read()

        await self._pool(reads, read_and_count)
        return live

    # --- applying -------------------------------------------------------------------------

    async def read_fields(
        self, account: DesiredAccount, op: Operation
    ) -> dict[str, str | None] | None:
        """The live values of the fields ``op`` changes; None when the monitor is gone."""
        credentials = credentials_of(account)
        record = Attempted()
        if op.key.is_callback:
            url = await self._request(
                account.name, lambda: self.client.get_callback_settings(credentials), record
            )
            return {"record_callback": url}
        monitors = await self._request(
            account.name,
            lambda: self.client.list_monitors(credentials, op.key.channel_id),
            record,
        )
        found = next((m for m in monitors if m.id == op.key.monitor_id), None)
        if found is None:
            return None
        return {change.field: getattr(found, change.field) for change in op.changes}

    async def apply(
        self,
        plan: Plan,
        manifest: Manifest,
        *,
        conflicts: ConflictCheck | None = None,
        verify: bool = False,
    ) -> list[ItemOutcome]:
        """Carry out ``plan``. With ``conflicts``, each item is read again just before its
        write and skipped as a conflict when the check objects; with ``verify``, each write
        is read back and counted as failed when it did not stick."""
        accounts = {a.name: a for a in manifest.accounts}
        outcomes: list[ItemOutcome] = []

        def finish(outcome: ItemOutcome) -> None:
            outcomes.append(outcome)
            level = (
                logging.DEBUG
                if outcome.status is Status.UNCHANGED
                else (logging.INFO if outcome.status is Status.CHANGED else logging.WARNING)
            )
            log.log(
                level,
                "apply: item=%s status=%s attempts=%d code=%s requestId=%s %s",
                outcome.key,
                outcome.status.value,
                outcome.attempts,
                outcome.polyv_code,
                outcome.request_id,
                outcome.message,
            )
            if self.on_outcome is not None:
                self.on_outcome(outcome)

        for key, source in plan.unchanged:
            finish(ItemOutcome(key, Status.UNCHANGED, source=str(source)))
        for problem in plan.problems:
            finish(
                ItemOutcome(
                    problem.key,
                    Status.SKIPPED if problem.auth else Status.FAILED,
                    message=problem.message,
                    source=str(problem.source),
                )
            )

        async def write(op: Operation) -> None:
            account = accounts[op.key.account]
            started = self.clock()
            record = Attempted()
            outcome = ItemOutcome(
                op.key,
                Status.FAILED,
                operation=op.kind.value,
                changes=op.to_dict()["changes"],
                source=str(op.source),
            )
            try:
                self.circuit.check(account.name)
                if conflicts is not None:
                    reason = conflicts(op, await self.read_fields(account, op))
                    if reason:
                        raise Conflict(reason)
                if self.before_write is not None:
                    self.before_write(op)
                result = await self._request(
                    account.name, lambda: send(self.client, account, op), record
                )
                outcome.status = Status.CHANGED
                outcome.request_id = result.request_id
                outcome.http_status = result.http_status
                if verify:
                    check_stuck(op, await self.read_fields(account, op))
            except NotStuck as not_stuck:
                outcome.status = Status.FAILED
                outcome.message = str(not_stuck)
            except Conflict as conflict:
                outcome.status = Status.CONFLICT
                outcome.message = f"conflict: {conflict}"
            except PolyvError as error:
                outcome.message = error.message
                outcome.polyv_code = error.polyv_code
                outcome.request_id = error.request_id
                outcome.http_status = error.http_status
                if error.kind is ErrorKind.AUTH:
                    outcome.message = f"authentication failed: {error.message}"
            except Skip as skipped:
                outcome.status = Status.SKIPPED
                outcome.message = str(skipped)
                if record.error is not None:
                    outcome.polyv_code = record.error.polyv_code
                    outcome.http_status = record.error.http_status
            outcome.attempts = record.attempts
            outcome.duration = self.clock() - started
            finish(outcome)

        await self._pool(plan.operations, write)
        done = {o.key for o in outcomes}
        for op in plan.operations:  # not dispatched because the run was stopped
            if op.key not in done:
                finish(
                    ItemOutcome(
                        op.key,
                        Status.SKIPPED,
                        operation=op.kind.value,
                        changes=op.to_dict()["changes"],
                        message="not attempted: the run was interrupted",
                        source=str(op.source),
                    )
                )
        return outcomes


def reads_for(manifest: Manifest) -> Iterator[tuple[DesiredAccount, int]]:
    """What refresh reads: (account, 0) for its callback, (account, channel) per channel."""
    for account in manifest.accounts:
        if account.manages_callback:
            yield account, 0
        for channel in account.channels:
            yield account, channel.channel_id


def check_stuck(op: Operation, live: dict[str, str | None] | None) -> None:
    """Raise NotStuck when a field read back differs from what was written. A field POLYV
    does not report (``None``) cannot be checked and is taken as written."""
    if live is None:
        raise NotStuck("written, but the monitor account is gone when read back")
    for change in op.changes:
        have = live.get(change.field)
        if have is None and change.field != "record_callback":
            continue
        same = (
            normalise_url(have) == normalise_url(change.after)
            if change.field == "record_callback"
            else have == change.after
        )
        if not same:
            raise NotStuck(f"written, but reading back shows {change.field} did not change")


def credentials_of(account: DesiredAccount) -> Credentials:
    return Credentials(account.user_id, account.app_id, account.app_secret)


async def send(client: PolyvClient, account: DesiredAccount, op: Operation) -> Any:
    """The one request that carries out ``op``."""
    credentials = credentials_of(account)
    if op.kind in (OpKind.SET_CALLBACK, OpKind.SWITCH_OFF_CALLBACK):
        return await client.set_record_callback(credentials, op.desired("record_callback"))
    update = MonitorUpdate(
        id=op.key.monitor_id,
        nickname=op.desired("nickname"),
        password=op.desired("password"),
        enable=op.desired("enable"),
    )
    return await client.update_monitor(credentials, op.key.channel_id, update)

"""One request, retried: the retry policy, the per-account circuit, and the caller that
combines them with the stop signal.

Each request is retried by tenacity according to :class:`RetryPolicy`: transient errors
back off with full jitter (``Retry-After`` wins when POLYV sends one), rate-limit answers
wait for the gate's cool-down, permanent errors fail at once. No wait is longer than the
backoff cap, whatever ``Retry-After`` says, and every wait races the run's
:class:`~bulkpolyv.stopping.Stop`. An ``auth`` error opens the account's
:class:`AccountCircuit`: nothing more is sent for that account; a ``feature_missing`` error
(1081) opens the channel's :class:`ChannelCircuit`: nothing more is sent for its monitors.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TypeVar

from tenacity import AsyncRetrying, RetryCallState, retry_if_exception, stop_after_attempt

from bulkpolyv.errors import ErrorKind, PolyvError
from bulkpolyv.events import RunEvents
from bulkpolyv.ratelimit import sleep_unless_stopped
from bulkpolyv.stopping import Stop, Stopped

T = TypeVar("T")
log = logging.getLogger(__name__)
Sleep = Callable[[float], Awaitable[None]]


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
            if error.kind is ErrorKind.RATE_LIMITED:
                # The gate holds every request until the cool-down (capped at --cooldown,
                # whatever Retry-After says) is over; waiting here as well would add to it.
                return 0.0
            if error.retry_after is not None:
                return min(error.retry_after, self.backoff_cap)
        ceiling = min(self.backoff_cap, self.backoff_base * 2 ** (state.attempt_number - 1))
        return self.rng.uniform(0, ceiling)  # full jitter


class Skip(Exception):
    """An item not attempted (or not attempted again), with the reason."""


class Interrupted(Skip):
    pass


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


class ChannelFailed(Exception):
    """An item of a channel whose monitor feature is missing: it fails with the error the
    channel's first request got, without a request of its own."""

    def __init__(self, error: PolyvError) -> None:
        super().__init__(str(error))
        self.error = error


class ChannelCircuit:
    """Channels whose monitor feature POLYV says is missing (1081): their other monitor
    items are not sent and fail with the one error, so a channel without the feature is
    one cause in the report (one message per channel), not a request and a different
    failure per monitor. The account's callbacks and its other channels go on."""

    def __init__(self) -> None:
        self.open: dict[tuple[str, int], PolyvError] = {}

    def check(self, account: str, channel_id: int) -> None:
        error = self.open.get((account, channel_id))
        if error is not None:
            raise ChannelFailed(error)

    def trip(self, account: str, channel_id: int, error: PolyvError) -> None:
        self.open.setdefault((account, channel_id), error)


@dataclass
class Attempted:
    """One request's tries so far, and the error the last failed one got."""

    attempts: int = 0
    error: PolyvError | None = None


class RetryingCaller:
    """Sends one request for an account, retrying per the policy, unless the run is
    stopping or the account's circuit is open (then :class:`Skip`)."""

    def __init__(self, policy: RetryPolicy, events: RunEvents, stop: Stop | None = None) -> None:
        self.policy = policy
        self.events = events
        self.circuit = AccountCircuit()
        self.channels = ChannelCircuit()
        self.stop = stop or Stop()

    async def _sleep(self, seconds: float) -> None:
        """The policy's sleep, raced against the stop: a backoff ends at once on a stop."""
        if await sleep_unless_stopped(seconds, self.stop, self.policy.sleep):
            raise Interrupted(f"not attempted again: {self.stop.reason}")

    def _before(self, account: str, record: Attempted) -> None:
        """An attempt is about to be made: never after a stop, nor for an open circuit."""
        if self.stop.is_set():
            raise Interrupted(f"not attempted: {self.stop.reason}")
        self.circuit.check(account)
        record.attempts += 1

    def _not_sent(self, record: Attempted) -> Interrupted:
        """Stopped while waiting in the gate: this try was never sent."""
        record.attempts -= 1
        return Interrupted(f"not attempted: {self.stop.reason}")

    def _failed(self, account: str, error: PolyvError, record: Attempted) -> None:
        record.error = error
        if error.kind is ErrorKind.AUTH:
            self.circuit.trip(account, error)

    async def _attempt(
        self, account: str, call: Callable[[], Awaitable[T]], record: Attempted
    ) -> T:
        self._before(account, record)
        try:
            return await call()
        except Stopped:
            raise self._not_sent(record) from None
        except PolyvError as error:
            self._failed(account, error, record)
            raise

    async def call(self, account: str, call: Callable[[], Awaitable[T]], record: Attempted) -> T:
        # The first attempt runs bare, in this frame rather than through _attempt: nearly
        # every request succeeds at once; a tenacity controller per request was a tenth of
        # the runner's CPU, and a coroutine that only awaits another is one more frame for
        # every resumption of the request. A retryable failure is handed to tenacity as its
        # attempt 1, so the policy is unchanged.
        self._before(account, record)
        try:
            return await call()
        except Stopped:
            raise self._not_sent(record) from None
        except PolyvError as error:
            self._failed(account, error, record)
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
            self.events.retry(account, state.attempt_number, state.upcoming_sleep, str(error))

        retrying = AsyncRetrying(
            stop=stop_after_attempt(self.policy.attempts),
            wait=self.policy.wait,
            before_sleep=before_sleep,
            retry=retry_if_exception(lambda e: isinstance(e, PolyvError) and e.retryable),
            sleep=self._sleep,
            reraise=True,
        )
        async for attempt in retrying:
            with attempt:
                if first_failure is not None:
                    replayed, first_failure = first_failure, None
                    raise replayed
                return await self._attempt(account, call, record)
        raise AssertionError("unreachable: tenacity reraises")  # pragma: no cover

"""What every budget store promises, and the error a store raises when it cannot keep it.

A *budget store* holds the reservations of one rate window — the requests that have taken
a place in "at most N in any W seconds" — for one API host, so that every process that
talks to that host through the same store draws on one budget. The store only answers
"reserve a place if fewer than ``limit`` are held", "this request is answered: keep its
place for ``hold`` seconds more" and "this place was never used". The algorithm (why a
place is held until W after the answer) lives in :mod:`bulkpolyv.ratelimit`; the stores
are interchangeable behind :class:`WindowStore`.
"""

from __future__ import annotations

import itertools
import uuid
from typing import Protocol

from bulkpolyv.errors import BulkPolyvError


class BudgetUnavailable(BulkPolyvError):
    """The shared rate budget cannot be opened, read or written.

    The message is a sentence naming the store; a run must stop on it rather than go on
    with a private budget that other processes cannot see.
    """


class WindowStore(Protocol):
    """Reservations of one rate window, shared by everyone who opens the same store.

    Times are the store's own (a host-wide monotonic clock, or the Redis server's clock),
    so callers pass durations, never timestamps.
    """

    #: Names the store in messages, e.g. ``the local budget file /…/budget.sqlite3``.
    description: str

    async def open(self) -> None:
        """Connect or create; raise :class:`BudgetUnavailable` (leaving nothing open) if
        that is impossible."""

    async def reserve(self, reservation_id: str, limit: int, lease: float) -> float:
        """Take a place if fewer than ``limit`` places are held, and return ``0.0``.

        The place lasts ``lease`` seconds unless :meth:`complete` or :meth:`cancel` comes
        first. When the window is full, take nothing and return how many seconds until the
        earliest held place runs out (always ``> 0``)."""

    def try_reserve(self, reservation_id: str, limit: int, lease: float) -> float | None:
        """:meth:`reserve` if it can be done at once, without waiting for I/O or a lock;
        None (and nothing done) otherwise. The hot path: most requests find a place free,
        and an await costs a coroutine per call on the way down."""

    async def complete(self, reservation_id: str, hold: float) -> None:
        """The request was answered (or failed): its place now lasts ``hold`` seconds."""

    def try_complete(self, reservation_id: str, hold: float) -> bool:
        """:meth:`complete` if it can be done at once, without waiting for I/O or a lock;
        False (and nothing done) otherwise. The hot path: an await of :meth:`complete`
        has to be shielded from cancellation, which costs a task per request."""

    async def cancel(self, reservation_id: str) -> None:
        """Give a place back that was never used to send; unknown ids are ignored."""

    async def close(self) -> None:
        """Release connections and threads; held places stay until they run out."""


class ReservationIds:
    """Reservation ids unique across processes and hosts: a random per-process prefix
    (two processes, even on two hosts behind one NAT, never share it) and a counter."""

    def __init__(self) -> None:
        self._prefix = uuid.uuid4().hex[:16]
        self._counter = itertools.count(1)

    def __call__(self) -> str:
        return f"{self._prefix}-{next(self._counter)}"

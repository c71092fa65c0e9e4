"""A budget store that lives in this process only.

For tests and for a run that must not share (``--budget memory``): nobody else sees it,
so it protects POLYV only if this is the only process sending from this IP.
"""

from __future__ import annotations

import heapq
import time
from collections.abc import Callable


class MemoryStore:
    """Reservations in a dict (id -> when its place runs out, on ``clock``), with a heap of
    expiries so that purging and finding the earliest are O(log N)."""

    description = "the in-process budget (shared with no other process)"

    def __init__(self, *, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._expires: dict[str, float] = {}
        # (expiry, id); an entry is stale once the dict says otherwise (completed, cancelled)
        self._heap: list[tuple[float, str]] = []

    async def open(self) -> None:
        return None

    async def reserve(self, reservation_id: str, limit: int, lease: float) -> float:
        return self._reserve(reservation_id, limit, lease)

    def try_reserve(self, reservation_id: str, limit: int, lease: float) -> float | None:
        return self._reserve(reservation_id, limit, lease)  # never a wait for I/O or a lock

    def _reserve(self, reservation_id: str, limit: int, lease: float) -> float:
        now = self._clock()
        self._purge(now)
        if len(self._expires) < limit:
            self._set(reservation_id, now + lease)
            return 0.0
        return max(self._heap[0][0] - now, 1e-6)

    async def complete(self, reservation_id: str, hold: float) -> None:
        self.try_complete(reservation_id, hold)

    def try_complete(self, reservation_id: str, hold: float) -> bool:
        self._set(reservation_id, self._clock() + hold)
        return True

    async def cancel(self, reservation_id: str) -> None:
        self._expires.pop(reservation_id, None)

    async def close(self) -> None:
        return None

    def held(self) -> int:
        """Places held now (for tests and diagnostics)."""
        self._purge(self._clock())
        return len(self._expires)

    def _set(self, reservation_id: str, expiry: float) -> None:
        self._expires[reservation_id] = expiry
        heapq.heappush(self._heap, (expiry, reservation_id))

    def _purge(self, now: float) -> None:
        # A place is free again at exactly W after its answer: POLYV's "in any W seconds"
        # is a half-open window, so two arrivals exactly W apart never share one.
        heap = self._heap
        while heap and (heap[0][0] <= now or self._expires.get(heap[0][1]) != heap[0][0]):
            expiry, reservation_id = heapq.heappop(heap)
            if self._expires.get(reservation_id) == expiry:
                del self._expires[reservation_id]

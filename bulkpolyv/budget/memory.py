"""A budget store that lives in this process only.

For tests and for a run that must not share (``--budget memory``): nobody else sees it,
so it protects POLYV only if this is the only process sending from this IP.
"""

from __future__ import annotations

import time
from collections.abc import Callable


class MemoryStore:
    """Reservations in a dict: id -> time its place runs out (on ``clock``)."""

    description = "the in-process budget (shared with no other process)"

    def __init__(self, *, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._expires: dict[str, float] = {}

    async def open(self) -> None:
        return None

    async def reserve(self, reservation_id: str, limit: int, lease: float) -> float:
        now = self._clock()
        # A place is free again at exactly W after its answer: POLYV's "in any W seconds"
        # is a half-open window, so two arrivals exactly W apart never share one.
        self._expires = {rid: end for rid, end in self._expires.items() if end > now}
        if len(self._expires) < limit:
            self._expires[reservation_id] = now + lease
            return 0.0
        return max(min(self._expires.values()) - now, 1e-6)

    async def complete(self, reservation_id: str, hold: float) -> None:
        self._expires[reservation_id] = self._clock() + hold

    async def cancel(self, reservation_id: str) -> None:
        self._expires.pop(reservation_id, None)

    async def close(self) -> None:
        return None

    def held(self) -> int:
        """Places held now (for tests and diagnostics)."""
        now = self._clock()
        return sum(1 for end in self._expires.values() if end > now)

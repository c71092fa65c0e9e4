"""The time requests are signed with: the local clock, corrected when POLYV's differs.

POLYV rejects a ``timestamp`` more than three minutes away from its own clock, so a host
whose clock drifted fails every request with "timestamp expired" however often it retries.
Every answer carries a ``Date`` header (HTTP-date, one-second resolution); when it differs
from the local clock by more than :data:`SKEW_THRESHOLD` seconds, or POLYV says the
timestamp expired, the clock adopts the server's time (local clock + measured offset) for
the rest of the run and says so once. Thirty seconds is far above the header's resolution
and any sane network delay, and far below POLYV's three minutes.
"""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import Callable
from email.utils import parsedate_to_datetime

log = logging.getLogger(__name__)

SKEW_THRESHOLD = 30.0


@functools.lru_cache(maxsize=16)
def parse_http_date(value: str | None) -> float | None:
    """An HTTP-date as epoch seconds, or None when it is missing or not a date. Cached:
    every answer carries one, and answers within one second carry the same."""
    if not value:
        return None
    try:
        parsed = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if parsed.tzinfo is None:
        return None
    return parsed.timestamp()


def describe_offset(offset: float) -> str:
    """``4 min 12 s behind`` / ``10 min 0 s ahead of`` — how the local clock stands."""
    seconds = round(abs(offset))
    minutes, rest = divmod(seconds, 60)
    amount = f"{minutes} min {rest} s" if minutes else f"{rest} s"
    # offset = server - local: a positive offset means the local clock is behind.
    return f"{amount} behind" if offset > 0 else f"{amount} ahead of"


class ServerClock:
    """Callable like ``time.time``: the local time plus the offset measured from POLYV."""

    def __init__(
        self, local: Callable[[], float] = time.time, *, host: str = "the API host"
    ) -> None:
        self._local = local
        self._host = host
        self.offset = 0.0
        self.last_seen: float | None = None  # the last offset any answer showed, adopted or not

    def __call__(self) -> float:
        return self._local() + self.offset

    @property
    def adjusted(self) -> bool:
        return self.offset != 0.0

    def observe(self, date_header: str | None, *, timestamp_rejected: bool = False) -> bool:
        """Take in one answer's ``Date`` header; returns True when the offset changed.

        A rejected timestamp adopts the server's time whatever the size of the gap (it is
        the server's verdict); otherwise only a gap over the threshold does.
        """
        server = parse_http_date(date_header)
        if server is None:
            return False
        seen = server - self._local()
        self.last_seen = seen
        if abs(seen - self.offset) <= SKEW_THRESHOLD and not timestamp_rejected:
            return False
        if abs(seen - self.offset) < 1.0:
            return False  # already using it; the header's resolution is one second
        first = not self.adjusted
        self.offset = seen
        if first:
            log.warning(
                "clock: the local clock is %s %s; signing with the server's time — "
                "fix NTP on this host",
                describe_offset(seen),
                self._host,
            )
        return True

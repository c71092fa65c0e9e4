"""What stands in front of POLYV's endpoints: the per-IP window, a WAF wall, the clock, the log.

- :class:`ArrivalWindow` is POLYV's per-IP limit: more than N arrivals in any W seconds blocks
  the address for a while. It counts a request when it *arrives*, i.e. after any simulated
  network delay, which is what makes the delay a test of a client's arrival-safety.
- :class:`WafWall` models a web application firewall that, after N requests went through,
  answers HTML (403 or 5xx, no POLYV body) to everything for a while.
- :class:`RequestLog` keeps what each request carried on the wire (path, query, content
  type, form keys), so a test can check that no secret travelled in a query string.
- :func:`http_date` formats the simulator's (possibly shifted) clock for ``Date`` headers.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from email.utils import formatdate
from typing import Any

from aiohttp import web

from bulkpolyv.sim.config import SimConfig, SimStats
from bulkpolyv.sim.faults import FaultConfig


class ArrivalWindow:
    """POLYV's sliding window per source address, with blocks after a violation."""

    def __init__(self, config: SimConfig, monotonic: Callable[[], float]) -> None:
        self._config = config
        self._monotonic = monotonic
        self._windows: dict[str, deque[float]] = {}
        self._blocked_until: dict[str, float] = {}

    def admit(self, address: str, stats: SimStats) -> bool:
        """Count the request against its address; False when POLYV would refuse it."""
        now = self._monotonic()
        if self._blocked_until.get(address, 0.0) > now:
            stats.blocked_requests += 1
            return False
        window = self._windows.setdefault(address, deque())
        horizon = now - self._config.rate_seconds
        while window and window[0] <= horizon:
            window.popleft()
        if len(window) >= self._config.rate_requests:
            stats.violations += 1
            stats.blocks += 1
            self._blocked_until[address] = now + self._config.block_seconds
            window.clear()
            return False
        window.append(now)
        stats.peak_in_window = max(stats.peak_in_window, len(window))
        return True

    def block(self, address: str, seconds: float, stats: SimStats) -> None:
        self._blocked_until[address] = self._monotonic() + seconds
        stats.blocks += 1

    def reset(self) -> None:
        self._windows.clear()
        self._blocked_until.clear()


class WafWall:
    """After ``waf_after`` requests pass, every request is walled for ``waf_seconds``, once."""

    def __init__(self, monotonic: Callable[[], float]) -> None:
        self._monotonic = monotonic
        self._passed = 0
        self._started: float | None = None

    def reset(self) -> None:
        self._passed = 0
        self._started = None

    def walls(self, faults: FaultConfig) -> bool:
        if faults.waf_after <= 0:
            return False
        now = self._monotonic()
        if self._started is None:
            if self._passed < faults.waf_after:
                self._passed += 1
                return False
            self._started = now
        return now - self._started < faults.waf_seconds


def waf_page(status: int) -> web.Response:
    """An edge's HTML refusal: no POLYV body, no JSON."""
    return web.Response(
        status=status,
        text=(
            f"<html><head><title>{status}</title></head><body><h1>{status}</h1>"
            "<p>Request blocked by the web application firewall.</p></body></html>"
        ),
        content_type="text/html",
    )


@dataclass
class ReceivedRequest:
    method: str
    path: str
    query: list[tuple[str, str]]
    content_type: str
    form_keys: list[str] = field(default_factory=list)


class RequestLog:
    """The last ``size`` API requests as received (admin requests are not logged)."""

    def __init__(self, size: int) -> None:
        self.entries: deque[ReceivedRequest] = deque(maxlen=max(1, size))

    def record(self, request: web.Request) -> ReceivedRequest:
        entry = ReceivedRequest(
            method=request.method,
            path=request.path,
            query=list(request.query.items()),
            content_type=request.content_type if request.body_exists else "",
        )
        self.entries.append(entry)
        return entry

    def to_data(self) -> list[dict[str, Any]]:
        return [asdict(entry) for entry in self.entries]

    def clear(self) -> None:
        self.entries.clear()


def http_date(seconds: float) -> str:
    """An RFC 9110 HTTP-date (``Sun, 22 Nov 2026 15:20:00 GMT``)."""
    return formatdate(seconds, usegmt=True)

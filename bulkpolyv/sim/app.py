"""The embedded POLYV simulator: an aiohttp application that answers like POLYV.

It serves the endpoints bulkpolyv uses and checks each request the way POLYV does — appId,
13-digit timestamp within three minutes, signature, userId and channel ownership, field
formats — answering with the documented error bodies (``protocol``). It enforces POLYV's
per-IP sliding-window limit and injects network delay, latency and faults from a seed
(``middleware``, ``faults``, ``answers``). It deliberately does not import bulkpolyv's
signing or client code: it verifies requests independently, and the shared test vector
keeps both sides honest.

One request goes: logged as received → held for the network delay → counted (arrival) →
rate limit → WAF wall → its fate (redirect, 5xx, garbage, bomb, …) → latency → the work →
the answer, with a ``Date`` header from the simulator's (possibly shifted) clock.

Admin endpoints live under ``/_sim/`` (``routes_admin``); they are neither rate limited nor
counted nor logged.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from bulkpolyv.sim import answers
from bulkpolyv.sim.config import SimConfig, SimStats
from bulkpolyv.sim.faults import Fate, FaultConfig, FaultInjector
from bulkpolyv.sim.middleware import ArrivalWindow, RequestLog, WafWall, http_date, waf_page
from bulkpolyv.sim.protocol import Rejection, authenticate, failure, success
from bulkpolyv.sim.state import SimAccount, SimState

__all__ = ["PolyvSimulator", "SimConfig", "SimStats"]

Work = Callable[[dict[str, str]], Awaitable[Any]]


class PolyvSimulator:
    """State, limits and faults, plus the aiohttp application that serves them."""

    def __init__(
        self,
        state: SimState | None = None,
        config: SimConfig | None = None,
        faults: FaultConfig | None = None,
        *,
        clock: Callable[[], float] = time.time,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.state = state or SimState()
        self.config = config or SimConfig()
        self.faults = FaultInjector(faults or FaultConfig())
        self.stats = SimStats()
        self.requests = RequestLog(self.config.request_log_size)
        self._clock = clock
        self._monotonic = monotonic
        self._window = ArrivalWindow(self.config, monotonic)
        self._waf = WafWall(monotonic)
        self._request_ids = 0

    def now(self) -> float:
        """POLYV's idea of the time: our clock plus the configured offset."""
        return self._clock() + self.config.clock_offset

    # --- the application ------------------------------------------------------------------

    def make_app(self) -> web.Application:
        from bulkpolyv.sim.routes_admin import AdminRoutes
        from bulkpolyv.sim.routes_callbacks import CallbackRoutes
        from bulkpolyv.sim.routes_monitor import MonitorRoutes

        app = web.Application(client_max_size=256 << 20)  # /_sim/state uploads
        for family in (CallbackRoutes(self), MonitorRoutes(self), AdminRoutes(self)):
            app.router.add_routes(family.routes())
        app.on_response_prepare.append(self._stamp_date)
        return app

    async def _stamp_date(self, request: web.Request, response: web.StreamResponse) -> None:
        response.headers["Date"] = http_date(self.now())

    # --- rate limit -----------------------------------------------------------------------

    def block(self, address: str, seconds: float) -> None:
        """Block an address as if it had tripped the limit (for 429-storm tests)."""
        self._window.block(address, seconds, self.stats)

    def reset_counters(self) -> None:
        self.stats = SimStats()
        self._window.reset()
        self._waf.reset()

    def faults_changed(self) -> None:
        self.faults.reseed()
        self._waf.reset()

    # --- the shared request pipeline ------------------------------------------------------

    def authenticate(self, params: dict[str, str], *, v4: bool) -> SimAccount:
        return authenticate(self.state, params, self.now(), v4=v4)

    async def serve(
        self, request: web.Request, endpoint: str, work: Work, *, v4: bool
    ) -> web.StreamResponse:
        """Run one API request through the pipeline described in the module docstring."""
        received = self.requests.record(request)
        delay = self.faults.network_delay()
        if delay:
            await asyncio.sleep(delay)
        self.stats.count_arrival(endpoint, self._monotonic())
        faults = self.faults.config
        if not self._window.admit(request.remote or "?", self.stats):
            return answers.rate_limited(faults)
        if self._waf.walls(faults):
            self.stats.waf_walled += 1
            return waf_page(faults.waf_status)
        fate = self.faults.fate()
        latency = self.faults.latency()
        if latency:
            await asyncio.sleep(latency)
        early = self._early_answer(request, fate, v4=v4)
        if early is not None:
            return early
        params = dict(request.query)
        if request.method == "POST" and not v4 and request.can_read_body:
            form = await request.post()
            received.form_keys = sorted(form.keys())
            params.update({k: str(v) for k, v in form.items()})
        return await self._answer(request, fate, work, params, v4=v4)

    def _early_answer(
        self, request: web.Request, fate: Fate, *, v4: bool
    ) -> web.StreamResponse | None:
        """Fates that answer without looking at the request's parameters."""
        stats, faults = self.stats, self.faults.config
        if fate is Fate.ERROR:
            stats.injected_errors += 1
            status = self.faults.error_status()
            return answers.injected_error(request, faults, status, self._next_id(), v4=v4)
        if fate is Fate.GARBAGE:
            stats.garbage += 1
            content_type, garbage = self.faults.garbage()
            return web.Response(body=garbage, content_type=content_type)
        if fate is Fate.REDIRECT:
            stats.redirects += 1
            return answers.redirect(request, faults)
        if fate is Fate.GZIP_BOMB:
            stats.gzip_bombs += 1
            return answers.decompression_bomb(faults)
        if fate is Fate.LOST_WRITE and request.method == "POST":
            stats.lost_writes += 1
            return web.json_response(success(None if v4 else "", self._next_id(), v4=v4))
        return None

    async def _answer(
        self,
        request: web.Request,
        fate: Fate,
        work: Work,
        params: dict[str, str],
        *,
        v4: bool,
    ) -> web.StreamResponse:
        request_id = self._next_id()
        try:
            body = success(await work(params), request_id, v4=v4)
            http_status = 200
        except Rejection as rejection:
            rejected = self.stats.rejected
            rejected[rejection.message] = rejected.get(rejection.message, 0) + 1
            if fate is not Fate.DROP and fate is not Fate.SLOW_BODY:
                return answers.rejection_answer(
                    request, self.faults.config, rejection, request_id, v4=v4
                )
            body, http_status = failure(rejection, request_id, v4=v4), rejection.http_status
        if fate is Fate.DROP:
            self.stats.dropped += 1
            if request.transport is not None:
                request.transport.close()
            raise asyncio.CancelledError
        if fate is Fate.SLOW_BODY:
            self.stats.slow_bodies += 1
            seconds = self.faults.config.slow_body_seconds
            return await answers.trickle(request, http_status, body, seconds)
        return web.json_response(body, status=http_status)

    def _next_id(self) -> str:
        self._request_ids += 1
        return f"sim-{self._request_ids:010x}"

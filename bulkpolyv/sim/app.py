"""The embedded POLYV simulator: an aiohttp application that answers like POLYV.

It serves the four endpoints bulkpolyv uses and checks each request the way POLYV does —
appId, 13-digit timestamp within three minutes, signature, userId and channel ownership,
field formats — answering with the documented error bodies. It enforces POLYV's per-IP
sliding-window limit (block for a period after a violation) and injects latency and faults
from a seed. It deliberately does not import bulkpolyv's signing or client code: it
verifies requests independently, and the shared test vector keeps both sides honest.

Admin endpoints live under ``/_sim/`` (state, stats, config); they are neither rate
limited nor counted.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import re
import time
from collections import deque
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

from aiohttp import web

from bulkpolyv.sim.faults import Fate, FaultConfig, FaultInjector
from bulkpolyv.sim.state import SimAccount, SimState

TIMESTAMP_WINDOW_SECONDS = 180
RATE_LIMIT_BODY = {"code": 429, "status": "error", "message": "qps exceeds number of calls"}
_TIMESTAMP = re.compile(r"^\d{13}$")


@dataclass
class SimConfig:
    rate_requests: int = 1500
    rate_seconds: float = 10.0
    block_seconds: float = 300.0
    # The published list shape has no ``enable``; whether POLYV returns it is unconfirmed.
    # True models a POLYV that does; False models the published shape.
    list_includes_enable: bool = True


@dataclass
class SimStats:
    requests: int = 0
    by_endpoint: dict[str, int] = field(default_factory=dict)
    writes: int = 0
    violations: int = 0
    blocked_requests: int = 0
    blocks: int = 0
    injected_errors: int = 0
    dropped: int = 0
    slow_bodies: int = 0
    garbage: int = 0
    lost_writes: int = 0
    rejected: dict[str, int] = field(default_factory=dict)
    peak_in_window: int = 0
    first_request_at: float | None = None
    last_request_at: float | None = None


class _Rejection(Exception):
    def __init__(self, http_status: int, message: str, v4_code: int | None = None) -> None:
        super().__init__(message)
        self.http_status = http_status
        self.message = message
        self.v4_code = v4_code


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
        self._clock = clock
        self._monotonic = monotonic
        self._windows: dict[str, deque[float]] = {}
        self._blocked_until: dict[str, float] = {}
        self._request_ids = 0

    # --- the application ------------------------------------------------------------------

    def make_app(self) -> web.Application:
        app = web.Application(client_max_size=256 << 20)  # /_sim/state uploads
        app.router.add_post("/live/v2/user/{user_id}/set-record-callback", self._set_callback)
        app.router.add_get("/live/v4/user/global-setting/callback/get", self._get_callback)
        app.router.add_get("/live/v4/seminar/monitor/list", self._list_monitors)
        app.router.add_post("/live/v4/seminar/monitor/update", self._update_monitor)
        app.router.add_get("/_sim/state", self._admin_state)
        app.router.add_put("/_sim/state", self._admin_replace_state)
        app.router.add_get("/_sim/stats", self._admin_stats)
        app.router.add_post("/_sim/config", self._admin_config)
        app.router.add_post("/_sim/block", self._admin_block)
        return app

    # --- rate limit -----------------------------------------------------------------------

    def _admit(self, address: str) -> bool:
        """Count the request against its address; False when POLYV would refuse it."""
        now = self._monotonic()
        if self._blocked_until.get(address, 0.0) > now:
            self.stats.blocked_requests += 1
            return False
        window = self._windows.setdefault(address, deque())
        horizon = now - self.config.rate_seconds
        while window and window[0] <= horizon:
            window.popleft()
        if len(window) >= self.config.rate_requests:
            self.stats.violations += 1
            self.stats.blocks += 1
            self._blocked_until[address] = now + self.config.block_seconds
            window.clear()
            return False
        window.append(now)
        self.stats.peak_in_window = max(self.stats.peak_in_window, len(window))
        return True

    def block(self, address: str, seconds: float) -> None:
        """Block an address as if it had tripped the limit (for 429-storm tests)."""
        self._blocked_until[address] = self._monotonic() + seconds
        self.stats.blocks += 1

    # --- the shared request pipeline ------------------------------------------------------

    async def _serve(
        self,
        request: web.Request,
        endpoint: str,
        work: Callable[[dict[str, str]], Any],
        *,
        v4: bool,
    ) -> web.StreamResponse:
        stats = self.stats
        stats.requests += 1
        stats.by_endpoint[endpoint] = stats.by_endpoint.get(endpoint, 0) + 1
        now = self._monotonic()
        stats.first_request_at = stats.first_request_at or now
        stats.last_request_at = now
        if not self._admit(request.remote or "?"):
            return web.json_response(RATE_LIMIT_BODY, status=429)
        fate = self.faults.fate()
        delay = self.faults.latency()
        if delay:
            await asyncio.sleep(delay)
        if fate is Fate.ERROR:
            stats.injected_errors += 1
            status = self.faults.error_status()
            return web.Response(
                status=status,
                text=f"<html><body><h1>{status}</h1></body></html>",
                content_type="text/html",
            )
        if fate is Fate.GARBAGE:
            stats.garbage += 1
            content_type, garbage = self.faults.garbage()
            return web.Response(body=garbage, content_type=content_type)
        request_id = self._next_request_id()
        if fate is Fate.LOST_WRITE and request.method == "POST":
            stats.lost_writes += 1
            return web.json_response(_success(None if v4 else "", request_id, v4=v4))
        try:
            params = dict(request.query)
            if request.method == "POST" and not v4 and request.can_read_body:
                params.update({k: str(v) for k, v in (await request.post()).items()})
            data = await work(params) if asyncio.iscoroutinefunction(work) else work(params)
            body = _success(data, request_id, v4=v4)
            http_status = 200
        except _Rejection as rejection:
            stats.rejected[rejection.message] = stats.rejected.get(rejection.message, 0) + 1
            body = _failure(rejection, request_id, v4=v4)
            http_status = rejection.http_status
        if fate is Fate.DROP:
            stats.dropped += 1
            if request.transport is not None:
                request.transport.close()
            raise asyncio.CancelledError
        if fate is Fate.SLOW_BODY:
            stats.slow_bodies += 1
            return await self._trickle(request, http_status, body)
        return web.json_response(body, status=http_status)

    async def _trickle(self, request: web.Request, status: int, body: dict) -> web.StreamResponse:
        payload = json.dumps(body).encode()
        response = web.StreamResponse(status=status)
        response.content_type = "application/json"
        response.content_length = len(payload)
        await response.prepare(request)
        pieces = 4
        step = max(1, len(payload) // pieces)
        for start in range(0, len(payload), step):
            await asyncio.sleep(self.faults.config.slow_body_seconds / pieces)
            await response.write(payload[start : start + step])
        await response.write_eof()
        return response

    def _next_request_id(self) -> str:
        self._request_ids += 1
        return f"sim-{self._request_ids:010x}"

    # --- checks POLYV makes ---------------------------------------------------------------

    def _authenticate(self, params: dict[str, str], *, v4: bool) -> SimAccount:
        app_id = params.get("appId", "")
        if not app_id.strip():
            raise _Rejection(400, "appId is required.", 10001 if v4 else None)
        account = self.state.accounts.get(app_id)
        if account is None:
            raise _Rejection(400, "application not found.", 10004 if v4 else None)
        stamp = params.get("timestamp", "")
        if not _TIMESTAMP.match(stamp) or (
            abs(self._clock() * 1000 - int(stamp)) > TIMESTAMP_WINDOW_SECONDS * 1000
        ):
            raise _Rejection(
                400, "时间戳过期" if v4 else "invalid timestamp.", 10003 if v4 else None
            )
        if params.get("sign", "") != _expected_sign(params, account.app_secret):
            raise _Rejection(403, "签名错误" if v4 else "invalid signature.", 10002 if v4 else None)
        return account

    def _channel(self, account: SimAccount, params: dict[str, str]) -> dict[int, Any]:
        raw = params.get("channelId", "")
        if not raw.isdigit():
            raise _Rejection(400, "param is not digit: channelId", 10001)
        channel = account.channels.get(int(raw))
        if channel is None:
            # The code POLYV uses for a channel of another account is unconfirmed.
            raise _Rejection(400, "频道不存在 (channel not found)", 10005)
        if not account.monitor_feature:
            raise _Rejection(400, "没有监控轮询权限", 1081)
        return channel

    # --- the four endpoints ---------------------------------------------------------------

    async def _set_callback(self, request: web.Request) -> web.StreamResponse:
        def work(params: dict[str, str]) -> str:
            account = self._authenticate(params, v4=False)
            if request.match_info["user_id"] != account.user_id:
                raise _Rejection(400, "userId is error.")
            url = params.get("url")
            if url is not None and url.strip() and not url.startswith(("http://", "https://")):
                raise _Rejection(400, "url format error.")
            account.record_callback = url if url and url.strip() else None
            self.stats.writes += 1
            return ""

        return await self._serve(request, "set-record-callback", work, v4=False)

    async def _get_callback(self, request: web.Request) -> web.StreamResponse:
        def work(params: dict[str, str]) -> dict[str, Any]:
            account = self._authenticate(params, v4=True)
            return {"recordCallbackUrl": account.record_callback, **account.other_callbacks}

        return await self._serve(request, "callback/get", work, v4=True)

    async def _list_monitors(self, request: web.Request) -> web.StreamResponse:
        def work(params: dict[str, str]) -> list[dict[str, Any]]:
            account = self._authenticate(params, v4=True)
            channel_id = int(params["channelId"]) if params.get("channelId", "").isdigit() else 0
            listed = []
            for monitor in self._channel(account, params).values():
                entry: dict[str, Any] = {
                    "id": monitor.id,
                    "channelId": channel_id,
                    "nickname": monitor.nickname,
                    "password": monitor.password,
                }
                if self.config.list_includes_enable:
                    entry["enable"] = monitor.enable
                listed.append(entry)
            return listed

        return await self._serve(request, "monitor/list", work, v4=True)

    async def _update_monitor(self, request: web.Request) -> web.StreamResponse:
        async def work(params: dict[str, str]) -> None:
            account = self._authenticate(params, v4=True)
            channel = self._channel(account, params)
            try:
                body = json.loads(await request.read() or b"null")
            except ValueError:
                raise _Rejection(400, "json format error", 10001) from None
            if not isinstance(body, dict) or not isinstance(body.get("id"), int):
                raise _Rejection(400, "param should not be empty: id", 10001)
            monitor = channel.get(body["id"])
            if monitor is None:
                raise _Rejection(400, "监控轮询账号不存在", 50101)
            nickname, password, enable = (
                body.get("nickname"),
                body.get("password"),
                body.get("enable"),
            )
            if nickname is not None and not (
                isinstance(nickname, str) and 1 <= len(nickname) <= 16
            ):
                raise _Rejection(400, "昵称长度为1~16", 10001)
            if password is not None and not (
                isinstance(password, str) and 6 <= len(password) <= 16
            ):
                raise _Rejection(400, "密码长度为6~16", 10001)
            if enable is not None and enable not in ("Y", "N"):
                raise _Rejection(400, "enable只能为Y或N", 10001)
            if nickname is not None:
                monitor.nickname = nickname
            if password is not None:
                monitor.password = password
            if enable is not None:
                monitor.enable = enable
            self.stats.writes += 1

        return await self._serve(request, "monitor/update", work, v4=True)

    # --- admin ----------------------------------------------------------------------------

    async def _admin_state(self, request: web.Request) -> web.Response:
        return web.json_response(self.state.to_data())

    async def _admin_replace_state(self, request: web.Request) -> web.Response:
        self.state = SimState.from_data(await request.json())
        return web.json_response({"ok": True})

    async def _admin_stats(self, request: web.Request) -> web.Response:
        return web.json_response(asdict(self.stats))

    async def _admin_config(self, request: web.Request) -> web.Response:
        changes = await request.json()
        for key, value in changes.get("limits", {}).items():
            setattr(self.config, key, type(getattr(self.config, key))(value))
        self.faults.config.update(changes.get("faults", {}))
        if "faults" in changes:
            self.faults.reseed()
        if changes.get("reset_stats"):
            self.stats = SimStats()
            self._windows.clear()
            self._blocked_until.clear()
        return web.json_response({"ok": True})

    async def _admin_block(self, request: web.Request) -> web.Response:
        seconds = float((await request.json()).get("seconds", self.config.block_seconds))
        self.block(request.remote or "?", seconds)
        return web.json_response({"ok": True})


def _expected_sign(params: dict[str, str], secret: str) -> str:
    """POLYV's check: md5(secret + sorted non-empty k+v + secret), upper-case hex."""
    pieces = sorted((k, v) for k, v in params.items() if k != "sign" and v.strip())
    raw = secret + "".join(k + v for k, v in pieces) + secret
    return hashlib.md5(raw.encode("utf-8")).hexdigest().upper()


def _success(data: Any, request_id: str, *, v4: bool) -> dict[str, Any]:
    if v4:
        return {
            "code": 200,
            "status": "success",
            "requestId": request_id,
            "data": data,
            "success": True,
        }
    return {"code": 200, "status": "success", "message": "", "data": data}


def _failure(rejection: _Rejection, request_id: str, *, v4: bool) -> dict[str, Any]:
    if v4:
        return {
            "code": rejection.http_status,
            "status": "error",
            "requestId": request_id,
            "success": False,
            "error": {"code": rejection.v4_code, "desc": rejection.message},
        }
    return {
        "code": rejection.http_status,
        "status": "error",
        "message": rejection.message,
        "data": "",
    }

"""The seminar monitor endpoints (v4: signed query, unsigned JSON body).

- ``GET  /live/v4/seminar/monitor/list``: the channel's monitor accounts, in the published
  shape ``{id, channelId, nickname, password}`` (plus ``enable`` when
  ``SimConfig.list_includes_enable`` is set; off by default, as published).
- ``POST /live/v4/seminar/monitor/update``: body ``id`` and any of nickname/password/enable.
- ``GET  /live/v4/seminar/monitor/querySetting``: the channel's switch, ``data.enabled`` Y/N.
- ``POST /live/v4/seminar/monitor/updateSetting``: body ``enabled`` Y/N (or ``enable``, or
  either: ``SimConfig.monitor_setting_field``, because POLYV's page contradicts itself).

All four answer 1081 没有监控轮询权限 for an account without the monitor feature.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from aiohttp import web

from bulkpolyv.sim.protocol import Rejection, owned_channel_id, require_monitor_feature
from bulkpolyv.sim.state import SimAccount, SimMonitor

if TYPE_CHECKING:
    from bulkpolyv.sim.app import PolyvSimulator


async def read_json_object(request: web.Request) -> dict[str, Any]:
    try:
        body = json.loads(await request.read() or b"null")
    except ValueError:
        raise Rejection(400, "json format error", 10001) from None
    # Like an empty body, a non-object carries none of the fields: the field checks answer.
    return body if isinstance(body, dict) else {}


class MonitorRoutes:
    def __init__(self, simulator: PolyvSimulator) -> None:
        self.sim = simulator

    def routes(self) -> list[web.RouteDef]:
        base = "/live/v4/seminar/monitor"
        return [
            web.get(f"{base}/list", self.list_monitors),
            web.post(f"{base}/update", self.update_monitor),
            web.get(f"{base}/querySetting", self.query_setting),
            web.post(f"{base}/updateSetting", self.update_setting),
        ]

    def _monitored_channel(self, params: dict[str, str]) -> tuple[SimAccount, int]:
        account = self.sim.authenticate(params, v4=True)
        channel_id = owned_channel_id(account, params)
        require_monitor_feature(account)
        return account, channel_id

    async def list_monitors(self, request: web.Request) -> web.StreamResponse:
        async def work(params: dict[str, str]) -> list[dict[str, Any]]:
            account, channel_id = self._monitored_channel(params)
            listed = []
            for monitor in account.channels[channel_id].values():
                entry: dict[str, Any] = {
                    "id": monitor.id,
                    "channelId": channel_id,
                    "nickname": monitor.nickname,
                    "password": monitor.password,
                }
                if self.sim.config.list_includes_enable:
                    entry["enable"] = monitor.enable
                listed.append(entry)
            return listed

        return await self.sim.serve(request, "monitor/list", work, v4=True)

    async def update_monitor(self, request: web.Request) -> web.StreamResponse:
        async def work(params: dict[str, str]) -> None:
            account, channel_id = self._monitored_channel(params)
            body = await read_json_object(request)
            if not isinstance(body.get("id"), int):
                raise Rejection(400, "param should not be empty: id", 10001)
            monitor = account.channels[channel_id].get(body["id"])
            if monitor is None:
                raise Rejection(400, "监控轮询账号不存在", 50101)
            _apply_monitor_update(monitor, body)
            self.sim.stats.writes += 1

        return await self.sim.serve(request, "monitor/update", work, v4=True)

    async def query_setting(self, request: web.Request) -> web.StreamResponse:
        async def work(params: dict[str, str]) -> dict[str, str]:
            account, channel_id = self._monitored_channel(params)
            return {"enabled": account.monitoring_of(channel_id)}

        return await self.sim.serve(request, "monitor/querySetting", work, v4=True)

    async def update_setting(self, request: web.Request) -> web.StreamResponse:
        async def work(params: dict[str, str]) -> None:
            account, channel_id = self._monitored_channel(params)
            body = await read_json_object(request)
            value = self._setting_value(body)
            if value is None:
                self.sim.stats.ignored_writes += 1
                return
            account.monitoring[channel_id] = value
            self.sim.stats.writes += 1

        return await self.sim.serve(request, "monitor/updateSetting", work, v4=True)

    def _setting_value(self, body: dict[str, Any]) -> str | None:
        """The switch value from the accepted body field; None when it is to be ignored."""
        accepted = self.sim.config.monitor_setting_field
        names = ("enabled", "enable") if accepted == "both" else (accepted,)
        present = [name for name in names if name in body]
        if not present:
            if self.sim.config.wrong_setting_field == "ignore":
                return None
            raise Rejection(400, f"param should not be empty: {names[0]}", 10001)
        value = body[present[0]]
        if value not in ("Y", "N"):
            raise Rejection(400, f"{present[0]}只能为Y或N", 10001)
        return str(value)


def _apply_monitor_update(monitor: SimMonitor, body: dict[str, Any]) -> None:
    nickname, password, enable = body.get("nickname"), body.get("password"), body.get("enable")
    if nickname is not None and not (isinstance(nickname, str) and 1 <= len(nickname) <= 16):
        raise Rejection(400, "昵称长度为1~16", 10001)
    if password is not None and not (isinstance(password, str) and 6 <= len(password) <= 16):
        raise Rejection(400, "密码长度为6~16", 10001)
    if enable is not None and enable not in ("Y", "N"):
        raise Rejection(400, "enable只能为Y或N", 10001)
    if nickname is not None:
        monitor.nickname = nickname
    if password is not None:
        monitor.password = password
    if enable is not None:
        monitor.enable = enable

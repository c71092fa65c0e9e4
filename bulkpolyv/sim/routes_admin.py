"""Admin endpoints under ``/_sim/``: not rate limited, not counted, not logged.

- ``GET /_sim/state`` / ``PUT /_sim/state``: dump / replace the whole state (state-file format).
- ``GET /_sim/stats``: the counters (``SimStats``).
- ``POST /_sim/config``: ``{"limits"|"config": {SimConfig field: value}, "faults": {FaultConfig
  field: value}, "reset_stats": true}``; an unknown or bad setting answers 400 with a sentence
  and changes nothing.
- ``POST /_sim/block``: block the caller's address for ``seconds``.
- ``GET /_sim/requests`` / ``DELETE /_sim/requests``: what API requests carried, oldest first.
- ``PATCH /_sim/accounts/{app_id}``: any of ``record_callback``, ``playback_callback``,
  ``stream_callback``, ``monitor_feature``, ``other_callbacks`` (merged).
- ``PATCH /_sim/channels/{channel_id}``: ``monitoring`` (Y/N) and/or ``callback_setting``
  (``globalSettingEnabled`` and the channel's own URL fields).
"""

from __future__ import annotations

from dataclasses import asdict
from typing import TYPE_CHECKING, Any

from aiohttp import web

from bulkpolyv.sim.errors import SimError
from bulkpolyv.sim.state import CHANNEL_CALLBACK_FIELDS, SimState

if TYPE_CHECKING:
    from bulkpolyv.sim.app import PolyvSimulator

ACCOUNT_FIELDS = ("record_callback", "playback_callback", "stream_callback")


def _refusal(error: SimError) -> web.Response:
    return web.json_response({"ok": False, "error": str(error)}, status=400)


class AdminRoutes:
    def __init__(self, simulator: PolyvSimulator) -> None:
        self.sim = simulator

    def routes(self) -> list[web.RouteDef]:
        return [
            web.get("/_sim/state", self.get_state),
            web.put("/_sim/state", self.replace_state),
            web.get("/_sim/stats", self.get_stats),
            web.post("/_sim/config", self.configure),
            web.post("/_sim/block", self.block),
            web.get("/_sim/requests", self.get_requests),
            web.delete("/_sim/requests", self.clear_requests),
            web.patch("/_sim/accounts/{app_id}", self.patch_account),
            web.patch("/_sim/channels/{channel_id}", self.patch_channel),
        ]

    async def get_state(self, request: web.Request) -> web.Response:
        return web.json_response(self.sim.state.to_data())

    async def replace_state(self, request: web.Request) -> web.Response:
        try:
            self.sim.state = SimState.from_data(await request.json(), source="PUT /_sim/state")
        except SimError as error:
            return _refusal(error)
        return web.json_response({"ok": True})

    async def get_stats(self, request: web.Request) -> web.Response:
        return web.json_response(asdict(self.sim.stats))

    async def configure(self, request: web.Request) -> web.Response:
        changes = await request.json()
        try:
            self.sim.config.update({**changes.get("limits", {}), **changes.get("config", {})})
            self.sim.faults.config.update(changes.get("faults", {}))
        except SimError as error:
            return _refusal(error)
        if "faults" in changes:
            self.sim.faults_changed()
        if changes.get("reset_stats"):
            self.sim.reset_counters()
        return web.json_response({"ok": True})

    async def block(self, request: web.Request) -> web.Response:
        seconds = float((await request.json()).get("seconds", self.sim.config.block_seconds))
        self.sim.block(request.remote or "?", seconds)
        return web.json_response({"ok": True})

    async def get_requests(self, request: web.Request) -> web.Response:
        return web.json_response(self.sim.requests.to_data())

    async def clear_requests(self, request: web.Request) -> web.Response:
        self.sim.requests.clear()
        return web.json_response({"ok": True})

    async def patch_account(self, request: web.Request) -> web.Response:
        account = self.sim.state.accounts.get(request.match_info["app_id"])
        if account is None:
            return web.json_response({"ok": False, "error": "no such app_id"}, status=404)
        changes: dict[str, Any] = await request.json()
        unknown = set(changes) - {*ACCOUNT_FIELDS, "monitor_feature", "other_callbacks"}
        if unknown:
            return _refusal(SimError(f"unknown account field(s): {', '.join(sorted(unknown))}."))
        for name in ACCOUNT_FIELDS:
            if name in changes:
                setattr(account, name, changes[name] or None)
        if "monitor_feature" in changes:
            account.monitor_feature = bool(changes["monitor_feature"])
        account.other_callbacks.update(changes.get("other_callbacks", {}))
        return web.json_response({"ok": True})

    async def patch_channel(self, request: web.Request) -> web.Response:
        raw = request.match_info["channel_id"]
        account = self.sim.state.find_channel(int(raw)) if raw.isdigit() else None
        if account is None:
            return web.json_response({"ok": False, "error": "no such channel"}, status=404)
        channel_id = int(raw)
        changes: dict[str, Any] = await request.json()
        monitoring = changes.get("monitoring")
        if monitoring is not None and monitoring not in ("Y", "N"):
            return _refusal(SimError(f"monitoring must be Y or N, not {monitoring!r}."))
        setting = changes.get("callback_setting") or {}
        unknown = set(setting) - {"globalSettingEnabled", *CHANNEL_CALLBACK_FIELDS}
        if unknown or setting.get("globalSettingEnabled", "Y") not in ("Y", "N"):
            return _refusal(SimError("callback_setting takes globalSettingEnabled Y/N and URLs."))
        if monitoring is not None:
            account.monitoring[channel_id] = monitoring
        if setting:
            override = account.channel_callback_of(channel_id)
            override.global_enabled = setting.get("globalSettingEnabled", override.global_enabled)
            override.urls.update({k: v for k, v in setting.items() if k != "globalSettingEnabled"})
        return web.json_response({"ok": True})

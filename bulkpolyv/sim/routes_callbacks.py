"""The callback endpoints: the account's three v2 setters, v4 callback/get, v3 channel override.

- ``POST /live/v2/user/{userId}/set-{record,playback,stream}-callback``: signed ``appId``,
  ``timestamp``, optional ``url`` (query string or form body, signed the same way); ``url``
  left out switches the callback off; a URL must start with http:// or https://.
- ``GET /live/v4/user/global-setting/callback/get``: the published field set (§2.6), nulls
  where unset.
- ``GET /live/v3/channel/callback/get-setting``: signed ``appId``, ``timestamp``,
  ``channelId``; ``globalSettingEnabled`` Y (the channel follows the account) or N (its own
  URLs, answered beside it). v3 answers in the v2 envelope.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from aiohttp import web

from bulkpolyv.sim.protocol import Rejection, check_callback_url, owned_channel_id
from bulkpolyv.sim.state import CHANNEL_CALLBACK_FIELDS, OTHER_CALLBACK_FIELDS, SimAccount

if TYPE_CHECKING:
    from bulkpolyv.sim.app import PolyvSimulator

# The account attribute each v2 setter writes, and the name its endpoint is counted under.
ACCOUNT_CALLBACKS = {
    "record": "record_callback",
    "playback": "playback_callback",
    "stream": "stream_callback",
}


class CallbackRoutes:
    def __init__(self, simulator: PolyvSimulator) -> None:
        self.sim = simulator

    def routes(self) -> list[web.RouteDef]:
        setters = [
            web.post(f"/live/v2/user/{{user_id}}/set-{kind}-callback", self._setter(kind))
            for kind in ACCOUNT_CALLBACKS
        ]
        return [
            *setters,
            web.get("/live/v4/user/global-setting/callback/get", self.get_callbacks),
            web.get("/live/v3/channel/callback/get-setting", self.get_channel_setting),
        ]

    def _setter(self, kind: str):  # type: ignore[no-untyped-def]
        attribute = ACCOUNT_CALLBACKS[kind]

        async def set_callback(request: web.Request) -> web.StreamResponse:
            async def work(params: dict[str, str]) -> str:
                account = self.sim.authenticate(params, v4=False)
                if request.match_info["user_id"] != account.user_id:
                    raise Rejection(400, "userId is error.")
                setattr(account, attribute, check_callback_url(params.get("url")))
                self.sim.stats.writes += 1
                return ""

            return await self.sim.serve(request, f"set-{kind}-callback", work, v4=False)

        return set_callback

    async def get_callbacks(self, request: web.Request) -> web.StreamResponse:
        async def work(params: dict[str, str]) -> dict[str, Any]:
            return callback_data(self.sim.authenticate(params, v4=True))

        return await self.sim.serve(request, "callback/get", work, v4=True)

    async def get_channel_setting(self, request: web.Request) -> web.StreamResponse:
        async def work(params: dict[str, str]) -> dict[str, Any]:
            account = self.sim.authenticate(params, v4=False)
            channel_id = owned_channel_id(account, params)
            setting = account.channel_callbacks.get(channel_id)
            if setting is None:
                urls = dict.fromkeys(CHANNEL_CALLBACK_FIELDS)
                return {"channelId": channel_id, "globalSettingEnabled": "Y", **urls}
            return {
                "channelId": channel_id,
                "globalSettingEnabled": setting.global_enabled,
                **setting.urls,
            }

        return await self.sim.serve(request, "channel/callback/get-setting", work, v4=False)


def callback_data(account: SimAccount) -> dict[str, Any]:
    """callback/get's ``data``, in the order of POLYV's page."""
    others = account.other_callbacks
    return {
        "recordCallbackUrl": account.record_callback,
        "recordFileCallBackType": others.get("recordFileCallBackType"),
        "recordCallbackVideoType": others.get("recordCallbackVideoType"),
        "playbackCallbackUrl": account.playback_callback,
        "rebirthVodCallbackEnabled": others.get("rebirthVodCallbackEnabled"),
        "pptRecordCallbackUrl": others.get("pptRecordCallbackUrl"),
        "streamCallbackUrl": account.stream_callback,
        **{
            name: others.get(name)
            for name in (
                "channelBasicUpdateCallbackUrl",
                "liveScanCallbackUrl",
                "chatUserStatusCallbackUrl",
                "interactionCallbackUrl",
                "playbackCacheCallbackUrl",
                "playbackSettingCallbackUrl",
            )
        },
        # Extra fields a state file sets (e.g. aiPptVideoCallbackUrl from the TS SDK).
        **{k: v for k, v in others.items() if k not in _PUBLISHED},
    }


_PUBLISHED = frozenset(OTHER_CALLBACK_FIELDS)

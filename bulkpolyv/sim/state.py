"""The simulator's world: accounts, their channels and monitor accounts, as plain data.

Loaded from a YAML or JSON file (``bulkpolyv sim --state FILE``) and dumped back as JSON, so
a test can seed a state, run bulkpolyv against it and compare what POLYV would now hold.
The file format is described in ``notes-sim-state.md``; ``to_data`` and ``from_data`` are its
one writer and reader, and a dump loads back identically. Bad files raise :class:`SimError`.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import yaml

from bulkpolyv.privatefiles import write_private
from bulkpolyv.sim.errors import SimError

# callback/get's published ``data`` fields (polyv-api.md §2.6) beside the three bulkpolyv
# writes (record, playback, stream), which live in their own attributes.
OTHER_CALLBACK_FIELDS = (
    "recordFileCallBackType",
    "recordCallbackVideoType",
    "rebirthVodCallbackEnabled",
    "pptRecordCallbackUrl",
    "channelBasicUpdateCallbackUrl",
    "liveScanCallbackUrl",
    "chatUserStatusCallbackUrl",
    "interactionCallbackUrl",
    "playbackCacheCallbackUrl",
    "playbackSettingCallbackUrl",
)
# The channel's own callback URLs answered by v3 channel/callback/get-setting. The exact
# field list of that answer is unconfirmed; these mirror the account-level names.
CHANNEL_CALLBACK_FIELDS = ("recordCallbackUrl", "playbackCallbackUrl", "streamCallbackUrl")


def _no_other_callbacks() -> dict[str, Any]:
    return dict.fromkeys(OTHER_CALLBACK_FIELDS)


@dataclass
class SimMonitor:
    id: int
    nickname: str
    password: str
    enable: str = "Y"


@dataclass
class ChannelCallbackSetting:
    """A channel's override: ``global_enabled`` Y follows the account, N uses ``urls``."""

    global_enabled: str = "Y"
    urls: dict[str, str | None] = field(
        default_factory=lambda: dict.fromkeys(CHANNEL_CALLBACK_FIELDS)
    )


@dataclass
class SimAccount:
    user_id: str
    app_id: str
    app_secret: str
    record_callback: str | None = None
    playback_callback: str | None = None
    stream_callback: str | None = None
    # The other callback fields POLYV returns; bulkpolyv never writes them.
    other_callbacks: dict[str, Any] = field(default_factory=_no_other_callbacks)
    monitor_feature: bool = True
    channels: dict[int, dict[int, SimMonitor]] = field(default_factory=dict)
    # Per channel: the monitor switch (default "Y": a channel with monitor accounts is
    # assumed to be monitored) and the channel's callback override.
    monitoring: dict[int, str] = field(default_factory=dict)
    channel_callbacks: dict[int, ChannelCallbackSetting] = field(default_factory=dict)

    def monitoring_of(self, channel_id: int) -> str:
        return self.monitoring.get(channel_id, "Y")

    def channel_callback_of(self, channel_id: int) -> ChannelCallbackSetting:
        return self.channel_callbacks.setdefault(channel_id, ChannelCallbackSetting())


@dataclass
class SimState:
    accounts: dict[str, SimAccount] = field(default_factory=dict)  # by app_id

    @classmethod
    def from_data(cls, data: Any, *, source: str = "the state") -> SimState:
        if not isinstance(data, dict):
            raise SimError(f"{source}: expected a mapping with an `accounts` list.")
        if "version" in data or "defaults" in data or "limits" in data:
            raise SimError(
                f"{source} looks like a bulkpolyv manifest, not a simulator state; "
                "give `bulkpolyv sim --state` a state file (see notes-sim-state.md)."
            )
        accounts = data.get("accounts", [])
        if not isinstance(accounts, list):
            raise SimError(f"{source}: `accounts` must be a list.")
        state = cls()
        for index, raw in enumerate(accounts):
            where = f"{source}, accounts[{index}]"
            try:
                account = _account_from_data(raw, where)
            except (KeyError, TypeError, ValueError, AttributeError) as error:
                if isinstance(error, SimError):
                    raise
                raise SimError(f"{where}: {_describe(error)}.") from None
            state.accounts[account.app_id] = account
        return state

    @classmethod
    def load(cls, path: str | Path) -> SimState:
        try:
            text = Path(path).read_text(encoding="utf-8")
        except OSError as error:
            raise SimError(f"cannot read the state file {path}: {error.strerror}.") from None
        try:
            data = json.loads(text) if str(path).endswith(".json") else yaml.safe_load(text)
        except (ValueError, yaml.YAMLError) as error:
            first_line = str(error).splitlines()[0] if str(error) else type(error).__name__
            raise SimError(f"the state file {path} is not valid YAML/JSON: {first_line}.") from None
        return cls.from_data(data or {}, source=str(path))

    def to_data(self) -> dict[str, Any]:
        return {"accounts": [_account_to_data(a) for a in self.accounts.values()]}

    def dump(self, path: str | Path) -> None:
        """Write the state as JSON, atomically, mode 0600: it holds the accounts' app
        secrets. PrivateFileError (a sentence naming the path) when it cannot be written."""
        write_private(Path(path), json.dumps(self.to_data(), indent=2))

    def find_channel(self, channel_id: int) -> SimAccount | None:
        """The account owning a channel (channel ids are unique across POLYV)."""
        return next((a for a in self.accounts.values() if channel_id in a.channels), None)


def _describe(error: Exception) -> str:
    if isinstance(error, KeyError):
        return f"missing key {error.args[0]!r}"
    return str(error) or type(error).__name__


def _yes_no(value: Any, where: str) -> str:
    if value is True or value == "Y":
        return "Y"
    if value is False or value == "N":
        return "N"
    raise SimError(f"{where} must be Y or N, not {value!r}.")


def _account_from_data(raw: Any, where: str) -> SimAccount:
    if not isinstance(raw, dict):
        raise SimError(f"{where}: expected a mapping, not {type(raw).__name__}.")
    if "name" in raw and "user_id" not in raw:
        raise SimError(f"{where} looks like a manifest account; a state account needs user_id.")
    account = SimAccount(
        user_id=str(raw["user_id"]),
        app_id=str(raw["app_id"]),
        app_secret=str(raw["app_secret"]),
        record_callback=raw.get("record_callback"),
        playback_callback=raw.get("playback_callback"),
        stream_callback=raw.get("stream_callback"),
        monitor_feature=bool(raw.get("monitor_feature", True)),
    )
    others = dict(raw.get("other_callbacks") or {})
    # Older dumps kept playback/stream among the other callbacks.
    if "playbackCallbackUrl" in others:
        account.playback_callback = account.playback_callback or others.pop("playbackCallbackUrl")
    if "streamCallbackUrl" in others:
        account.stream_callback = account.stream_callback or others.pop("streamCallbackUrl")
    account.other_callbacks.update(others)
    for position, channel in enumerate(raw.get("channels", [])):
        _channel_from_data(account, channel, f"{where}.channels[{position}]")
    return account


def _channel_from_data(account: SimAccount, channel: dict[str, Any], where: str) -> None:
    channel_id = int(channel["channel_id"])
    account.channels[channel_id] = {
        int(m["id"]): SimMonitor(
            id=int(m["id"]),
            nickname=str(m["nickname"]),
            password=str(m["password"]),
            enable=_yes_no(m.get("enable", "Y"), f"{where}: enable"),
        )
        for m in channel.get("monitors", [])
    }
    account.monitoring[channel_id] = _yes_no(channel.get("monitoring", "Y"), f"{where}: monitoring")
    override = channel.get("callback_setting")
    if override is not None:
        setting = ChannelCallbackSetting(
            global_enabled=_yes_no(
                override.get("globalSettingEnabled", "Y"), f"{where}: globalSettingEnabled"
            )
        )
        for name in CHANNEL_CALLBACK_FIELDS:
            setting.urls[name] = override.get(name)
        account.channel_callbacks[channel_id] = setting


def _account_to_data(account: SimAccount) -> dict[str, Any]:
    channels = []
    for channel_id, monitors in account.channels.items():
        entry: dict[str, Any] = {
            "channel_id": channel_id,
            "monitoring": account.monitoring_of(channel_id),
            "monitors": [asdict(m) for m in monitors.values()],
        }
        setting = account.channel_callbacks.get(channel_id)
        if setting is not None:
            entry["callback_setting"] = {
                "globalSettingEnabled": setting.global_enabled,
                **setting.urls,
            }
        channels.append(entry)
    return {
        "user_id": account.user_id,
        "app_id": account.app_id,
        "app_secret": account.app_secret,
        "record_callback": account.record_callback,
        "playback_callback": account.playback_callback,
        "stream_callback": account.stream_callback,
        "other_callbacks": dict(account.other_callbacks),
        "monitor_feature": account.monitor_feature,
        "channels": channels,
    }

"""The simulator's world: accounts, their channels and monitor accounts, as plain data.

Loaded from a YAML or JSON file (``bulkpolyv sim --state FILE``) and dumped back as JSON, so
a test can seed a state, run bulkpolyv against it and compare what POLYV would now hold.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import yaml


@dataclass
class SimMonitor:
    id: int
    nickname: str
    password: str
    enable: str = "Y"


@dataclass
class SimAccount:
    user_id: str
    app_id: str
    app_secret: str
    record_callback: str | None = None
    # The other callback URLs POLYV returns beside the record one; never written by us.
    other_callbacks: dict[str, str | None] = field(
        default_factory=lambda: {"playbackCallbackUrl": None, "streamCallbackUrl": None}
    )
    monitor_feature: bool = True
    channels: dict[int, dict[int, SimMonitor]] = field(default_factory=dict)


@dataclass
class SimState:
    accounts: dict[str, SimAccount] = field(default_factory=dict)  # by app_id

    @classmethod
    def from_data(cls, data: dict[str, Any]) -> SimState:
        state = cls()
        for raw in data.get("accounts", []):
            channels: dict[int, dict[int, SimMonitor]] = {}
            for channel in raw.get("channels", []):
                monitors = {
                    int(m["id"]): SimMonitor(
                        id=int(m["id"]),
                        nickname=str(m["nickname"]),
                        password=str(m["password"]),
                        enable=str(m.get("enable", "Y")),
                    )
                    for m in channel.get("monitors", [])
                }
                channels[int(channel["channel_id"])] = monitors
            account = SimAccount(
                user_id=str(raw["user_id"]),
                app_id=str(raw["app_id"]),
                app_secret=str(raw["app_secret"]),
                record_callback=raw.get("record_callback"),
                monitor_feature=bool(raw.get("monitor_feature", True)),
                channels=channels,
            )
            if "other_callbacks" in raw:
                account.other_callbacks = dict(raw["other_callbacks"])
            state.accounts[account.app_id] = account
        return state

    @classmethod
    def load(cls, path: str | Path) -> SimState:
        text = Path(path).read_text(encoding="utf-8")
        data = json.loads(text) if str(path).endswith(".json") else yaml.safe_load(text)
        return cls.from_data(data or {})

    def to_data(self) -> dict[str, Any]:
        accounts = []
        for account in self.accounts.values():
            accounts.append(
                {
                    "user_id": account.user_id,
                    "app_id": account.app_id,
                    "app_secret": account.app_secret,
                    "record_callback": account.record_callback,
                    "other_callbacks": dict(account.other_callbacks),
                    "monitor_feature": account.monitor_feature,
                    "channels": [
                        {
                            "channel_id": channel_id,
                            "monitors": [asdict(m) for m in monitors.values()],
                        }
                        for channel_id, monitors in account.channels.items()
                    ],
                }
            )
        return {"accounts": accounts}

    def dump(self, path: str | Path) -> None:
        Path(path).write_text(json.dumps(self.to_data(), indent=2), encoding="utf-8")

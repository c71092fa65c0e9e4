"""Naming a managed item: the one place an item becomes a file's fields and is read back.

The managed items are of three kinds: an account's callback (record, playback or stream),
a channel's monitor switch (``monitoring``) and a monitor account. Plans, reports, plan
files and journal lines all write an item with :meth:`ItemKey.to_dict` and read it with
:meth:`ItemKey.from_dict`. Pure: no I/O.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from bulkpolyv.manifest.model import CALLBACK_KINDS

# ItemKey.setting of each callback kind (and the field its change names), and of the
# channel's monitor switch.
CALLBACK_SETTINGS = {kind: f"{kind}_callback" for kind in CALLBACK_KINDS}
MONITORING = "monitoring"


@functools.lru_cache(maxsize=4096)  # account names: few, compared a million times
def natural_key(text: str) -> tuple[tuple[int, int | str], ...]:
    """``a2`` before ``a10``: digit runs compare as numbers."""
    return tuple(
        (0, int(part)) if part.isdigit() else (1, part) for part in re.split(r"(\d+)", text) if part
    )


@functools.total_ordering
@dataclass(frozen=True, slots=True)
class ItemKey:
    """One managed thing.

    - an account's callback: ``setting`` is ``record_callback``, ``playback_callback`` or
      ``stream_callback`` (channel and monitor 0);
    - a channel's monitor switch: ``channel_id`` and ``setting`` ``monitoring``;
    - a monitor account: ``channel_id`` and ``monitor_id`` (``setting`` empty).

    Keys sort naturally by account (``a2`` before ``a10``), then channel, switch before
    monitors, then monitor.
    """

    account: str
    channel_id: int = 0
    monitor_id: int = 0
    setting: str = ""

    @classmethod
    def callback(cls, account: str, kind: str) -> ItemKey:
        return cls(account, setting=CALLBACK_SETTINGS[kind])

    @classmethod
    def monitoring(cls, account: str, channel_id: int) -> ItemKey:
        return cls(account, channel_id, setting=MONITORING)

    @property
    def is_callback(self) -> bool:
        return self.setting in CALLBACK_SETTINGS.values()

    @property
    def is_monitoring(self) -> bool:
        return self.setting == MONITORING

    @property
    def callback_kind(self) -> str:
        """``record``, ``playback`` or ``stream``; only for a callback's key."""
        return self.setting.removesuffix("_callback")

    def sort_key(self) -> tuple[Any, ...]:
        """What keys sort by; ``sorted(keys, key=ItemKey.sort_key)`` is the fast way."""
        return (natural_key(self.account), self.channel_id, self.monitor_id, self.setting)

    def __lt__(self, other: object) -> bool:
        if not isinstance(other, ItemKey):
            return NotImplemented
        return self.sort_key() < other.sort_key()

    def to_dict(self) -> dict[str, Any]:
        """The key as every file writes it: absent ids and setting are ``None``, not 0."""
        return {
            "account": self.account,
            "channel_id": self.channel_id or None,
            "monitor_id": self.monitor_id or None,
            "setting": self.setting or None,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ItemKey:
        """The key :meth:`to_dict` wrote. Raises ValueError, saying which part is wrong.

        Files from before ``setting`` existed named the record callback by an account
        alone; they still read as the record callback."""
        account = data.get("account")
        if not isinstance(account, str) or not account:
            raise ValueError("an item without an account name")
        ids = []
        for name in ("channel_id", "monitor_id"):
            value = data.get(name)
            if value is not None and (not isinstance(value, int) or isinstance(value, bool)):
                raise ValueError(f"{name} {value!r} is not a whole number")
            ids.append(value or 0)
        setting = data.get("setting") or ""
        if not ids[0] and not ids[1] and not setting:
            setting = CALLBACK_SETTINGS["record"]
        key = cls(account, ids[0], ids[1], setting)
        if not _well_formed(key):
            raise ValueError(f"setting {setting!r} does not fit channel {ids[0]}/monitor {ids[1]}")
        return key

    def __str__(self) -> str:
        if self.is_callback:
            return f"{self.account} {self.callback_kind} callback"
        if self.is_monitoring:
            return f"{self.account}/{self.channel_id} monitoring"
        if not self.monitor_id:
            return f"{self.account}/{self.channel_id}"
        return f"{self.account}/{self.channel_id} monitor {self.monitor_id}"


def _well_formed(key: ItemKey) -> bool:
    if key.is_callback:
        return not key.channel_id and not key.monitor_id
    if key.is_monitoring:
        return bool(key.channel_id) and not key.monitor_id
    return not key.setting and bool(key.channel_id) and bool(key.monitor_id)

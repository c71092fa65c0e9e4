"""Small manifests and plans built in code, for the unit tests of planning, applying,
reports and plan files."""

from __future__ import annotations

from bulkpolyv.manifest.model import (
    DesiredAccount,
    DesiredChannel,
    DesiredMonitor,
    Limits,
    Manifest,
)
from bulkpolyv.manifest.problems import Location

HERE = Location("m.yaml", 1, 1)


def manifest_of(*accounts: DesiredAccount, digest: str = "digest") -> Manifest:
    return Manifest("m.yaml", "https://api.polyv.net", Limits(), tuple(accounts), digest)


def monitor(mid: int, nickname=None, password=None, enable=None) -> DesiredMonitor:  # type: ignore[no-untyped-def]
    return DesiredMonitor(mid, nickname, password, enable, Location("m.yaml", 10 + mid, 5))


def account(  # type: ignore[no-untyped-def]
    name="east", callback=None, manages=True, channels=(), secret="s", app_id="a"
) -> DesiredAccount:
    return DesiredAccount(
        name=name,
        user_id="u",
        app_id=app_id,
        app_secret=secret,
        source=HERE,
        manages_callback=manages,
        record_callback=callback,
        channels=tuple(channels),
        callback_source=Location("m.yaml", 5, 3),
    )


def channel(channel_id: int, *monitors: DesiredMonitor) -> DesiredChannel:
    return DesiredChannel(channel_id, tuple(monitors), HERE)

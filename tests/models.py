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
    name="east", callback=None, manages=True, channels=(), secret="s", app_id="a", callbacks=None
) -> DesiredAccount:
    """An account managing its record callback (``callback``; ``manages=False``: none), or
    exactly ``callbacks`` (kind → URL or None) when given."""
    managed = callbacks if callbacks is not None else ({"record": callback} if manages else {})
    return DesiredAccount(
        name=name,
        user_id="u",
        app_id=app_id,
        app_secret=secret,
        source=HERE,
        callbacks=managed,
        callback_sources={kind: Location("m.yaml", 5, 3) for kind in managed},
        channels=tuple(channels),
    )


def channel(channel_id: int, *monitors: DesiredMonitor) -> DesiredChannel:
    return DesiredChannel(channel_id, tuple(monitors), HERE)

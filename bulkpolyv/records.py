"""The plain values exchanged with POLYV: credentials, monitor accounts, Y/N switches.

Kept apart from the client so that pure modules (planning) can use them without importing
the HTTP stack. Secrets are kept out of every repr.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import NamedTuple

# Where real runs go (shared/polyv-api.md §2); the manifest's ``api_base`` default.
DEFAULT_API_BASE = "https://api.polyv.net"


def yes_no(value: object) -> str | None:
    """``"Y"``/``"N"`` for a YAML boolean or a Y/N text in any case; None for anything else.

    The one reading of a Y/N switch (a monitor's ``enable``, a channel's ``monitoring``),
    for the manifest and for POLYV's answers alike.
    """
    if isinstance(value, bool):
        return "Y" if value else "N"
    if isinstance(value, str):
        text = value.strip().upper()
        if text in ("Y", "N"):
            return text
    return None


@dataclass(frozen=True)
class Credentials:
    """One POLYV account's identity. The secret is kept out of repr."""

    user_id: str
    app_id: str
    app_secret: str = field(repr=False)


class Monitor(NamedTuple):
    """A monitor account as POLYV lists it. ``enable`` is None when POLYV does not say.

    A named tuple rather than a frozen dataclass: one is built for every monitor a list
    answers, and a frozen dataclass's ``__init__`` (an ``object.__setattr__`` per field)
    cost twice as much, for the same immutability. The password is kept out of repr; as a
    tuple, ``json.dumps`` would write it (orjson wrote the dataclass's too): a monitor is
    never serialised, only the fields an output may show."""

    id: int
    channel_id: int
    nickname: str | None
    password: str | None = None
    enable: str | None = None

    def __repr__(self) -> str:
        return (
            f"Monitor(id={self.id!r}, channel_id={self.channel_id!r}, "
            f"nickname={self.nickname!r}, enable={self.enable!r})"
        )


class MonitorUpdate(NamedTuple):
    """The fields to write on one monitor account; None means "leave as it is". (A named
    tuple, as :class:`Monitor`: one per write.) The password is kept out of repr."""

    id: int
    nickname: str | None = None
    password: str | None = None
    enable: str | None = None

    def __repr__(self) -> str:
        return f"MonitorUpdate(id={self.id!r}, nickname={self.nickname!r}, enable={self.enable!r})"

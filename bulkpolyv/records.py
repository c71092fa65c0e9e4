"""The plain values exchanged with POLYV: credentials, monitor accounts, Y/N switches.

Kept apart from the client so that pure modules (planning) can use them without importing
the HTTP stack. Secrets are kept out of every repr.
"""

from __future__ import annotations

from dataclasses import dataclass, field

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


@dataclass(frozen=True, slots=True)
class Monitor:
    """A monitor account as POLYV lists it. ``enable`` is None when POLYV does not say."""

    id: int
    channel_id: int
    nickname: str | None
    password: str | None = field(repr=False, default=None)
    enable: str | None = None


@dataclass(frozen=True, slots=True)
class MonitorUpdate:
    """The fields to write on one monitor account; None means "leave as it is"."""

    id: int
    nickname: str | None = None
    password: str | None = field(repr=False, default=None)
    enable: str | None = None

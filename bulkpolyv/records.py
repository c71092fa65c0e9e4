"""The plain values exchanged with POLYV: an account's credentials and monitor accounts.

Kept apart from the client so that pure modules (planning) can use them without importing
the HTTP stack. Secrets are kept out of every repr.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Credentials:
    """One POLYV account's identity. The secret is kept out of repr."""

    user_id: str
    app_id: str
    app_secret: str = field(repr=False)


@dataclass(frozen=True)
class Monitor:
    """A monitor account as POLYV lists it. ``enable`` is None when POLYV does not say."""

    id: int
    channel_id: int
    nickname: str | None
    password: str | None = field(repr=False, default=None)
    enable: str | None = None


@dataclass(frozen=True)
class MonitorUpdate:
    """The fields to write on one monitor account; None means "leave as it is"."""

    id: int
    nickname: str | None = None
    password: str | None = field(repr=False, default=None)
    enable: str | None = None

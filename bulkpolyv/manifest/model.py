"""The manifest format (version 1): the pydantic schema that checks it, and the frozen
values the rest of bulkpolyv works with once it has been checked.

The schema models (``*Spec``) mirror the YAML one to one, forbid unknown keys, and raise
messages written for people; they never echo a value that could be a secret. After
validation the loader turns them into the plain ``Desired*`` dataclasses, with defaults
applied and the manifest location of every item kept for plans and reports.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationInfo, field_validator

from bulkpolyv.manifest.problems import Location
from bulkpolyv.records import DEFAULT_API_BASE, yes_no

POLYV_CEILING_REQUESTS = 1500
POLYV_CEILING_SECONDS = 10.0
# The account callbacks a manifest can manage (`callbacks:` keys), in plan order.
CALLBACK_KINDS = ("record", "playback", "stream")
# The monitor-account fields a manifest can manage, in the order plans and CSV files use.
MONITOR_FIELDS = ("nickname", "password", "enable")


class _Unset:
    __slots__ = ()

    def __repr__(self) -> str:
        return "UNSET"


# A monitor field an entry does not give (None is a field given as null).
UNSET: Any = _Unset()
# An entry's monitor fields in MONITOR_FIELDS order, UNSET where not given: a million CSV
# rows pass through the loader, and a 3-tuple is ~120 bytes less than a dict.
PackedFields = tuple[Any, Any, Any]


def pack_fields(given: dict[str, Any]) -> PackedFields:
    nickname, password, enable = (given.get(k, UNSET) for k in MONITOR_FIELDS)
    return (nickname, password, enable)


@dataclass(frozen=True)
class Limits:
    """The run's pace; these defaults are the only ones (the schema below reads them)."""

    # 1,400 of POLYV's 1,500: the rest for what bulkpolyv cannot count (README: the headroom).
    requests: int = 1400
    per_seconds: float = 10.0
    # "auto": requests in flight follow rate x latency (bulkpolyv.concurrency); a number caps it.
    concurrency: int | Literal["auto"] = "auto"
    timeout: float = 20.0
    attempts: int = 5
    # Where the rate budget is shared (bulkpolyv.budget.make_store); None: the default.
    budget: str | None = None


_LIMITS = Limits()


class Placeholder(str):
    """A ``${VAR}`` reference left unresolved (``--no-env``, or a variable that is missing).

    It is not the value, so the checks on values (length, URL shape, Y/N) let it pass; a
    missing variable has been reported where it was found.
    """

    __slots__ = ()


def worst_case_per_polyv_window(requests: int, per_seconds: float) -> int:
    """The most requests a sliding ``requests``/``per_seconds`` limit lets into 10 s.

    A 10 s window overlaps ``ceil(10 / per_seconds)`` of our windows at most when ours is
    shorter, and can hold one whole window of ours when it is longer.
    """
    if per_seconds >= POLYV_CEILING_SECONDS:
        return requests
    return requests * math.ceil(POLYV_CEILING_SECONDS / per_seconds - 1e-9)


def check_url(value: object) -> object:
    """An absolute http(s) URL with a host; the message never repeats the URL's query."""
    if not isinstance(value, str) or isinstance(value, Placeholder):
        return value
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError("must be an absolute http:// or https:// URL with a host")
    if any(c.isspace() for c in value):
        raise ValueError("must not contain spaces")
    return value


def _enable(value: object) -> object:
    if isinstance(value, Placeholder):
        return None  # not the value; only a manifest read with --no-env gets this far
    if value is None:
        return value
    normalised = yes_no(value)
    if normalised is None:
        raise ValueError("must be Y or N (or true/false)")
    return normalised


def _length(low: int, high: int, what: str) -> Any:
    def check(value: object) -> object:
        if isinstance(value, Placeholder):
            return value
        if isinstance(value, str) and not low <= len(value) <= high:
            raise ValueError(f"{what} must be {low}–{high} characters (got {len(value)})")
        return value

    return BeforeValidator(check)


Url = Annotated[str, BeforeValidator(check_url)]
Enable = Annotated[Literal["Y", "N"] | None, BeforeValidator(_enable)]
Nickname = Annotated[str | None, _length(1, 16, "a nickname")]
Password = Annotated[str | None, _length(6, 16, "a password")]
PositiveId = Annotated[int, Field(gt=0, strict=False)]


class _Spec(BaseModel):
    model_config = ConfigDict(extra="forbid", hide_input_in_errors=True, frozen=True)


class MonitorDefaultsSpec(_Spec):
    nickname: Nickname = None
    password: Password = Field(default=None, repr=False)
    enable: Enable = None


class MonitorSpec(MonitorDefaultsSpec):
    id: PositiveId


class ChannelSpec(_Spec):
    channel_id: PositiveId
    monitoring: Enable = None  # the channel's monitor switch; absent or null: left alone
    monitors: list[MonitorSpec] = []


class CallbacksSpec(_Spec):
    """Each key: a URL sets that callback, null switches it off, absent leaves it alone."""

    record: Url | None = None
    playback: Url | None = None
    stream: Url | None = None


class AccountSpec(_Spec):
    name: Annotated[str, Field(min_length=1, pattern=r"^[A-Za-z0-9_.-]+$")]
    user_id: Annotated[str, Field(min_length=1)]
    app_id: Annotated[str, Field(min_length=1)]
    app_secret: str = Field(repr=False)
    record_callback: Url | None = None  # shorthand for callbacks.record
    callbacks: CallbacksSpec = CallbacksSpec()
    channels: list[ChannelSpec] = []
    channels_file: str | None = None


class LimitsSpec(_Spec):
    # per_seconds comes first so that the check on requests can see it.
    per_seconds: Annotated[float, Field(gt=0)] = _LIMITS.per_seconds
    requests: Annotated[int, Field(gt=0)] = _LIMITS.requests
    concurrency: Annotated[int, Field(gt=0, le=1000)] | Literal["auto"] = _LIMITS.concurrency
    timeout: Annotated[float, Field(gt=0)] = _LIMITS.timeout
    attempts: Annotated[int, Field(gt=0, le=50)] = _LIMITS.attempts
    budget: Annotated[str, Field(min_length=1)] | None = _LIMITS.budget

    @field_validator("requests")
    @classmethod
    def _under_polyv_ceiling(cls, requests: int, info: ValidationInfo) -> int:
        per_seconds = info.data.get("per_seconds", _LIMITS.per_seconds)
        worst = worst_case_per_polyv_window(requests, per_seconds)
        if worst > POLYV_CEILING_REQUESTS:
            raise ValueError(
                f"{requests} per {per_seconds:g} s allows up to {worst} requests in 10 s, "
                f"over POLYV's limit of {POLYV_CEILING_REQUESTS} per 10 s "
                "(going over blocks the IP for 5 minutes)"
            )
        return requests


class DefaultsSpec(_Spec):
    record_callback: Url | None = None  # shorthand for callbacks.record
    callbacks: CallbacksSpec = CallbacksSpec()
    monitoring: Enable = None
    monitor: MonitorDefaultsSpec = MonitorDefaultsSpec()


class ManifestSpec(_Spec):
    version: Literal[1]
    api_base: Url = DEFAULT_API_BASE
    limits: LimitsSpec = LimitsSpec()
    defaults: DefaultsSpec = DefaultsSpec()
    accounts: list[AccountSpec] = Field(min_length=1)

    @field_validator("version", mode="before")
    @classmethod
    def _version(cls, value: object) -> object:
        if value != 1:
            raise ValueError("must be 1 (the only manifest version there is)")
        return value


# --- what the rest of bulkpolyv consumes ----------------------------------------------------


@dataclass(frozen=True, slots=True)  # one per monitor row: slots keep a million small
class DesiredMonitor:
    id: int
    nickname: str | None
    password: str | None = field(repr=False)
    enable: str | None
    source: Location

    @property
    def managed_fields(self) -> tuple[str, ...]:
        return tuple(f for f in MONITOR_FIELDS if getattr(self, f) is not None)


@dataclass(frozen=True)
class DesiredChannel:
    channel_id: int
    monitors: tuple[DesiredMonitor, ...]
    source: Location
    monitoring: str | None = None  # "Y"/"N": the channel's monitor switch; None: left alone
    monitoring_source: Location | None = None  # where that value was written


@dataclass(frozen=True, kw_only=True)
class DesiredAccount:
    name: str
    user_id: str
    app_id: str
    app_secret: str = field(repr=False)
    source: Location
    # Managed callbacks only, by kind (CALLBACK_KINDS): a URL, or None to switch it off.
    callbacks: Mapping[str, str | None] = field(default_factory=dict, repr=False, hash=False)
    callback_sources: Mapping[str, Location] = field(default_factory=dict, hash=False)
    channels: tuple[DesiredChannel, ...] = ()
    # user_id, app_id and app_secret exactly as written, ${VAR}s unresolved (for export).
    references: Mapping[str, str] = field(default_factory=dict, repr=False, hash=False)

    @property
    def monitor_count(self) -> int:
        return sum(len(c.monitors) for c in self.channels)


@dataclass(frozen=True)
class Manifest:
    path: str
    api_base: str
    limits: Limits
    accounts: tuple[DesiredAccount, ...]
    digest: str  # sha256 over the manifest and its CSV files, to pin reviewed plans
    # api_base and limits exactly as written, when they are (for export).
    written_settings: Mapping[str, Any] = field(default_factory=dict, repr=False, hash=False)

    def summary_lines(self) -> list[str]:
        lines = []
        for account in self.accounts:
            callbacks = len(account.callbacks)
            switches = sum(1 for c in account.channels if c.monitoring is not None)
            lines.append(
                f"{account.name}: {_count(callbacks, 'callback', 'no')}, "
                f"{_count(account.monitor_count, 'monitor')} on "
                f"{_count(len(account.channels), 'channel')}"
                + (f", monitoring set on {_count(switches, 'channel')}" if switches else "")
            )
        return lines


def _count(number: int, noun: str, zero: str | None = None) -> str:
    if number == 0 and zero is not None:
        return f"{zero} {noun}"
    return f"{number:,} {noun}{'s' if number != 1 else ''}"

"""The simulator's settings and counters, and the parsers ``bulkpolyv sim`` uses for its flags.

``SimConfig`` models POLYV itself (its limit, its clock, the shapes it answers);
``FaultConfig`` (in ``faults``) models what goes wrong on the way. Every parser raises
:class:`SimError` with a sentence naming the flag and the value, never a traceback.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, fields

from bulkpolyv.sim.errors import SimError

MONITOR_SETTING_FIELDS = ("enabled", "enable", "both")
WRONG_SETTING_FIELD = ("reject", "ignore")


@dataclass
class SimConfig:
    rate_requests: int = 1500
    rate_seconds: float = 10.0
    block_seconds: float = 300.0
    # The published list shape has no ``enable`` (polyv-api.md §2.3), so that is the
    # default; True models a POLYV that does return it (unconfirmed).
    list_includes_enable: bool = False
    # Seconds POLYV's clock is ahead of ours (negative: behind). Used for the timestamp
    # check and for every answer's ``Date`` header.
    clock_offset: float = 0.0
    # Which body field monitor/updateSetting reads: POLYV's page names ``enabled`` in its
    # table and sends ``enable`` in its example (unconfirmed). "enabled", "enable" or "both".
    monitor_setting_field: str = "enabled"
    # A body without the accepted field: "reject" (10001) or "ignore" (success, no change).
    wrong_setting_field: str = "reject"
    # How many received requests /_sim/requests keeps (oldest dropped first).
    request_log_size: int = 10_000

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        if self.rate_requests < 1 or not _positive(self.rate_seconds):
            raise SimError("the simulator's rate limit must be at least 1 request per >0 s.")
        if self.block_seconds < 0 or not math.isfinite(self.clock_offset):
            raise SimError("block seconds must be ≥ 0 and the clock offset a finite number.")
        if self.monitor_setting_field not in MONITOR_SETTING_FIELDS:
            raise SimError(
                f"monitor_setting_field must be one of {', '.join(MONITOR_SETTING_FIELDS)}, "
                f"not {self.monitor_setting_field!r}."
            )
        if self.wrong_setting_field not in WRONG_SETTING_FIELD:
            raise SimError(
                f"wrong_setting_field must be reject or ignore, not {self.wrong_setting_field!r}."
            )

    def update(self, changes: dict[str, object]) -> None:
        """Apply admin changes all at once; an unknown or bad one changes nothing."""
        apply_changes(self, changes, "simulator setting")


@dataclass
class SimStats:
    requests: int = 0
    by_endpoint: dict[str, int] = field(default_factory=dict)
    writes: int = 0
    ignored_writes: int = 0
    violations: int = 0
    blocked_requests: int = 0
    blocks: int = 0
    injected_errors: int = 0
    dropped: int = 0
    slow_bodies: int = 0
    garbage: int = 0
    lost_writes: int = 0
    redirects: int = 0
    waf_walled: int = 0
    gzip_bombs: int = 0
    rejected: dict[str, int] = field(default_factory=dict)
    peak_in_window: int = 0
    # Arrivals (after any network delay) per whole second since the first arrival.
    arrivals_per_second: dict[int, int] = field(default_factory=dict)
    first_request_at: float | None = None
    last_request_at: float | None = None

    def count_arrival(self, endpoint: str, now: float) -> None:
        self.requests += 1
        self.by_endpoint[endpoint] = self.by_endpoint.get(endpoint, 0) + 1
        if self.first_request_at is None:
            self.first_request_at = now
        self.last_request_at = now
        second = int(now - self.first_request_at)
        self.arrivals_per_second[second] = self.arrivals_per_second.get(second, 0) + 1


def apply_changes(target: object, changes: dict[str, object], what: str) -> None:
    """Set dataclass fields from loose values (JSON, flags), validated together."""
    known = {f.name: f for f in fields(target)}  # type: ignore[arg-type]
    saved = {name: getattr(target, name) for name in known}
    try:
        for key, value in changes.items():
            if key not in known:
                raise SimError(f"unknown {what} {key!r}; known: {', '.join(sorted(known))}.")
            setattr(target, key, _convert(saved[key], value, key))
        target.validate()  # type: ignore[attr-defined]
    except SimError:
        for name, value in saved.items():
            setattr(target, name, value)
        raise


def _convert(current: object, value: object, key: str) -> object:
    kind = type(current)
    try:
        if kind is bool:
            if isinstance(value, str):
                return _parse_bool(value, key)
            return bool(value)
        return kind(value)
    except (TypeError, ValueError):
        raise SimError(f"{key} must be {kind.__name__}, not {value!r}.") from None


def _parse_bool(text: str, key: str) -> bool:
    lowered = text.strip().lower()
    if lowered in ("1", "true", "yes", "y", "on"):
        return True
    if lowered in ("0", "false", "no", "n", "off"):
        return False
    raise SimError(f"{key} must be true or false, not {text!r}.")


def _positive(value: float) -> bool:
    return math.isfinite(value) and value > 0


def parse_range(text: str, flag: str) -> tuple[float, float]:
    """``"0.2"`` or ``"0.2-0.6"`` (seconds) as (low, high), low ≤ high, both finite ≥ 0."""
    low_text, dash, high_text = str(text).strip().partition("-")
    try:
        low = float(low_text)
        high = float(high_text) if dash else low
    except ValueError:
        raise SimError(f"{flag} {text!r} is not seconds or a range MIN-MAX like 0.2-0.6.") from None
    if not (math.isfinite(low) and math.isfinite(high)) or low < 0:
        raise SimError(f"{flag} {text!r}: seconds must be finite and not negative.")
    if high < low:
        raise SimError(f"{flag} {text!r} is reversed: write the smaller number first.")
    return low, high


def parse_latency(text: str) -> tuple[float, float]:
    """``--latency``: seconds between counting a request and answering it."""
    return parse_range(text, "--latency")


def parse_network_delay(text: str) -> tuple[float, float]:
    """``--network-delay``: seconds a request is held *before* the rate limit counts it."""
    return parse_range(text, "--network-delay")


def parse_share(value: str | float, flag: str) -> float:
    """A share of requests, 0 to 1 (``--error-rate 0.05``)."""
    try:
        share = float(value)
    except ValueError:
        raise SimError(f"{flag} {value!r} is not a number between 0 and 1.") from None
    if not 0.0 <= share <= 1.0:  # also refuses NaN
        raise SimError(f"{flag} {value!r} must be between 0 and 1 (a share of requests).")
    return share


def parse_rate(text: str) -> tuple[int, float]:
    """``--rate N/S``: POLYV's limit of N requests in any S seconds."""
    count, slash, seconds = str(text).strip().partition("/")
    try:
        requests, window = int(count), float(seconds) if slash else 10.0
    except ValueError:
        raise SimError(f"--rate {text!r} is not N/S like 1500/10.") from None
    if requests < 1 or not _positive(window):
        raise SimError(f"--rate {text!r}: need at least 1 request per a positive number of s.")
    return requests, window


def parse_clock_offset(text: str) -> float:
    """``--clock-offset``: seconds the simulator's clock runs ahead (negative: behind)."""
    try:
        offset = float(text)
    except ValueError:
        raise SimError(f"--clock-offset {text!r} is not a number of seconds.") from None
    if not math.isfinite(offset):
        raise SimError(f"--clock-offset {text!r} must be a finite number of seconds.")
    return offset

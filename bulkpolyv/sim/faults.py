"""What the simulator does to misbehave, drawn deterministically from a seed.

Each API request draws its fate once, in arrival order, from one ``random.Random(seed)``: so
a test with a given seed and a given request order sees the same faults every time. The
network delay (held before the rate limit counts a request) draws from a second stream of the
same seed, so switching it on does not shift anyone's fates. Fates added later are drawn
after the older ones, so an old seed keeps its old sequence when the new rates are 0.
"""

from __future__ import annotations

import random
import zlib
from dataclasses import dataclass
from enum import Enum
from functools import lru_cache

from bulkpolyv.sim.config import apply_changes
from bulkpolyv.sim.errors import SimError

REDIRECT_STATUSES = (301, 302, 303, 307, 308)
ECHO_MODES = ("", "json", "html")


class Fate(Enum):
    SERVE = "serve"
    ERROR = "error"  # answer 500/502/503 before touching the state
    DROP = "drop"  # do the work, then cut the connection without an answer
    SLOW_BODY = "slow_body"  # serve, but trickle the body out
    GARBAGE = "garbage"  # answer 200 with a body no POLYV client can use
    LOST_WRITE = "lost_write"  # a write answered "success" but never applied
    REDIRECT = "redirect"  # a 3xx to another host, or to the same URL (a loop)
    GZIP_BOMB = "gzip_bomb"  # 200, small gzip body that inflates to gzip_bomb_bytes


@dataclass
class FaultConfig:
    latency_min: float = 0.0
    latency_max: float = 0.0
    error_rate: float = 0.0
    drop_rate: float = 0.0
    slow_body_rate: float = 0.0
    slow_body_seconds: float = 1.0
    garbage_rate: float = 0.0
    lost_write_rate: float = 0.0
    seed: int = 0
    # Held before counting: packets delayed on the way to POLYV (issue 11).
    network_delay_min: float = 0.0
    network_delay_max: float = 0.0
    # Sent as ``Retry-After`` on 429s and injected 503s; any text ("120", "1e400", a date).
    retry_after: str = ""
    redirect_rate: float = 0.0
    redirect_status: int = 307
    # Where redirects point: a base URL ("http://other.example:8080"); "" loops to itself.
    redirect_target: str = ""
    # Error answers quote the full request URL: "json" in the POLYV message, "html" a page.
    echo_url: str = ""
    # After this many requests served, a WAF answers waf_status HTML for waf_seconds (0: off).
    waf_after: int = 0
    waf_status: int = 403
    waf_seconds: float = 300.0
    gzip_bomb_rate: float = 0.0
    gzip_bomb_bytes: int = 64 << 20

    def __post_init__(self) -> None:
        self.validate()

    def rates(self) -> tuple[float, ...]:
        """The fate shares, in the order fates are drawn."""
        return (
            self.error_rate,
            self.drop_rate,
            self.slow_body_rate,
            self.garbage_rate,
            self.lost_write_rate,
            self.redirect_rate,
            self.gzip_bomb_rate,
        )

    def validate(self) -> None:
        if not all(0.0 <= rate <= 1.0 for rate in self.rates()):
            raise SimError("every fault rate must be a share between 0 and 1.")
        if sum(self.rates()) > 1.0 + 1e-9:
            raise SimError("the fault rates add up to more than 1.")
        for low, high, name in (
            (self.latency_min, self.latency_max, "latency"),
            (self.network_delay_min, self.network_delay_max, "network delay"),
        ):
            if low < 0 or high < 0:
                raise SimError(f"the {name} cannot be negative.")
        if self.redirect_status not in REDIRECT_STATUSES:
            raise SimError(f"redirect_status must be one of {REDIRECT_STATUSES}.")
        if self.echo_url not in ECHO_MODES:
            raise SimError(f"echo_url must be '', 'json' or 'html', not {self.echo_url!r}.")
        if not 400 <= self.waf_status <= 599 or self.waf_after < 0 or self.waf_seconds < 0:
            raise SimError("the WAF wall needs a 4xx/5xx status and non-negative counts.")
        if any(ord(c) < 32 for c in self.retry_after + self.redirect_target):
            raise SimError("retry_after and redirect_target cannot contain control characters.")
        if self.gzip_bomb_bytes < 0 or self.slow_body_seconds < 0:
            raise SimError("gzip_bomb_bytes and slow_body_seconds cannot be negative.")

    def update(self, changes: dict[str, object]) -> None:
        """Apply admin changes all at once; an unknown or bad one changes nothing."""
        apply_changes(self, changes, "fault setting")


class FaultInjector:
    def __init__(self, config: FaultConfig) -> None:
        self.config = config
        self.reseed()

    def reseed(self) -> None:
        self._random = random.Random(self.config.seed)
        self._network = random.Random(f"network-{self.config.seed}")

    def latency(self) -> float:
        low, high = self.config.latency_min, max(self.config.latency_min, self.config.latency_max)
        if high <= 0:
            return 0.0
        return low if high == low else self._random.uniform(low, high)

    def network_delay(self) -> float:
        low = self.config.network_delay_min
        high = max(low, self.config.network_delay_max)
        if high <= 0:
            return 0.0
        return low if high == low else self._network.uniform(low, high)

    def fate(self) -> Fate:
        rates = self.config.rates()
        if all(rate <= 0 for rate in rates):
            return Fate.SERVE
        draw = self._random.random()
        bound = 0.0
        for rate, fate in zip(rates, _DRAWN_FATES, strict=True):
            bound += rate
            if draw < bound:
                return fate
        return Fate.SERVE

    def garbage(self) -> tuple[str, bytes]:
        """(content type, body): an HTML page, truncated JSON, wrong types, or 2 MiB."""
        return self._random.choice(
            (
                ("text/html", b"<html><body>Service temporarily unavailable</body></html>"),
                ("application/json", b'{"code":200,"status":"success","data":[{"id":'),
                (
                    "application/json",
                    b'{"code":200,"status":"success","success":true,"data":"surprise"}',
                ),
                (
                    "application/json",
                    b'{"code":200,"status":"success","data":"' + b"x" * (2 << 20) + b'"}',
                ),
            )
        )

    def error_status(self) -> int:
        return self._random.choice((500, 502, 503))


_DRAWN_FATES = (
    Fate.ERROR,
    Fate.DROP,
    Fate.SLOW_BODY,
    Fate.GARBAGE,
    Fate.LOST_WRITE,
    Fate.REDIRECT,
    Fate.GZIP_BOMB,
)
BOMB_PREFIX = b'{"code":200,"status":"success","data":"'


@lru_cache(maxsize=4)
def gzip_bomb(inflated_bytes: int) -> bytes:
    """A gzip member that inflates to ``inflated_bytes`` (a JSON prefix, then spaces).

    Built once per size from a 1 MiB block fed repeatedly (deflate compresses a run about
    1000:1, so 64 MiB costs ~64 KiB on the wire) and cached, so serving it is free.
    """
    compressor = zlib.compressobj(9, zlib.DEFLATED, 31)  # wbits 31: a gzip wrapper
    pieces = [compressor.compress(BOMB_PREFIX[:inflated_bytes])]
    remaining = max(0, inflated_bytes - len(BOMB_PREFIX))
    block = b" " * (1 << 20)
    while remaining:
        step = min(remaining, len(block))
        pieces.append(compressor.compress(block[:step]))
        remaining -= step
    pieces.append(compressor.flush())
    return b"".join(pieces)

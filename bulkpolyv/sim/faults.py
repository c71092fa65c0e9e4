"""What the simulator does to misbehave, drawn deterministically from a seed.

Each API request draws its fate once, in arrival order, from one ``random.Random(seed)``: so
a test with a given seed and a given request order sees the same faults every time.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from enum import Enum


class Fate(Enum):
    SERVE = "serve"
    ERROR = "error"  # answer 500/502/503 before touching the state
    DROP = "drop"  # do the work, then cut the connection without an answer
    SLOW_BODY = "slow_body"  # serve, but trickle the body out
    GARBAGE = "garbage"  # answer 200 with a body no POLYV client can use
    LOST_WRITE = "lost_write"  # a write answered "success" but never applied


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

    def update(self, changes: dict[str, float | int]) -> None:
        for key, value in changes.items():
            if not hasattr(self, key):
                raise ValueError(f"unknown fault setting {key!r}")
            setattr(self, key, type(getattr(self, key))(value))


class FaultInjector:
    def __init__(self, config: FaultConfig) -> None:
        self.config = config
        self._random = random.Random(config.seed)

    def reseed(self) -> None:
        self._random = random.Random(self.config.seed)

    def latency(self) -> float:
        low, high = self.config.latency_min, max(self.config.latency_min, self.config.latency_max)
        if high <= 0:
            return 0.0
        return low if high == low else self._random.uniform(low, high)

    def fate(self) -> Fate:
        c = self.config
        rates = (c.error_rate, c.drop_rate, c.slow_body_rate, c.garbage_rate, c.lost_write_rate)
        if all(rate <= 0 for rate in rates):
            return Fate.SERVE
        draw = self._random.random()
        if draw < c.error_rate:
            return Fate.ERROR
        if draw < c.error_rate + c.drop_rate:
            return Fate.DROP
        if draw < c.error_rate + c.drop_rate + c.slow_body_rate:
            return Fate.SLOW_BODY
        if draw < c.error_rate + c.drop_rate + c.slow_body_rate + c.garbage_rate:
            return Fate.GARBAGE
        if draw < sum(rates):
            return Fate.LOST_WRITE
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

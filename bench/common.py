"""What the benchmark scripts share: figures, the simulator process, seeded worlds, and
running bulkpolyv in this process.

The simulator runs in a separate process (``bulkpolyv sim``), so the runner's CPU is its
own; each scenario loads a fresh seeded state into it. Its block after a violation is
short (``BLOCK_SECONDS``): a violation must show up as a figure, never as a five-minute
hang of the benchmark.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bulkpolyv import RunSettings, apply, load_manifest, open_runtime

SECRET_ENV = {"BENCH_SECRET": "bench-secret-not-real"}
UNLIMITED = "1000000/10"
# Seconds the simulator blocks an address after a violation (POLYV: 300).
BLOCK_SECONDS = 3.0


@dataclass
class Figure:
    name: str
    value: float
    unit: str
    goal: str
    passed: bool | None  # None: informational

    def row(self) -> list[str]:
        verdict = "" if self.passed is None else ("pass" if self.passed else "FAIL")
        return [self.name, f"{self.value:,.2f} {self.unit}".strip(), self.goal, verdict]


# --- the simulator process ------------------------------------------------------------------


class SimProcess:
    def __init__(self) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "bulkpolyv", "sim", "--port", "0", "--rate", UNLIMITED],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        assert self.process.stdout is not None
        try:
            line = self.process.stdout.readline()
            if "listening on" not in line:
                raise RuntimeError(f"the simulator did not start: {line!r}")
        except BaseException:  # interrupted while it starts: it does not outlive us
            self.close()
            raise
        self.url = line.rsplit(" ", 1)[-1].strip()

    def admin(self, method: str, path: str, payload: Any = None) -> Any:
        data = None if payload is None else json.dumps(payload).encode()
        request = urllib.request.Request(
            self.url + path, data=data, method=method, headers={"Content-Type": "application/json"}
        )
        with urllib.request.urlopen(request, timeout=120) as response:
            return json.loads(response.read())

    def prepare(
        self,
        state: dict[str, Any],
        *,
        rate: str = UNLIMITED,
        latency: float = 0.0,
        error_rate: float = 0.0,
        drop_rate: float = 0.0,
        seed: int = 0,
        network_delay: float = 0.0,
    ) -> None:
        """A fresh state and config; ``network_delay``: each request is held a random
        0..network_delay s on the way, *before* the rate limit counts it (arrival jitter)."""
        requests, seconds = rate.split("/")
        self.admin("PUT", "/_sim/state", state)
        self.admin(
            "POST",
            "/_sim/config",
            {
                "limits": {
                    "rate_requests": int(requests),
                    "rate_seconds": float(seconds),
                    "block_seconds": BLOCK_SECONDS,
                },
                "faults": {
                    "latency_min": latency,
                    "latency_max": latency,
                    "error_rate": error_rate,
                    "drop_rate": drop_rate,
                    "seed": seed,
                    "network_delay_min": 0.0,
                    "network_delay_max": network_delay,
                },
                "reset_stats": True,
            },
        )

    def stats(self) -> dict[str, Any]:
        return self.admin("GET", "/_sim/stats")

    def close(self) -> None:
        self.process.terminate()
        self.process.wait(10)
        if self.process.stdout is not None:
            self.process.stdout.close()


# --- worlds ---------------------------------------------------------------------------------


def make_world(
    directory: Path, monitors: int, per_channel: int, *, account: int = 0
) -> tuple[Path, dict[str, Any]]:
    """A manifest (monitors in a CSV) and a POLYV state where every monitor's nickname is
    wrong, so each monitor is one write. Worlds of different ``account`` numbers are
    different accounts with different channels (their states can be merged)."""
    directory.mkdir(parents=True, exist_ok=True)
    rows = ["channel_id,monitor_id,nickname,password,enable"]
    channels: dict[int, list[dict[str, Any]]] = {}
    name = f"bench{account or ''}"
    for index in range(monitors):
        channel_id = 100_000 * (account + 1) + index // per_channel
        monitor_id = 10_000_000 * (account + 1) + index
        rows.append(f"{channel_id},{monitor_id},bench-{index},,")
        channels.setdefault(channel_id, []).append(
            {"id": monitor_id, "nickname": f"old-{index}", "password": "pw-123456", "enable": "Y"}
        )
    (directory / "monitors.csv").write_text("\n".join(rows) + "\n")
    manifest = directory / "bench.yaml"
    manifest.write_text(
        f"version: 1\naccounts:\n  - name: {name}\n    user_id: u-{name}\n"
        f"    app_id: app-{name}\n    app_secret: ${{BENCH_SECRET}}\n"
        "    channels_file: monitors.csv\n"
    )
    state = {
        "accounts": [
            {
                "user_id": f"u-{name}",
                "app_id": f"app-{name}",
                "app_secret": SECRET_ENV["BENCH_SECRET"],
                "channels": [{"channel_id": c, "monitors": m} for c, m in channels.items()],
            }
        ]
    }
    return manifest, state


# --- runners --------------------------------------------------------------------------------


async def run_bulkpolyv(
    manifest_path: Path,
    api_base: str,
    *,
    rate: str,
    concurrency: int | str = "auto",
    **overrides: Any,
) -> tuple[float, dict[str, int]]:
    manifest = load_manifest(manifest_path, env=SECRET_ENV)
    requests, seconds = rate.split("/")
    settings = RunSettings(
        api_base=api_base,
        requests=int(requests),
        per_seconds=float(seconds),
        concurrency=concurrency,
        cooldown=5,
        **overrides,
    )
    started = time.perf_counter()
    async with open_runtime(manifest, settings) as runtime:  # no display: no heartbeat lines
        result = await apply(manifest, runtime, handle_signals=False)
    return time.perf_counter() - started, result.counts

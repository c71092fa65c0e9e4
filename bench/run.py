"""bulkpolyv benchmarks: throughput against POLYV's ceiling, overhead, scale.

    python bench/run.py            # the full run (about 3 minutes on 2 cores)
    python bench/run.py --tiny     # seconds; what the test suite runs so this never rots

The simulator runs in a separate process (``bulkpolyv sim``), so the runner's CPU is its
own; each scenario loads a fresh seeded state into it. Figures that are compared are
measured in the same run, against the same simulator. Prints one table and writes the
same as JSON (``bench/results.json`` by default, not committed).

Achieved rate under a limit of R per W seconds is ``requests / (duration + W/10)``, from the
simulator's first and last arrival. bulkpolyv paces its sends (at most R/10 in any W/10,
see ``bulkpolyv/ratelimit.py``); a perfect limiter of that shape sends R/10 at once and R/10
more every W/10 seconds, i.e. exactly R/W per second by this measure, while
``requests / duration`` would credit the first step as speed.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import math
import os
import resource
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import aiohttp

from bulkpolyv import RunSettings, apply, load_manifest, open_runtime, signed_params

SECRET_ENV = {"BENCH_APP_ID": "app-bench", "BENCH_SECRET": "bench-secret-not-real"}
UNLIMITED = "1000000/10"


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
        line = self.process.stdout.readline()
        if "listening on" not in line:
            raise RuntimeError(f"the simulator did not start: {line!r}")
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
    ) -> None:
        requests, seconds = rate.split("/")
        self.admin("PUT", "/_sim/state", state)
        self.admin(
            "POST",
            "/_sim/config",
            {
                "limits": {"rate_requests": int(requests), "rate_seconds": float(seconds)},
                "faults": {
                    "latency_min": latency,
                    "latency_max": latency,
                    "error_rate": error_rate,
                    "drop_rate": drop_rate,
                    "seed": seed,
                },
                "reset_stats": True,
            },
        )

    def stats(self) -> dict[str, Any]:
        return self.admin("GET", "/_sim/stats")

    def close(self) -> None:
        self.process.terminate()
        self.process.wait(10)


# --- worlds ---------------------------------------------------------------------------------


def make_world(directory: Path, monitors: int, per_channel: int) -> tuple[Path, dict[str, Any]]:
    """A manifest (monitors in a CSV) and a POLYV state where every monitor's nickname is
    wrong, so each monitor is one write."""
    directory.mkdir(parents=True, exist_ok=True)
    rows = ["channel_id,monitor_id,nickname,password,enable"]
    channels: dict[int, list[dict[str, Any]]] = {}
    for index in range(monitors):
        channel_id = 100_000 + index // per_channel
        monitor_id = 1_000_000 + index
        rows.append(f"{channel_id},{monitor_id},bench-{index},,")
        channels.setdefault(channel_id, []).append(
            {"id": monitor_id, "nickname": f"old-{index}", "password": "pw-123456", "enable": "Y"}
        )
    (directory / "monitors.csv").write_text("\n".join(rows) + "\n")
    manifest = directory / "bench.yaml"
    manifest.write_text(
        "version: 1\naccounts:\n  - name: bench\n    user_id: u-bench\n"
        "    app_id: ${BENCH_APP_ID}\n    app_secret: ${BENCH_SECRET}\n"
        "    channels_file: monitors.csv\n"
    )
    state = {
        "accounts": [
            {
                "user_id": "u-bench",
                "app_id": SECRET_ENV["BENCH_APP_ID"],
                "app_secret": SECRET_ENV["BENCH_SECRET"],
                "channels": [{"channel_id": c, "monitors": m} for c, m in channels.items()],
            }
        ]
    }
    return manifest, state


# --- runners --------------------------------------------------------------------------------


async def run_bulkpolyv(
    manifest_path: Path, api_base: str, *, rate: str, concurrency: int, **overrides: Any
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


async def run_bare_loop(
    manifest_path: Path, api_base: str, *, concurrency: int, sequential_writes: int | None = None
) -> float:
    """The same requests from a minimal client: sign, send, parse; reads then writes.
    With ``sequential_writes`` it is the official SDKs' way instead: one write at a time,
    no reads."""
    manifest = load_manifest(manifest_path, env=SECRET_ENV)
    (account,) = manifest.accounts
    base = api_base.rstrip("/")
    semaphore = asyncio.Semaphore(concurrency)

    async def call(
        session: aiohttp.ClientSession,
        method: str,
        path: str,
        params: dict[str, object],
        body: dict[str, object] | None = None,
    ) -> None:
        async with semaphore:
            query = signed_params(params, app_id=account.app_id, app_secret=account.app_secret)
            async with session.request(method, base + path, params=query, json=body) as response:
                payload = await response.json(content_type=None)
                if payload.get("code") != 200:
                    raise RuntimeError(f"bare loop request failed: {payload}")

    writes = [(c.channel_id, m) for c in account.channels for m in c.monitors]
    started = time.perf_counter()
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=concurrency)) as s:
        if sequential_writes is not None:
            for channel_id, monitor in writes[:sequential_writes]:
                await call(
                    s,
                    "POST",
                    "/live/v4/seminar/monitor/update",
                    {"channelId": channel_id},
                    {"id": monitor.id, "nickname": monitor.nickname},
                )
            return time.perf_counter() - started
        await asyncio.gather(
            *(
                call(s, "GET", "/live/v4/seminar/monitor/list", {"channelId": c.channel_id})
                for c in account.channels
            )
        )
        await asyncio.gather(
            *(
                call(
                    s,
                    "POST",
                    "/live/v4/seminar/monitor/update",
                    {"channelId": cid},
                    {"id": m.id, "nickname": m.nickname},
                )
                for cid, m in writes
            )
        )
    return time.perf_counter() - started


def run_scale_child(manifest_path: Path, api_base: str, concurrency: int) -> tuple[float, float]:
    """plan+apply in a child process; its wall time and peak RSS (MB) from wait4."""
    code = (
        "import asyncio, json, sys; sys.path.insert(0, 'bench');"
        "from run import run_bulkpolyv;"
        f"wall, counts = asyncio.run(run_bulkpolyv({str(manifest_path)!r}, {api_base!r}, "
        f"rate={UNLIMITED!r}, concurrency={concurrency}));"
        "print(json.dumps({'wall': wall, 'counts': counts}))"
    )
    process = subprocess.Popen(
        [sys.executable, "-c", code],
        stdout=subprocess.PIPE,
        text=True,
        cwd=Path(__file__).resolve().parent.parent,
    )
    assert process.stdout is not None
    output = process.stdout.read()
    _, status, usage = os.wait4(process.pid, 0)
    if status != 0:
        raise RuntimeError(f"scale child failed with status {status}")
    result = json.loads(output.strip().splitlines()[-1])
    if result["counts"]["failed"] or result["counts"]["skipped"]:
        raise RuntimeError(f"scale run had failures: {result['counts']}")
    return result["wall"], usage.ru_maxrss / 1024  # kB on Linux


# --- the scenarios --------------------------------------------------------------------------


@dataclass
class Sizes:
    ceiling_updates: int = 3000
    per_channel: int = 10
    window_requests: int = 300
    window_seconds: float = 2.0
    baseline_updates: int = 50
    overhead_updates: int = 10_000
    scale: tuple[int, ...] = (10_000, 100_000)
    concurrency: int = 64
    fault_updates: int = 1000
    fault_seeds: tuple[int, ...] = (11, 12, 13)


TINY = Sizes(
    ceiling_updates=120,
    per_channel=10,
    window_requests=40,
    window_seconds=0.5,
    baseline_updates=5,
    overhead_updates=300,
    scale=(200, 1000),
    concurrency=16,
    fault_updates=60,
    fault_seeds=(11,),
)


async def ceiling(
    sim: SimProcess, scratch: Path, sizes: Sizes, latency: float, label: str
) -> tuple[list[Figure], float]:
    manifest, state = make_world(
        scratch / f"ceiling-{label}", sizes.ceiling_updates, sizes.per_channel
    )
    rate = f"{sizes.window_requests}/{sizes.window_seconds:g}"
    sim.prepare(state, rate=rate, latency=latency)
    wall, counts = await run_bulkpolyv(manifest, sim.url, rate=rate, concurrency=sizes.concurrency)
    stats = sim.stats()
    duration = stats["last_request_at"] - stats["first_request_at"]
    configured = sizes.window_requests / sizes.window_seconds
    achieved = stats["requests"] / (duration + sizes.window_seconds / 10)
    figures = [
        Figure(
            f"{label}: updates applied",
            counts["changed"],
            "",
            f"= {sizes.ceiling_updates:,}",
            counts["changed"] == sizes.ceiling_updates,
        ),
        Figure(
            f"{label}: achieved ÷ configured rate",
            achieved / configured,
            "",
            "≥ 0.95",
            achieved / configured >= 0.95,
        ),
        Figure(
            f"{label}: simulator rate-limit violations",
            stats["violations"],
            "",
            "= 0",
            stats["violations"] == 0,
        ),
        Figure(
            f"{label}: peak requests in one {sizes.window_seconds:g} s window",
            stats["peak_in_window"],
            "",
            f"≤ {sizes.window_requests}",
            stats["peak_in_window"] <= sizes.window_requests,
        ),
        Figure(f"{label}: updates/s", sizes.ceiling_updates / wall, "items/s", "", None),
    ]
    return figures, sizes.ceiling_updates / wall


async def baseline(
    sim: SimProcess, scratch: Path, sizes: Sizes, bulk_items_per_second: float
) -> list[Figure]:
    manifest, state = make_world(scratch / "baseline", sizes.baseline_updates, sizes.per_channel)
    sim.prepare(state, latency=0.1)
    wall = await run_bare_loop(
        manifest, sim.url, concurrency=1, sequential_writes=sizes.baseline_updates
    )
    rate = sizes.baseline_updates / wall
    return [
        Figure("baseline: one-at-a-time SDK loop, 100 ms", rate, "items/s", "", None),
        Figure(
            "speed-up of bulkpolyv over it (100 ms)",
            bulk_items_per_second / rate,
            "×",
            "> 1",
            bulk_items_per_second / rate > 1,
        ),
    ]


async def overhead(sim: SimProcess, scratch: Path, sizes: Sizes) -> list[Figure]:
    manifest, state = make_world(scratch / "overhead", sizes.overhead_updates, sizes.per_channel)
    sim.prepare(state)
    bulk_wall, counts = await run_bulkpolyv(
        manifest, sim.url, rate=UNLIMITED, concurrency=sizes.concurrency
    )
    assert counts["changed"] == sizes.overhead_updates, counts
    sim.prepare(state)
    bare_wall = await run_bare_loop(manifest, sim.url, concurrency=sizes.concurrency)
    bulk, bare = sizes.overhead_updates / bulk_wall, sizes.overhead_updates / bare_wall
    return [
        Figure("overhead: bulkpolyv apply", bulk, "items/s", "≥ 1,500", bulk >= 1500),
        Figure("overhead: bare aiohttp loop, same requests", bare, "items/s", "", None),
        Figure("overhead: bulkpolyv ÷ bare loop", bulk / bare, "", "≥ 0.50", bulk / bare >= 0.5),
    ]


async def faults(sim: SimProcess, scratch: Path, sizes: Sizes) -> list[Figure]:
    """Requests per necessary request when 30 % of answers are 5xx and 5 % of connections
    drop, worst of several seeds. Any retrying client needs 1 / 0.65 = 1.54× on average;
    it takes about 1,000 requests for a sample's spread to stay under the goal's headroom,
    which is why this is measured here and not asserted in a test."""
    manifest, state = make_world(scratch / "faults", sizes.fault_updates, sizes.per_channel)
    minimum = sizes.fault_updates + math.ceil(sizes.fault_updates / sizes.per_channel)
    worst, failures = 0.0, 0
    for seed in sizes.fault_seeds:
        sim.prepare(state, error_rate=0.30, drop_rate=0.05, seed=seed)
        # Short backoffs: the waits are the executor's business; here requests are counted.
        _, counts = await run_bulkpolyv(
            manifest,
            sim.url,
            rate=UNLIMITED,
            concurrency=32,
            attempts=10,
            backoff_base=0.01,
            backoff_cap=0.05,
        )
        failures += counts["failed"] + counts["skipped"]
        worst = max(worst, sim.stats()["requests"] / minimum)
    seeds = len(sizes.fault_seeds)
    return [
        Figure(
            f"faults 30% 5xx + 5% drops: requests ÷ minimum (worst of {seeds})",
            worst,
            "×",
            "< 1.6",
            worst < 1.6,
        ),
        Figure("faults: items failed or skipped", failures, "", "= 0", failures == 0),
    ]


def scale(sim: SimProcess, scratch: Path, sizes: Sizes) -> list[Figure]:
    figures = []
    for count in sizes.scale:
        manifest, state = make_world(scratch / f"scale-{count}", count, 2)
        sim.prepare(state)
        wall, peak_mb = run_scale_child(manifest, sim.url, sizes.concurrency)
        big = count == max(sizes.scale)
        figures += [
            Figure(f"scale {count:,} rows: plan+apply wall time", wall, "s", "", None),
            Figure(
                f"scale {count:,} rows: runner peak RSS",
                peak_mb,
                "MB",
                "< 400" if big else "",
                (peak_mb < 400) if big else None,
            ),
        ]
    return figures


async def run_all(sizes: Sizes, scratch: Path) -> list[Figure]:
    sim = SimProcess()
    try:
        figures, bulk_100ms = await ceiling(sim, scratch, sizes, 0.1, "ceiling 100 ms")
        more, _ = await ceiling(sim, scratch, sizes, 0.3, "latency 300 ms")
        figures += more
        figures += await baseline(sim, scratch, sizes, bulk_100ms)
        figures += await overhead(sim, scratch, sizes)
        figures += await faults(sim, scratch, sizes)
        figures += scale(sim, scratch, sizes)
    finally:
        sim.close()
    return figures


def print_table(figures: list[Figure]) -> None:
    rows = [["figure", "value", "goal", ""]] + [f.row() for f in figures]
    widths = [max(len(r[i]) for r in rows) for i in range(4)]
    for index, row in enumerate(rows):
        print("  ".join(cell.ljust(widths[i]) for i, cell in enumerate(row)).rstrip())
        if index == 0:
            print("  ".join("-" * w for w in widths))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tiny", action="store_true", help="tiny sizes, for the test suite")
    parser.add_argument("--out", default=str(Path(__file__).parent / "results.json"))
    args = parser.parse_args()
    sizes = TINY if args.tiny else Sizes()
    # Item failures are counted in the table; one log line per failed item would bury it.
    logging.getLogger("bulkpolyv").setLevel(logging.ERROR)
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="bulkpolyv-bench-") as scratch:
        figures = asyncio.run(run_all(sizes, Path(scratch)))
    total = time.perf_counter() - started
    print_table(figures)
    own_peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(
        f"\n{len(figures)} figures in {total:.0f} s on {os.cpu_count()} cores "
        f"(bench process peak RSS {own_peak:.0f} MB)"
    )
    Path(args.out).write_text(
        json.dumps(
            {
                "sizes": asdict(sizes),
                "seconds": round(total, 1),
                "figures": [asdict(f) for f in figures],
            },
            indent=2,
            ensure_ascii=False,
        )
        + "\n"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())

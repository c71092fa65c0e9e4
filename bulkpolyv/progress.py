"""What an operator sees while apply runs: a progress bar on a terminal, a heartbeat line
every 10 s off one (cron mails stay short), and always one final summary line.

Fed by the executor's outcomes and the gate's cool-down events; knows nothing else.
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
import time
from collections import Counter
from collections.abc import Callable
from typing import TextIO

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from bulkpolyv.executor import ItemOutcome, Status

HEARTBEAT_SECONDS = 10.0


class RunProgress:
    def __init__(
        self,
        total: int,
        *,
        stream: TextIO | None = None,
        interactive: bool | None = None,
        requests: Callable[[], int] = lambda: 0,
        clock: Callable[[], float] = time.monotonic,
        heartbeat: float = HEARTBEAT_SECONDS,
        label: str = "apply",
        started: float | None = None,
    ) -> None:
        self.total = total
        self.label = label
        self.ticks = 0  # progress that is not an item outcome (reads)
        self.stream = stream or sys.stderr
        self.interactive = self.stream.isatty() if interactive is None else interactive
        self.counts: Counter[Status] = Counter()
        self.requests = requests
        self.clock = clock
        self.started = clock() if started is None else started
        self.cooling_until: float | None = None
        self._heartbeat = heartbeat
        self._ticker: asyncio.Task[None] | None = None
        self._bar: Progress | None = None
        self._task_id: object = None

    @property
    def done(self) -> int:
        return sum(self.counts.values()) + self.ticks

    def __enter__(self) -> RunProgress:
        if self.interactive:
            self._bar = Progress(
                TextColumn(f"[bold]{self.label}"),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn("{task.fields[detail]}"),
                TimeRemainingColumn(),
                console=Console(file=self.stream),
                transient=False,
            )
            self._bar.start()
            self._task_id = self._bar.add_task("apply", total=self.total, detail="")
        self._ticker = asyncio.get_running_loop().create_task(self._tick())
        return self

    def __exit__(self, *exc_info: object) -> None:
        if self._ticker is not None:
            self._ticker.cancel()
        if self._bar is not None:
            self._refresh()
            self._bar.stop()

    def outcome(self, outcome: ItemOutcome) -> None:
        self.counts[outcome.status] += 1
        if self._bar is not None and (self.done % 50 == 0 or self.done == self.total):
            self._refresh()

    def tick(self) -> None:
        self.ticks += 1
        if self._bar is not None and (self.done % 50 == 0 or self.done == self.total):
            self._refresh()

    def cooling(self, seconds: float) -> None:
        self.cooling_until = self.clock() + seconds
        self.stream.write(
            f"bulkpolyv: POLYV rate limit hit: every request paused for {seconds:.0f} s\n"
        ) if not self.interactive else self._refresh()

    def _detail(self) -> str:
        elapsed = max(self.clock() - self.started, 1e-6)
        detail = f"{self.requests() / elapsed:.0f} req/s"
        if self.label == "apply":
            detail = (
                f"changed={self.counts[Status.CHANGED]} "
                f"failed={self.counts[Status.FAILED]} {detail}"
            )
        if self.cooling_until and self.clock() < self.cooling_until:
            detail += f" cooling down ({self.cooling_until - self.clock():.0f} s left)"
        return detail

    def _refresh(self) -> None:
        if self._bar is not None:
            self._bar.update(self._task_id, completed=self.done, detail=self._detail())  # type: ignore[arg-type]

    async def _tick(self) -> None:
        with contextlib.suppress(asyncio.CancelledError):
            while True:
                await asyncio.sleep(0.5 if self.interactive else self._heartbeat)
                if self.interactive:
                    self._refresh()
                else:
                    self.stream.write(
                        f"bulkpolyv: {self.label} {self.done}/{self.total}, {self._detail()}\n"
                    )
                    self.stream.flush()

    def summary(self) -> str:
        c = self.counts
        conflicts = f"conflicts={c[Status.CONFLICT]} " if c[Status.CONFLICT] else ""
        return (
            f"changed={c[Status.CHANGED]} unchanged={c[Status.UNCHANGED]} "
            f"failed={c[Status.FAILED]} skipped={c[Status.SKIPPED]} {conflicts}"
            f"requests={self.requests()} in {self.clock() - self.started:.1f}s"
        )

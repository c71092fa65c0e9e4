"""What an operator sees while a run goes: a progress bar on a terminal, a heartbeat line
every 10 s off one (cron mails stay short), and a line per cool-down.

:class:`RunProgress` is a :class:`~bulkpolyv.events.RunEvents` observer: the command
chooses it (the library draws nothing by itself) and hands it to the runtime. It knows
nothing but the events it is sent. :func:`on_a_terminal` is the one place that asks
whether a person is there to answer a prompt.
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from typing import TextIO

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from bulkpolyv.events import RunEvents
from bulkpolyv.report import ItemOutcome, Status

HEARTBEAT_SECONDS = 10.0


def on_a_terminal() -> bool:
    """Whether a person can answer a prompt and read the answer: stdin and stdout are
    both terminals."""
    return sys.stdin.isatty() and sys.stdout.isatty()


class RunProgress(RunEvents):
    def __init__(
        self,
        *,
        stream: TextIO | None = None,
        console: Console | None = None,
        interactive: bool | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        heartbeat: float = HEARTBEAT_SECONDS,
    ) -> None:
        # One console for the bar and the log lines (logs.ConsoleHandler), so a warning is
        # printed above the bar, never into it.
        self.console = console or Console(file=stream or sys.stderr, soft_wrap=True)
        self.stream = self.console.file
        self.interactive = self.console.is_terminal if interactive is None else interactive
        self.clock = clock
        self.label = ""
        self.total = 0
        self.ticks = 0  # progress that is not an item outcome (reads)
        self.counts: Counter[Status] = Counter()
        self.requests: Callable[[], int] = lambda: 0
        self.started: float | None = None
        self.cooling_until: float | None = None
        self._sleep = sleep
        self._heartbeat = heartbeat
        self._ticker: asyncio.Task[None] | None = None
        self._bar: Progress | None = None
        self._task_id: object = None

    @property
    def done(self) -> int:
        return sum(self.counts.values()) + self.ticks

    def phase(self, name: str, total: int, requests: Callable[[], int]) -> None:
        # An apply's rate and time cover its reads: only a read phase starts the clock.
        if name == "read" or self.started is None:
            self.started = self.clock()
        self.label, self.total, self.requests = name, total, requests
        self.ticks = 0
        self.counts.clear()
        if self.interactive:
            self._bar = Progress(
                TextColumn(f"[bold]{self.label}"),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn("{task.fields[detail]}"),
                TimeRemainingColumn(),
                console=self.console,
                transient=False,
            )
            self._bar.start()
            self._task_id = self._bar.add_task("apply", total=self.total, detail="")
        self._ticker = asyncio.get_running_loop().create_task(self._tick())

    def phase_done(self) -> None:
        if self._ticker is not None:
            self._ticker.cancel()
            self._ticker = None
        if self._bar is not None:
            self._refresh()
            self._bar.stop()
            self._bar = None

    def exclude(self, seconds: float) -> None:
        """Leave ``seconds`` (spent at the confirmation prompt) out of the run's rate."""
        if self.started is not None:
            self.started += seconds

    def outcome(self, outcome: ItemOutcome) -> None:
        self.counts[outcome.status] += 1
        if self._bar is not None and (self.done % 50 == 0 or self.done == self.total):
            self._refresh()

    def read_done(self) -> None:
        self.ticks += 1
        if self._bar is not None and (self.done % 50 == 0 or self.done == self.total):
            self._refresh()

    def cooldown(self, seconds: float) -> None:
        self.cooling_until = self.clock() + seconds
        if self.interactive:
            self._refresh()
        else:
            self.stream.write(
                f"bulkpolyv: POLYV rate limit hit: every request paused for {seconds:.0f} s\n"
            )

    def detail(self) -> str:
        """Rate, counts and cool-down, as the bar and the heartbeat show them."""
        elapsed = max(self.clock() - (self.started or 0.0), 1e-6)
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
            self._bar.update(self._task_id, completed=self.done, detail=self.detail())  # type: ignore[arg-type]

    async def _tick(self) -> None:
        with contextlib.suppress(asyncio.CancelledError):
            while True:
                await self._sleep(0.5 if self.interactive else self._heartbeat)
                if self.interactive:
                    self._refresh()
                else:
                    self.stream.write(
                        f"bulkpolyv: {self.label} {self.done}/{self.total}, {self.detail()}\n"
                    )
                    self.stream.flush()

"""The run's stop signal: one event every wait races, set by SIGINT, SIGTERM or SIGHUP.

A run waits in many places — a cool-down of five minutes, a backoff, a ``Retry-After``,
the rate limiter — and a stop must end every one of them at once, not when the wait is
over: systemd kills a unit 90 s after SIGTERM, and an ssh session that drops sends SIGHUP.
So every wait in the run is :meth:`Stop.sleep` (or races :meth:`Stop.wait`), and nothing
is sent once :attr:`Stop.is_set`. The reason (which signal, or what failed) travels with the
event so the report can say why the run stopped, and its :class:`StopKind` says what the
run's status becomes: a signal *interrupts* (exit 130); an unreachable host, a journal that
cannot be written or an unexpected error *aborts* (exit 3).
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
from collections.abc import Iterator
from enum import StrEnum
from typing import Any

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


class Stopped(Exception):
    """Raised instead of sending a request once the run is stopping."""


class StopKind(StrEnum):
    INTERRUPTED = "interrupted"  # a signal: the operator (or systemd) asked
    UNREACHABLE = "unreachable"  # the host cannot be reached: nothing more can succeed
    ABORTED = "aborted"  # the run cannot keep a true record (journal) or hit a bug


class Stop:
    """An asyncio event with a reason; created inside the running loop."""

    def __init__(self) -> None:
        self._event = asyncio.Event()
        self.reason: str | None = None
        self.signal: int | None = None
        self.kind = StopKind.INTERRUPTED

    def is_set(self) -> bool:
        return self._event.is_set()

    def set(
        self,
        reason: str = "stopped",
        *,
        signum: int | None = None,
        kind: StopKind = StopKind.INTERRUPTED,
    ) -> None:
        """Stop the run; the first reason (and kind) wins."""
        if not self._event.is_set():
            self.reason, self.signal, self.kind = reason, signum, kind
            self._event.set()

    async def wait(self) -> None:
        await self._event.wait()

    async def sleep(self, seconds: float) -> bool:
        """Sleep ``seconds`` unless stopped first; True when the whole sleep happened."""
        if self._event.is_set():
            return False
        if seconds <= 0:
            await asyncio.sleep(0)
            return not self._event.is_set()
        try:
            await asyncio.wait_for(self._event.wait(), timeout=seconds)
        except TimeoutError:
            return True
        return False

    def check(self) -> None:
        """Raise :class:`Stopped` when the run is stopping (call right before a send)."""
        if self._event.is_set():
            raise Stopped(self.reason or "stopped")

    def _on_signal(self, name: str, signum: int) -> None:
        self.set(f"interrupted by {name}", signum=signum)

    @contextlib.contextmanager
    def on_signals(self, enabled: bool = True) -> Iterator[None]:
        """While inside, SIGINT/SIGTERM/SIGHUP set the stop instead of killing the process
        (one the process was started ignoring, as under ``nohup``, stays ignored).
        Not held around a confirmation prompt: there, Ctrl-C must end the program at once."""
        loop = asyncio.get_running_loop()
        installed: dict[int, Any] = {}
        if enabled:
            for signum in STOP_SIGNALS:
                with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
                    previous = signal.getsignal(signum)
                    if previous is signal.SIG_IGN:
                        continue  # nohup: the operator asked for this signal to be ignored
                    name = signal.Signals(signum).name
                    loop.add_signal_handler(signum, self._on_signal, name, signum)
                    installed[signum] = previous
        try:
            yield
        finally:
            for signum, previous in installed.items():
                loop.remove_signal_handler(signum)
                # asyncio leaves SIG_DFL behind, which kills at once with no word: put back
                # what was there (the CLI's "interrupted": entry.interrupt_on_signals).
                if previous is not None:
                    signal.signal(signum, previous)

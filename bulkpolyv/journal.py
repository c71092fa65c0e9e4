"""The JSONL journal: what a run sent and what came of it, line by line.

The journal is written line by line as items complete, each line handed to the kernel at
once with ``os.write`` on an ``O_APPEND`` descriptor, so a ``kill -9`` of bulkpolyv loses
nothing already journaled. ``fsync`` (which protects against a power cut, not a kill) runs
as a group commit in a background thread, back to back while lines keep coming: waiting for
the disk on every one of 100,000 lines would make the disk, not POLYV, the bottleneck.
Before each write is sent, a ``sending`` line is journaled, so after a crash an item that
is ``sending`` without a result is known to be *in doubt*, not untouched.

The journal is a :class:`~bulkpolyv.events.RunEvents` observer (``sending`` and
``outcome``); :func:`~bulkpolyv.run.apply` opens it only once the plan is confirmed, and
writes its ``start`` and ``end`` lines. Created with mode 0600: it names accounts and
channels.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bulkpolyv.events import RunEvents
from bulkpolyv.plan import Operation
from bulkpolyv.privatefiles import open_private, state_dir
from bulkpolyv.report import ItemOutcome, now_iso


def default_journal_path(manifest: str) -> Path:
    """Under the user's state directory, named after the manifest, the time and the pid."""
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
    return state_dir() / "journal" / f"{Path(manifest).stem}-{stamp}-{os.getpid()}.jsonl"


def journal_for(manifest: str, path: str | Path | None) -> Journal:
    """The journal at ``path`` (``--journal``), or at the default place for ``manifest``."""
    return Journal(Path(path) if path else default_journal_path(manifest))


class Journal(RunEvents):
    def __init__(self, path: Path, *, fsync: Callable[[int], None] = os.fsync) -> None:
        self.path = path
        self._fsync = fsync
        self._fd: int | None = None
        self._dirty = False
        self._syncer: asyncio.Task[None] | None = None
        self._wake: asyncio.Event | None = None
        self._closed = False

    def start(self) -> None:
        """Create (or append to) the file and start the group commit; on the loop."""
        self._fd = open_private(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND)
        self._wake = asyncio.Event()
        self._syncer = asyncio.get_running_loop().create_task(self._sync_loop())

    def sending(self, op: Operation) -> None:
        self.write({"event": "sending", **op.key.to_dict(), "operation": op.kind.value})

    def outcome(self, outcome: ItemOutcome) -> None:
        self.write({"event": "done", **outcome.to_dict()})

    def write(self, record: dict[str, Any]) -> None:
        if self._fd is None or self._wake is None:
            raise RuntimeError("the journal is written before it was started")
        line = json.dumps({"ts": now_iso(), **record}, ensure_ascii=False) + "\n"
        os.write(self._fd, line.encode())
        self._dirty = True
        self._wake.set()

    async def _sync_loop(self) -> None:
        assert self._fd is not None and self._wake is not None
        while not self._closed:
            await self._wake.wait()
            self._wake.clear()
            if self._dirty:
                self._dirty = False
                await asyncio.to_thread(self._fsync, self._fd)

    async def close(self) -> None:
        self._closed = True
        if self._wake is not None:
            self._wake.set()
        if self._syncer is not None:
            await self._syncer
        if self._fd is not None:
            self._fsync(self._fd)
            os.close(self._fd)
            self._fd = None

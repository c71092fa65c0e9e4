"""What a run leaves behind: the JSONL journal, the JSON report, and the run lock.

The journal is written line by line as items complete, each line handed to the kernel at
once with ``os.write`` on an ``O_APPEND`` descriptor, so a ``kill -9`` of bulkpolyv loses
nothing already journaled. ``fsync`` (which protects against a power cut, not a kill) runs
as a group commit in a background thread, back to back while lines keep coming: waiting for
the disk on every one of 100,000 lines would make the disk, not POLYV, the bottleneck.
Before each write is sent, a ``sending`` line is journaled, so after a crash an item that
is ``sending`` without a result is known to be *in doubt*, not untouched.

Both files are created with mode 0600: they name accounts and channels.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import fcntl
import hashlib
import json
import os
import socket
from pathlib import Path
from typing import Any

from bulkpolyv.errors import BulkPolyvError


def state_dir() -> Path:
    base = os.environ.get("XDG_STATE_HOME") or os.path.join(
        os.path.expanduser("~"), ".local", "state"
    )
    return Path(base) / "bulkpolyv"


def now_iso() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds")


def default_journal_path(manifest: str) -> Path:
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
    return state_dir() / "journal" / f"{Path(manifest).stem}-{stamp}-{os.getpid()}.jsonl"


def default_lock_path(manifest: str) -> Path:
    digest = hashlib.sha256(str(Path(manifest).resolve()).encode()).hexdigest()[:16]
    return state_dir() / "locks" / f"{Path(manifest).stem}-{digest}.lock"


def _open_private(path: Path, flags: int) -> int:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, flags, 0o600)
    os.fchmod(fd, 0o600)
    return fd


class Journal:
    def __init__(self, path: Path) -> None:
        self.path = path
        self._fd = _open_private(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND)
        self._dirty = False
        self._syncer: asyncio.Task[None] | None = None
        self._wake = asyncio.Event()
        self._closed = False

    def start(self) -> None:
        self._syncer = asyncio.get_running_loop().create_task(self._sync_loop())

    def write(self, record: dict[str, Any]) -> None:
        line = json.dumps({"ts": now_iso(), **record}, ensure_ascii=False) + "\n"
        os.write(self._fd, line.encode())
        self._dirty = True
        self._wake.set()

    async def _sync_loop(self) -> None:
        while not self._closed:
            await self._wake.wait()
            self._wake.clear()
            if self._dirty:
                self._dirty = False
                await asyncio.to_thread(os.fsync, self._fd)

    async def close(self) -> None:
        self._closed = True
        self._wake.set()
        if self._syncer is not None:
            await self._syncer
        os.fsync(self._fd)
        os.close(self._fd)


def write_report(path: Path, report: dict[str, Any]) -> None:
    """Write the report atomically (temp file + rename), mode 0600."""
    temp = path.with_name(path.name + ".tmp")
    fd = _open_private(temp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        json.dump(report, handle, indent=2, ensure_ascii=False)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(temp, path)


class LockBusy(BulkPolyvError):
    def __init__(self, path: Path, holder: str) -> None:
        super().__init__(f"another bulkpolyv run holds the lock {path}: {holder}")
        self.path = path
        self.holder = holder


class RunLock:
    """An exclusive ``flock`` on a file beside nothing else: released by the kernel when the
    process dies, so a crashed run never leaves a stale lock."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._fd: int | None = None

    def acquire(self) -> None:
        fd = _open_private(self.path, os.O_RDWR | os.O_CREAT)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 4096, 0).decode("utf-8", "replace").strip()
            os.close(fd)
            raise LockBusy(self.path, _describe_holder(holder)) from None
        os.ftruncate(fd, 0)
        info = {"pid": os.getpid(), "host": socket.gethostname(), "started": now_iso()}
        os.pwrite(fd, json.dumps(info).encode(), 0)
        self._fd = fd

    def release(self) -> None:
        if self._fd is not None:
            with contextlib.suppress(OSError):
                os.ftruncate(self._fd, 0)
            os.close(self._fd)
            self._fd = None

    def __enter__(self) -> RunLock:
        self.acquire()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.release()


def _describe_holder(text: str) -> str:
    try:
        info = json.loads(text)
        return f"pid {info['pid']} on {info['host']}, started {info['started']}"
    except (ValueError, KeyError, TypeError):
        return "holder unknown"

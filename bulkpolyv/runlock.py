"""The run lock: one apply per manifest per host at a time.

An exclusive ``flock`` on a file under the user's state directory (per manifest, unless
``--lock`` names one): released by the kernel when the process dies, so a crashed run never
leaves a stale lock. The file holds who has it (pid, host, start), for the message a second
run prints.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import socket
from pathlib import Path

from bulkpolyv.errors import BulkPolyvError
from bulkpolyv.privatefiles import open_private, state_dir
from bulkpolyv.report import now_iso


def default_lock_path(manifest: str) -> Path:
    digest = hashlib.sha256(str(Path(manifest).resolve()).encode()).hexdigest()[:16]
    return state_dir() / "locks" / f"{Path(manifest).stem}-{digest}.lock"


def lock_for(manifest: str, path: str | Path | None) -> RunLock:
    """The lock at ``path`` (``--lock``), or the default one for ``manifest``."""
    return RunLock(Path(path) if path else default_lock_path(manifest))


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
        fd = open_private(self.path, os.O_RDWR | os.O_CREAT)
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

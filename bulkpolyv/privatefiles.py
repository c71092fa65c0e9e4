"""Files only their owner may read: the journal, the report and the run lock name accounts
and channels, so each is created with mode 0600 (and its directory made when missing)."""

from __future__ import annotations

import os
from pathlib import Path


def state_dir() -> Path:
    """Where journals and locks go by default: ``$XDG_STATE_HOME/bulkpolyv``."""
    base = os.environ.get("XDG_STATE_HOME") or os.path.join(
        os.path.expanduser("~"), ".local", "state"
    )
    return Path(base) / "bulkpolyv"


def open_private(path: Path, flags: int) -> int:
    """``os.open`` with mode 0600, enforced even when the file already existed."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, flags, 0o600)
    os.fchmod(fd, 0o600)
    return fd


def write_private(path: Path, text: str) -> None:
    """Write ``text`` atomically (temp file, fsync, rename), mode 0600."""
    temp = path.with_name(path.name + ".tmp")
    fd = open_private(temp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(text)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(temp, path)

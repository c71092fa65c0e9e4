"""The JSONL journal: what a run sent and what came of it, line by line.

The journal is written line by line as items complete, each line handed to the kernel at
once with ``os.write`` on an ``O_APPEND`` descriptor, so a ``kill -9`` of bulkpolyv loses
nothing already journaled. ``fsync`` (which protects against a power cut, not a kill) runs
as a group commit in a background thread, one per ``SYNC_INTERVAL`` while lines keep
coming: waiting for the disk on every one of 100,000 lines would make the disk, not POLYV,
the bottleneck.
Before each write is sent, a ``sending`` line is journaled, so after a crash an item that
is ``sending`` without a result is known to be *in doubt*, not untouched.

The journal is a :class:`~bulkpolyv.events.RunEvents` observer (``sending`` and
``outcome``); :func:`~bulkpolyv.run.apply` opens it only once the plan is confirmed, and
writes its ``start`` and ``end`` lines. Created with mode 0600: it names accounts and
channels.

A line that cannot be written whole (a full disk, a file-size limit) raises
:class:`JournalError` after the part that did get written is cut off again, so the file
never holds half a line; the executor then sends nothing more. The file is opened by
:meth:`Journal.open` before the run's first request (preflight), and removed again when the
run wrote nothing. Journals older than :func:`retention_days` (30 by default,
``BULKPOLYV_JOURNAL_DAYS``; 0 keeps them forever) are deleted from the journal's directory
at the start of each run.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import os
import re
import threading
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from bulkpolyv.errors import BulkPolyvError
from bulkpolyv.events import RunEvents
from bulkpolyv.fastjson import dumps_line
from bulkpolyv.plan import Operation
from bulkpolyv.privatefiles import open_private, state_dir
from bulkpolyv.report import ItemOutcome

log = logging.getLogger(__name__)
DEFAULT_RETENTION_DAYS = 30
# The names default_journal_path gives: only those are ever deleted by prune_journals.
JOURNAL_NAME = re.compile(r".+-\d{8}T\d{6}Z-\d+\.jsonl")
# The group commit's pace: at most one fsync per this many seconds while lines keep coming.
# fsync back to back cost ~8 % of the client's CPU per request (bench/efficiency.py) for
# nothing a kill could take (the lines are with the kernel at once); what a power cut may
# take grows by at most this much.
SYNC_INTERVAL = 0.05


# Each line's stamp ends in one of a thousand texts: ``.042+00:00`` looked up, not formatted.
_MILLIS = tuple(f".{millis:03d}+00:00" for millis in range(1000))


class UtcStamp:
    """The time of each line as :func:`~bulkpolyv.report.now_iso` writes it
    (``2026-05-01T12:00:00.123+00:00``) at a fraction of its cost: the part up to the
    second is formatted once a second, not once a line, and the milliseconds are looked
    up (two lines per write made this a tenth of the journal's work)."""

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self._clock = clock
        self._second: int | None = None
        self._prefix = ""

    def __call__(self) -> str:
        # Rounded to the microsecond as datetime rounds a timestamp, then cut to the
        # millisecond as isoformat cuts it: the same text as now_iso for the same time.
        micros = round(self._clock() * 1_000_000)
        second = micros // 1_000_000
        if second != self._second:
            self._second = second
            when = dt.datetime.fromtimestamp(second, dt.UTC)
            self._prefix = when.strftime("%Y-%m-%dT%H:%M:%S")
        return self._prefix + _MILLIS[micros // 1000 % 1000]


class JournalError(BulkPolyvError):
    """A journal line could not be written (the disk is full, the file too large)."""


def default_journal_path(manifest: str) -> Path:
    """Under the user's state directory, named after the manifest, the time and the pid."""
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
    return state_dir() / "journal" / f"{Path(manifest).stem}-{stamp}-{os.getpid()}.jsonl"


def journal_for(manifest: str, path: str | Path | None) -> Journal:
    """The journal at ``path`` (``--journal``), or at the default place for ``manifest``."""
    return Journal(Path(path) if path else default_journal_path(manifest))


def retention_days(environ: Mapping[str, str] = os.environ) -> float:
    """How many days journals are kept: ``BULKPOLYV_JOURNAL_DAYS``, else 30."""
    text = environ.get("BULKPOLYV_JOURNAL_DAYS", "").strip()
    if not text:
        return DEFAULT_RETENTION_DAYS
    try:
        days = float(text)
    except ValueError:
        raise BulkPolyvError(
            f"BULKPOLYV_JOURNAL_DAYS={text!r}: give a number of days (0 keeps journals forever)"
        ) from None
    if days < 0:
        raise BulkPolyvError("BULKPOLYV_JOURNAL_DAYS cannot be negative (0 keeps them forever)")
    return days


def prune_journals(
    directory: Path, days: float, *, keep: Path | None = None, now: float | None = None
) -> list[Path]:
    """Delete bulkpolyv's journals in ``directory`` last written more than ``days`` ago
    (``0``: none); other files are never touched. Returns what was deleted."""
    if days <= 0 or not directory.is_dir():
        return []
    horizon = (time.time() if now is None else now) - days * 86400
    deleted = []
    for path in directory.iterdir():
        if path == keep or not JOURNAL_NAME.fullmatch(path.name):
            continue
        try:
            if path.stat().st_mtime < horizon:
                path.unlink()
                deleted.append(path)
        except OSError as exc:  # another run's, or gone already: not worth failing for
            log.debug("journal: cannot prune %s: %s", path, exc)
    return deleted


class Journal(RunEvents):
    def __init__(
        self,
        path: Path,
        *,
        fsync: Callable[[int], None] = os.fsync,
        write: Callable[[int, bytes], int] = os.write,
        sync_interval: float = SYNC_INTERVAL,
    ) -> None:
        self.path = path
        self._fsync = fsync
        self._sync_interval = sync_interval
        self._closing = threading.Event()
        self._write = write
        self._fd: int | None = None
        self._dirty = False
        self._loop: asyncio.AbstractEventLoop | None = None
        self._kick_due = False
        self._kicked = threading.Event()
        self._syncer: threading.Thread | None = None
        self._closed = False
        self._created = False
        self.lines = 0
        self._stamp = UtcStamp()

    def open(self) -> None:
        """Open (or create) the file, so that a journal that cannot be written is found
        before anything is sent; raises PrivateFileError naming the path."""
        if self._fd is None:
            self._created = not self.path.exists()
            self._fd = open_private(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND)

    def start(self) -> None:
        """Open the file if :meth:`open` did not, and start the group commit; on the loop."""
        self.open()
        self._loop = asyncio.get_running_loop()
        self._syncer = threading.Thread(target=self._sync_loop, name="journal-fsync", daemon=True)
        self._syncer.start()

    # Two lines per write: each dict is built once, its time first (no merge into a copy).

    def sending(self, op: Operation) -> None:
        key = op.key.to_dict()
        self._append({"ts": self._stamp(), "event": "sending", **key, "operation": op.kind._value_})

    def outcome(self, outcome: ItemOutcome) -> None:
        self._append({"ts": self._stamp(), "event": "done", **outcome.to_dict()})

    def write(self, record: dict[str, Any]) -> None:
        """One line (the run's ``start`` and ``end``), stamped with the time."""
        self._append({"ts": self._stamp(), **record})

    def _append(self, line: dict[str, Any]) -> None:
        fd = self._fd
        if fd is None or self._loop is None:
            raise RuntimeError("the journal is written before it was started")
        data = dumps_line(line)
        try:
            written = self._write(fd, data)
        except OSError as exc:
            raise self._unwritten(fd, 0, exc) from None
        if written < len(data):  # the kernel took part of it (a signal, a full disk)
            self._write_rest(fd, data, written)
        self.lines += 1
        self._dirty = True
        if not self._kick_due:
            # One wake-up of the fsync thread per turn of the loop, not per line: the lines
            # written in this turn are grouped into one fsync.
            self._kick_due = True
            self._loop.call_soon(self._kick)

    def _kick(self) -> None:
        self._kick_due = False
        self._kicked.set()

    def _write_rest(self, fd: int, data: bytes, written: int) -> None:
        """All of ``data`` or none of it: a short write is continued, and a failure cuts
        off what this line had written, so no half line is left for a reader to trip on."""
        try:
            while written < len(data):
                written += self._write(fd, data[written:])
        except OSError as exc:
            raise self._unwritten(fd, written, exc) from None

    def _unwritten(self, fd: int, written: int, exc: OSError) -> JournalError:
        """The error for a line that could not be written, once the ``written`` bytes of
        it that did get written are cut off again."""
        if written:
            try:
                os.ftruncate(fd, os.fstat(fd).st_size - written)
            except OSError:
                log.debug("journal: cannot cut off a partial line", exc_info=True)
        return JournalError(f"cannot write the journal {self.path}: {exc.strerror}")

    def _sync_loop(self) -> None:
        """The fsync thread: while lines keep coming, one fsync per ``sync_interval``,
        then sleep. A thread of its own rather than one ``to_thread`` per fsync: the loop
        pays one ``Event.set`` per turn instead of a future, a queue and a wake-up per
        fsync."""
        assert self._fd is not None
        while True:
            self._kicked.wait()
            self._kicked.clear()
            while self._dirty and not self._closed:
                self._dirty = False
                try:
                    self._fsync(self._fd)
                except OSError as exc:  # the lines are with the kernel; a kill loses none
                    log.warning("journal: cannot sync %s: %s", self.path, exc.strerror)
                self._closing.wait(self._sync_interval)  # close() ends the pause
            if self._closed:
                return

    async def close(self) -> None:
        self._closed = True
        self._closing.set()
        self._kicked.set()
        if self._syncer is not None:
            await asyncio.to_thread(self._syncer.join)
        if self._fd is not None:
            try:
                self._fsync(self._fd)
            except OSError:
                log.debug("journal: fsync at close failed", exc_info=True)
            os.close(self._fd)
            self._fd = None
            if self._created and self.lines == 0:  # opened by preflight, never used
                self.path.unlink(missing_ok=True)

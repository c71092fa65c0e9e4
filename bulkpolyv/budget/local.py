"""The default budget store: one SQLite file per user, shared by every process on the host.

The file lives in the state directory (``$XDG_STATE_HOME/bulkpolyv/budget.sqlite3``, else
``~/.local/state/bulkpolyv/budget.sqlite3``) and holds one row per held place, keyed by
API host, plus a count of rows per host (so a reservation is O(log N), not a count of N
rows). Every change is one ``BEGIN IMMEDIATE`` transaction (purge what ran out, compare the
count, insert), so two processes never both take the last place. SQLite rolls back a
transaction whose process died, so a kill mid-update leaves the file consistent; the places
a dead process held run out on their own (their lease), nobody has to clean up.

Times come from ``time.monotonic``: on Linux (and macOS) it is one clock for the whole
host and never jumps with NTP. It restarts at boot, so on opening, rows taken "in the
future" (before a reboot) are purged and the counts rebuilt from the rows.

Why in the event loop, not a thread: a transaction costs 10-100 µs of CPU, and the only
long wait — another process holding the write lock — is not left to SQLite's busy handler
(which would sleep in the loop for milliseconds): the connection has ``busy_timeout`` 0,
and a busy answer is retried after an ``asyncio.sleep`` of 0.5-10 ms, up to
``busy_timeout`` seconds in all. A worker thread measured worse: each hop back into the
loop waits for the GIL, up to the 5 ms switch interval while the loop is busy, which held a
busy process to ~200 reservations/s; in the loop it is ~2,600/s (bench/budget_store.py,
worst of five runs on two cores).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import sqlite3
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from bulkpolyv.budget.base import BudgetUnavailable
from bulkpolyv.privatefiles import state_dir

log = logging.getLogger(__name__)
T = TypeVar("T")

SCHEMA = """
CREATE TABLE IF NOT EXISTS reservation (
    api_host TEXT NOT NULL,
    id TEXT NOT NULL,
    taken_at REAL NOT NULL,
    expires_at REAL NOT NULL,
    PRIMARY KEY (api_host, id)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS reservation_expiry ON reservation (api_host, expires_at);
CREATE TABLE IF NOT EXISTS held_count (
    api_host TEXT PRIMARY KEY,
    rows INTEGER NOT NULL
) WITHOUT ROWID;
"""

# What one process's transaction costs, roughly: the first retry comes soon after it.
FIRST_RETRY = 0.0005
LAST_RETRY = 0.01


class _Busy(Exception):
    """Another process holds the file's write lock (SQLITE_BUSY)."""


def default_budget_path() -> Path:
    return state_dir() / "budget.sqlite3"


def _is_busy(exc: sqlite3.Error) -> bool:
    code = getattr(exc, "sqlite_errorcode", None)
    return code is not None and code & 0xFF == sqlite3.SQLITE_BUSY


class SqliteStore:
    """Reservations for ``api_host`` in the SQLite file at ``path``."""

    def __init__(
        self,
        api_host: str,
        *,
        path: Path | None = None,
        clock: Callable[[], float] = time.monotonic,
        busy_timeout: float = 10.0,
        create_directory: bool = True,
    ) -> None:
        self.path = path or default_budget_path()
        self.api_host = api_host
        self.description = f"the local budget file {self.path}"
        self._clock = clock
        self._busy_timeout = busy_timeout
        # The default file's directory is ours to make; a path the operator named is not:
        # a typo there would quietly become a budget no other run can see.
        self._create_directory = create_directory
        self._conn: sqlite3.Connection | None = None
        self._said_locked = False

    async def open(self) -> None:
        give_up = time.monotonic() + self._busy_timeout  # real time: sleeps overshoot
        while self._conn is None:
            try:
                self._conn = self._connect()
            except sqlite3.Error as exc:
                # Two processes switching a new file to WAL at once: one is told "busy"
                # without SQLite's busy handler being asked. Try again, as for a lock.
                if not _is_busy(exc):
                    raise self._unusable(exc) from exc
                if time.monotonic() >= give_up:
                    raise self._locked_too_long() from exc
                self._say_locked()
            except OSError as exc:
                raise self._unusable(exc) from exc
            else:
                break
            await asyncio.sleep(LAST_RETRY)
        try:
            await self._retrying(self._forget_other_boots, on_wait=self._say_locked)
        except BudgetUnavailable:
            await self.close()  # a store that failed to open holds nothing open
            raise

    async def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    async def reserve(self, reservation_id: str, limit: int, lease: float) -> float:
        return await self._retrying(lambda conn: self._reserve(conn, reservation_id, limit, lease))

    async def complete(self, reservation_id: str, hold: float) -> None:
        await self._retrying(lambda conn: self._complete(conn, reservation_id, hold))

    async def cancel(self, reservation_id: str) -> None:
        await self._retrying(lambda conn: self._cancel(conn, reservation_id))

    def try_reserve(self, reservation_id: str, limit: int, lease: float) -> float | None:
        """:meth:`reserve` without waiting: None (nothing done) while another process
        holds the lock."""
        try:
            return self._attempt(lambda conn: self._reserve(conn, reservation_id, limit, lease))
        except _Busy:
            return None

    def try_complete(self, reservation_id: str, hold: float) -> bool:
        """:meth:`complete` without waiting: False (nothing done) while another process
        holds the lock. Saves the caller a task per request when, as nearly always, the
        lock is free."""
        try:
            self._attempt(lambda conn: self._complete(conn, reservation_id, hold))
        except _Busy:
            return False
        return True

    async def _retrying(
        self,
        work: Callable[[sqlite3.Connection], T],
        *,
        on_wait: Callable[[], None] | None = None,
    ) -> T:
        """Run one transaction; while another process holds the lock, wait without
        blocking the loop (calling ``on_wait`` before each wait) and try again (see the
        module docstring)."""
        delay, give_up = FIRST_RETRY, time.monotonic() + self._busy_timeout
        while True:
            try:
                return self._attempt(work)
            except _Busy as busy:
                if time.monotonic() >= give_up:
                    raise self._locked_too_long() from busy.__cause__
            if on_wait is not None:
                on_wait()
            await asyncio.sleep(delay)
            delay = min(delay * 2, LAST_RETRY)

    def _say_locked(self) -> None:
        # Said once, while opening: a run that seems to hang before its first request is
        # waiting for another process (a stuck one holds the lock until it is killed).
        if self._said_locked:
            return
        self._said_locked = True
        log.info(
            "budget: %s is locked by another process; waiting up to %g s",
            self.description,
            self._busy_timeout,
        )

    def _attempt(self, work: Callable[[sqlite3.Connection], T]) -> T:
        """One transaction; :class:`_Busy` when another process holds the lock."""
        if self._conn is None:
            raise BudgetUnavailable(f"{self.description} is not open.")
        try:
            return _transaction(self._conn, work)
        except sqlite3.Error as exc:
            if _is_busy(exc):
                raise _Busy from exc
            raise self._unusable(exc) from exc
        except OSError as exc:
            raise self._unusable(exc) from exc

    def _locked_too_long(self) -> BudgetUnavailable:
        return BudgetUnavailable(
            f"{self.description} has been locked by another process for "
            f"{self._busy_timeout:g} s; is a process stuck holding it?"
        )

    def _unusable(self, exc: BaseException) -> BudgetUnavailable:
        if isinstance(exc, sqlite3.DatabaseError) and "not a database" in str(exc):
            return BudgetUnavailable(
                f"{self.description} is not a SQLite file (some other file has its name); "
                "move it away, or choose another store with --budget."
            )
        return BudgetUnavailable(
            f"{self.description} cannot be used ({exc}); check that the directory is "
            "writable and the disk not full, or choose another store with --budget."
        )

    def _connect(self) -> sqlite3.Connection:
        if not self._create_directory and not self.path.parent.is_dir():
            raise BudgetUnavailable(
                f"{self.description} cannot be used: its directory {self.path.parent} does "
                "not exist (a typo? every run sharing the budget must name the same file)."
            )
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        # Create it private first: SQLite would use the umask.
        os.close(os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600))
        # Busy answers come back at once, also during set-up (WAL switch, schema): open()
        # and _retrying wait in the loop. SQLite's own busy handler would sleep inside C
        # for up to busy_timeout while another process holds the lock, deaf to Ctrl-C.
        conn = sqlite3.connect(self.path, timeout=0, isolation_level=None)
        try:
            # WAL: readers never block the writer. synchronous=NORMAL: no fsync per commit —
            # a power cut may lose the last reservations, which only matter for W seconds.
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            conn.executescript(SCHEMA)
        except BaseException:
            conn.close()
            raise
        return conn

    def _forget_other_boots(self, conn: sqlite3.Connection) -> None:
        conn.execute("DELETE FROM reservation WHERE taken_at > ?", (self._clock(),))
        conn.execute("DELETE FROM held_count")
        conn.execute(
            "INSERT INTO held_count SELECT api_host, COUNT(*) FROM reservation GROUP BY api_host"
        )

    def _reserve(
        self, conn: sqlite3.Connection, reservation_id: str, limit: int, lease: float
    ) -> float:
        now = self._clock()  # read under the write lock: no commit after ours is older
        expired = conn.execute(
            "DELETE FROM reservation WHERE api_host = ? AND expires_at <= ?",
            (self.api_host, now),
        ).rowcount
        rows = self._rows(conn) - expired
        if rows < limit:
            conn.execute(
                "INSERT INTO reservation VALUES (?, ?, ?, ?)",
                (self.api_host, reservation_id, now, now + lease),
            )
            rows += 1
            wait = 0.0
        else:
            (earliest,) = conn.execute(
                "SELECT expires_at FROM reservation WHERE api_host = ? "
                "ORDER BY expires_at LIMIT 1",
                (self.api_host,),
            ).fetchone()
            wait = max(earliest - now, 1e-6)
        self._set_rows(conn, rows)
        return wait

    def _complete(self, conn: sqlite3.Connection, reservation_id: str, hold: float) -> None:
        now = self._clock()
        updated = conn.execute(
            "UPDATE reservation SET expires_at = ? WHERE api_host = ? AND id = ?",
            (now + hold, self.api_host, reservation_id),
        ).rowcount
        if not updated:
            # The lease already ran out (a stalled process): the request still happened,
            # so its place comes back rather than being forgotten.
            conn.execute(
                "INSERT INTO reservation VALUES (?, ?, ?, ?)",
                (self.api_host, reservation_id, now, now + hold),
            )
            self._set_rows(conn, self._rows(conn) + 1)

    def _cancel(self, conn: sqlite3.Connection, reservation_id: str) -> None:
        deleted = conn.execute(
            "DELETE FROM reservation WHERE api_host = ? AND id = ?",
            (self.api_host, reservation_id),
        ).rowcount
        if deleted:
            self._set_rows(conn, self._rows(conn) - deleted)

    def _rows(self, conn: sqlite3.Connection) -> int:
        found = conn.execute(
            "SELECT rows FROM held_count WHERE api_host = ?", (self.api_host,)
        ).fetchone()
        return found[0] if found else 0

    def _set_rows(self, conn: sqlite3.Connection, rows: int) -> None:
        conn.execute(
            "INSERT INTO held_count VALUES (?, ?) ON CONFLICT (api_host) DO UPDATE SET rows = ?",
            (self.api_host, rows, rows),
        )

    def held(self) -> int:
        """Places held now (tests and diagnostics)."""
        conn = sqlite3.connect(self.path, timeout=self._busy_timeout)
        try:
            (count,) = conn.execute(
                "SELECT COUNT(*) FROM reservation WHERE api_host = ? AND expires_at > ?",
                (self.api_host, self._clock()),
            ).fetchone()
        finally:
            conn.close()
        return count


def _transaction(conn: sqlite3.Connection, work: Callable[[sqlite3.Connection], T]) -> T:
    """``work`` inside BEGIN IMMEDIATE … COMMIT, rolled back if anything goes wrong."""
    conn.execute("BEGIN IMMEDIATE")  # takes the write lock now, or raises "busy" at once
    try:
        result = work(conn)
        conn.execute("COMMIT")
    except BaseException:
        # SQLite may have rolled back already (a full disk does): then ROLLBACK itself
        # fails, and its "no transaction is active" must not hide the real cause.
        if conn.in_transaction:
            with contextlib.suppress(sqlite3.Error):
                conn.execute("ROLLBACK")
        raise
    return result

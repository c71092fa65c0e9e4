"""Logging set-up for the command: plain lines, or JSON lines for log shippers.

Log calls across bulkpolyv use %-args and never format secrets into the message. Calls
that describe an item also pass its fields as ``extra`` (see :data:`FIELDS`), which the
JSON format turns into keys of their own, so a log shipper can filter on ``account`` or
``polyv_code`` without parsing sentences. On a terminal, log lines go through the same
console as the progress display, so a warning never lands in the middle of a bar.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import sys
from collections.abc import Callable
from typing import Any, Protocol

from bulkpolyv.events import RunEvents

# The structured fields a log call may pass as ``extra``; only these reach JSON lines.
FIELDS = (
    "event",
    "account",
    "channel",
    "monitor",
    "callback",
    "status",
    "attempts",
    "http_status",
    "polyv_code",
    "request_id",
    "wait",
)


class Console(Protocol):
    def print(self, *objects: Any, **options: Any) -> None: ...


def iso_utc(seconds: float) -> str:
    """``2026-11-22T14:54:10.123Z``: ISO-8601, UTC, milliseconds."""
    moment = dt.datetime.fromtimestamp(seconds, dt.UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "ts": iso_utc(record.created),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for name in FIELDS:
            value = record.__dict__.get(name)
            if value is not None:
                line[name] = value
        return json.dumps(line, ensure_ascii=False, default=str)


class ConsoleHandler(logging.Handler):
    """Writes through a rich console, which keeps a live progress display intact."""

    def __init__(self, console: Console) -> None:
        super().__init__()
        self._console = console

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self._console.print(self.format(record), markup=False, highlight=False)
        except Exception:  # a log line must never end the run
            self.handleError(record)


def configure_logging(
    *,
    verbose: int = 0,
    quiet: bool = False,
    json_format: bool = False,
    console: Console | None = None,
) -> None:
    """``-q``: errors only; default: warnings; ``-v``: info; ``-vv``: debug."""
    level = (
        logging.ERROR if quiet else (logging.WARNING, logging.INFO, logging.DEBUG)[min(verbose, 2)]
    )
    handler: logging.Handler = (
        ConsoleHandler(console)
        if console is not None and not json_format
        else logging.StreamHandler(sys.stderr)
    )
    handler.setFormatter(
        JsonFormatter()
        if json_format
        else logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s")
    )
    root = logging.getLogger("bulkpolyv")
    root.handlers[:] = [handler]
    root.setLevel(level)
    root.propagate = False


class EventLog(RunEvents):
    """A run's events as log lines (``-v``: phases and cool-downs; ``-vv``: every send and
    read); handed to the runtime beside the progress display."""

    def __init__(
        self, logger: logging.Logger | None = None, *, announce_cooldowns: bool = False
    ) -> None:
        self.log = logger or logging.getLogger("bulkpolyv.run")
        # Without a progress display (JSON logs off a terminal) a cool-down is a warning.
        self.cooldown_level = logging.WARNING if announce_cooldowns else logging.INFO
        self.reads = 0
        self.total = 0
        self.name = ""

    def phase(self, name: str, total: int, requests: Callable[[], int]) -> None:
        self.name, self.total, self.reads = name, total, 0
        self.log.info("%s: %d items", name, total, extra={"event": name})

    def phase_done(self) -> None:
        self.log.debug("%s: done", self.name, extra={"event": f"{self.name}_done"})

    def read_done(self) -> None:
        self.reads += 1
        self.log.debug("read: %d/%d done", self.reads, self.total, extra={"event": "read"})

    def sending(self, op: Any) -> None:
        if not self.log.isEnabledFor(logging.DEBUG):
            return  # once per write: not even its extra fields unless -vv shows them
        key = op.key
        self.log.debug(
            "sending: item=%s operation=%s",
            key,
            op.kind.value,
            extra={
                "event": "sending",
                "account": key.account,
                "channel": key.channel_id or None,
                "monitor": key.monitor_id or None,
            },
        )

    def outcome(self, outcome: Any) -> None:
        """Logged by the executor already."""

    def cooldown(self, seconds: float) -> None:
        self.log.log(
            self.cooldown_level,
            "cooldown: POLYV rate limit hit; every request paused for %.0f s",
            seconds,
            extra={"event": "cooldown", "wait": seconds},
        )

    def retry(self, account: str, attempt: int, wait: float, reason: str) -> None:
        """Logged by the retrying caller already."""

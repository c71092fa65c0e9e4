"""The result of a run and its report file: the one module that writes *and* reads it.

An :class:`ItemOutcome` is what happened to one managed item; an :class:`ApplyResult` is
the whole run. :func:`build_report` turns a result into the JSON report
(``REPORT_FORMAT_VERSION``), :func:`write_report` writes it atomically with mode 0600, and
:func:`failed_items` reads one back for ``apply --retry-failed``. A report that cannot be
read back raises :class:`ReportError` naming the file, never a ``KeyError`` or a
``JSONDecodeError``.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from enum import StrEnum
from importlib import metadata
from pathlib import Path
from typing import Any, NamedTuple

from bulkpolyv.errors import BulkPolyvError
from bulkpolyv.manifest.problems import Location
from bulkpolyv.plan import FieldChange, ItemKey, Operation, Plan
from bulkpolyv.privatefiles import write_private

REPORT_FORMAT_VERSION = 1


class ReportError(BulkPolyvError):
    """A report file that cannot be read back."""


def now_iso() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds")


class Status(StrEnum):
    CHANGED = "changed"
    UNCHANGED = "unchanged"
    FAILED = "failed"
    SKIPPED = "skipped"
    CONFLICT = "conflict"  # a reviewed plan's item whose live value moved since the plan


# Each duration an outcome holds is kept to the millisecond, as every output shows it, and
# as one float shared by every outcome that took as long: a million outcomes held until
# the report is written held a million floats (32 MB of a 1M-row run's peak). Durations up
# to 10 s are shared (at most 10,000 floats); longer ones are rare.
_SHARED_DURATIONS: dict[float, float] = {}
_SHARED_UP_TO = 10.0


def _duration(seconds: float) -> float:
    rounded = round(seconds, 3)
    if rounded >= _SHARED_UP_TO:
        return rounded
    return _SHARED_DURATIONS.setdefault(rounded, rounded)


class ItemOutcome(NamedTuple):
    """What happened to one item. Immutable: built once, when the item is finished.

    A named tuple rather than a frozen dataclass: one is built for every item, and a frozen
    dataclass's ``__init__`` (an ``object.__setattr__`` per field) cost 3.5x as much, about
    4 us per item, for the same immutability and about the same memory."""

    key: ItemKey
    status: Status
    operation: str = ""
    # The operation's own objects, shared, not copies: a million outcomes are held until
    # the report is written. They become text only in to_dict.
    changes: tuple[FieldChange, ...] = ()
    attempts: int = 0
    http_status: int | None = None
    polyv_code: int | str | None = None
    message: str = ""
    request_id: str | None = None
    source: Location | None = None
    duration: float = 0.0
    # Read back after the write (``apply --verify``): True it stuck, False it did not,
    # None not checked or not checkable (a field POLYV does not return).
    verified: bool | None = None

    @classmethod
    def of_operation(
        cls,
        op: Operation,
        status: Status,
        *,
        attempts: int = 0,
        http_status: int | None = None,
        polyv_code: int | str | None = None,
        message: str = "",
        request_id: str | None = None,
        duration: float = 0.0,
        verified: bool | None = None,
    ) -> ItemOutcome:
        """The outcome of a planned operation, its duration kept to the millisecond. (Its
        fields named here and passed on by position: one outcome per item, and collecting
        ``**details`` into a dict to unpack it again cost a third of building one.)"""
        return cls(
            op.key, status, op.kind._value_, op.changes, attempts, http_status, polyv_code,
            message, request_id, op.source, _duration(duration), verified,
        )  # fmt: skip

    def to_dict(self) -> dict[str, Any]:
        # (``_value_``: the enum's ``value`` is a Python-level property, and this runs for
        # every item, in the journal's line and the report)
        return {
            **self.key.to_dict(),
            "operation": self.operation,
            "changes": [change.to_dict() for change in self.changes],
            "status": self.status._value_,
            "attempts": self.attempts,
            "http_status": self.http_status,
            "polyv_code": self.polyv_code,
            "message": self.message,
            "request_id": self.request_id,
            "source": "" if self.source is None else str(self.source),
            "duration": round(self.duration, 3),
            "verified": self.verified,
        }


def settled_outcomes(plan: Plan) -> Iterator[ItemOutcome]:
    """The outcomes known before anything is sent: unchanged items and plan problems."""
    for key, source in plan.unchanged:
        yield ItemOutcome(key, Status.UNCHANGED, source=source)
    for problem in plan.problems:
        yield ItemOutcome(
            problem.key,
            Status.SKIPPED if problem.auth else Status.FAILED,
            message=problem.message,
            source=problem.source,
        )


def not_attempted(
    operations: Iterable[Operation],
    done: set[ItemKey],
    reason: str = "not attempted: the run was interrupted",
) -> Iterator[ItemOutcome]:
    """The operations never dispatched because the run was stopped."""
    for op in operations:
        if op.key not in done:
            yield ItemOutcome.of_operation(op, Status.SKIPPED, message=reason)


def skipped_items(keys: Iterable[ItemKey], reason: str) -> list[ItemOutcome]:
    """Every item of a run stopped before its plan was made (the read phase)."""
    return [ItemOutcome(key, Status.SKIPPED, message=reason) for key in keys]


class ApplyStatus(StrEnum):
    """How a run ended. ``completed`` only when every item ran and none failed, was
    skipped or conflicted (``partial`` otherwise); ``interrupted`` by a signal; ``aborted``
    when it could not go on (the host unreachable, the journal unwritable, a bug)."""

    NOTHING_TO_DO = "nothing_to_do"
    REFUSED = "refused_by_safety"
    DECLINED = "declined"
    COMPLETED = "completed"
    PARTIAL = "partial"
    INTERRUPTED = "interrupted"
    ABORTED = "aborted"


# The process exit status of each ending (README "Exit codes"; cli's ExitCode has the names).
EXIT_CODES = {
    ApplyStatus.NOTHING_TO_DO: 0,
    ApplyStatus.COMPLETED: 0,
    ApplyStatus.DECLINED: 1,
    ApplyStatus.PARTIAL: 3,
    ApplyStatus.ABORTED: 3,
    ApplyStatus.REFUSED: 4,
    ApplyStatus.INTERRUPTED: 130,
}


@dataclass(frozen=True)
class Invocation:
    """What was run, for the report: the command line without secrets (the CLI builds
    it; secrets never come through flags), and the API base the run talked to."""

    command: str = ""
    flags: dict[str, Any] = field(default_factory=dict)
    api_base: str = ""


@dataclass
class ApplyResult:
    status: ApplyStatus
    plan: Plan
    outcomes: list[ItemOutcome] = field(default_factory=list)
    requests: int = 0
    duration: float = 0.0  # seconds since apply began, reads included
    safety_reasons: tuple[str, ...] = ()
    journal: Path | None = None
    verify: bool = False  # the writes were read back (``apply --verify``)
    reason: str = ""  # why an interrupted or aborted run stopped
    report_error: str = ""  # the report file could not be written (the journal has it all)

    def settle(self) -> None:
        """``completed`` becomes ``partial`` when some item did not end well."""
        c = self.counts
        troubled = c["failed"] or c["skipped"] or c["conflict"]
        if self.status is ApplyStatus.COMPLETED and troubled:
            self.status = ApplyStatus.PARTIAL

    @property
    def exit_code(self) -> int:
        code = EXIT_CODES[self.status]
        # A run whose report could not be written is not a run to call a success.
        return 3 if self.report_error and code == 0 else code

    @property
    def counts(self) -> dict[str, int]:
        counts = {s.value: 0 for s in Status}
        for outcome in self.outcomes:
            counts[outcome.status.value] += 1
        return counts

    @property
    def summary(self) -> str:
        """The final line a run prints."""
        c = self.counts
        if self.status in (ApplyStatus.INTERRUPTED, ApplyStatus.ABORTED) and not (
            c["changed"] or c["failed"] or c["unchanged"]
        ):
            return (
                f"{self.status.value} while reading the live state; nothing was written "
                f"(requests={self.requests})"
            )
        conflicts = f"conflicts={c['conflict']} " if c["conflict"] else ""
        unverified = sum(
            1 for o in self.outcomes if o.status is Status.CHANGED and o.verified is None
        )
        shown = f"unverified={unverified} " if self.verify and unverified else ""
        return (
            f"changed={c['changed']} unchanged={c['unchanged']} "
            f"failed={c['failed']} skipped={c['skipped']} {conflicts}{shown}"
            f"requests={self.requests} in {self.duration:.1f}s"
        )


def build_report(
    result: ApplyResult,
    *,
    manifest_digest: str,
    started: str,
    cooldowns: int,
    manifest_path: str = "",
    invocation: Invocation | None = None,
) -> dict[str, Any]:
    invocation = invocation or Invocation()
    return {
        "format_version": REPORT_FORMAT_VERSION,
        "tool_version": tool_version(),
        "manifest": result.plan.manifest,
        "manifest_path": str(Path(manifest_path or result.plan.manifest).resolve()),
        "manifest_digest": manifest_digest,
        "api_base": invocation.api_base,
        "command": invocation.command,
        "flags": invocation.flags,
        "status": result.status.value,
        "reason": result.reason,
        "exit_code": result.exit_code,
        "started": started,
        "finished": now_iso(),
        "duration": round(result.duration, 3),
        "totals": {**result.counts, "requests": result.requests, "cooldowns": cooldowns},
        "items": ReportItems(result.outcomes),
    }


class ReportItems:
    """A report's items, each made into a dict only as it is written: a million items
    held as dicts (and as one JSON string) made the report the run's peak of memory."""

    def __init__(self, outcomes: Iterable[ItemOutcome]) -> None:
        self._outcomes = sorted(outcomes, key=lambda o: o.key.sort_key())

    def __iter__(self) -> Iterator[dict[str, Any]]:
        return (outcome.to_dict() for outcome in self._outcomes)

    def __len__(self) -> int:
        return len(self._outcomes)


def tool_version() -> str:
    try:
        return metadata.version("bulkpolyv")
    except metadata.PackageNotFoundError:  # run from a source tree without installing
        return "unknown"


def write_report(path: Path, report: dict[str, Any]) -> None:
    """Write the report atomically (temp file + rename), mode 0600: the run's fields,
    then its items, one per line, made and written one at a time."""
    write_private(path, _report_text(report), json_text=True)


def _report_text(report: dict[str, Any]) -> Iterator[str]:
    run = json.dumps(
        {k: v for k, v in report.items() if k != "items"}, indent=2, ensure_ascii=False
    )
    yield run.removesuffix("\n}") + ',\n  "items": ['
    for number, item in enumerate(report["items"]):
        yield ("\n    " if number == 0 else ",\n    ") + json.dumps(item, ensure_ascii=False)
    yield "\n  ]\n}\n"


# What --retry-failed runs again: everything that did not end well.
RETRIED = frozenset({Status.FAILED.value, Status.SKIPPED.value, Status.CONFLICT.value})


def failed_items(path: Path, manifest_digest: str | None = None) -> set[ItemKey]:
    """The failed, skipped and conflicting items of an earlier run's report — which must
    be a report of the manifest whose digest is ``manifest_digest``."""
    report = read_report(path)
    if manifest_digest is not None and report.get("manifest_digest") != manifest_digest:
        raise ReportError(
            f"{path}: this report is of another manifest, or the manifest changed since that "
            "run: --retry-failed takes a report of this manifest (run apply without it)"
        )
    keys = set()
    for number, item in enumerate(report["items"], start=1):
        try:
            if not isinstance(item, dict):
                raise ValueError("not an object")
            if item.get("status") in RETRIED:
                keys.add(ItemKey.from_dict(item))
        except ValueError as exc:
            raise ReportError(f"{path}: item {number} of the report is broken: {exc}") from None
    return keys


def looks_like_report(data: object) -> bool:
    """Whether parsed JSON has a report's shape: to say "this is a report" when one is
    given where another file (a plan file) was asked for."""
    return isinstance(data, dict) and isinstance(data.get("items"), list) and "status" in data


def read_report(path: Path) -> dict[str, Any]:
    """A report file as written by :func:`write_report`; ReportError naming the file if not."""
    try:
        report = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise ReportError(f"{path}: cannot read the report ({exc})") from None
    except ValueError as exc:
        raise ReportError(f"{path}: not a bulkpolyv report: not valid JSON ({exc})") from None
    if not isinstance(report, dict) or not isinstance(report.get("items"), list):
        raise ReportError(f"{path}: not a bulkpolyv report: it has no list of items")
    version = report.get("format_version")
    if version != REPORT_FORMAT_VERSION:
        raise ReportError(
            f"{path}: report format {version!r}, this bulkpolyv reads format "
            f"{REPORT_FORMAT_VERSION}"
        )
    return report

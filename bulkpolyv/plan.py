"""Planning: (manifest, live state) → Plan; the renderers live in :mod:`bulkpolyv.render`.

Everything here is pure. A :class:`Plan` is a sorted, serialisable value — the same
manifest and live state always give the same plan, so two runs of ``plan`` print the same
text and the plan's checksum means something. Values that are secret or sensitive
(passwords, callback-URL query strings) are kept in the plan, because apply must send them,
but every renderer and every ``to_dict`` shows them redacted.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from bulkpolyv.manifest.model import DesiredAccount, DesiredMonitor, Manifest
from bulkpolyv.manifest.problems import Location
from bulkpolyv.records import Credentials, Monitor
from bulkpolyv.urls import normalise_url, redact_url

PLAN_FORMAT_VERSION = 1


class OpKind(StrEnum):
    SET_CALLBACK = "set_callback"
    SWITCH_OFF_CALLBACK = "switch_off_callback"
    UPDATE_MONITOR = "update_monitor"


@dataclass(frozen=True, order=True)
class ItemKey:
    """One managed thing: an account's callback (channel 0, monitor 0) or a monitor account."""

    account: str
    channel_id: int = 0
    monitor_id: int = 0

    @property
    def is_callback(self) -> bool:
        return self.channel_id == 0

    def to_dict(self) -> dict[str, Any]:
        """The key as every file writes it: absent ids are ``None``, not 0."""
        return {
            "account": self.account,
            "channel_id": self.channel_id or None,
            "monitor_id": self.monitor_id or None,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ItemKey:
        """The key :meth:`to_dict` wrote. Raises ValueError, saying which part is wrong."""
        account = data.get("account")
        if not isinstance(account, str) or not account:
            raise ValueError("an item without an account name")
        ids = []
        for name in ("channel_id", "monitor_id"):
            value = data.get(name)
            if value is not None and (not isinstance(value, int) or isinstance(value, bool)):
                raise ValueError(f"{name} {value!r} is not a whole number")
            ids.append(value or 0)
        return cls(account, ids[0], ids[1])

    def __str__(self) -> str:
        if self.is_callback:
            return f"{self.account} record callback"
        if not self.monitor_id:
            return f"{self.account}/{self.channel_id}"
        return f"{self.account}/{self.channel_id} monitor {self.monitor_id}"


@dataclass(frozen=True)
class FieldChange:
    field: str
    before: str | None = field(repr=False)
    after: str | None = field(repr=False)
    before_known: bool = True

    def shown(self) -> tuple[str, str]:
        """(before, after) as any output may show them."""
        if self.field == "password":
            return ("(unknown)" if not self.before_known else "(hidden)", "(changed)")
        before = redact_url(self.before) if self.field == "record_callback" else self.before
        after = redact_url(self.after) if self.field == "record_callback" else self.after
        return (
            "(unknown)" if not self.before_known else _text(before),
            _text(after),
        )


@dataclass(frozen=True)
class Operation:
    kind: OpKind
    key: ItemKey
    changes: tuple[FieldChange, ...]
    source: Location

    @property
    def destructive(self) -> bool:
        """Switching a callback off or a monitor account off: what the safety check counts."""
        if self.kind is OpKind.SWITCH_OFF_CALLBACK:
            return True
        return any(c.field == "enable" and c.after == "N" and c.before != "N" for c in self.changes)

    @property
    def symbol(self) -> str:
        if self.kind is OpKind.SWITCH_OFF_CALLBACK:
            return "-"
        if all(not c.before_known for c in self.changes):
            return "?"
        return "~"

    def desired_values(self) -> dict[str, str | None]:
        """Field → the value to write: what the request that carries this out sends."""
        return {change.field: change.after for change in self.changes}

    def to_dict(self) -> dict[str, Any]:
        return {
            "op": self.kind.value,
            **self.key.to_dict(),
            "changes": [
                {
                    "field": c.field,
                    "before": c.shown()[0],
                    "after": c.shown()[1],
                    "before_known": c.before_known,
                }
                for c in self.changes
            ],
            "destructive": self.destructive,
            "source": str(self.source),
        }


@dataclass(frozen=True)
class PlanProblem:
    """An item that cannot be planned (its live state could not be read, or it does not
    exist on POLYV). ``auth`` problems cover the whole account."""

    key: ItemKey
    message: str
    source: Location
    auth: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {
            **self.key.to_dict(),
            "message": self.message,
            "source": str(self.source),
        }


@dataclass
class LiveState:
    """What POLYV holds now, as far as the manifest manages it.

    ``failures`` maps an account's callback (``ItemKey(account)``) or a channel
    (``ItemKey(account, channel_id)``) whose read failed to the reason; it fails just those
    items. ``account_failures`` holds accounts POLYV refused to authenticate: every item of
    such an account is skipped.
    """

    callbacks: dict[str, str | None] = field(default_factory=dict)
    monitors: dict[tuple[str, int], dict[int, Monitor]] = field(default_factory=dict)
    failures: dict[ItemKey, str] = field(default_factory=dict)
    account_failures: dict[str, str] = field(default_factory=dict)

    def failure(self, key: ItemKey) -> tuple[str, bool] | None:
        """Why ``key`` (a callback or a channel) cannot be planned, and whether the whole
        account is out; None when it was read."""
        reason = self.account_failures.get(key.account)
        if reason is not None:
            return reason, True
        reason = self.failures.get(key)
        return (reason, False) if reason is not None else None


@dataclass(frozen=True)
class Plan:
    manifest: str
    manifest_digest: str
    operations: tuple[Operation, ...]
    problems: tuple[PlanProblem, ...]
    unchanged: tuple[tuple[ItemKey, Location], ...]
    managed_callbacks: int
    managed_enables: int
    # What apply needs besides the operations: each account's credentials, built once.
    # Never serialised, never shown.
    credentials: Mapping[str, Credentials] = field(default_factory=dict, repr=False, compare=False)

    @property
    def has_changes(self) -> bool:
        return bool(self.operations)

    def counts(self) -> dict[str, int]:
        ops = self.operations
        return {
            "change": sum(1 for o in ops if o.kind is not OpKind.SWITCH_OFF_CALLBACK),
            "switch_off": sum(1 for o in ops if o.kind is OpKind.SWITCH_OFF_CALLBACK),
            "unknown": sum(1 for o in ops if o.symbol == "?"),
            "unchanged": len(self.unchanged),
            "errors": len(self.problems),
        }

    def to_dict(self) -> dict[str, Any]:
        return {
            "format_version": PLAN_FORMAT_VERSION,
            "manifest": self.manifest,
            "manifest_digest": self.manifest_digest,
            "counts": self.counts(),
            "operations": [o.to_dict() for o in self.operations],
            "problems": [p.to_dict() for p in self.problems],
        }

    def checksum(self) -> str:
        text = json.dumps(self.to_dict(), sort_keys=True, ensure_ascii=False)
        return hashlib.sha256(text.encode()).hexdigest()


# --- comparing ------------------------------------------------------------------------------


def _text(value: str | None) -> str:
    return "(none)" if value is None else value


def diff_callback(account: DesiredAccount, live: str | None) -> Operation | None:
    if normalise_url(account.record_callback) == normalise_url(live):
        return None
    kind = OpKind.SET_CALLBACK if account.record_callback else OpKind.SWITCH_OFF_CALLBACK
    change = FieldChange("record_callback", live, account.record_callback)
    return Operation(
        kind, ItemKey(account.name), (change,), account.callback_source or account.source
    )


def diff_monitor(
    account: str, channel_id: int, desired: DesiredMonitor, live: Monitor
) -> Operation | None:
    changes = []
    for name in desired.managed_fields:
        want = getattr(desired, name)
        have = getattr(live, name)
        if have is None:
            changes.append(FieldChange(name, None, want, before_known=False))
        elif have != want:
            changes.append(FieldChange(name, have, want))
    if not changes:
        return None
    return Operation(
        OpKind.UPDATE_MONITOR,
        ItemKey(account, channel_id, desired.id),
        tuple(changes),
        desired.source,
    )


# --- planning -------------------------------------------------------------------------------


def make_plan(manifest: Manifest, live: LiveState) -> Plan:
    """Every operation that brings POLYV to the manifest, plus what cannot be planned."""
    operations: list[Operation] = []
    problems: list[PlanProblem] = []
    unchanged: list[tuple[ItemKey, Location]] = []
    for account in manifest.accounts:
        if account.manages_callback:
            key = ItemKey(account.name)
            source = account.callback_source or account.source
            callback_failure = live.failure(key)
            if callback_failure:
                problems.append(PlanProblem(key, callback_failure[0], source, callback_failure[1]))
            elif account.name in live.callbacks:
                op = diff_callback(account, live.callbacks[account.name])
                operations.append(op) if op else unchanged.append((key, source))
        for channel in account.channels:
            channel_key = ItemKey(account.name, channel.channel_id)
            failure = live.failure(channel_key)
            listed = live.monitors.get((account.name, channel.channel_id))
            for monitor in channel.monitors:
                key = ItemKey(account.name, channel.channel_id, monitor.id)
                if failure:
                    problems.append(PlanProblem(key, failure[0], monitor.source, failure[1]))
                elif listed is None:
                    continue  # not read in this run (filtered out)
                elif monitor.id not in listed:
                    problems.append(
                        PlanProblem(
                            key,
                            f"monitor account {monitor.id} does not exist on channel "
                            f"{channel.channel_id} (POLYV has no endpoint to create one)",
                            monitor.source,
                        )
                    )
                else:
                    op = diff_monitor(account.name, channel.channel_id, monitor, listed[monitor.id])
                    operations.append(op) if op else unchanged.append((key, monitor.source))
    return assemble_plan(manifest, operations, problems, unchanged)


def assemble_plan(
    manifest: Manifest,
    operations: Iterable[Operation],
    problems: Iterable[PlanProblem] = (),
    unchanged: Iterable[tuple[ItemKey, Location]] = (),
) -> Plan:
    """A Plan for ``manifest``: entries sorted by item (so a plan reads the same every
    time, whatever order the reads finished in) and the managed counts the safety check
    needs."""
    return Plan(
        manifest=manifest.path,
        manifest_digest=manifest.digest,
        operations=tuple(sorted(operations, key=lambda o: o.key)),
        problems=tuple(sorted(problems, key=lambda p: p.key)),
        unchanged=tuple(sorted(unchanged, key=lambda u: u[0])),
        managed_callbacks=sum(1 for a in manifest.accounts if a.manages_callback),
        managed_enables=sum(
            1
            for a in manifest.accounts
            for c in a.channels
            for m in c.monitors
            if m.enable is not None
        ),
        credentials=credentials_by_account(manifest),
    )


def credentials_by_account(manifest: Manifest) -> dict[str, Credentials]:
    """Account name → the credentials its requests are signed with."""
    return {a.name: Credentials(a.user_id, a.app_id, a.app_secret) for a in manifest.accounts}


@dataclass(frozen=True)
class SafetyVerdict:
    refused: bool
    reasons: tuple[str, ...]


DESTRUCTIVE_SHARE = 0.30
DESTRUCTIVE_MINIMUM = 10


def check_safety(plan: Plan) -> SafetyVerdict:
    """Refuse a plan that switches off more than 30 % of the managed callbacks or monitors
    (and at least 10): the signature of a wrong manifest, not of a policy change."""
    reasons = []
    offs = sum(1 for o in plan.operations if o.kind is OpKind.SWITCH_OFF_CALLBACK)
    disables = sum(1 for o in plan.operations if o.kind is OpKind.UPDATE_MONITOR and o.destructive)
    for count, managed, what in (
        (offs, plan.managed_callbacks, "record callbacks switched off"),
        (disables, plan.managed_enables, "monitor accounts disabled"),
    ):
        if count >= DESTRUCTIVE_MINIMUM and managed and count / managed > DESTRUCTIVE_SHARE:
            reasons.append(
                f"{count} of {managed} managed {what} ({count / managed:.0%}, over "
                f"{DESTRUCTIVE_SHARE:.0%})"
            )
    return SafetyVerdict(bool(reasons), tuple(reasons))

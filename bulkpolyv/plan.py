"""Planning: (manifest, live state) → Plan; the renderers live in :mod:`bulkpolyv.render`.

Everything here is pure. A :class:`Plan` is a sorted, serialisable value — the same
manifest and live state always give the same plan, so two runs of ``plan`` print the same
text and the plan's checksum means something. Values that are secret or sensitive
(passwords, callback-URL query strings) are kept in the plan, because apply must send them,
but every renderer and every ``to_dict`` shows them redacted.

The managed items (an account's callbacks, a channel's monitor switch, monitor accounts)
are named by :class:`~bulkpolyv.items.ItemKey`.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from bulkpolyv.fastjson import dumps
from bulkpolyv.items import MONITORING, ItemKey, natural_key
from bulkpolyv.manifest.model import MONITOR_FIELDS, DesiredMonitor, Manifest
from bulkpolyv.manifest.problems import Location
from bulkpolyv.records import Credentials, Monitor
from bulkpolyv.urls import normalise_url, redact_url

# 2: items carry ``setting`` (each callback, each channel's monitor switch). A format-1
# file still reads: its account-only items are the record callback.
PLAN_FORMAT_VERSION = 2
READABLE_PLAN_FORMATS = (1, 2)
CHECKSUM_SLICE = 1024  # operations serialised at once for the checksum


class OpKind(StrEnum):
    SET_CALLBACK = "set_callback"
    SWITCH_OFF_CALLBACK = "switch_off_callback"
    SET_MONITORING = "set_monitoring"
    SWITCH_OFF_MONITORING = "switch_off_monitoring"
    UPDATE_MONITOR = "update_monitor"


SWITCH_OFFS = (OpKind.SWITCH_OFF_CALLBACK, OpKind.SWITCH_OFF_MONITORING)


@dataclass(frozen=True, slots=True)
class FieldChange:
    field: str
    before: str | None = field(repr=False)
    after: str | None = field(repr=False)
    before_known: bool = True

    @property
    def is_url(self) -> bool:
        return self.field.endswith("_callback")

    def to_dict(self) -> dict[str, Any]:
        before, after = self.shown()
        return {
            "field": self.field,
            "before": before,
            "after": after,
            "before_known": self.before_known,
        }

    def shown(self) -> tuple[str, str]:
        """(before, after) as any output may show them. (For every item, by the journal,
        the report and the checksum: ``is_url`` and ``(none)`` written out, not called.)"""
        name = self.field
        if name == "password":
            return ("(unknown)" if not self.before_known else "(hidden)", "(changed)")
        before, after = self.before, self.after
        if name.endswith("_callback"):
            before, after = redact_url(before), redact_url(after)
        return (
            "(unknown)" if not self.before_known else "(none)" if before is None else before,
            "(none)" if after is None else after,
        )


@dataclass(frozen=True, slots=True)
class Operation:
    kind: OpKind
    key: ItemKey
    changes: tuple[FieldChange, ...]
    source: Location

    @property
    def destructive(self) -> bool:
        """Switching a callback, a channel's monitoring or a monitor account off: what
        the safety check counts."""
        if self.kind in SWITCH_OFFS:
            return True
        return any(c.field == "enable" and c.after == "N" and c.before != "N" for c in self.changes)

    @property
    def symbol(self) -> str:
        if self.kind in SWITCH_OFFS:
            return "-"
        if all(not c.before_known for c in self.changes):
            return "?"
        return "~"

    @property
    def unknown(self) -> bool:
        """Some field's live value could not be read: it is written blind."""
        return any(not c.before_known for c in self.changes)

    @property
    def write_only(self) -> bool:
        """Every field it changes is one POLYV does not return: nothing shows it differs,
        and nothing could show it has been done. Written on every apply; not drift."""
        return self.kind not in SWITCH_OFFS and all(not c.before_known for c in self.changes)

    def desired_values(self) -> dict[str, str | None]:
        """Field → the value to write: what the request that carries this out sends."""
        return {change.field: change.after for change in self.changes}

    def change_dicts(self) -> list[dict[str, Any]]:
        """The changes as any output may show them (what reports and plan files carry)."""
        return [c.to_dict() for c in self.changes]

    def to_dict(self) -> dict[str, Any]:
        return {
            "op": self.kind.value,
            **self.key.to_dict(),
            "changes": self.change_dicts(),
            "destructive": self.destructive,
            "source": str(self.source),
        }


@dataclass(frozen=True, slots=True)
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


class ReadKind(StrEnum):
    """What one live-state read fetches (see :mod:`bulkpolyv.operations`)."""

    CALLBACKS = "callbacks"  # an account's callback/get: all three callbacks
    MONITORS = "monitors"  # a channel's monitor/list
    MONITORING = "monitoring"  # a channel's monitor/querySetting
    CHANNEL_CALLBACKS = "channel callback setting"  # a channel's v3 callback/get-setting


ChannelRef = tuple[str, int]  # (account, channel_id)


@dataclass
class LiveState:
    """What POLYV holds now, as far as the manifest manages it.

    ``callbacks`` holds, per account, the callbacks POLYV answered (a kind missing from
    the answer is unknown, not "unset"). ``monitoring`` is a channel's switch, None when
    POLYV did not say. ``follows_account`` is each checked channel's
    ``globalSettingEnabled`` (``plan --check-channel-callbacks``). ``failures`` maps a read
    (account, channel or 0, what) that failed to the reason; it fails just the items that
    read serves. ``account_failures`` holds accounts POLYV refused to authenticate: every
    item of such an account is skipped.
    """

    callbacks: dict[str, Mapping[str, str | None]] = field(default_factory=dict)
    monitors: dict[ChannelRef, dict[int, Monitor]] = field(default_factory=dict)
    monitoring: dict[ChannelRef, str | None] = field(default_factory=dict)
    follows_account: dict[ChannelRef, bool | None] = field(default_factory=dict)
    failures: dict[tuple[str, int, ReadKind], str] = field(default_factory=dict)
    account_failures: dict[str, str] = field(default_factory=dict)

    def failure(self, account: str, channel_id: int, what: ReadKind) -> tuple[str, bool] | None:
        """Why the items a read serves cannot be planned, and whether the whole account is
        out; None when it was read."""
        reason = self.account_failures.get(account)
        if reason is not None:
            return reason, True
        reason = self.failures.get((account, channel_id, what))
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
    managed_switches: int = 0  # channels whose ``monitoring`` the manifest sets
    # Said under the plan, changing nothing: channels that ignore the account's callbacks.
    warnings: tuple[str, ...] = ()

    @property
    def has_changes(self) -> bool:
        """Something to write (apply asks, and writes)."""
        return bool(self.operations)

    @property
    def has_drift(self) -> bool:
        """Something shown to differ: what `plan` exits 2 for. Write-only items are written
        on every apply but are not drift — they could never be seen either way."""
        return any(not o.write_only for o in self.operations)

    def counts(self) -> dict[str, int]:
        ops = self.operations
        return {
            "change": sum(1 for o in ops if o.kind not in SWITCH_OFFS and not o.write_only),
            "switch_off": sum(1 for o in ops if o.kind in SWITCH_OFFS),
            # changes written at least partly blind: some live value could not be read
            "unknown": sum(
                1 for o in ops if o.unknown and o.kind not in SWITCH_OFFS and not o.write_only
            ),
            "write_only": sum(1 for o in ops if o.write_only),
            "unchanged": len(self.unchanged),
            "errors": len(self.problems),
        }

    def to_dict(self, *, operations: bool = True) -> dict[str, Any]:
        return {
            "format_version": PLAN_FORMAT_VERSION,
            "manifest": self.manifest,
            "manifest_digest": self.manifest_digest,
            "counts": self.counts(),
            "operations": [o.to_dict() for o in self.operations] if operations else [],
            "problems": [p.to_dict() for p in self.problems],
            "warnings": list(self.warnings),
        }

    def checksum(self) -> str:
        """A digest of what :meth:`to_dict` shows, taken a slice of operations at a time
        (the whole plan as one JSON text was a run's peak of memory, 1.2 kB per
        operation). Each operation is hashed as a flat row of the same facts, not as its
        dict: this runs once per planned item, and the dicts were half its cost. Its
        counts follow from the rest. (run.py calls it under ``long_lived``: its rows set off
        collections that walked the whole plan.)"""
        header = {
            "format_version": PLAN_FORMAT_VERSION,
            "manifest": self.manifest,
            "manifest_digest": self.manifest_digest,
            "unchanged": len(self.unchanged),
            "problems": [p.to_dict() for p in self.problems],
            "warnings": list(self.warnings),
        }
        digest = hashlib.sha256(dumps(header, sort_keys=True))
        ops = self.operations
        for start in range(0, len(ops), CHECKSUM_SLICE):
            digest.update(dumps([_checksum_row(o) for o in ops[start : start + CHECKSUM_SLICE]]))
        return digest.hexdigest()


def _checksum_row(op: Operation) -> list[Any]:
    """An operation's facts as :meth:`Operation.to_dict` shows them (secrets as shown), in
    one flat list: key, source, ``destructive``, then four facts per change."""
    key, source = op.key, op.source
    row = [op.kind._value_, key.account, key.channel_id, key.monitor_id, key.setting,
           source.file, source.line, source.column, op.destructive]  # fmt: skip
    for change in op.changes:
        row += (change.field, *change.shown(), change.before_known)
    return row


# --- comparing ------------------------------------------------------------------------------


def diff_callback(
    key: ItemKey, want: str | None, live: Mapping[str, str | None], source: Location
) -> Operation | None:
    """The change of one callback; ``live`` holds the kinds POLYV answered."""
    kind = key.callback_kind
    if kind in live:
        if normalise_url(want) == normalise_url(live[kind]):
            return None
        change = FieldChange(key.setting, live[kind], want)
    else:
        change = FieldChange(key.setting, None, want, before_known=False)
    op_kind = OpKind.SET_CALLBACK if want else OpKind.SWITCH_OFF_CALLBACK
    return Operation(op_kind, key, (change,), source)


def diff_monitoring(
    key: ItemKey, want: str, live: str | None, source: Location
) -> Operation | None:
    """The change of a channel's switch; ``live`` None: POLYV did not say."""
    if live == want:
        return None
    change = FieldChange(MONITORING, live, want, before_known=live is not None)
    kind = OpKind.SET_MONITORING if want == "Y" else OpKind.SWITCH_OFF_MONITORING
    return Operation(kind, key, (change,), source)


def diff_monitor(key: ItemKey, desired: DesiredMonitor, live: Monitor) -> Operation | None:
    changes = []
    for name in MONITOR_FIELDS:  # the fields the manifest manages: those it gives
        want = getattr(desired, name)
        if want is None:
            continue
        have = getattr(live, name)
        if have is None:
            changes.append(FieldChange(name, None, want, before_known=False))
        elif have != want:
            changes.append(FieldChange(name, have, want))
    if not changes:
        return None
    return Operation(OpKind.UPDATE_MONITOR, key, tuple(changes), desired.source)


# --- planning -------------------------------------------------------------------------------


class _Planner:
    """Collects operations, problems and unchanged items while make_plan walks a manifest."""

    def __init__(self, live: LiveState) -> None:
        self.live = live
        self.operations: list[Operation] = []
        self.problems: list[PlanProblem] = []
        self.unchanged: list[tuple[ItemKey, Location]] = []

    def add(self, key: ItemKey, op: Operation | None, source: Location) -> None:
        self.operations.append(op) if op else self.unchanged.append((key, source))

    def blocked(self, key: ItemKey, source: Location, channel_id: int, what: ReadKind) -> bool:
        """Record a problem when the read behind ``key`` failed; True when it did."""
        failure = self.live.failure(key.account, channel_id, what)
        if failure:
            self.problems.append(PlanProblem(key, failure[0], source, failure[1]))
        return failure is not None


def make_plan(manifest: Manifest, live: LiveState) -> Plan:
    """Every operation that brings POLYV to the manifest, plus what cannot be planned."""
    planner = _Planner(live)
    for account in manifest.accounts:
        name = account.name
        for kind, want in account.callbacks.items():
            key = ItemKey.callback(name, kind)
            source = account.callback_sources.get(kind, account.source)
            if not planner.blocked(key, source, 0, ReadKind.CALLBACKS) and name in live.callbacks:
                planner.add(key, diff_callback(key, want, live.callbacks[name], source), source)
        for channel in account.channels:
            ref = (name, channel.channel_id)
            if channel.monitoring is not None:
                key = ItemKey.monitoring(*ref)
                source = channel.monitoring_source or channel.source
                if (
                    not planner.blocked(key, source, channel.channel_id, ReadKind.MONITORING)
                    and ref in live.monitoring
                ):
                    op = diff_monitoring(key, channel.monitoring, live.monitoring[ref], source)
                    planner.add(key, op, source)
            for monitor in channel.monitors:
                _plan_monitor(planner, name, channel.channel_id, monitor)
    return assemble_plan(
        manifest, planner.operations, planner.problems, planner.unchanged, override_warnings(live)
    )


def _plan_monitor(
    planner: _Planner, account: str, channel_id: int, monitor: DesiredMonitor
) -> None:
    key = ItemKey(account, channel_id, monitor.id)
    if planner.blocked(key, monitor.source, channel_id, ReadKind.MONITORS):
        return
    listed = planner.live.monitors.get((account, channel_id))
    if listed is None:
        return  # not read in this run (filtered out)
    if monitor.id not in listed:
        planner.problems.append(
            PlanProblem(
                key,
                f"monitor account {monitor.id} does not exist on channel {channel_id} "
                "(POLYV has no endpoint to create one)",
                monitor.source,
            )
        )
        return
    planner.add(key, diff_monitor(key, monitor, listed[monitor.id]), monitor.source)


def override_warnings(live: LiveState) -> tuple[str, ...]:
    """One line per account whose channels ignore its callbacks (their own settings,
    ``globalSettingEnabled: N``), and one per channel that could not be checked."""
    own: dict[str, list[int]] = {}
    for (account, channel_id), follows in live.follows_account.items():
        if follows is False:
            own.setdefault(account, []).append(channel_id)
    lines = [
        (
            f"{account}: channels {', '.join(map(str, sorted(ids)))} use their own"
            if len(ids) > 1
            else f"{account}: channel {ids[0]} uses its own"
        )
        + " callback settings (globalSettingEnabled: N): the account's callbacks do not "
        "reach them"
        for account, ids in sorted(own.items(), key=lambda item: natural_key(item[0]))
    ]
    for (account, channel_id, what), reason in sorted(live.failures.items()):
        if what is ReadKind.CHANNEL_CALLBACKS:
            lines.append(f"{account}/{channel_id}: could not check its callback setting: {reason}")
    return tuple(lines)


def assemble_plan(
    manifest: Manifest,
    operations: Iterable[Operation],
    problems: Iterable[PlanProblem] = (),
    unchanged: Iterable[tuple[ItemKey, Location]] = (),
    warnings: Iterable[str] = (),
) -> Plan:
    """A Plan for ``manifest``: entries sorted by item (so a plan reads the same every
    time, whatever order the reads finished in) and the managed counts the safety check
    needs."""
    channels = [c for a in manifest.accounts for c in a.channels]
    return Plan(
        manifest=manifest.path,
        manifest_digest=manifest.digest,
        # By the keys themselves (ItemKey.__lt__), not by a sort_key tuple made per entry:
        # those tuples, all alive during the sort, were 67 MB of the peak at 1M rows.
        operations=tuple(sorted(operations, key=lambda o: o.key)),
        problems=tuple(sorted(problems, key=lambda p: p.key)),
        unchanged=tuple(sorted(unchanged, key=lambda u: u[0])),
        managed_callbacks=sum(len(a.callbacks) for a in manifest.accounts),
        managed_enables=sum(1 for c in channels for m in c.monitors if m.enable is not None),
        credentials=credentials_by_account(manifest),
        managed_switches=sum(1 for c in channels if c.monitoring is not None),
        warnings=tuple(warnings),
    )


def credentials_by_account(manifest: Manifest) -> dict[str, Credentials]:
    """Account name → the credentials its requests are signed with."""
    return {a.name: Credentials(a.user_id, a.app_id, a.app_secret) for a in manifest.accounts}

"""Reviewed plans: ``plan --out plan.json`` writes one, ``apply --plan plan.json`` applies
exactly it.

The file is the plan's JSON (values redacted as everywhere) plus, per changed field, two
fingerprints: of the value the plan saw and of the value it will write. They are HMACs keyed
with the account's appSecret, so the file reveals nothing that could be guessed offline (a
plain hash of a 6-character password would), while whoever runs the apply — and holds the
secret — can check that the live value has not moved since the review (else the item is a
*conflict*) and that the manifest still asks for what was reviewed. Its ``kind`` says it is
a plan file: a report, or a plan printed with ``--format json`` (no fingerprints), is refused
by name rather than applied as a plan with nothing in it.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from pathlib import Path
from typing import Any

from bulkpolyv.errors import BulkPolyvError
from bulkpolyv.manifest.model import DesiredAccount, Manifest
from bulkpolyv.plan import (
    READABLE_PLAN_FORMATS,
    FieldChange,
    ItemKey,
    Operation,
    OpKind,
    Plan,
    assemble_plan,
)
from bulkpolyv.privatefiles import write_private
from bulkpolyv.report import looks_like_report

# What marks a file as a plan file (a plan's JSON from ``plan --format json``, a report
# and a plan file share keys such as ``format_version``).
PLAN_FILE_KIND = "bulkpolyv plan file"
_WRITE_ONE = "(write one with `bulkpolyv plan --out`)"


class ReviewedPlanError(BulkPolyvError):
    """A plan file that cannot be applied as it stands."""


def fingerprint(app_secret: str, field: str, value: str | None) -> str:
    text = f"{field}\0{'' if value is None else value}\0{value is None}"
    return hmac.new(app_secret.encode(), text.encode(), hashlib.sha256).hexdigest()[:32]


def plan_file_dict(plan: Plan) -> dict[str, Any]:
    """The plan's JSON with the fingerprints, keyed with the secrets the plan carries."""
    data = {"kind": PLAN_FILE_KIND, **plan.to_dict()}
    for entry, op in zip(data["operations"], plan.operations, strict=True):
        secret = plan.credentials[op.key.account].app_secret
        for shown, change in zip(entry["changes"], op.changes, strict=True):
            shown["before_fingerprint"] = (
                fingerprint(secret, change.field, change.before) if change.before_known else None
            )
            shown["after_fingerprint"] = fingerprint(secret, change.field, change.after)
    return data


def write_plan_file(path: Path, plan: Plan) -> None:
    """Write the plan file atomically, mode 0600 like a report (it names accounts and
    channels); PrivateFileError (a sentence naming the path) when it cannot be written."""
    text = json.dumps(plan_file_dict(plan), indent=2, ensure_ascii=False) + "\n"
    write_private(path, text, json_text=True)


class ReviewedPlan:
    """A plan file checked against the manifest, with the conflict check for apply."""

    def __init__(self, path: Path, manifest: Manifest) -> None:
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise ReviewedPlanError(f"{path}: not a readable plan file ({exc})") from None
        _check_is_plan_file(path, data)
        if data.get("manifest_digest") != manifest.digest:
            raise ReviewedPlanError(
                f"{path}: the manifest (or one of its CSV files) changed since this plan was "
                "made; run `bulkpolyv plan --out` again and review the new plan"
            )
        accounts = {a.name: a for a in manifest.accounts}
        self.secrets = {a.name: a.app_secret for a in manifest.accounts}
        self.before: dict[ItemKey, dict[str, str | None]] = {}
        operations = []
        for number, entry in enumerate(data.get("operations", []), start=1):
            try:
                operations.append(self._operation(entry, accounts))
            except (KeyError, TypeError, ValueError) as exc:
                raise ReviewedPlanError(
                    f"{path}: operation {number} of the plan is broken ({exc!r})"
                ) from None
        self.plan = assemble_plan(manifest, operations)

    def _operation(self, entry: dict[str, Any], accounts: dict[str, DesiredAccount]) -> Operation:
        key = ItemKey.from_dict(entry)
        account = accounts.get(key.account)
        if account is None:
            raise ReviewedPlanError(f"the plan names account {key.account!r}, not in the manifest")
        desired, source = _desired(account, key)
        changes = []
        self.before[key] = {}
        for shown in entry["changes"]:
            field = shown["field"]
            want = desired.get(field) if desired is not None else None
            if (
                desired is None
                or field not in desired
                or not hmac.compare_digest(
                    fingerprint(account.app_secret, field, want), shown["after_fingerprint"]
                )
            ):
                raise ReviewedPlanError(
                    f"{key}: the manifest no longer asks for the reviewed {field} (an "
                    "environment variable changed?); run `bulkpolyv plan --out` again"
                )
            # The before value as the reviewer saw it (redacted) is for display only; the
            # conflict check uses its fingerprint.
            known = shown.get("before_fingerprint") is not None
            changes.append(
                FieldChange(field, shown.get("before") if known else None, want, before_known=known)
            )
            self.before[key][field] = shown.get("before_fingerprint")
        return Operation(OpKind(entry["op"]), key, tuple(changes), source)

    def conflict(self, op: Operation, live: dict[str, str | None] | None) -> str | None:
        if live is None:
            return "the monitor account no longer exists"
        secret = self.secrets[op.key.account]
        for field, expected in self.before[op.key].items():
            if expected is not None and not hmac.compare_digest(
                fingerprint(secret, field, live.get(field)), expected
            ):
                return f"the live {field} changed since the plan was reviewed"
        return None


def _check_is_plan_file(path: Path, data: Any) -> None:
    """Refuse anything but a plan file: a report of the same manifest has no operations
    and would apply as "No changes."; plan output without fingerprints cannot be checked."""
    if looks_like_report(data):
        raise ReviewedPlanError(f"{path} is a bulkpolyv report, not a plan file {_WRITE_ONE}")
    if not isinstance(data, dict) or not (
        data.get("kind") == PLAN_FILE_KIND or _written_before_the_kind(data)
    ):
        raise ReviewedPlanError(f"{path} is not a bulkpolyv plan file {_WRITE_ONE}")
    if data.get("format_version") not in READABLE_PLAN_FORMATS:
        raise ReviewedPlanError(
            f"{path}: plan file format {data.get('format_version')!r}, this bulkpolyv reads "
            f"formats {', '.join(map(str, READABLE_PLAN_FORMATS))} {_WRITE_ONE}"
        )


def _written_before_the_kind(data: dict[str, Any]) -> bool:
    """A plan file from before ``kind`` was written: a plan (format 1 or 2) whose every
    change carries its fingerprints. (One without operations cannot be told from
    ``plan --format json`` output; applying either does nothing.)"""
    operations = data.get("operations")
    return (
        "kind" not in data
        and data.get("format_version") in (1, 2)
        and isinstance(data.get("manifest_digest"), str)
        and isinstance(data.get("counts"), dict)
        and isinstance(operations, list)
        and all(
            isinstance(entry, dict)
            and isinstance(entry.get("changes"), list)
            and all(isinstance(c, dict) and "after_fingerprint" in c for c in entry["changes"])
            for entry in operations
        )
    )


def _desired(account: DesiredAccount, key: ItemKey) -> tuple[dict[str, str | None] | None, Any]:
    """What the manifest asks of ``key`` now (field → value), and where; None when the
    manifest no longer manages it."""
    if key.is_callback:
        kind = key.callback_kind
        if kind not in account.callbacks:
            return None, account.source
        return {key.setting: account.callbacks[kind]}, account.callback_sources.get(
            kind, account.source
        )
    for channel in account.channels:
        if channel.channel_id != key.channel_id:
            continue
        if key.is_monitoring:
            if channel.monitoring is None:
                return None, channel.source
            return {key.setting: channel.monitoring}, channel.monitoring_source or channel.source
        for monitor in channel.monitors:
            if monitor.id == key.monitor_id:
                return {f: getattr(monitor, f) for f in monitor.managed_fields}, monitor.source
    return None, account.source

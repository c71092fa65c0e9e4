"""``bulkpolyv export``: write the live state of some accounts as a manifest.

The first step of a migration: export what POLYV holds, edit it, ``plan``, ``apply``. The
account headers (user_id, app_id, app_secret) are copied from the source manifest *as
written*, so secrets stay ``${VAR}`` references. Monitor passwords are not exported: POLYV
returns them in clear, and a manifest is a file that gets committed and mailed; they are
left unmanaged (add ``password:`` entries, as ``${VAR}``s, to manage them). Accounts with
many monitors get a CSV channel file beside the manifest.

Building the document is pure (:func:`render_export`); reading and writing happen in
:func:`export`.
"""

from __future__ import annotations

import csv
import dataclasses
import io
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import yaml

from bulkpolyv.errors import BulkPolyvError
from bulkpolyv.manifest.loader import CSV_COLUMNS
from bulkpolyv.manifest.model import DEFAULT_API_BASE, DesiredChannel, Manifest
from bulkpolyv.plan import LiveState
from bulkpolyv.run import Runtime

HEADER = """\
# Exported by `bulkpolyv export` from the live POLYV state.
# Monitor passwords are not exported (POLYV returns them in clear): they are unmanaged
# here. Secrets stay ${VAR} references, as in the source manifest.
"""


class ExportError(BulkPolyvError):
    pass


@dataclasses.dataclass(frozen=True)
class ExportedAccount:
    raw: dict[str, Any]  # the account as written in the source manifest
    record_callback: str | None
    channels: dict[int, list[dict[str, Any]]]  # channel → monitors (id, nickname, enable)


def channel_ids(channels: str | None, channels_file: str | None) -> list[int] | None:
    """The channel ids of ``--channels`` (comma-separated) or ``--channels-file`` (a CSV
    with a ``channel_id`` column, or one id per line); None when neither was given."""
    if channels and channels_file:
        raise ExportError("give --channels or --channels-file, not both")
    try:
        if channels:
            return [int(part) for part in channels.replace(" ", "").split(",") if part]
        if channels_file:
            lines = Path(channels_file).read_text(encoding="utf-8-sig").splitlines()
            if lines and "channel_id" in lines[0]:
                rows = csv.DictReader(lines)
                return sorted({int(row["channel_id"]) for row in rows if row["channel_id"]})
            return [int(line) for line in lines if line.strip()]
    except ValueError as exc:
        raise ExportError(f"channel ids must be whole numbers ({exc})") from None
    return None


def render_export(
    source: dict[str, Any], accounts: Iterable[ExportedAccount], out: Path, csv_over: int
) -> tuple[str, dict[Path, str]]:
    """The manifest text and its CSV files (path → text)."""
    document: dict[str, Any] = {"version": 1}
    if source.get("api_base", DEFAULT_API_BASE) != DEFAULT_API_BASE:
        document["api_base"] = source["api_base"]
    if "limits" in source:
        document["limits"] = source["limits"]
    exported_accounts = []
    files: dict[Path, str] = {}
    for account in accounts:
        entry = {k: account.raw[k] for k in ("name", "user_id", "app_id", "app_secret")}
        entry["record_callback"] = account.record_callback
        count = sum(len(m) for m in account.channels.values())
        if count > csv_over:
            csv_path = out.with_name(f"{out.stem}-{entry['name']}.csv")
            files[csv_path] = _csv(account.channels)
            entry["channels_file"] = csv_path.name
        else:
            entry["channels"] = [
                {"channel_id": channel_id, "monitors": monitors}
                for channel_id, monitors in sorted(account.channels.items())
            ]
        exported_accounts.append(entry)
    document["accounts"] = exported_accounts
    text = HEADER + yaml.safe_dump(document, sort_keys=False, allow_unicode=True, width=100)
    return text, files


def _csv(channels: dict[int, list[dict[str, Any]]]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for channel_id, monitors in sorted(channels.items()):
        for monitor in monitors:
            writer.writerow(
                [
                    channel_id,
                    monitor["id"],
                    monitor.get("nickname", ""),
                    "",
                    monitor.get("enable", ""),
                ]
            )
    return buffer.getvalue()


def export_targets(
    manifest: Manifest, names: Iterable[str], channel_ids: list[int] | None
) -> Manifest:
    """The accounts to read: each managing its callback (so it is read) and listing the
    channels asked for, or its own channels when none were given."""
    by_name = {a.name: a for a in manifest.accounts}
    chosen = list(names) or list(by_name)
    unknown = [n for n in chosen if n not in by_name]
    if unknown:
        raise ExportError(f"no account named {', '.join(unknown)} in {manifest.path}")
    accounts = []
    for name in chosen:
        account = by_name[name]
        ids = channel_ids if channel_ids is not None else [c.channel_id for c in account.channels]
        channels = tuple(DesiredChannel(cid, (), account.source) for cid in ids)
        accounts.append(dataclasses.replace(account, manages_callback=True, channels=channels))
    return dataclasses.replace(manifest, accounts=tuple(accounts))


def collect(
    targets: Manifest, live: LiveState, raw_accounts: dict[str, dict[str, Any]]
) -> list[ExportedAccount]:
    problems = [f"{key}: {reason}" for key, reason in sorted(live.failures.items())]
    problems += [f"{name}: {reason}" for name, reason in sorted(live.account_failures.items())]
    if problems:
        raise ExportError(
            "could not read the live state, nothing written:\n  " + "\n  ".join(problems)
        )
    exported = []
    for account in targets.accounts:
        channels = {}
        for channel in account.channels:
            listed = live.monitors.get((account.name, channel.channel_id), {})
            channels[channel.channel_id] = [
                {
                    "id": m.id,
                    **({"nickname": m.nickname} if m.nickname else {}),
                    **({"enable": m.enable} if m.enable else {}),
                }
                for m in sorted(listed.values(), key=lambda m: m.id)
            ]
        exported.append(
            ExportedAccount(raw_accounts[account.name], live.callbacks.get(account.name), channels)
        )
    return exported


async def export(
    manifest: Manifest,
    runtime: Runtime,
    *,
    names: Iterable[str],
    channel_ids: list[int] | None,
    out: Path,
    csv_over: int = 100,
) -> list[Path]:
    """Read, render and write; returns the files written."""
    source = dict(manifest.written_settings)
    raw_accounts = {a.name: {"name": a.name, **a.references} for a in manifest.accounts}
    targets = export_targets(manifest, names, channel_ids)
    live = await runtime.executor.refresh(targets)
    text, files = render_export(source, collect(targets, live, raw_accounts), out, csv_over)
    for path, content in files.items():
        path.write_text(content, encoding="utf-8")
    out.write_text(text, encoding="utf-8")
    return [out, *files]

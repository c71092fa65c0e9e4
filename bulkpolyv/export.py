"""``bulkpolyv export``: write the live state of some accounts as a manifest.

The first step of a migration: export what POLYV holds, edit it, ``plan``, ``apply``. The
account headers (user_id, app_id, app_secret) are copied from the source manifest *as
written*, so secrets stay ``${VAR}`` references. All three callbacks and each channel's
``monitoring`` are exported (a value POLYV did not return is left out: unmanaged). Monitor
passwords are not exported: POLYV returns them in clear, and a manifest is a file that gets
committed and mailed; they are left unmanaged (add ``password:`` entries, as ``${VAR}``s,
to manage them). Accounts with many monitors get a CSV channel file beside the manifest.
Callback URLs may carry tokens, so every file is written with mode 0600, and an existing
file is overwritten only when asked (``--force``).

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
from bulkpolyv.operations import reads_for
from bulkpolyv.plan import LiveState
from bulkpolyv.privatefiles import write_private
from bulkpolyv.run import Runtime

# Channel ids to export: one list for every account, or a list per account (a channels
# file with an ``account`` column); None: each account's own channels in the manifest.
ChannelChoice = list[int] | dict[str, list[int]] | None

HEADER = """\
# Exported by `bulkpolyv export` from the live POLYV state.
# Monitor passwords are not exported (POLYV returns them in clear): they are unmanaged
# here. Secrets stay ${VAR} references, as in the source manifest. Callback URLs may carry
# tokens: this file was written with mode 0600; keep it private.
"""


class ExportError(BulkPolyvError):
    pass


@dataclasses.dataclass(frozen=True)
class ExportedAccount:
    raw: dict[str, Any]  # the account as written in the source manifest
    callbacks: dict[str, str | None]  # the kinds POLYV answered: URL, or None (off)
    channels: dict[int, list[dict[str, Any]]]  # channel → monitors (id, nickname, enable)
    monitoring: dict[int, str] = dataclasses.field(default_factory=dict)  # where POLYV said


def channel_ids(channels: str | None, channels_file: str | None) -> ChannelChoice:
    """The channel ids of ``--channels`` (comma-separated) or ``--channels-file`` (a CSV
    with a ``channel_id`` column — and an ``account`` column for a list per account — or
    one id per line); None when neither was given."""
    if channels and channels_file:
        raise ExportError("give --channels or --channels-file, not both")
    if channels:
        parts = [part for part in channels.replace(" ", "").split(",") if part]
        return [_channel_id(part, "--channels") for part in parts]
    if not channels_file:
        return None
    lines = Path(channels_file).read_text(encoding="utf-8-sig").splitlines()
    if not lines or "channel_id" not in lines[0]:
        return [_channel_id(line.strip(), channels_file) for line in lines if line.strip()]
    rows = list(csv.DictReader(lines))
    if "account" not in (rows[0] if rows else {}):
        return sorted({_channel_id(row["channel_id"], channels_file) for row in rows})
    by_account: dict[str, set[int]] = {}
    for number, row in enumerate(rows, start=2):
        where = f"{channels_file}, row {number}"
        if not (row.get("account") or "").strip():
            raise ExportError(f"{where}: the account column is empty")
        ids = by_account.setdefault(row["account"].strip(), set())
        ids.add(_channel_id(row.get("channel_id") or "", where))
    return {name: sorted(ids) for name, ids in by_account.items()}


def _channel_id(text: str, where: str) -> int:
    if not text.strip().isdigit() or int(text) <= 0:
        raise ExportError(f"{where}: channel id {text!r} is not a positive whole number")
    return int(text)


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
        entry["callbacks"] = dict(account.callbacks)
        count = sum(len(m) for m in account.channels.values())
        yaml_channels = account.channels
        if count > csv_over:
            csv_path = out.with_name(f"{out.stem}-{entry['name']}.csv")
            files[csv_path] = _csv(account.channels, account.monitoring)
            entry["channels_file"] = csv_path.name
            yaml_channels = {cid: [] for cid, monitors in account.channels.items() if not monitors}
        entry["channels"] = [
            {
                "channel_id": channel_id,
                **(
                    {"monitoring": account.monitoring[channel_id]}
                    if channel_id in account.monitoring
                    else {}
                ),
                "monitors": monitors,
            }
            for channel_id, monitors in sorted(yaml_channels.items())
        ]
        if not entry["channels"]:
            del entry["channels"]
        exported_accounts.append(entry)
    document["accounts"] = exported_accounts
    text = HEADER + yaml.safe_dump(document, sort_keys=False, allow_unicode=True, width=100)
    return text, files


def _csv(channels: dict[int, list[dict[str, Any]]], monitoring: dict[int, str]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow([*CSV_COLUMNS, "monitoring"])
    for channel_id, monitors in sorted(channels.items()):
        for monitor in monitors:
            writer.writerow(
                [
                    channel_id,
                    monitor["id"],
                    monitor.get("nickname", ""),
                    "",
                    monitor.get("enable", ""),
                    monitoring.get(channel_id, ""),
                ]
            )
    return buffer.getvalue()


def channels_csv(accounts: Iterable[ExportedAccount]) -> str | None:
    """``account,channel_id`` rows (for ``--channels-file``) when the exported accounts'
    channel lists differ; None when they are all the same."""
    exported = list(accounts)
    lists = {tuple(sorted(a.channels)) for a in exported}
    if len(lists) < 2:
        return None
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["account", "channel_id"])
    for account in exported:
        for channel_id in sorted(account.channels):
            writer.writerow([account.raw["name"], channel_id])
    return buffer.getvalue()


def export_targets(
    manifest: Manifest, names: Iterable[str], channel_ids: ChannelChoice
) -> Manifest:
    """The accounts to read, each listing the channels asked for (its own when none were
    given). A channels file with an account column picks the accounts it names."""
    by_name = {a.name: a for a in manifest.accounts}
    per_account = channel_ids if isinstance(channel_ids, dict) else None
    chosen = list(names) or list(per_account or by_name)
    unknown = [n for n in [*chosen, *(per_account or ())] if n not in by_name]
    if unknown:
        raise ExportError(f"no account named {', '.join(unknown)} in {manifest.path}")
    accounts = []
    for name in chosen:
        account = by_name[name]
        if per_account is not None:
            ids = per_account.get(name, [])
        elif channel_ids is not None:
            ids = list(channel_ids)
        else:
            ids = [c.channel_id for c in account.channels]
        channels = tuple(DesiredChannel(cid, (), account.source) for cid in ids)
        accounts.append(dataclasses.replace(account, channels=channels))
    return dataclasses.replace(manifest, accounts=tuple(accounts))


def collect(
    targets: Manifest, live: LiveState, raw_accounts: dict[str, dict[str, Any]]
) -> list[ExportedAccount]:
    problems = [
        f"{account}{f'/{channel_id}' if channel_id else ''} {what}: {reason}"
        for (account, channel_id, what), reason in sorted(live.failures.items())
    ]
    problems += [f"{name}: {reason}" for name, reason in sorted(live.account_failures.items())]
    if problems:
        raise ExportError(
            "could not read the live state, nothing written:\n  " + "\n  ".join(problems)
        )
    exported = []
    for account in targets.accounts:
        channels, monitoring = {}, {}
        for channel in account.channels:
            ref = (account.name, channel.channel_id)
            listed = live.monitors.get(ref, {})
            channels[channel.channel_id] = [
                {
                    "id": m.id,
                    **({"nickname": m.nickname} if m.nickname else {}),
                    **({"enable": m.enable} if m.enable else {}),
                }
                for m in sorted(listed.values(), key=lambda m: m.id)
            ]
            if live.monitoring.get(ref) is not None:
                monitoring[channel.channel_id] = live.monitoring[ref]
        callbacks = dict(live.callbacks.get(account.name, {}))
        exported.append(
            ExportedAccount(raw_accounts[account.name], callbacks, channels, monitoring)
        )
    return exported


def check_not_there(paths: Iterable[Path], force: bool) -> None:
    """Refuse to overwrite a file (an edited manifest, say) unless ``force``."""
    there = [str(p) for p in paths if p.exists()]
    if there and not force:
        raise ExportError(
            f"{', '.join(there)} already exist{'s' if len(there) == 1 else ''}; nothing "
            "written (pass --force to overwrite, or choose another --out)"
        )


async def export(
    manifest: Manifest,
    runtime: Runtime,
    *,
    names: Iterable[str],
    channel_ids: ChannelChoice,
    out: Path,
    csv_over: int = 100,
    force: bool = False,
) -> list[Path]:
    """Read, render and write (mode 0600); returns the files written."""
    check_not_there([out], force)
    source = dict(manifest.written_settings)
    raw_accounts = {a.name: {"name": a.name, **a.references} for a in manifest.accounts}
    targets = export_targets(manifest, names, channel_ids)
    live = await runtime.executor.refresh(targets, reads_for(targets, everything=True))
    if runtime.stop.is_set():  # the host or the budget failed: reads are missing
        raise ExportError(f"nothing written: {runtime.stop.reason or 'the reads stopped'}")
    exported = collect(targets, live, raw_accounts)
    text, files = render_export(source, exported, out, csv_over)
    listing = channels_csv(exported)
    if listing is not None:
        files[out.with_name(f"{out.stem}-channels.csv")] = listing
    check_not_there(files, force)
    with runtime.stop.on_signals():  # a signal now waits until every file is written whole
        for path, content in files.items():
            write_private(path, content)
        write_private(out, text)
    return [out, *files]

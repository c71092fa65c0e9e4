"""Read a manifest: YAML with positions, ``${VAR}`` references, CSV channel files, checks.

:func:`load_manifest` returns a :class:`~bulkpolyv.manifest.model.Manifest` or raises one
:class:`~bulkpolyv.manifest.problems.ManifestError` holding every problem found, each with
its file, line, column and path. No pydantic or yaml exception leaves this module.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path as FsPath
from typing import Any

from pydantic import ValidationError

from bulkpolyv.manifest.csvsource import CSV_COLUMNS, CsvRowSpec, read_channels_csv
from bulkpolyv.manifest.env import ENV_REFERENCE, References
from bulkpolyv.manifest.messages import describe
from bulkpolyv.manifest.model import (
    MONITOR_FIELDS,
    AccountSpec,
    DesiredAccount,
    DesiredChannel,
    DesiredMonitor,
    Limits,
    Manifest,
    ManifestSpec,
    yes_no,
)
from bulkpolyv.manifest.problems import Location, ManifestError, Path, Problem, format_path
from bulkpolyv.manifest.yamlsource import SourceMap, load_yaml

# What `export` copies from the source manifest as written, ${VAR}s and all.
ACCOUNT_REFERENCES = ("user_id", "app_id", "app_secret")
WRITTEN_SETTINGS = ("api_base", "limits")
_CsvRows = dict[int, tuple[str, list[tuple[CsvRowSpec, int]]]]  # account → (file, rows)


def load_manifest(
    path: str | os.PathLike[str],
    *,
    env: Mapping[str, str] | None = None,
    resolve_env: bool = True,
) -> Manifest:
    """Load and check the manifest at ``path``; raise ManifestError listing every problem."""
    return _Loader(FsPath(path), os.environ if env is None else env, resolve_env).load()


@dataclass
class _Occurrence:
    """One monitor account as written somewhere (YAML entry or CSV row), for merging."""

    account: int
    channel_id: int
    monitor_id: int
    fields: dict[str, Any]
    location: Location
    path: str


class _Loader:
    def __init__(self, path: FsPath, env: Mapping[str, str], resolve_env: bool) -> None:
        self.path = path
        self.file = str(path)
        self.problems: list[Problem] = []
        self.refs = References(env, resolve_env, self.problems)
        self.digest = hashlib.sha256()
        self.source = SourceMap(self.file)

    # --- the whole job --------------------------------------------------------------------

    def load(self) -> Manifest:
        data = self._read_manifest()
        self._check_secret_references(data)
        written = _written(data)
        data = self._substitute(data, ())
        spec = self._validate(data)
        csv_rows = self._load_csv_files(data)
        occurrences = list(self._occurrences(data, csv_rows))
        self._check_unique_names(data)
        merged = self._merge(occurrences)
        if self.problems or spec is None:
            raise ManifestError(self.problems)
        return self._build(spec, merged, written)

    # --- reading --------------------------------------------------------------------------

    def _read_manifest(self) -> dict[str, Any]:
        text = self._read_text(self.path)
        if text is None:
            raise ManifestError(self.problems)
        data, self.source, problems = load_yaml(text, self.file)
        self.problems += problems
        if data is None:
            if not self.problems:  # a document that is just `null` or `~`
                self._add((), "the manifest is empty")
            raise ManifestError(self.problems)
        if not isinstance(data, dict):
            self._add((), "the manifest must be a mapping with 'version' and 'accounts'")
            raise ManifestError(self.problems)
        return data

    def _read_text(self, path: FsPath) -> str | None:
        try:
            raw = path.read_bytes()
        except OSError as exc:
            self.problems.append(
                Problem(Location(str(path), 1, 1), "", f"cannot read the file: {exc.strerror}")
            )
            return None
        self.digest.update(raw)
        try:
            return raw.decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            line = raw[: exc.start].count(b"\n") + 1
            column = exc.start - (raw.rfind(b"\n", 0, exc.start) + 1) + 1
            self.problems.append(
                Problem(
                    Location(str(path), line, column), "", "not UTF-8 text (save the file as UTF-8)"
                )
            )
            return None

    # --- ${VAR} ---------------------------------------------------------------------------

    def _substitute(self, value: Any, path: Path) -> Any:
        if isinstance(value, dict):
            return {k: self._substitute(v, (*path, k)) for k, v in value.items()}
        if isinstance(value, list):
            return [self._substitute(v, (*path, i)) for i, v in enumerate(value)]
        if isinstance(value, str) and "${" in value:
            return self.refs.resolve(value, path, self.source.locate(path), format_path(path))
        return value

    def _check_secret_references(self, data: dict[str, Any]) -> None:
        # Checked on the raw text before substitution: a literal secret in a file that is
        # committed, copied and printed is the leak we refuse to help with.
        for index, raw in enumerate(_accounts(data)):
            secret = raw.get("app_secret") if isinstance(raw, dict) else None
            if secret is None:
                continue
            if not (isinstance(secret, str) and ENV_REFERENCE.fullmatch(secret.strip())):
                self._add(
                    ("accounts", index, "app_secret"),
                    "must be a ${VAR} reference to an environment variable, never the "
                    "secret itself (e.g. app_secret: ${POLYV_EAST_SECRET})",
                )

    # --- schema ---------------------------------------------------------------------------

    def _validate(self, data: dict[str, Any]) -> ManifestSpec | None:
        try:
            return ManifestSpec.model_validate(data)
        except ValidationError as exc:
            for error in exc.errors():
                loc = tuple(error["loc"])
                if self.refs.is_unresolved(loc):
                    continue
                self._add(loc, describe(error, loc))
            return None

    # --- CSV channel files ----------------------------------------------------------------

    def _load_csv_files(self, data: dict[str, Any]) -> _CsvRows:
        rows_by_account: _CsvRows = {}
        for index, account in enumerate(_accounts(data)):
            name = account.get("channels_file") if isinstance(account, dict) else None
            if not (isinstance(name, str) and name):
                continue
            csv_path = self.path.parent / name  # an absolute name stays as it is
            text = self._read_text(csv_path)
            shown = format_path(("accounts", index, "channels_file"))
            file = str(csv_path)
            rows = (
                []
                if text is None
                else read_channels_csv(text, file, shown, self.refs, self.problems)
            )
            rows_by_account[index] = (file, rows)
        return rows_by_account

    # --- cross checks and merging ---------------------------------------------------------

    def _occurrences(self, data: dict[str, Any], csv_rows: _CsvRows) -> Iterator[_Occurrence]:
        for a, account in enumerate(_accounts(data)):
            channels = account.get("channels") if isinstance(account, dict) else None
            for c, channel in enumerate(channels if isinstance(channels, list) else []):
                yield from self._yaml_occurrences(a, c, channel)
            file, rows = csv_rows.get(a, ("", []))
            shown = format_path(("accounts", a, "channels_file"))
            for row, line in rows:
                yield _Occurrence(
                    a,
                    row.channel_id,
                    row.monitor_id,
                    {k: getattr(row, k) for k in MONITOR_FIELDS if getattr(row, k) is not None},
                    Location(file, line, 1),
                    f"{shown}(row {line})",
                )

    def _yaml_occurrences(self, a: int, c: int, channel: object) -> Iterator[_Occurrence]:
        channel_id = _as_id(channel.get("channel_id") if isinstance(channel, dict) else None)
        monitors = channel.get("monitors") if isinstance(channel, dict) else None
        if channel_id is None or not isinstance(monitors, list):
            return
        for m, monitor in enumerate(monitors):
            monitor_id = _as_id(monitor.get("id") if isinstance(monitor, dict) else None)
            if monitor_id is None:
                continue
            path = ("accounts", a, "channels", c, "monitors", m)
            fields = {k: _normalise(k, monitor[k]) for k in MONITOR_FIELDS if k in monitor}
            yield _Occurrence(
                a, channel_id, monitor_id, fields, self.source.locate(path), format_path(path)
            )

    def _merge(self, occurrences: list[_Occurrence]) -> dict[tuple[int, int, int], _Occurrence]:
        """One occurrence per (account, channel, monitor); a conflicting repeat is an error."""
        merged: dict[tuple[int, int, int], _Occurrence] = {}
        for item in occurrences:
            key = (item.account, item.channel_id, item.monitor_id)
            first = merged.get(key)
            if first is None:
                merged[key] = item
            elif first.fields != item.fields:
                self.problems.append(
                    Problem(
                        item.location,
                        item.path,
                        f"monitor {item.monitor_id} of channel {item.channel_id} is already given "
                        f"with different values at {first.location} ({first.path})",
                    )
                )
        return merged

    def _check_unique_names(self, data: dict[str, Any]) -> None:
        seen: dict[str, int] = {}
        for index, account in enumerate(_accounts(data)):
            name = account.get("name") if isinstance(account, dict) else None
            if not isinstance(name, str):
                continue
            if name in seen:
                first = self.source.locate(("accounts", seen[name], "name"))
                self._add(
                    ("accounts", index, "name"), f"account name {name!r} is already used at {first}"
                )
            else:
                seen[name] = index

    # --- the result -----------------------------------------------------------------------

    def _build(
        self,
        spec: ManifestSpec,
        merged: dict[tuple[int, int, int], _Occurrence],
        written: _Written,
    ) -> Manifest:
        channels = self._channels(spec, merged)
        accounts = tuple(
            self._account(a, account, spec, channels[a], written.accounts[a])
            for a, account in enumerate(spec.accounts)
        )
        return Manifest(
            self.file,
            spec.api_base,
            Limits(**spec.limits.model_dump()),
            accounts,
            self.digest.hexdigest(),
            written_settings=written.settings,
        )

    def _channels(
        self, spec: ManifestSpec, merged: dict[tuple[int, int, int], _Occurrence]
    ) -> list[tuple[DesiredChannel, ...]]:
        """Each account's channels, sorted by id, with their monitors sorted by id."""
        monitor_defaults = spec.defaults.monitor
        by_account: list[dict[int, list[DesiredMonitor]]] = [{} for _ in spec.accounts]
        channel_sources: dict[tuple[int, int], Location] = {}
        for a, account in enumerate(spec.accounts):
            for c, channel in enumerate(account.channels):
                channel_sources.setdefault(
                    (a, channel.channel_id), self.source.locate(("accounts", a, "channels", c))
                )
                by_account[a].setdefault(channel.channel_id, [])
        for (a, channel_id, monitor_id), item in merged.items():
            fields = {
                k: item.fields[k] if k in item.fields else getattr(monitor_defaults, k)
                for k in MONITOR_FIELDS
            }
            channel_sources.setdefault((a, channel_id), item.location)
            by_account[a].setdefault(channel_id, []).append(
                DesiredMonitor(id=monitor_id, source=item.location, **fields)
            )
        return [
            tuple(
                DesiredChannel(
                    cid, tuple(sorted(ms, key=lambda m: m.id)), channel_sources[(a, cid)]
                )
                for cid, ms in sorted(monitors.items())
            )
            for a, monitors in enumerate(by_account)
        ]

    def _account(
        self,
        a: int,
        account: AccountSpec,
        spec: ManifestSpec,
        channels: tuple[DesiredChannel, ...],
        references: Mapping[str, str],
    ) -> DesiredAccount:
        manages, url = _callback(account, spec)
        return DesiredAccount(
            name=account.name,
            user_id=account.user_id,
            app_id=account.app_id,
            app_secret=account.app_secret,
            manages_callback=manages,
            record_callback=url,
            channels=channels,
            source=self.source.locate(("accounts", a)),
            callback_source=self.source.locate(
                ("accounts", a, "record_callback")
                if "record_callback" in account.model_fields_set
                else ("defaults", "record_callback")
            ),
            references=references,
        )

    def _add(self, path: Path, message: str) -> None:
        self.problems.append(Problem(self.source.locate(path), format_path(path), message))


@dataclass(frozen=True)
class _Written:
    """What export copies as written: each account's references, api_base and limits."""

    accounts: list[Mapping[str, str]]
    settings: Mapping[str, Any]


def _written(data: dict[str, Any]) -> _Written:
    accounts = [
        {k: v for k in ACCOUNT_REFERENCES if isinstance(v := raw.get(k), str)}
        if isinstance(raw, dict)
        else {}
        for raw in _accounts(data)
    ]
    return _Written(accounts, {k: data[k] for k in WRITTEN_SETTINGS if k in data})


def _accounts(data: dict[str, Any]) -> list[Any]:
    accounts = data.get("accounts")
    return accounts if isinstance(accounts, list) else []


def _callback(account: AccountSpec, spec: ManifestSpec) -> tuple[bool, str | None]:
    if "record_callback" in account.model_fields_set:
        return True, account.record_callback
    if "record_callback" in spec.defaults.model_fields_set:
        return True, spec.defaults.record_callback
    return False, None


def _normalise(name: str, value: Any) -> Any:
    """A YAML ``enable`` as the schema reads it; a value it refuses stays for its message."""
    if name == "enable":
        normalised = yes_no(value)
        return value if normalised is None else normalised
    return value


def _as_id(value: object) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.strip().isdigit():
        return int(value)
    return None


__all__ = ["CSV_COLUMNS", "load_manifest"]

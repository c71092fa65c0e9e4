"""Read a manifest: YAML with positions, ``${VAR}`` references, CSV channel files, checks.

:func:`load_manifest` returns a :class:`~bulkpolyv.manifest.model.Manifest` or raises one
:class:`~bulkpolyv.manifest.problems.ManifestError` holding every problem found, each with
its file, line, column and path. No pydantic or yaml exception leaves this module.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator, Mapping
from pathlib import Path as FsPath
from typing import Any

from pydantic import ValidationError

from bulkpolyv.manifest.build import (
    Checked,
    Monitoring,
    Monitors,
    Occurrence,
    Setting,
    Written,
    build_manifest,
)
from bulkpolyv.manifest.csvsource import CSV_COLUMNS, CsvRow, read_channels_csv
from bulkpolyv.manifest.env import ENV_REFERENCE, References
from bulkpolyv.manifest.messages import describe
from bulkpolyv.manifest.model import (
    MONITOR_FIELDS,
    Manifest,
    ManifestSpec,
    pack_fields,
    yes_no,
)
from bulkpolyv.manifest.problems import Location, ManifestError, Path, Problem, format_path
from bulkpolyv.manifest.yamlsource import SourceMap, load_yaml

# What `export` copies from the source manifest as written, ${VAR}s and all.
ACCOUNT_REFERENCES = ("user_id", "app_id", "app_secret")
WRITTEN_SETTINGS = ("api_base", "limits")
_CsvRows = dict[int, tuple[str, list[CsvRow]]]  # account → (file, rows)


def load_manifest(
    path: str | os.PathLike[str],
    *,
    env: Mapping[str, str] | None = None,
    resolve_env: bool = True,
) -> Manifest:
    """Load and check the manifest at ``path``; raise ManifestError listing every problem."""
    return _Loader(FsPath(path), os.environ if env is None else env, resolve_env).load()


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
        # The CSV rows are dropped once checked, before the result is built, so they are not
        # held beside it (measured: 100k rows, peak RSS 207 → 190 MB).
        return build_manifest(self._check())

    def _check(self) -> Checked:
        data = self._read_manifest()
        self._check_secret_references(data)
        written = _written(data)
        data = self._substitute(data, ())
        spec = self._validate(data)
        csv_rows = self._load_csv_files(data)
        monitoring = self._monitoring(data, csv_rows)
        merged = self._merge(self._occurrences(data, csv_rows))  # uses up the CSV rows
        self._check_unique_names(data)
        self._check_callback_shorthand(data)
        self._check_one_entry_per_polyv_account(data)
        if self.problems:
            raise ManifestError(self.problems)
        assert spec is not None, "a manifest that failed its checks always has a problem"
        return Checked(
            self.file, self.digest.hexdigest(), spec, self.source, merged, monitoring, written
        )

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

    def _read_text(self, path: FsPath, named_at: Path | None = None) -> str | None:
        """The file's text, or None with a problem: for a file the manifest names (a CSV at
        ``named_at``), the problem is where the manifest names it."""
        try:
            raw = path.read_bytes()
        except OSError as exc:
            if named_at is not None:
                self._add(named_at, f"cannot read {path}: {exc.strerror}")
            else:
                where = Location(str(path), 1, 1)
                self.problems.append(Problem(where, "", f"cannot read the file: {exc.strerror}"))
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
            errors = exc.errors()
        for error in errors:
            loc = tuple(error["loc"])
            message = self.refs.message_at(loc, describe(error, loc))
            if message is not None:
                self._add(loc, message, at_key=error["type"] == "extra_forbidden")
        return None

    # --- CSV channel files ----------------------------------------------------------------

    def _load_csv_files(self, data: dict[str, Any]) -> _CsvRows:
        rows_by_account: _CsvRows = {}
        for index, account in enumerate(_accounts(data)):
            name = account.get("channels_file") if isinstance(account, dict) else None
            if not (isinstance(name, str) and name):
                continue
            csv_path = self.path.parent / name  # an absolute name stays as it is
            named_at = ("accounts", index, "channels_file")
            text = self._read_text(csv_path, named_at=named_at)
            shown = format_path(named_at)
            file = str(csv_path)
            rows = (
                []
                if text is None
                else read_channels_csv(text, file, shown, self.refs, self.problems)
            )
            rows_by_account[index] = (file, rows)
        return rows_by_account

    # --- cross checks and merging ---------------------------------------------------------

    def _occurrences(self, data: dict[str, Any], csv_rows: _CsvRows) -> Iterator[Occurrence]:
        for a, account in enumerate(_accounts(data)):
            channels = account.get("channels") if isinstance(account, dict) else None
            for c, channel in enumerate(channels if isinstance(channels, list) else []):
                yield from self._yaml_occurrences(a, c, channel)
            file, rows = csv_rows.get(a, ("", []))
            shown = format_path(("accounts", a, "channels_file"))
            # Each row is let go as its occurrence is made (1M rows: ~70 MB less at the
            # peak): popped from the end of the reversed list, so still in file order.
            rows.reverse()
            while rows:
                row = rows.pop()
                yield Occurrence(
                    a,
                    row.channel_id,
                    row.monitor_id,
                    row.fields,
                    Location(file, row.line, 1),
                    shown,
                    row.line,
                )

    def _yaml_occurrences(self, a: int, c: int, channel: object) -> Iterator[Occurrence]:
        channel_id = _as_id(channel.get("channel_id") if isinstance(channel, dict) else None)
        monitors = channel.get("monitors") if isinstance(channel, dict) else None
        if channel_id is None or not isinstance(monitors, list):
            return
        for m, monitor in enumerate(monitors):
            monitor_id = _as_id(monitor.get("id") if isinstance(monitor, dict) else None)
            if monitor_id is None:
                continue
            path = ("accounts", a, "channels", c, "monitors", m)
            fields = pack_fields(
                {k: _normalise(k, monitor[k]) for k in MONITOR_FIELDS if k in monitor}
            )
            yield Occurrence(
                a, channel_id, monitor_id, fields, self.source.locate(path), format_path(path)
            )

    def _merge(self, occurrences: Iterator[Occurrence]) -> Monitors:
        """One occurrence per (account, channel, monitor); a conflicting repeat is an error."""
        merged: Monitors = {}
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

    def _check_one_entry_per_polyv_account(self, data: dict[str, Any]) -> None:
        # Two entries for one POLYV account would each "fix" the other's values on every run:
        # the plan would never converge. Compared after ${VAR}s are resolved (as written
        # with --no-env); a value that could not be resolved is not compared.
        seen: dict[tuple[object, object], int] = {}
        for index, account in enumerate(_accounts(data)):
            if not isinstance(account, dict):
                continue
            key = (account.get("app_id"), account.get("user_id"))
            if not all(isinstance(v, str) and v for v in key) or any(
                self.refs.resolve_env and self.refs.is_unresolved(("accounts", index, k))
                for k in ("app_id", "user_id")
            ):
                continue
            first = seen.setdefault(key, index)
            if first != index:
                self._add(
                    ("accounts", index),
                    f"{_name(account, index)} has the same app_id and user_id as "
                    f"{_name(data['accounts'][first], first)} at "
                    f"{self.source.locate(('accounts', first))}: both entries are one POLYV "
                    "account and would undo each other's changes on every run; merge them",
                )

    def _check_callback_shorthand(self, data: dict[str, Any]) -> None:
        places: list[tuple[Path, object]] = [(("defaults",), data.get("defaults"))]
        places += [(("accounts", a), account) for a, account in enumerate(_accounts(data))]
        for base, entry in places:
            if not isinstance(entry, dict) or "record_callback" not in entry:
                continue
            callbacks = entry.get("callbacks")
            if isinstance(callbacks, dict) and "record" in callbacks:
                shorthand = (*base, "record_callback")
                self._add(
                    (*base, "callbacks", "record"),
                    f"the record callback is given twice, here and as {format_path(shorthand)} "
                    f"at {self.source.locate(shorthand)}; keep one (record_callback is "
                    "shorthand for callbacks.record)",
                )

    def _monitoring(self, data: dict[str, Any], csv_rows: _CsvRows) -> Monitoring:
        """Each channel's ``monitoring`` as given; entries of one channel must agree."""
        given: Monitoring = {}

        def take(key: tuple[int, int], setting: Setting) -> None:
            first = given.setdefault(key, setting)
            if first.value != setting.value:
                self.problems.append(
                    Problem(
                        setting.location,
                        setting.path,
                        f"channel {key[1]}'s monitoring is {setting.value or 'null'} here but "
                        f"{first.value or 'null'} at {first.location} ({first.path}); "
                        "give one value per channel",
                    )
                )

        for a, account in enumerate(_accounts(data)):
            channels = account.get("channels") if isinstance(account, dict) else None
            for c, channel in enumerate(channels if isinstance(channels, list) else []):
                if not isinstance(channel, dict) or "monitoring" not in channel:
                    continue
                channel_id = _as_id(channel.get("channel_id"))
                value = yes_no(channel["monitoring"])
                if channel_id is None or (value is None and channel["monitoring"] is not None):
                    continue  # the schema reports it
                path = ("accounts", a, "channels", c, "monitoring")
                take((a, channel_id), Setting(value, self.source.locate(path), format_path(path)))
            file, rows = csv_rows.get(a, ("", []))
            shown = format_path(("accounts", a, "channels_file"))
            for row in rows:
                line = row.line
                if row.monitoring is not None:
                    where = Location(file, line, 1)
                    take(
                        (a, row.channel_id), Setting(row.monitoring, where, f"{shown}(row {line})")
                    )
        return given

    def _add(self, path: Path, message: str, *, at_key: bool = False) -> None:
        where = self.source.locate_key(path) if at_key else self.source.locate(path)
        self.problems.append(Problem(where, format_path(path), message))


def _written(data: dict[str, Any]) -> Written:
    accounts = [
        {k: v for k in ACCOUNT_REFERENCES if isinstance(v := raw.get(k), str)}
        if isinstance(raw, dict)
        else {}
        for raw in _accounts(data)
    ]
    return Written(accounts, {k: data[k] for k in WRITTEN_SETTINGS if k in data})


def _name(account: dict[str, Any], index: int) -> str:
    name = account.get("name")
    return f"account {name!r}" if isinstance(name, str) else f"accounts[{index}]"


def _accounts(data: dict[str, Any]) -> list[Any]:
    accounts = data.get("accounts")
    return accounts if isinstance(accounts, list) else []


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

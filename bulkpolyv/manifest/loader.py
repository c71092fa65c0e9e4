"""Read a manifest: YAML with positions, ``${VAR}`` references, CSV channel files, checks.

:func:`load_manifest` returns a :class:`~bulkpolyv.manifest.model.Manifest` or raises one
:class:`~bulkpolyv.manifest.problems.ManifestError` holding every problem found, each with
its file, line, column and path. No pydantic or yaml exception leaves this module.
"""

from __future__ import annotations

import csv
import difflib
import hashlib
import io
import os
import re
import types
import typing
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path as FsPath
from typing import Any

from pydantic import BaseModel, TypeAdapter, ValidationError

from bulkpolyv.manifest.model import (
    AccountSpec,
    DesiredAccount,
    DesiredChannel,
    DesiredMonitor,
    Enable,
    Limits,
    Manifest,
    ManifestSpec,
    MonitorSpec,
    Nickname,
    Password,
    PositiveId,
)
from bulkpolyv.manifest.problems import Location, ManifestError, Path, Problem, format_path
from bulkpolyv.manifest.yamlsource import SourceMap, load_yaml

ENV_REFERENCE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")
CSV_COLUMNS = ("channel_id", "monitor_id", "nickname", "password", "enable")
MONITOR_FIELDS = ("nickname", "password", "enable")


class CsvRowSpec(BaseModel):
    model_config = {"extra": "forbid", "hide_input_in_errors": True}
    channel_id: PositiveId
    monitor_id: PositiveId
    nickname: Nickname = None
    password: Password = None
    enable: Enable = None


_csv_rows = TypeAdapter(list[CsvRowSpec])


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
        self.env = env
        self.resolve_env = resolve_env
        self.problems: list[Problem] = []
        self.unresolved: set[Path] = set()
        self.digest = hashlib.sha256()
        self.source = SourceMap(self.file)

    # --- the whole job --------------------------------------------------------------------

    def load(self) -> Manifest:
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
        self._check_secret_references(data)
        data = self._substitute(data, ())
        spec = self._validate(data)
        csv_rows = self._load_csv_files(data)
        occurrences = list(self._occurrences(data, csv_rows))
        self._check_unique_names(data)
        merged = self._merge(occurrences)
        if self.problems or spec is None:
            raise ManifestError(self.problems)
        return self._build(spec, merged)

    # --- reading --------------------------------------------------------------------------

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
            return self._resolve(value, path, self.source.locate(path), format_path(path))
        return value

    def _resolve(self, text: str, path: Path, where: Location, shown: str) -> str:
        if not self.resolve_env:
            if ENV_REFERENCE.search(text):
                self.unresolved.add(path)
            return text

        def replace(match: re.Match[str]) -> str:
            name = match.group(1)
            value = self.env.get(name)
            if value is None:
                self.problems.append(
                    Problem(where, shown, f"environment variable {name} is not set")
                )
                self.unresolved.add(path)
                return match.group(0)
            return value

        return ENV_REFERENCE.sub(replace, text)

    def _check_secret_references(self, data: dict[str, Any]) -> None:
        # Checked on the raw text before substitution: a literal secret in a file that is
        # committed, copied and printed is the leak we refuse to help with.
        accounts = data.get("accounts")
        for index, raw in enumerate(accounts if isinstance(accounts, list) else []):
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
                if self._is_unresolved(loc):
                    continue
                self._add(loc, _describe(error, loc))
            return None

    def _is_unresolved(self, loc: Path) -> bool:
        return any(loc[: len(p)] == p for p in self.unresolved)

    # --- CSV channel files ----------------------------------------------------------------

    def _load_csv_files(self, data: dict[str, Any]) -> dict[int, list[tuple[CsvRowSpec, int]]]:
        rows_by_account: dict[int, list[tuple[CsvRowSpec, int]]] = {}
        accounts = data.get("accounts")
        for index, account in enumerate(accounts if isinstance(accounts, list) else []):
            name = account.get("channels_file") if isinstance(account, dict) else None
            if isinstance(name, str) and name:
                rows_by_account[index] = self._load_csv(index, name)
        return rows_by_account

    def _load_csv(self, account: int, name: str) -> list[tuple[CsvRowSpec, int]]:
        csv_path = (self.path.parent / name) if not os.path.isabs(name) else FsPath(name)
        text = self._read_text(csv_path)
        if text is None:
            return []
        file = str(csv_path)
        reader = csv.reader(io.StringIO(text, newline=""))
        header = next(reader, None)
        shown = format_path(("accounts", account, "channels_file"))
        if header is None:
            self.problems.append(Problem(Location(file, 1, 1), shown, "the CSV file is empty"))
            return []
        header = [h.strip() for h in header]
        unknown = [h for h in header if h not in CSV_COLUMNS]
        missing = [c for c in ("channel_id", "monitor_id") if c not in header]
        if unknown or missing:
            detail = "; ".join(
                [f"unknown column{'s' if len(unknown) > 1 else ''} {', '.join(unknown)}"]
                * bool(unknown)
                + [f"missing column {', '.join(missing)}"] * bool(missing)
            )
            self.problems.append(
                Problem(
                    Location(file, 1, 1), shown, f"{detail}; the header is {','.join(CSV_COLUMNS)}"
                )
            )
            return []
        raw_rows: list[dict[str, str]] = []
        lines: list[int] = []
        for cells in reader:
            if not any(cell.strip() for cell in cells):
                continue
            line = reader.line_num
            if len(cells) != len(header):
                self.problems.append(
                    Problem(
                        Location(file, line, 1),
                        f"{shown}(row {line})",
                        f"has {len(cells)} cells, the header {len(header)}",
                    )
                )
                continue
            row = {}
            for column, (key, cell) in enumerate(zip(header, cells, strict=True), start=1):
                cell = cell.strip()
                if cell and "${" in cell:
                    cell = self._resolve(
                        cell,
                        ("csv", file, line, key),
                        Location(file, line, column),
                        f"{shown}(row {line}).{key}",
                    )
                if cell:
                    row[key] = cell
            raw_rows.append(row)
            lines.append(line)
        try:
            validated = _csv_rows.validate_python(raw_rows)
            return list(zip(validated, lines, strict=True))
        except ValidationError:
            pass
        # Some rows are bad: check them one by one, so that every bad cell is reported and
        # the good rows still take part in the duplicate checks.
        good: list[tuple[CsvRowSpec, int]] = []
        for row, line in zip(raw_rows, lines, strict=True):
            try:
                good.append((CsvRowSpec.model_validate(row), line))
            except ValidationError as exc:
                for error in exc.errors():
                    key = str(error["loc"][0]) if error["loc"] else ""
                    if self._is_unresolved(("csv", file, line, key)):
                        continue
                    column = header.index(key) + 1 if key in header else 1
                    self.problems.append(
                        Problem(
                            Location(file, line, column),
                            f"{shown}(row {line}).{key}",
                            _describe(error, ("csv", key)),
                        )
                    )
        return good

    # --- cross checks and merging ---------------------------------------------------------

    def _occurrences(
        self, data: dict[str, Any], csv_rows: dict[int, list[tuple[CsvRowSpec, int]]]
    ) -> Iterator[_Occurrence]:
        accounts = data.get("accounts")
        for a, account in enumerate(accounts if isinstance(accounts, list) else []):
            channels = account.get("channels") if isinstance(account, dict) else None
            for c, channel in enumerate(channels if isinstance(channels, list) else []):
                channel_id = _as_id(
                    channel.get("channel_id") if isinstance(channel, dict) else None
                )
                monitors = channel.get("monitors") if isinstance(channel, dict) else None
                if channel_id is None or not isinstance(monitors, list):
                    continue
                for m, monitor in enumerate(monitors):
                    monitor_id = _as_id(monitor.get("id") if isinstance(monitor, dict) else None)
                    if monitor_id is None:
                        continue
                    path = ("accounts", a, "channels", c, "monitors", m)
                    fields = {k: monitor[k] for k in MONITOR_FIELDS if k in monitor}
                    yield _Occurrence(
                        a,
                        channel_id,
                        monitor_id,
                        fields,
                        self.source.locate(path),
                        format_path(path),
                    )
            for row, line in csv_rows.get(a, []):
                fields = {k: getattr(row, k) for k in MONITOR_FIELDS if getattr(row, k) is not None}
                csv_file = str(self.path.parent / account["channels_file"])
                yield _Occurrence(
                    a,
                    row.channel_id,
                    row.monitor_id,
                    fields,
                    Location(csv_file, line, 1),
                    f"{format_path(('accounts', a, 'channels_file'))}(row {line})",
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
        accounts = data.get("accounts")
        seen: dict[str, int] = {}
        for index, account in enumerate(accounts if isinstance(accounts, list) else []):
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
        self, spec: ManifestSpec, merged: dict[tuple[int, int, int], _Occurrence]
    ) -> Manifest:
        defaults = spec.defaults
        by_account: dict[int, dict[int, list[DesiredMonitor]]] = {}
        channel_sources: dict[tuple[int, int], Location] = {}
        for a, account in enumerate(spec.accounts):
            by_account[a] = {}
            for c, channel in enumerate(account.channels):
                channel_sources.setdefault(
                    (a, channel.channel_id), self.source.locate(("accounts", a, "channels", c))
                )
                by_account[a].setdefault(channel.channel_id, [])
        for (a, channel_id, monitor_id), item in merged.items():
            fields = {k: _normalise(k, item.fields.get(k)) for k in MONITOR_FIELDS}
            for name in MONITOR_FIELDS:
                if name not in item.fields:
                    fields[name] = getattr(defaults.monitor, name)
            channel_sources.setdefault((a, channel_id), item.location)
            by_account[a].setdefault(channel_id, []).append(
                DesiredMonitor(id=monitor_id, source=item.location, **fields)
            )
        accounts = []
        for a, account in enumerate(spec.accounts):
            manages, url = _callback(account, spec)
            accounts.append(
                DesiredAccount(
                    name=account.name,
                    user_id=account.user_id,
                    app_id=account.app_id,
                    app_secret=account.app_secret,
                    manages_callback=manages,
                    record_callback=url,
                    channels=tuple(
                        DesiredChannel(
                            cid, tuple(sorted(ms, key=lambda m: m.id)), channel_sources[(a, cid)]
                        )
                        for cid, ms in sorted(by_account[a].items())
                    ),
                    source=self.source.locate(("accounts", a)),
                    callback_source=self.source.locate(
                        ("accounts", a, "record_callback")
                        if "record_callback" in account.model_fields_set
                        else ("defaults", "record_callback")
                    ),
                )
            )
        limits = Limits(**spec.limits.model_dump())
        return Manifest(self.file, spec.api_base, limits, tuple(accounts), self.digest.hexdigest())

    def _add(self, path: Path, message: str) -> None:
        self.problems.append(Problem(self.source.locate(path), format_path(path), message))


def _callback(account: AccountSpec, spec: ManifestSpec) -> tuple[bool, str | None]:
    if "record_callback" in account.model_fields_set:
        return True, account.record_callback
    if "record_callback" in spec.defaults.model_fields_set:
        return True, spec.defaults.record_callback
    return False, None


def _normalise(name: str, value: Any) -> Any:
    if name == "enable" and value is not None:
        return "Y" if value is True or str(value).upper() == "Y" else "N"
    return value


def _as_id(value: object) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.strip().isdigit():
        return int(value)
    return None


# --- turning pydantic's errors into sentences -------------------------------------------------

_MESSAGES = {
    "missing": "is required",
    "int_type": "must be a whole number",
    "int_parsing": "must be a whole number",
    "int_from_float": "must be a whole number",
    "float_type": "must be a number",
    "float_parsing": "must be a number",
    "string_type": "must be text (put it in quotes)",
    "list_type": "must be a list",
    "model_type": "must be a mapping of keys to values",
    "model_attributes_type": "must be a mapping of keys to values",
    "dict_type": "must be a mapping of keys to values",
    "string_too_short": "must not be empty",
    "string_pattern_mismatch": "may contain only letters, digits, '.', '_' and '-'",
}


def _describe(error: Mapping[str, Any], loc: Path) -> str:
    kind = error["type"]
    context = error.get("ctx") or {}
    if kind == "extra_forbidden":
        return _unknown_key(loc)
    if kind == "greater_than":
        gt = context.get("gt")
        return "must be a positive number" if gt == 0 else f"must be greater than {gt}"
    if kind == "less_than_equal":
        return f"must be at most {context.get('le')}"
    if kind == "too_short" and loc == ("accounts",):
        return "must list at least one account"
    if kind in ("value_error", "assertion_error"):
        return str(error["msg"]).removeprefix("Value error, ")
    if kind == "literal_error":
        return f"must be one of {context.get('expected')}"
    return _MESSAGES.get(kind, str(error["msg"]))


def _unknown_key(loc: Path) -> str:
    key = str(loc[-1])
    allowed = _allowed_keys(loc[:-1])
    close = difflib.get_close_matches(key, allowed, n=1, cutoff=0.6)
    hint = (
        f"; did you mean {close[0]!r}?"
        if close
        else (f"; expected one of: {', '.join(allowed)}" if allowed else "")
    )
    return f"unknown key {key!r}{hint}"


def _allowed_keys(loc: Path) -> list[str]:
    if loc[:1] == ("csv",):
        return list(CSV_COLUMNS)
    model: Any = ManifestSpec
    for part in loc:
        if isinstance(part, int):
            continue
        if not (isinstance(model, type) and issubclass(model, BaseModel)):
            return []
        info = model.model_fields.get(str(part))
        if info is None:
            return []
        model = _model_in(info.annotation)
    if isinstance(model, type) and issubclass(model, BaseModel):
        return list(model.model_fields)
    return []


def _model_in(annotation: Any) -> Any:
    """The pydantic model inside ``list[X]``, ``X | None`` or ``Annotated[X, …]``."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    if isinstance(annotation, types.UnionType) or typing.get_origin(annotation) is not None:
        for arg in typing.get_args(annotation):
            found = _model_in(arg)
            if found is not None:
                return found
    return None


__all__ = ["CSV_COLUMNS", "MonitorSpec", "load_manifest"]

"""Channel files: CSV rows of monitor accounts, checked cell by cell with file and row.

An account with thousands of monitors lists them in a CSV file beside the manifest
(``channels_file:``), one monitor per row. Each row is checked like a YAML entry; a bad
cell is reported as ``file:row:column`` and the good rows still take part in the checks
across rows.
"""

from __future__ import annotations

import _csv
import csv
import io
from collections.abc import Iterator
from dataclasses import dataclass

from pydantic import BaseModel, TypeAdapter, ValidationError

from bulkpolyv.manifest.env import References
from bulkpolyv.manifest.messages import describe
from bulkpolyv.manifest.model import (
    MONITOR_FIELDS,
    UNSET,
    Enable,
    Nickname,
    PackedFields,
    Password,
    PositiveId,
)
from bulkpolyv.manifest.problems import Location, Problem

# The columns of a monitor row, in the order export writes them.
CSV_COLUMNS = ("channel_id", "monitor_id", *MONITOR_FIELDS)
# Columns about the row's channel rather than its monitor; all rows of a channel that
# give one must agree.
CSV_CHANNEL_COLUMNS = ("monitoring",)
ACCEPTED_COLUMNS = (*CSV_COLUMNS, *CSV_CHANNEL_COLUMNS)
REQUIRED_COLUMNS = ("channel_id", "monitor_id")


class CsvRowSpec(BaseModel):
    model_config = {"extra": "forbid", "hide_input_in_errors": True}
    channel_id: PositiveId
    monitor_id: PositiveId
    nickname: Nickname = None
    password: Password = None
    enable: Enable = None
    monitoring: Enable = None


_csv_rows = TypeAdapter(list[CsvRowSpec])
CHUNK_ROWS = 5000


@dataclass(frozen=True, slots=True)
class CsvRow:
    """A checked row, lighter than the pydantic model it came from (one per monitor)."""

    channel_id: int
    monitor_id: int
    fields: PackedFields  # the monitor fields the row gives (UNSET: an empty cell)
    monitoring: str | None
    line: int


class _Reader:
    def __init__(self, file: str, shown: str, refs: References, problems: list[Problem]) -> None:
        self.file = file
        self.shown = shown  # the manifest path that names the file, e.g. accounts[0].channels_file
        self.refs = refs
        self.problems = problems

    def _problem(self, line: int, column: int, where: str, message: str) -> None:
        self.problems.append(Problem(Location(self.file, line, column), where, message))

    def header(self, cells: list[str] | None) -> list[str] | None:
        if cells is None:
            self._problem(1, 1, self.shown, "the CSV file is empty")
            return None
        header = [h.strip() for h in cells]
        unknown = [h for h in header if h not in ACCEPTED_COLUMNS]
        missing = [c for c in REQUIRED_COLUMNS if c not in header]
        if not (unknown or missing):
            return header
        detail = "; ".join(
            [f"unknown column{'s' if len(unknown) > 1 else ''} {', '.join(unknown)}"]
            * bool(unknown)
            + [f"missing column {', '.join(missing)}"] * bool(missing)
        )
        self._problem(1, 1, self.shown, f"{detail}; the columns are {','.join(ACCEPTED_COLUMNS)}")
        return None

    def chunks(
        self, reader: _csv.Reader, header: list[str]
    ) -> Iterator[tuple[list[dict[str, str]], list[int]]]:
        """The rows' non-empty cells (``${VAR}``s resolved) with their line numbers, a few
        thousand rows at a time, so that a million rows are never all held as dicts."""
        raw_rows: list[dict[str, str]] = []
        lines: list[int] = []
        for cells in reader:
            if not any(cell.strip() for cell in cells):
                continue
            line = reader.line_num
            if len(cells) != len(header):
                self._problem(
                    line,
                    1,
                    f"{self.shown}(row {line})",
                    f"has {len(cells)} cells, the header {len(header)}",
                )
                continue
            row = {}
            for column, (key, cell) in enumerate(zip(header, cells, strict=True), start=1):
                cell = cell.strip()
                if cell and "${" in cell:
                    cell = self.refs.resolve(
                        cell,
                        ("csv", self.file, line, key),
                        Location(self.file, line, column),
                        f"{self.shown}(row {line}).{key}",
                    )
                if cell:
                    row[key] = cell
            raw_rows.append(row)
            lines.append(line)
            if len(raw_rows) == CHUNK_ROWS:
                yield raw_rows, lines
                raw_rows, lines = [], []
        if raw_rows:
            yield raw_rows, lines

    def validate(
        self, raw_rows: list[dict[str, str]], lines: list[int], header: list[str]
    ) -> list[CsvRow]:
        try:
            return list(map(_row, _csv_rows.validate_python(raw_rows), lines))
        except ValidationError:
            pass
        # Some rows are bad: check them one by one, so that every bad cell is reported and
        # the good rows still take part in the duplicate checks.
        good: list[CsvRow] = []
        for row, line in zip(raw_rows, lines, strict=True):
            try:
                good.append(_row(CsvRowSpec.model_validate(row), line))
            except ValidationError as exc:
                for error in exc.errors():
                    key = str(error["loc"][0]) if error["loc"] else ""
                    message = self.refs.message_at(
                        ("csv", self.file, line, key),
                        describe(error, ("csv", key), ACCEPTED_COLUMNS),
                    )
                    if message is None:
                        continue
                    column = header.index(key) + 1 if key in header else 1
                    self._problem(line, column, f"{self.shown}(row {line}).{key}", message)
        return good


def _row(spec: CsvRowSpec, line: int) -> CsvRow:
    nickname, password, enable = (
        UNSET if (v := getattr(spec, k)) is None else v for k in MONITOR_FIELDS
    )
    fields = (nickname, password, enable)
    return CsvRow(spec.channel_id, spec.monitor_id, fields, spec.monitoring, line)


def read_channels_csv(
    text: str, file: str, shown: str, refs: References, problems: list[Problem]
) -> list[CsvRow]:
    """The valid rows of a channel file; problems are appended."""
    reader = csv.reader(io.StringIO(text, newline=""))
    checker = _Reader(file, shown, refs, problems)
    header = checker.header(next(reader, None))
    if header is None:
        return []
    rows: list[CsvRow] = []
    for raw_rows, lines in checker.chunks(reader, header):
        rows += checker.validate(raw_rows, lines, header)
    return rows

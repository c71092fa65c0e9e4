"""The few lines a run prints beside its log: the summary, the journal path, the causes.

With ``--log-format json`` these are JSON objects too (same keys as log lines: ``ts``,
``level``, ``event``, ``message``), so a log shipper reads one format from one run.
``--metrics-file`` is written here as well, at the end of every run, failed or not.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import click

from bulkpolyv.commands.common import Output
from bulkpolyv.logs import iso_utc
from bulkpolyv.metrics import RunMetrics, write_metrics

log = logging.getLogger("bulkpolyv.cli")


def say(
    out: Output, text: str, *, event: str, err: bool = False, level: str = "INFO", **fields: Any
) -> None:
    """Print one line of the run's own output, as text or as a JSON object."""
    if out.json_logs:
        record = {"ts": iso_utc(time.time()), "level": level, "event": event, "message": text}
        record.update({k: v for k, v in fields.items() if v is not None})
        text = json.dumps(record, ensure_ascii=False, default=str)
    click.echo(text, err=err)


@dataclass
class RunFigures:
    """What a run's metrics need; filled in by the command as it learns them."""

    items: dict[str, int] = field(default_factory=dict)
    requests: int = 0
    cooldowns: int = 0


@contextmanager
def metrics_written(path: str | None, command: str, manifest: str) -> Iterator[RunFigures]:
    """Write ``path`` when the command ends, whatever its exit code."""
    figures, started, code = RunFigures(), time.time(), 1
    try:
        yield figures
        code = 0
    except SystemExit as done:
        code = done.code if isinstance(done.code, int) else (0 if done.code is None else 1)
        raise
    finally:
        if path:
            run = RunMetrics(
                command=command,
                manifest=Path(manifest).name,
                started=started,
                finished=time.time(),
                exit_code=code,
                items=figures.items,
                requests=figures.requests,
                cooldowns=figures.cooldowns,
            )
            try:
                write_metrics(Path(path), run)
            except OSError as error:
                click.echo(f"bulkpolyv: cannot write --metrics-file {path}: {error}", err=True)


METRICS_FILE = click.option(
    "--metrics-file",
    type=click.Path(dir_okay=False),
    help="Write Prometheus metrics of this run here at the end (node_exporter textfile).",
)

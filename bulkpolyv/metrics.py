"""The last run as Prometheus metrics, for node_exporter's textfile collector.

Cron jobs are alerted on the standard way: a ``.prom`` file the job rewrites at the end of
every run, read by node_exporter (``--collector.textfile.directory``), and a rule such as
``time() - bulkpolyv_last_run_end_timestamp_seconds > 26 * 3600`` or
``bulkpolyv_last_run_exit_code != 0``. ``prometheus_client.write_to_textfile`` writes a
temporary file and renames it, so the collector never reads half a file.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from prometheus_client import CollectorRegistry, Gauge, write_to_textfile


@dataclass(frozen=True)
class RunMetrics:
    command: str
    manifest: str  # the manifest's file name: one label value per cron job
    started: float  # epoch seconds
    finished: float
    exit_code: int
    items: Mapping[str, int] = field(default_factory=dict)  # by status
    requests: int = 0
    cooldowns: int = 0


def write_metrics(path: Path, run: RunMetrics) -> None:
    """Write ``run`` to ``path`` in the text exposition format, atomically."""
    registry = CollectorRegistry()
    labels = {"command": run.command, "manifest": run.manifest}

    def gauge(name: str, help_text: str, value: float) -> None:
        metric = Gauge(name, help_text, list(labels), registry=registry)
        metric.labels(**labels).set(value)

    gauge("bulkpolyv_last_run_start_timestamp_seconds", "When the last run started.", run.started)
    gauge("bulkpolyv_last_run_end_timestamp_seconds", "When the last run ended.", run.finished)
    gauge("bulkpolyv_last_run_exit_code", "The last run's exit code.", run.exit_code)
    gauge(
        "bulkpolyv_last_run_duration_seconds",
        "How long the last run took.",
        max(0.0, run.finished - run.started),
    )
    gauge("bulkpolyv_last_run_requests", "Requests the last run sent to POLYV.", run.requests)
    gauge("bulkpolyv_last_run_cooldowns", "Rate-limit cool-downs in the last run.", run.cooldowns)
    items = Gauge(
        "bulkpolyv_last_run_items",
        "Items of the last run, by outcome.",
        [*labels, "status"],
        registry=registry,
    )
    for status, count in sorted(run.items.items()):
        items.labels(**labels, status=status).set(count)
    write_to_textfile(str(path), registry)

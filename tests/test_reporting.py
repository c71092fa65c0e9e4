"""Pure tests of what operators read after a run: combined report summaries, the metrics
file, and JSON log lines."""

from __future__ import annotations

import json
import logging

from prometheus_client.parser import text_string_to_metric_families

from bulkpolyv.logs import JsonFormatter, iso_utc
from bulkpolyv.metrics import RunMetrics, write_metrics
from bulkpolyv.reportview import render_json, render_markdown, render_text, summarise


def item(account, channel, monitor, status, message=""):
    return {
        "account": account,
        "channel_id": channel,
        "monitor_id": monitor,
        "status": status,
        "message": message,
    }


FIRST = {
    "status": "partial",
    "started": "2026-11-22T01:00:00Z",
    "finished": "2026-11-22T01:10:00Z",
    "duration": 600.0,
    "totals": {"requests": 100, "cooldowns": 1},
    "items": [
        item("a2", 1, 1, "changed"),
        item("a10", 1, 1, "failed", "timed out"),
        item("a10", 1, 2, "failed", "timed out"),
        item("a10", 2, 1, "failed", "timed out"),
        item("a10", 2, 2, "failed", "timed out"),
        item("east", None, None, "skipped", "authentication failed: 签名错误"),
    ],
}
RETRY = {
    "status": "partial",
    "started": "2026-11-22T02:00:00Z",
    "finished": "2026-11-22T02:01:00Z",
    "duration": 60.0,
    "totals": {"requests": 8, "cooldowns": 0},
    "items": [
        item("a10", 1, 1, "changed"),
        item("a10", 1, 2, "changed"),
        item("a10", 2, 1, "changed"),
        item("a10", 2, 2, "failed", "timed out"),
        item("east", None, None, "skipped", "authentication failed: 签名错误"),
    ],
}


def test_a_retry_report_supersedes_the_items_it_retried():
    summary = summarise([RETRY, FIRST])  # order given does not matter: by start time
    assert dict(summary.counts) == {"changed": 4, "failed": 1, "skipped": 1}
    assert (summary.requests, summary.cooldowns, summary.duration) == (108, 1, 660.0)
    assert (summary.started, summary.finished) == ("2026-11-22T01:00:00Z", "2026-11-22T02:01:00Z")
    assert not summary.complete


def test_failures_are_grouped_by_cause_with_examples():
    text = render_text(summarise([FIRST]))
    assert text.splitlines()[3:] == [
        "Not done, by cause:",
        "  4 failed: timed out",
        "      e.g. a10/1/1, a10/1/2, a10/2/1 and 1 more",
        "  1 skipped: authentication failed: 签名错误",
        "      e.g. east",
    ]


def test_markdown_and_json_carry_the_same_summary():
    summary = summarise([FIRST, RETRY])
    assert "| 4 | changed |" not in render_markdown(summary)
    assert "| changed | 4 |" in render_markdown(summary)
    data = json.loads(render_json(summary))
    assert data["counts"] == {"changed": 4, "failed": 1, "skipped": 1}
    assert data["causes"][0] == {
        "status": "failed",
        "reason": "timed out",
        "count": 1,
        "examples": ["a10/2/2"],
    }


def test_metrics_file_is_prometheus_text(tmp_path):
    path = tmp_path / "bulkpolyv.prom"
    write_metrics(
        path,
        RunMetrics(
            command="apply",
            manifest="prod.yaml",
            started=1000.0,
            finished=1042.5,
            exit_code=3,
            items={"changed": 5, "failed": 2},
            requests=40,
            cooldowns=1,
        ),
    )
    samples = {
        (s.name, s.labels.get("status")): s.value
        for family in text_string_to_metric_families(path.read_text())
        for s in family.samples
    }
    assert samples == {
        ("bulkpolyv_last_run_start_timestamp_seconds", None): 1000.0,
        ("bulkpolyv_last_run_end_timestamp_seconds", None): 1042.5,
        ("bulkpolyv_last_run_exit_code", None): 3.0,
        ("bulkpolyv_last_run_duration_seconds", None): 42.5,
        ("bulkpolyv_last_run_requests", None): 40.0,
        ("bulkpolyv_last_run_cooldowns", None): 1.0,
        ("bulkpolyv_last_run_items", "changed"): 5.0,
        ("bulkpolyv_last_run_items", "failed"): 2.0,
    }


def test_json_log_lines_have_iso_utc_time_and_structured_fields():
    record = logging.LogRecord(
        "bulkpolyv.executor", logging.WARNING, "x", 1, "apply: %s", ("ok",), None
    )
    record.created = 1_700_000_000.25
    record.__dict__.update(
        event="outcome", account="east", channel=7, polyv_code=10002, password="never"
    )
    line = json.loads(JsonFormatter().format(record))
    assert line == {
        "ts": "2023-11-14T22:13:20.250Z",
        "level": "WARNING",
        "logger": "bulkpolyv.executor",
        "message": "apply: ok",
        "event": "outcome",
        "account": "east",
        "channel": 7,
        "polyv_code": 10002,
    }
    assert iso_utc(0) == "1970-01-01T00:00:00.000Z"


def test_an_outcome_s_log_line_ends_with_its_message_or_its_request_id(caplog):
    from bulkpolyv.executor import log_outcome
    from bulkpolyv.items import ItemKey
    from bulkpolyv.report import ItemOutcome, Status

    caplog.set_level(logging.DEBUG, logger="bulkpolyv")
    key = ItemKey("east", 7, 1)
    log_outcome(ItemOutcome(key, Status.CHANGED, attempts=1, request_id="r-1"))
    log_outcome(ItemOutcome(key, Status.FAILED, attempts=5, message="timed out"))
    assert [r.getMessage() for r in caplog.records] == [
        "apply: item=east/7 monitor 1 status=changed attempts=1 code=None requestId=r-1",
        "apply: item=east/7 monitor 1 status=failed attempts=5 code=None requestId=None timed out",
    ]

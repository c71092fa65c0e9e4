"""What runs leave for operators and their tools: JSON log lines, metrics files, reports
read back with ``report show``, debug lines, and one line per cause."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest
from click.testing import CliRunner

from bulkpolyv.cli import cli
from bulkpolyv.commands.causes import Trouble, cause_lines
from bulkpolyv.plan import ItemKey
from bulkpolyv.sim import FaultConfig
from tests.simthread import ENV, prepared_world, run_args, running_sim, seeded_state


@pytest.fixture
def world(tmp_path, monkeypatch):
    return prepared_world(tmp_path, monkeypatch, channels=4)


def invoke(*args: str):
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


def test_json_log_format_makes_every_line_json_with_utc_time_and_fields(world):
    tmp_path, manifest = world
    with running_sim(seeded_state(manifest, {})) as sim:
        result = invoke("-v", "--log-format", "json", *run_args(sim, manifest, tmp_path))
    assert result.exit_code == 0, result.output
    records = [json.loads(line) for line in result.stderr.splitlines()]
    outcomes = [r for r in records if r.get("event") == "outcome"]
    report = json.loads((tmp_path / "report.json").read_text())
    assert len(outcomes) == report["totals"]["changed"]  # -v: changed items (unchanged: -vv)
    assert all(r["ts"].endswith("Z") and r["ts"][10] == "T" for r in records)
    first = outcomes[0]
    assert {"account", "status", "attempts"} <= first.keys()
    (journal,) = [r for r in records if r.get("event") == "journal"]
    assert journal["path"] == str(tmp_path / "j.jsonl")
    summary = json.loads(result.stdout.splitlines()[-1])
    assert summary["event"] == "summary" and summary["status"] == "completed"


def test_json_log_format_on_a_failed_run_gives_each_cause_and_the_summary_as_json(
    world, monkeypatch
):
    tmp_path, manifest = world
    monkeypatch.setenv("T_WEST_SECRET", "WRONG-SECRET-zz")
    with running_sim(seeded_state(manifest, {})) as sim:
        result = invoke("--log-format", "json", *run_args(sim, manifest, tmp_path), "-q")
    assert result.exit_code == 3
    (cause,) = [json.loads(line) for line in result.stderr.splitlines()]
    assert (cause["event"], cause["level"]) == ("cause", "ERROR")
    assert cause["message"].startswith("account west: POLYV refused its credentials (9 items")
    summary = json.loads(result.stdout)
    assert (summary["event"], summary["skipped"]) == ("summary", 9)


def test_metrics_file_is_written_on_success_and_on_failure(world, monkeypatch):
    tmp_path, manifest = world
    metrics = tmp_path / "bulkpolyv.prom"
    with running_sim(seeded_state(manifest, {})) as sim:
        ok = invoke(*run_args(sim, manifest, tmp_path), "--metrics-file", str(metrics))
        assert ok.exit_code == 0
        text = metrics.read_text()
        assert 'bulkpolyv_last_run_exit_code{command="apply",manifest="manifest.yaml"} 0.0' in text
        assert 'status="changed"' in text
        monkeypatch.setenv("T_WEST_SECRET", "WRONG-SECRET-zz")
        bad = invoke("plan", str(manifest), "--api-base", sim.url, "--metrics-file", str(metrics))
    assert bad.exit_code == 1
    text = metrics.read_text()
    assert 'bulkpolyv_last_run_exit_code{command="plan",manifest="manifest.yaml"} 1.0' in text
    assert "WRONG-SECRET" not in text


def test_plan_with_drift_and_an_error_exits_1_and_names_the_cause_once(world, monkeypatch):
    _tmp_path, manifest = world
    monkeypatch.setenv("T_WEST_SECRET", "WRONG-SECRET-zz")
    with running_sim(seeded_state(manifest, {})) as sim:
        result = invoke("plan", str(manifest), "--api-base", sim.url)
    assert result.exit_code == 1  # terraform's rule: an error wins over the drift beside it
    causes = [line for line in result.stderr.splitlines() if "refused its credentials" in line]
    assert len(causes) == 1 and "account west" in causes[0]


def test_very_verbose_plan_prints_debug_lines(world):
    _tmp_path, manifest = world
    with running_sim(seeded_state(manifest, {})) as sim:
        result = invoke("plan", str(manifest), "--api-base", sim.url, "-vv")
    assert result.exit_code == 2
    assert " DEBUG bulkpolyv.run: read: 1/" in result.stderr


def test_report_show_combines_a_run_and_its_retry(world, monkeypatch):
    tmp_path, manifest = world
    with running_sim(seeded_state(manifest, {})) as sim:
        monkeypatch.setenv("T_WEST_SECRET", "WRONG-SECRET-zz")
        first = invoke(*run_args(sim, manifest, tmp_path))
        assert first.exit_code == 3
        (tmp_path / "report.json").rename(tmp_path / "first.json")
        alone = invoke("report", "show", str(tmp_path / "first.json"))
        monkeypatch.setenv("T_WEST_SECRET", ENV["T_WEST_SECRET"])
        retry = invoke(
            *run_args(sim, manifest, tmp_path), "--retry-failed", str(tmp_path / "first.json")
        )
        assert retry.exit_code == 0, retry.output
    assert alone.exit_code == 3
    assert "Not done, by cause:\n  9 skipped:" in alone.stdout
    both = invoke("report", "show", str(tmp_path / "first.json"), str(tmp_path / "report.json"))
    assert both.exit_code == 0
    assert both.stdout.splitlines()[0].startswith("2 reports (partial, completed)")
    assert "Everything in these reports is done." in both.stdout
    merged = invoke(
        "report",
        "merge",
        "--format",
        "json",
        str(tmp_path / "first.json"),
        str(tmp_path / "report.json"),
    )
    assert json.loads(merged.stdout)["complete"] is True


def test_report_show_of_a_file_that_is_not_a_report_is_one_sentence(tmp_path):
    (tmp_path / "notes.txt").write_text("hello")
    result = invoke("report", "show", str(tmp_path / "notes.txt"))
    assert result.exit_code == 1
    assert result.stderr.startswith(f"bulkpolyv: {tmp_path / 'notes.txt'}: not a bulkpolyv report")


def test_an_interrupted_run_is_one_line_not_one_per_item():
    troubles = [
        Trouble(
            "east",
            ItemKey("east", 1000 + n, n),
            "skipped",
            "not attempted: the run was interrupted",
            False,
        )
        for n in range(1, 1457)
    ]
    assert cause_lines(troubles) == [
        "1,456 items skipped: not attempted: the run was interrupted "
        "(e.g. east/1001 monitor 1, east/1002 monitor 2, east/1003 monitor 3 and 1453 more)"
    ]


def test_ctrl_c_mid_run_prints_one_line_for_the_items_not_attempted(world):
    tmp_path, manifest = world
    faults = FaultConfig(latency_min=0.05, latency_max=0.05)
    with running_sim(seeded_state(manifest, {}), faults=faults) as sim:
        args = run_args(sim, manifest, tmp_path, "--concurrency", "1")
        process = subprocess.Popen(
            [sys.executable, "-m", "bulkpolyv", *args],
            env={**os.environ, **ENV},
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        journal = tmp_path / "j.jsonl"
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if journal.exists() and '"changed"' in journal.read_text():
                break
            time.sleep(0.02)
        process.send_signal(signal.SIGINT)
        _, err = process.communicate(timeout=20)
    assert process.returncode == 130, err
    report = json.loads((tmp_path / "report.json").read_text())
    skipped = report["totals"]["skipped"]
    assert skipped > 1
    lines = [line for line in err.splitlines() if "not attempted" in line]
    assert len(lines) == 1
    assert lines[0].startswith(
        f"bulkpolyv: {skipped} items skipped: not attempted: interrupted by SIGINT (e.g. "
    )

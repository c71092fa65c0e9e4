"""Keeps bench/run.py from rotting: the tiny run must finish and report every figure.
The goals themselves are not asserted here (timing belongs to the benchmark, not tests)."""

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_tiny_benchmark_runs_and_reports_every_figure(tmp_path):
    out = tmp_path / "results.json"
    result = subprocess.run(
        [sys.executable, "bench/run.py", "--tiny", "--out", str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=170,  # a violation shows as a figure: the simulator blocks 3 s, not 300
    )
    assert result.returncode == 0, result.stderr[-2000:]
    names = [f["name"] for f in json.loads(out.read_text())["figures"]]
    for expected in (
        "achieved ÷ configured",
        "violations",
        "3 processes, one host: combined ÷ budget",
        "3 processes, Redis budget: combined ÷ budget",
        "speed-up",
        "bare loop",
        "runner peak RSS",
        "requests ÷ minimum",
    ):
        assert any(expected in name for name in names), expected
    assert "figure" in result.stdout and "goal" in result.stdout

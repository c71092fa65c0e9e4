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


def test_the_efficiency_clients_send_the_same_writes_and_the_floor_journals_each(
    tmp_path, monkeypatch
):
    """bench/efficiency.py's clients (the control with 3 steps of plain Python) against the
    bench's simulator, 20 rows: each writes every row, and the floor hands the kernel a
    sending and a done line per write."""
    monkeypatch.setenv("EFFICIENCY_CONTROL_STEPS", "3")
    sys.path.insert(0, str(ROOT / "bench"))
    try:
        import efficiency
        from common import SimProcess, make_world
    finally:
        sys.path.remove(str(ROOT / "bench"))
    manifest, state = make_world(tmp_path / "w", 20, efficiency.PER_CHANNEL)
    sim = SimProcess()
    try:
        for client in (*efficiency.CLIENTS, "control"):
            sim.prepare(state)
            args = efficiency.client_args(client, manifest, sim, tmp_path)
            efficiency.run_child_rusage(args, ROOT)  # raises when the child fails
            assert sim.stats()["requests"] == 2 + 20, client  # 2 channel reads, 20 writes
            journal = Path(args[5] if client == "bulkpolyv" else args[-1])
            if client in ("bare loop", "control"):
                assert not journal.exists()
                continue
            lines = [json.loads(line) for line in journal.read_text().splitlines()]
            events: dict[int, list[str]] = {}
            for line in lines:
                if line["event"] in ("sending", "done"):
                    events.setdefault(line["monitor_id"], []).append(line["event"])
            assert events == {10_000_000 + i: ["sending", "done"] for i in range(20)}, client
    finally:
        sim.close()

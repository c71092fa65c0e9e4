"""plan and apply end to end: the CLI against the simulator on 127.0.0.1."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from bulkpolyv.runlock import RunLock
from bulkpolyv.sim import FaultConfig, SimConfig
from tests.simthread import (
    ENV,
    enable_readable,
    invoke,
    run_args,
    running_sim,
    seeded_state,
    state_matches_manifest,
    write_manifest,
)


@pytest.fixture
def world(tmp_path, monkeypatch):
    for name, value in ENV.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    manifest = write_manifest(tmp_path)
    return tmp_path, manifest


def test_converges_from_drift_and_second_apply_makes_no_writes(world):
    tmp_path, manifest = world
    with running_sim(seeded_state(manifest, {}), enable_readable()) as sim:
        code, out, _ = invoke("plan", str(manifest), "--api-base", sim.url)
        assert code == 2 and "Plan:" in out
        code, out, _ = invoke(*run_args(sim, manifest, tmp_path))
        assert code == 0, out
        assert state_matches_manifest(sim)
        writes = sim.simulator.stats.writes
        assert writes > 0
        code, out, _ = invoke(*run_args(sim, manifest, tmp_path))
        assert code == 0 and "No changes" in out
        assert sim.simulator.stats.writes == writes  # zero writes the second time
        code, out, _ = invoke("plan", str(manifest), "--api-base", sim.url, "--format", "json")
        assert code == 0 and json.loads(out)["operations"] == []
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["totals"]["changed"] == 0 and report["totals"]["unchanged"] == 82
    assert oct((tmp_path / "report.json").stat().st_mode & 0o777) == "0o600"


def test_injected_errors_and_drops_are_retried_to_success(world):
    tmp_path, manifest = world
    faults = FaultConfig(error_rate=0.2, drop_rate=0.05, seed=3)
    with running_sim(seeded_state(manifest, {}), faults=faults) as sim:
        code, out, _ = invoke(*run_args(sim, manifest, tmp_path))
        assert code == 0, out
        assert state_matches_manifest(sim)
        assert sim.simulator.stats.injected_errors > 0 and sim.simulator.stats.dropped > 0
    items = json.loads((tmp_path / "report.json").read_text())["items"]
    assert any(item["attempts"] > 1 for item in items)


def test_a_429_storm_causes_one_cooldown_and_no_violation(world):
    tmp_path, manifest = world
    with running_sim(seeded_state(manifest, {}), SimConfig(block_seconds=0.4)) as sim:
        sim.simulator.block("127.0.0.1", 0.4)  # the IP is blocked when the run starts
        code, out, _ = invoke(*run_args(sim, manifest, tmp_path))
        assert code == 0, out
        assert sim.simulator.stats.violations == 0
        # Only requests already in flight when the first 429 came back may hit the block
        # (concurrency 16); nothing is sent while cooling down, and the block has ended by
        # the time the cool-down (0.5 s > 0.4 s) does.
        assert 0 < sim.simulator.stats.blocked_requests <= 16
        assert state_matches_manifest(sim)
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["totals"]["cooldowns"] == 1


def test_an_account_with_a_wrong_secret_is_skipped_while_others_succeed(world, monkeypatch):
    tmp_path, manifest = world
    state = seeded_state(manifest, {})
    monkeypatch.setenv("T_WEST_SECRET", "WRONG-SECRET-zz")
    with running_sim(state) as sim:
        code, out, err = invoke(*run_args(sim, manifest, tmp_path))
        assert code == 3
        east = sim.simulator.state.accounts["app-east"]
        assert east.record_callback == "https://hooks.example.com/rec?token=CBTOKEN-5521"
        # the bad account cost one request per read at most, not one per item and retry
        assert (
            sim.simulator.stats.rejected.get("签名错误", 0)
            + sim.simulator.stats.rejected.get("invalid signature.", 0)
            <= 21
        )
    items = json.loads((tmp_path / "report.json").read_text())["items"]
    west = [i for i in items if i["account"] == "west"]
    assert west and all(i["status"] == "skipped" for i in west)
    # v4 reads say 签名错误, v2 reads "invalid signature."; which read of the account
    # fails first depends on concurrent arrival, not on a seed, so either may be quoted.
    assert "签名错误" in west[0]["message"] or "invalid signature." in west[0]["message"]
    assert "WRONG-SECRET" not in out + err + (tmp_path / "report.json").read_text()


def test_lock_busy_exits_5_and_sends_nothing(world):
    tmp_path, manifest = world
    with running_sim(seeded_state(manifest, {})) as sim, RunLock(tmp_path / "run.lock"):
        code, _, err = invoke(*run_args(sim, manifest, tmp_path))
        assert code == 5
        assert f"pid {os.getpid()}" in err
        assert sim.simulator.stats.requests == 0


def test_safety_check_refuses_mass_disabling_and_force_passes(world):
    tmp_path, _ = world
    manifest = write_manifest(tmp_path)
    text = manifest.read_text().replace("enable: Y}", "enable: N}")
    manifest.write_text(text)
    state = seeded_state(manifest, {})
    for account in state.accounts.values():
        for channel in account.channels.values():
            for monitor in channel.values():
                monitor.enable = "Y"
    with running_sim(state) as sim:
        code, _, err = invoke(*run_args(sim, manifest, tmp_path))
        assert code == 4 and "safety check" in err
        assert sim.simulator.stats.writes == 0
        code, _, _ = invoke(*run_args(sim, manifest, tmp_path, "--force"))
        assert code == 0


def test_off_a_terminal_apply_needs_yes(world):
    _, manifest = world
    code, _, err = invoke("apply", str(manifest), "--api-base", "http://127.0.0.1:9")
    assert code == 1 and "--yes" in err


def test_retry_failed_finishes_the_job(world):
    tmp_path, manifest = world
    state = seeded_state(manifest, {})
    with running_sim(state) as sim:
        sim.simulator.state.accounts["app-east"].monitor_feature = False
        code, _, _ = invoke(*run_args(sim, manifest, tmp_path))
        assert code == 3
        first = json.loads((tmp_path / "report.json").read_text())
        failed = [i for i in first["items"] if i["status"] in ("failed", "skipped")]
        assert failed
        sim.simulator.state.accounts["app-east"].monitor_feature = True
        (tmp_path / "first.json").write_text(json.dumps(first))
        requests_before = sim.simulator.stats.requests
        code, out, _ = invoke(
            *run_args(sim, manifest, tmp_path, "--retry-failed", str(tmp_path / "first.json"))
        )
        assert code == 0, out
        assert state_matches_manifest(sim)
        # only east's channels were read again, not west's
        assert sim.simulator.stats.requests - requests_before < 2 * 20 + 40 + 2


def test_sigint_mid_run_leaves_journal_and_report(world):
    tmp_path, manifest = world
    faults = FaultConfig(latency_min=0.05, latency_max=0.05)
    with running_sim(seeded_state(manifest, {}), faults=faults) as sim:
        args = run_args(sim, manifest, tmp_path, "--concurrency", "2")
        env = {**os.environ, **ENV}
        process = subprocess.Popen(
            [sys.executable, "-m", "bulkpolyv", *args],
            env=env,
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
        lines = [json.loads(line) for line in journal.read_text().splitlines()]
        changed = [r for r in lines if r.get("event") == "done" and r["status"] == "changed"]
        assert changed and lines[-1]["event"] == "end"
        state = sim.simulator.state
        for record in changed:
            if record["monitor_id"]:
                app = "app-east" if record["account"] == "east" else "app-west"
                monitor = state.accounts[app].channels[record["channel_id"]][record["monitor_id"]]
                assert monitor.enable == "Y" and monitor.nickname.startswith(("east", "west"))
        report = json.loads((tmp_path / "report.json").read_text())
        assert report["status"] == "interrupted"
        assert report["totals"]["skipped"] > 0


def test_sigint_while_reading_writes_nothing_and_exits_130(world):
    tmp_path, manifest = world
    faults = FaultConfig(latency_min=0.2, latency_max=0.2)
    with running_sim(seeded_state(manifest, {}), faults=faults) as sim:
        args = run_args(sim, manifest, tmp_path, "--concurrency", "2")
        process = subprocess.Popen(
            [sys.executable, "-m", "bulkpolyv", *args],
            env={**os.environ, **ENV},
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        deadline = time.monotonic() + 20
        while sim.simulator.stats.requests < 3 and time.monotonic() < deadline:
            time.sleep(0.02)
        process.send_signal(signal.SIGINT)
        out, err = process.communicate(timeout=20)
        assert process.returncode == 130, err
        assert "nothing was written" in out
        assert sim.simulator.stats.writes == 0
        assert sim.simulator.stats.requests < 42  # it stopped reading


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGHUP])
def test_a_signal_during_plan_stops_it_with_one_sentence(world, signum):
    _, manifest = world
    faults = FaultConfig(latency_min=0.2, latency_max=0.2)
    with running_sim(seeded_state(manifest, {}), faults=faults) as sim:
        process = subprocess.Popen(
            [sys.executable, "-m", "bulkpolyv", "plan", str(manifest), "--api-base", sim.url,
             "--concurrency", "2"],
            env={**os.environ, **ENV},
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )  # fmt: skip
        deadline = time.monotonic() + 20
        while sim.simulator.stats.requests < 3 and time.monotonic() < deadline:
            time.sleep(0.02)
        arrived = sim.simulator.stats.requests
        process.send_signal(signum)
        out, err = process.communicate(timeout=20)
        # It stopped reading: at most the two requests in flight (--concurrency 2) arrive
        # after the count, of the 42 reads the whole plan needs (a count, not a clock).
        assert sim.simulator.stats.requests <= arrived + 2
    assert process.returncode == 130, err  # was killed by the signal: -15 / -1, no word
    assert err.strip().splitlines()[-1] == (
        "bulkpolyv: interrupted while reading the live state: no plan"
    )
    assert out == ""  # a partial read is not shown as a plan

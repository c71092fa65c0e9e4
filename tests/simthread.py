"""The simulator on 127.0.0.1 in a thread of its own, for tests that call the CLI's
``main()`` (which runs its own event loop) or start bulkpolyv as a subprocess."""

from __future__ import annotations

import asyncio
import random
import textwrap
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from click.testing import CliRunner

from bulkpolyv.cli import cli
from bulkpolyv.demo import drifted_state
from bulkpolyv.manifest import load_manifest
from bulkpolyv.sim import FaultConfig, PolyvSimulator, SimConfig, SimServer, SimState

ENV = {
    "T_EAST_APP": "app-east",
    "T_EAST_SECRET": "EASTSECRET-4f1e9a",
    "T_WEST_APP": "app-west",
    "T_WEST_SECRET": "WESTSECRET-77b2c0",
    "T_MON_PW": "MONPASS-91kq2",
}


def write_manifest(
    directory: Path,
    channels: int = 20,
    monitors: int = 2,
    west_secret: str = "${T_WEST_SECRET}",
    attempts: int = 6,
) -> Path:
    """Two accounts: east with YAML channels, west with a CSV; all monitors managed."""
    east_channels = "\n".join(
        f"      - channel_id: {1000 + c}\n        monitors:\n"
        + "\n".join(
            f"          - {{id: {1000 * c + m + 1}, nickname: east-{c}-{m}, "
            f'password: "${{T_MON_PW}}", enable: Y}}'
            for m in range(monitors)
        )
        for c in range(channels)
    )
    rows = ["channel_id,monitor_id,nickname,password,enable"] + [
        f"{5000 + c},{500000 + 10 * c + m},west-{c}-{m},,Y"
        for c in range(channels)
        for m in range(monitors)
    ]
    (directory / "west.csv").write_text("\n".join(rows) + "\n")
    manifest = directory / "manifest.yaml"
    manifest.write_text(
        textwrap.dedent("""\
        version: 1
        limits: {requests: 1200, per_seconds: 10, concurrency: 16, timeout: 3, attempts: ATTEMPTS}
        defaults:
          record_callback: https://hooks.example.com/rec?token=CBTOKEN-5521
        accounts:
          - name: east
            user_id: u-east
            app_id: ${T_EAST_APP}
            app_secret: ${T_EAST_SECRET}
            channels:
        """).replace("ATTEMPTS", str(attempts))
        + east_channels
        + (
            "\n  - name: west\n    user_id: u-west\n    app_id: ${T_WEST_APP}\n"
            f"    app_secret: {west_secret}\n    channels_file: west.csv\n"
        )
    )
    return manifest


def enable_readable() -> SimConfig:
    """A simulator whose monitor list returns ``enable`` (not the published shape, which
    is the default): for tests about convergence and read-back of ``enable``."""
    return SimConfig(list_includes_enable=True)


def seeded_state(manifest: Path, env: dict[str, str], seed: int = 1) -> SimState:
    """A drifted state for the manifest, with the *real* secrets (not the manifest's)."""
    loaded = load_manifest(manifest, env={**ENV, **env})
    state = drifted_state(loaded, random.Random(seed))
    state.accounts["app-west"].app_secret = ENV["T_WEST_SECRET"]
    return state


class ThreadedSim:
    def __init__(self, simulator: PolyvSimulator) -> None:
        self.simulator = simulator
        self.loop = asyncio.new_event_loop()
        self.server = SimServer(simulator)
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)

    @property
    def url(self) -> str:
        return self.server.url

    def call(self, coroutine):  # type: ignore[no-untyped-def]
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(30)

    def start(self) -> None:
        self.thread.start()
        self.call(self.server.start())

    def stop(self) -> None:
        self.call(self.server.stop())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        self.loop.close()


@contextmanager
def running_sim(
    state: SimState, config: SimConfig | None = None, faults: FaultConfig | None = None
) -> Iterator[ThreadedSim]:
    sim = ThreadedSim(PolyvSimulator(state, config or SimConfig(), faults or FaultConfig()))
    sim.start()
    try:
        yield sim
    finally:
        sim.stop()


def invoke(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, list(args), catch_exceptions=False)
    return result.exit_code, result.stdout, result.stderr


def run_args(sim, manifest, tmp_path, *extra: str) -> list[str]:
    return [
        "apply",
        str(manifest),
        "--yes",
        "--api-base",
        sim.url,
        "--cooldown",
        "0.5",
        "--report",
        str(tmp_path / "report.json"),
        "--journal",
        str(tmp_path / "j.jsonl"),
        "--lock",
        str(tmp_path / "run.lock"),
        *extra,
    ]


def state_matches_manifest(sim) -> bool:
    for account in sim.simulator.state.accounts.values():
        if account.record_callback != "https://hooks.example.com/rec?token=CBTOKEN-5521":
            return False
        for channel in account.channels.values():
            for monitor in channel.values():
                if monitor.enable != "Y" or not monitor.nickname.startswith(("east-", "west-")):
                    return False
                if monitor.nickname.startswith("east-") and monitor.password != ENV["T_MON_PW"]:
                    return False
    return True


def prepared_world(tmp_path: Path, monkeypatch: Any, **manifest: Any) -> tuple[Path, Path]:
    """The end-to-end tests' world: the manifest's ${VAR}s set, a state directory of its
    own, and the manifest (:func:`write_manifest`'s arguments)."""
    for name, value in ENV.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    return tmp_path, write_manifest(tmp_path, **manifest)

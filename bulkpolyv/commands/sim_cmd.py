"""``bulkpolyv sim``: the embedded POLYV simulator, for trying bulkpolyv without POLYV.

Every flag is parsed by :mod:`bulkpolyv.sim`'s ``parse_*`` functions; bad input (a state
file missing a key, a manifest given as state, ``--latency fast``, a reversed range, a
share above 1, a port in use) is one sentence and exit 1, never a traceback.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import click

from bulkpolyv.options import fail, writable_or_fail
from bulkpolyv.privatefiles import PrivateFileError
from bulkpolyv.stopping import STOP_SIGNALS

LIST_SHAPES = {"published": False, "with-enable": True}

SIM_OPTIONS = [
    click.option("--host", default="127.0.0.1", show_default=True),
    click.option(
        "--port",
        type=click.IntRange(0, 65535),
        default=8790,
        show_default=True,
        help="0 picks a free port.",
    ),
    click.option(
        "--state",
        "state_file",
        type=click.Path(dir_okay=False),
        help="YAML/JSON state to start from (format: README, 'The simulator's state file').",
    ),
    click.option("--dump", type=click.Path(dir_okay=False), help="Write the state here on exit."),
    click.option("--rate", default="1500/10", show_default=True, help="POLYV's limit, N/S."),
    click.option(
        "--block",
        type=click.FloatRange(min=0),
        default=300.0,
        show_default=True,
        help="Seconds an address stays blocked after going over.",
    ),
    click.option("--latency", default="0", show_default=True, help="Seconds, or MIN-MAX."),
    click.option(
        "--network-delay",
        default="0",
        show_default=True,
        help="Seconds a request is held before the limit counts it, or MIN-MAX.",
    ),
    click.option("--error-rate", default="0", help="Share (0-1) of 500/502/503 answers."),
    click.option("--drop-rate", default="0", help="Share of connections cut without an answer."),
    click.option("--seed", type=int, default=0, show_default=True),
    click.option(
        "--clock-offset",
        default="0",
        help="Seconds the simulated POLYV's clock runs ahead (negative: behind).",
    ),
    click.option("--retry-after", default="", help="Retry-After sent with 429s and 503s."),
    click.option("--redirect-rate", default="0", help="Share of answers that are redirects."),
    click.option("--redirect-status", type=int, default=307, show_default=True),
    click.option("--redirect-to", default="", help="Base URL redirects point to (default: loop)."),
    click.option(
        "--echo-url",
        type=click.Choice(["json", "html"]),
        help="Error answers quote the full request URL (in a POLYV message or an HTML page).",
    ),
    click.option("--waf-after", type=int, default=0, help="After N requests a WAF answers HTML."),
    click.option("--waf-status", type=int, default=403, show_default=True),
    click.option("--waf-seconds", type=float, default=300.0, show_default=True),
    click.option("--gzip-bomb-rate", default="0", help="Share of answers that inflate hugely."),
    click.option("--gzip-bomb-bytes", type=int, default=64 << 20, show_default=True),
    click.option(
        "--monitor-setting-field",
        type=click.Choice(["enabled", "enable", "both"]),
        default="enabled",
        show_default=True,
        help="The body field monitor/updateSetting reads.",
    ),
    click.option(
        "--wrong-setting-field",
        type=click.Choice(["reject", "ignore"]),
        default="reject",
        show_default=True,
        help="What updateSetting does with the other field name.",
    ),
    click.option(
        "--list-shape",
        type=click.Choice(list(LIST_SHAPES)),
        help="monitor/list as published (no `enable`) or with `enable` "
        "(not in the published answer).",
    ),
    click.option(
        "--with-enable/--omit-enable",
        default=None,
        help="Same as --list-shape with-enable / published.",
    ),
]


def sim_options(command: Any) -> Any:
    for option in reversed(SIM_OPTIONS):
        command = option(command)
    return command


def build_simulator(flags: dict[str, Any]) -> Any:
    """A PolyvSimulator from the flags; SimError (a sentence) when one is wrong."""
    from bulkpolyv import sim

    requests, per_seconds = sim.parse_rate(flags["rate"])
    config = sim.SimConfig(
        rate_requests=requests,
        rate_seconds=per_seconds,
        block_seconds=flags["block"],
        clock_offset=sim.parse_clock_offset(flags["clock_offset"]),
        monitor_setting_field=flags["monitor_setting_field"],
        wrong_setting_field=flags["wrong_setting_field"],
    )
    shape = flags["list_shape"]
    if flags["with_enable"] is not None:
        shape = "with-enable" if flags["with_enable"] else "published"
    if shape is not None:
        config.list_includes_enable = LIST_SHAPES[shape]
    state = sim.SimState.load(flags["state_file"]) if flags["state_file"] else sim.SimState()
    return sim.PolyvSimulator(state, config, fault_config(flags))


def fault_config(flags: dict[str, Any]) -> Any:
    from bulkpolyv import sim

    latency = sim.parse_latency(flags["latency"])
    delay = sim.parse_network_delay(flags["network_delay"])
    return sim.FaultConfig(
        latency_min=latency[0],
        latency_max=latency[1],
        network_delay_min=delay[0],
        network_delay_max=delay[1],
        error_rate=sim.parse_share(flags["error_rate"], "--error-rate"),
        drop_rate=sim.parse_share(flags["drop_rate"], "--drop-rate"),
        redirect_rate=sim.parse_share(flags["redirect_rate"], "--redirect-rate"),
        gzip_bomb_rate=sim.parse_share(flags["gzip_bomb_rate"], "--gzip-bomb-rate"),
        seed=flags["seed"],
        retry_after=flags["retry_after"],
        redirect_status=flags["redirect_status"],
        redirect_target=flags["redirect_to"],
        echo_url=flags["echo_url"] or "",
        waf_after=flags["waf_after"],
        waf_status=flags["waf_status"],
        waf_seconds=flags["waf_seconds"],
        gzip_bomb_bytes=flags["gzip_bomb_bytes"],
    )


@click.command(name="sim")
@sim_options
def sim_command(**flags: Any) -> None:
    """Run the embedded POLYV simulator until Ctrl-C."""
    from bulkpolyv.sim import SimError, SimServer

    try:
        simulator = build_simulator(flags)
    except SimError as error:
        fail(str(error))
    if flags["dump"]:  # found now, not after hours of serving
        writable_or_fail(Path(flags["dump"]))

    async def serve() -> None:
        stopped = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGHUP):  # kill, systemd, docker stop: --dump too
            loop.add_signal_handler(signum, stopped.set)
        server = SimServer(simulator, flags["host"], flags["port"])
        url = await server.start()
        click.echo(f"bulkpolyv sim listening on {url}")
        sys.stdout.flush()
        try:
            await stopped.wait()
        finally:
            await server.stop()

    try:
        asyncio.run(serve())
    except SimError as error:
        fail(str(error))
    except KeyboardInterrupt:
        pass
    finally:
        if flags["dump"]:
            with signals_ignored():  # a second kill must not leave the dump half written
                dump_or_fail(simulator, Path(flags["dump"]))


@contextlib.contextmanager
def signals_ignored() -> Iterator[None]:
    """SIGINT, SIGTERM and SIGHUP ignored while inside (the dump takes milliseconds)."""
    previous = {signum: signal.signal(signum, signal.SIG_IGN) for signum in STOP_SIGNALS}
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def dump_or_fail(simulator: Any, path: Path) -> None:
    """Write the simulator's state to ``path``; one sentence and exit 1 when it cannot be
    (the directory went away while it served, a full disk)."""
    try:
        simulator.state.dump(path)
    except PrivateFileError as error:
        fail(f"{error}; the simulator's state was not saved")

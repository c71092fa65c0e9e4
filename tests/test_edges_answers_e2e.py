"""More of issue 12 (and 13) end to end: hostile answers end as failed items, not a crash;
a channel without the monitor feature is one cause; a skewed clock converges; the report
says what was run."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web

from bulkpolyv.sim import SimConfig
from tests.simthread import (
    ThreadedSim,
    invoke,
    prepared_world,
    run_args,
    running_sim,
    seeded_state,
    state_matches_manifest,
)

LIST = "/live/v4/seminar/monitor/list"


@pytest.fixture
def world(tmp_path, monkeypatch):
    return prepared_world(tmp_path, monkeypatch, channels=4)


class HostileFront:
    """A reverse proxy in front of the simulator that answers the monitor list of some
    channels with a body of its own (the simulator checks signatures; this only lies)."""

    def __init__(self, sim: ThreadedSim, bodies: dict[str, bytes]) -> None:
        self.sim, self.bodies = sim, bodies
        self.url = ""

    async def start(self) -> None:
        self.session = aiohttp.ClientSession(auto_decompress=False)
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self.handle)
        self.runner = web.AppRunner(app)
        await self.runner.setup()
        site = web.TCPSite(self.runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self.url = f"http://127.0.0.1:{port}"

    async def stop(self) -> None:
        await self.session.close()
        await self.runner.cleanup()

    async def handle(self, request: web.Request) -> web.StreamResponse:
        hostile = self.bodies.get(request.query.get("channelId", ""))
        if request.path == LIST and hostile is not None:
            return web.Response(body=hostile, content_type="application/json")
        headers = {"Content-Type": request.headers.get("Content-Type", "")}
        async with self.session.request(
            request.method,
            self.sim.url + request.path_qs,
            data=await request.read(),
            headers={k: v for k, v in headers.items() if v},
            allow_redirects=False,
        ) as answer:
            body = await answer.read()
            kept = ("Content-Type", "Date", "Retry-After", "Content-Encoding")
            return web.Response(
                body=body,
                status=answer.status,
                headers={k: answer.headers[k] for k in kept if k in answer.headers},
            )


@contextmanager
def hostile_front(sim: ThreadedSim, bodies: dict[str, bytes]) -> Iterator[HostileFront]:
    front = HostileFront(sim, bodies)
    sim.call(front.start())
    try:
        yield front
    finally:
        sim.call(front.stop())


def with_url(args: list[str], url: str) -> list[str]:
    args = list(args)
    args[args.index("--api-base") + 1] = url
    return args


def test_deeply_nested_and_overflowing_answers_fail_their_items_and_the_run_completes(world):
    tmp_path, manifest = world
    # The same answer comes back on every try: one retry shows it, five only cost backoffs.
    manifest.write_text(manifest.read_text().replace("attempts: 6", "attempts: 2"))
    bodies = {
        "1000": b"[" * 200_000,
        "1001": b'{"code":200,"status":"success","data":[{"id":1e999,"channelId":1001,'
        b'"nickname":"n","password":"p"}]}',
    }
    with running_sim(seeded_state(manifest, {})) as sim, hostile_front(sim, bodies) as front:
        code, out, err = invoke(*with_url(run_args(sim, manifest, tmp_path), front.url))
    assert code == 3, out + err
    assert "Traceback" not in out + err
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["status"] == "partial"
    failed = sorted(
        (i["channel_id"], i["monitor_id"]) for i in report["items"] if i["status"] == "failed"
    )
    assert failed == [(1000, 1), (1000, 2), (1001, 1001), (1001, 1002)]
    assert report["totals"]["failed"] == 4 and report["totals"]["skipped"] == 0


def test_a_channel_without_the_monitor_feature_is_one_cause_and_the_callbacks_still_apply(
    world,
):
    tmp_path, manifest = world
    plan_file = tmp_path / "plan.json"
    state = seeded_state(manifest, {})
    for channel in state.accounts["app-east"].channels.values():
        for monitor in channel.values():
            monitor.nickname = "drifted"  # every east monitor has a change: 4 x 2
    with running_sim(state) as sim:
        code, _, _ = invoke("plan", str(manifest), "--api-base", sim.url, "--out", str(plan_file))
        assert code == 2
        sim.simulator.state.accounts["app-east"].monitor_feature = False  # after the review
        lists = sim.simulator.stats.by_endpoint.get("monitor/list", 0)
        args = run_args(sim, manifest, tmp_path, "--plan", str(plan_file), "--concurrency", "1")
        code, out, err = invoke(*args)
        lists_during_apply = sim.simulator.stats.by_endpoint.get("monitor/list", 0) - lists
        east = sim.simulator.state.accounts["app-east"]
    assert code == 3, out + err
    assert east.record_callback == "https://hooks.example.com/rec?token=CBTOKEN-5521"
    items = json.loads((tmp_path / "report.json").read_text())["items"]
    failed = [i for i in items if i["status"] == "failed"]
    assert sorted((i["account"], i["channel_id"]) for i in failed) == [
        ("east", channel) for channel in (1000, 1000, 1001, 1001, 1002, 1002, 1003, 1003)
    ]
    assert all(i["polyv_code"] == 1081 for i in failed)
    assert len({i["message"] for i in failed}) == 1  # one message: the same cause
    west_writes = [i for i in items if i["account"] == "west" and i["channel_id"]]
    assert {i["status"] for i in west_writes} <= {"changed", "unchanged"}
    west_reads = sum(1 for i in west_writes if i["status"] == "changed")  # each re-read once
    # one list per east channel found the feature missing; its other item sent nothing
    assert lists_during_apply == 4 + west_reads


@pytest.mark.parametrize("offset", [600.0, -600.0])
def test_a_server_clock_ten_minutes_off_converges_with_one_message(world, offset):
    tmp_path, manifest = world
    with running_sim(seeded_state(manifest, {}), SimConfig(clock_offset=offset)) as sim:
        code, out, err = invoke(*run_args(sim, manifest, tmp_path))
        assert code == 0, out + err
        assert state_matches_manifest(sim)
    assert err.count("signing with the server's time") == 1, err
    assert ("behind" if offset > 0 else "ahead") in err


def test_the_report_says_what_was_run_and_how_it_ended(world):
    tmp_path, manifest = world
    with running_sim(seeded_state(manifest, {})) as sim:
        code, _, _ = invoke(*run_args(sim, manifest, tmp_path, "--concurrency", "3"))
    assert code == 0
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["status"] == "completed" and report["exit_code"] == 0
    assert report["manifest_path"] == str(Path(manifest).resolve())
    assert len(report["manifest_digest"]) == 64
    assert report["api_base"] == sim.url
    assert report["command"] == "bulkpolyv apply"
    assert report["flags"]["concurrency"] == 3 and report["flags"]["yes"] is True
    assert report["tool_version"] and report["started"] < report["finished"]

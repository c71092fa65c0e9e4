"""The client against the embedded simulator on 127.0.0.1: round trips and rejections."""

import aiohttp
import pytest

from bulkpolyv.client import Credentials, MonitorUpdate, PolyvClient
from bulkpolyv.errors import ErrorKind, PolyvError
from bulkpolyv.sim import FaultConfig, PolyvSimulator, SimConfig, SimServer, SimState
from tests.conftest import EAST, SEED_STATE, WEST


async def test_all_four_endpoints_round_trip(sim_client, simulator):
    assert await sim_client.get_callback_settings(EAST) == "https://old.example.com/cb"
    await sim_client.set_record_callback(EAST, "https://new.example.com/cb?k=1")
    assert await sim_client.get_callback_settings(EAST) == "https://new.example.com/cb?k=1"
    await sim_client.set_record_callback(EAST, None)
    assert await sim_client.get_callback_settings(EAST) is None

    monitors = await sim_client.list_monitors(EAST, 1001)
    # the published list shape, the simulator's default, has no `enable`
    assert [(m.id, m.nickname, m.enable) for m in monitors] == [
        (1, "alpha", None),
        (2, "beta", None),
    ]
    await sim_client.update_monitor(EAST, 1001, MonitorUpdate(id=2, nickname="b2", enable="Y"))
    monitor = simulator.state.accounts["app-east"].channels[1001][2]
    assert (monitor.nickname, monitor.password, monitor.enable) == ("b2", "pw-beta-22", "Y")
    assert simulator.stats.writes == 3


async def test_wrong_secret_is_rejected_and_classified_auth(sim_client):
    forged = Credentials("u-east", "app-east", "not-the-secret")
    for call in (
        sim_client.get_callback_settings(forged),
        sim_client.set_record_callback(forged, None),
    ):
        with pytest.raises(PolyvError) as caught:
            await call
        assert caught.value.kind is ErrorKind.AUTH
        assert caught.value.http_status == 403


async def test_expired_timestamp_is_rejected_and_classified_transient(sim_server):
    for call in ("list", "set"):  # v4 answers 10003, v2 "invalid timestamp."
        async with aiohttp.ClientSession() as session:
            late = PolyvClient(session, api_base=sim_server.url, clock=lambda: 1_000_000.0)
            with pytest.raises(PolyvError) as caught:
                if call == "list":
                    await late.list_monitors(EAST, 1001)
                else:
                    await late.set_record_callback(EAST, None)
            assert (caught.value.kind, caught.value.polyv_code, caught.value.message) == (
                (ErrorKind.TRANSIENT, 10003, "时间戳过期")
                if call == "list"
                else (ErrorKind.TRANSIENT, 400, "invalid timestamp.")
            )
            # the rejection taught the client the server's time: the retry is accepted
            await late.list_monitors(EAST, 1001)


async def test_request_signed_another_way_is_rejected(sim_server):
    # Lower-case hex is how POLYV signs *callbacks*, not API calls: it must not pass.
    from bulkpolyv.signing import signed_params

    params = signed_params({"channelId": 1001}, app_id="app-east", app_secret="SECRET-EAST-0001")
    params["sign"] = params["sign"].lower()
    async with (
        aiohttp.ClientSession() as session,
        session.get(sim_server.url + "/live/v4/seminar/monitor/list", params=params) as response,
    ):
        body = await response.json()
    assert response.status == 403 and body["error"]["code"] == 10002


async def test_ownership_and_permissions_are_enforced(sim_client):
    with pytest.raises(PolyvError) as caught:
        await sim_client.set_record_callback(
            Credentials("u-west", "app-east", "SECRET-EAST-0001"), None
        )
    assert (caught.value.message, caught.value.kind) == ("userId is error.", ErrorKind.AUTH)
    with pytest.raises(PolyvError) as caught:
        await sim_client.list_monitors(EAST, 2001)  # west's channel
    assert caught.value.kind is ErrorKind.PERMANENT
    with pytest.raises(PolyvError) as caught:
        await sim_client.list_monitors(WEST, 2001)  # no monitor feature
    assert (caught.value.polyv_code, caught.value.kind) == (1081, ErrorKind.FEATURE_MISSING)
    with pytest.raises(PolyvError) as caught:
        await sim_client.update_monitor(EAST, 1001, MonitorUpdate(id=99, enable="N"))
    assert caught.value.polyv_code == 50101


@pytest.mark.parametrize(
    ("update", "message"),
    [
        (MonitorUpdate(id=1, nickname="x" * 17), "昵称长度为1~16"),
        (MonitorUpdate(id=1, password="short"), "密码长度为6~16"),
        (MonitorUpdate(id=1, enable="yes"), "enable只能为Y或N"),
    ],
)
async def test_update_validation_matches_polyv(sim_client, update, message):
    with pytest.raises(PolyvError) as caught:
        await sim_client.update_monitor(EAST, 1001, update)
    assert (caught.value.polyv_code, caught.value.message) == (10001, message)


async def test_bad_callback_url_is_refused(sim_client):
    with pytest.raises(PolyvError, match="url format error"):
        await sim_client.set_record_callback(EAST, "ftp://example.com/x")


async def test_rate_limit_blocks_the_address_after_the_window_is_full():
    simulator = PolyvSimulator(
        SimState.from_data(SEED_STATE),
        SimConfig(rate_requests=5, rate_seconds=60, block_seconds=60),
    )
    async with SimServer(simulator) as server, aiohttp.ClientSession() as session:
        client = PolyvClient(session, api_base=server.url)
        for _ in range(5):
            await client.get_callback_settings(EAST)
        for _ in range(3):
            with pytest.raises(PolyvError) as caught:
                await client.get_callback_settings(EAST)
            assert caught.value.kind is ErrorKind.RATE_LIMITED
    assert (simulator.stats.violations, simulator.stats.blocked_requests) == (1, 2)


async def test_faults_are_deterministic_for_a_seed():
    async def run() -> list[str]:
        faults = FaultConfig(error_rate=0.3, drop_rate=0.2, seed=42)
        simulator = PolyvSimulator(SimState.from_data(SEED_STATE), faults=faults)
        outcomes = []
        async with SimServer(simulator) as server, aiohttp.ClientSession() as session:
            client = PolyvClient(session, api_base=server.url)
            for _ in range(30):
                try:
                    await client.list_monitors(EAST, 1001)
                    outcomes.append("ok")
                except PolyvError as error:
                    outcomes.append(str(error.http_status))
        return outcomes

    first, second = await run(), await run()
    assert first == second
    assert {"ok", "None"} <= set(first) and set(first) & {"500", "502", "503"}


async def test_a_dropped_connection_is_sent_once_not_retried_by_aiohttp():
    simulator = PolyvSimulator(
        SimState.from_data(SEED_STATE), faults=FaultConfig(drop_rate=1.0, seed=1)
    )
    async with SimServer(simulator) as server, aiohttp.ClientSession() as session:
        client = PolyvClient(session, api_base=server.url)
        for _ in range(4):
            with pytest.raises(PolyvError):
                await client.list_monitors(EAST, 1001)
    assert simulator.stats.requests == 4


async def test_latency_above_the_timeout_times_out():
    simulator = PolyvSimulator(
        SimState.from_data(SEED_STATE), faults=FaultConfig(latency_min=1.0, latency_max=1.0)
    )
    async with SimServer(simulator) as server, aiohttp.ClientSession() as session:
        client = PolyvClient(session, api_base=server.url, timeout=0.2)
        with pytest.raises(PolyvError, match="timed out"):
            await client.list_monitors(EAST, 1001)


async def test_slow_bodies_still_arrive():
    simulator = PolyvSimulator(
        SimState.from_data(SEED_STATE),
        faults=FaultConfig(slow_body_rate=1.0, slow_body_seconds=0.2),
    )
    async with SimServer(simulator) as server, aiohttp.ClientSession() as session:
        client = PolyvClient(session, api_base=server.url)
        assert len(await client.list_monitors(EAST, 1001)) == 2
    assert simulator.stats.slow_bodies == 1


async def test_state_round_trips_through_a_file(tmp_path, simulator):
    path = tmp_path / "state.json"
    simulator.state.dump(path)
    assert SimState.load(path).to_data() == simulator.state.to_data()


async def test_admin_endpoints_dump_state_and_stats(sim_server, sim_client):
    await sim_client.get_callback_settings(EAST)
    async with aiohttp.ClientSession() as session:
        async with session.get(sim_server.url + "/_sim/stats") as response:
            stats = await response.json()
        async with session.get(sim_server.url + "/_sim/state") as response:
            state = await response.json()
    assert stats["requests"] == 1
    assert state["accounts"][0]["record_callback"] == "https://old.example.com/cb"

"""The simulator's network delay and fault modes, pinned on the wire (issues 11 and 12)."""

import asyncio
import random
import zlib

import aiohttp
import pytest

from bulkpolyv.sim import FaultConfig, PolyvSimulator, SimConfig, SimServer, SimState
from bulkpolyv.sim.faults import BOMB_PREFIX, Fate, FaultInjector, gzip_bomb
from tests.conftest import SEED_STATE
from tests.sim_requests import call, refused_port, signed

LIST = "/live/v4/seminar/monitor/list"
SET_RECORD = "/live/v2/user/u-east/set-record-callback"


def make_sim(faults: FaultConfig | None = None, config: SimConfig | None = None, **kw):
    return PolyvSimulator(SimState.from_data(SEED_STATE), config or SimConfig(), faults, **kw)


class FakeMonotonic:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


# --- network delay (issue 11) ----------------------------------------------------------------


async def test_network_delay_holds_a_request_before_it_is_counted():
    clock = FakeMonotonic()
    faults = FaultConfig(network_delay_min=0.2, network_delay_max=0.2)
    simulator = make_sim(faults, monotonic=clock)
    async with SimServer(simulator) as server, aiohttp.ClientSession() as session:
        sent = asyncio.create_task(
            call(session, "GET", server.url + LIST, params=signed({"channelId": 1001}))
        )
        await asyncio.sleep(0.1)
        assert (len(simulator.requests.entries), simulator.stats.requests) == (1, 0)
        clock.now = 105.0  # the request "arrives" while it is held
        status, _, _ = await sent
    assert status == 200
    assert (simulator.stats.requests, simulator.stats.first_request_at) == (1, 105.0)


async def test_the_window_counts_arrival_order_not_send_order():
    seed = 9  # the first request sent is held longest and arrives last
    draws = random.Random(f"network-{seed}")
    delays = [draws.uniform(0.0, 0.3) for _ in range(3)]
    arrivals = [0.05 * i + delay for i, delay in enumerate(delays)]
    last = arrivals.index(max(arrivals))
    assert last == 0 and sorted(arrivals)[-1] - sorted(arrivals)[-2] > 0.1
    faults = FaultConfig(network_delay_min=0.0, network_delay_max=0.3, seed=seed)
    simulator = make_sim(faults, SimConfig(rate_requests=2, rate_seconds=60))
    async with SimServer(simulator) as server, aiohttp.ClientSession() as session:
        tasks = []
        for _ in range(3):
            params = signed({"channelId": 1001})
            tasks.append(
                asyncio.create_task(call(session, "GET", server.url + LIST, params=params))
            )
            await asyncio.sleep(0.05)
        statuses = [status for status, _, _ in await asyncio.gather(*tasks)]
    assert statuses == [429 if i == last else 200 for i in range(3)]
    assert (simulator.stats.violations, simulator.stats.peak_in_window) == (1, 2)


async def test_arrivals_per_second_and_peak_follow_the_arrival_clock():
    clock = FakeMonotonic()
    simulator = make_sim(config=SimConfig(rate_seconds=2.0), monotonic=clock)
    async with SimServer(simulator) as server, aiohttp.ClientSession() as session:
        for at, count in ((100.0, 3), (101.5, 2), (102.2, 1)):
            clock.now = at
            for _ in range(count):
                params = signed({"channelId": 1001})
                assert (await call(session, "GET", server.url + LIST, params=params))[0] == 200
    assert simulator.stats.arrivals_per_second == {0: 3, 1: 2, 2: 1}
    assert simulator.stats.peak_in_window == 5  # 100.0-101.5; at 102.2 only 3 are in 2 s


def test_network_delay_is_seeded_and_leaves_the_fates_alone():
    plain = FaultInjector(FaultConfig(error_rate=0.3, drop_rate=0.2, seed=42))
    delayed = FaultInjector(
        FaultConfig(
            error_rate=0.3, drop_rate=0.2, seed=42, network_delay_min=0.1, network_delay_max=0.5
        )
    )
    fates, delays = [], []
    for _ in range(50):
        delays.append(delayed.network_delay())
        fates.append(delayed.fate())
    assert fates == [plain.fate() for _ in range(50)]
    again = FaultInjector(delayed.config)
    assert delays == [again.network_delay() for _ in range(50)]
    assert all(0.1 <= delay <= 0.5 for delay in delays)


# --- redirects, Retry-After, echoes (issue 12) -------------------------------------------------


@pytest.mark.parametrize("status", [307, 302])
async def test_redirect_to_another_host_keeps_path_and_query(status):
    faults = FaultConfig(
        redirect_rate=1.0, redirect_status=status, redirect_target="http://other.example:8080/"
    )
    simulator = make_sim(faults)
    async with SimServer(simulator) as server, aiohttp.ClientSession() as session:
        params = signed({"channelId": 1001})
        async with session.get(server.url + LIST, params=params, allow_redirects=False) as got:
            assert got.status == status
            assert got.headers["Location"] == "http://other.example:8080" + got.url.path_qs
    assert simulator.stats.redirects == 1


async def test_a_307_carries_the_monitor_password_to_the_other_host():
    other = make_sim()
    async with SimServer(other) as target:
        simulator = make_sim(FaultConfig(redirect_rate=1.0, redirect_target=target.url))
        async with SimServer(simulator) as server, aiohttp.ClientSession() as session:
            params = signed({"channelId": 1001})
            async with session.post(
                server.url + "/live/v4/seminar/monitor/update",
                params=params,
                json={"id": 1, "password": "secret-pw-1"},
            ) as followed:
                assert followed.status == 200  # aiohttp followed it to the other host
    assert (simulator.stats.redirects, other.stats.writes) == (1, 1)
    assert other.state.accounts["app-east"].channels[1001][1].password == "secret-pw-1"
    assert dict(other.requests.entries[0].query)["sign"] == params["sign"]


async def test_a_redirect_loop_points_at_itself():
    simulator = make_sim(FaultConfig(redirect_rate=1.0))
    async with SimServer(simulator) as server, aiohttp.ClientSession() as session:
        params = signed({"channelId": 1001})
        async with session.get(server.url + LIST, params=params, allow_redirects=False) as got:
            assert (got.status, got.headers["Location"]) == (307, str(got.url))
        with pytest.raises(aiohttp.TooManyRedirects):
            async with session.get(server.url + LIST, params=params, max_redirects=4):
                pass
    assert (simulator.stats.redirects, simulator.stats.requests) == (5, 5)  # 1 + 4 in the loop


@pytest.mark.parametrize("value", ["100000", "1e400", "-5", "Wed, 21 Oct 2026 07:28:00 GMT"])
async def test_retry_after_is_sent_on_429(value):
    simulator = make_sim(FaultConfig(retry_after=value), SimConfig(rate_requests=1))
    async with SimServer(simulator) as server, aiohttp.ClientSession() as session:
        first = await call(session, "GET", server.url + LIST, params=signed({"channelId": 1001}))
        second = await call(session, "GET", server.url + LIST, params=signed({"channelId": 1001}))
    assert (first[0], "Retry-After" in first[1]) == (200, False)
    assert (second[0], second[1]["Retry-After"]) == (429, value)


async def test_retry_after_is_sent_on_injected_503s_only():
    simulator = make_sim(FaultConfig(error_rate=1.0, retry_after="100000", seed=3))
    async with SimServer(simulator) as server, aiohttp.ClientSession() as session:
        answers = [
            await call(session, "GET", server.url + LIST, params=signed({"channelId": 1001}))
            for _ in range(12)
        ]
    seen = [(status, headers.get("Retry-After")) for status, headers, _ in answers]
    assert {status for status, _ in seen} == {500, 502, 503}
    assert seen == [(s, "100000" if s == 503 else None) for s, _ in seen]


async def test_no_retry_after_unless_configured():
    simulator = make_sim(config=SimConfig(rate_requests=1))
    async with SimServer(simulator) as server, aiohttp.ClientSession() as session:
        for _ in range(2):
            status, headers, _ = await call(
                session, "GET", server.url + LIST, params=signed({"channelId": 1001})
            )
    assert (status, "Retry-After" in headers) == (429, False)


async def test_json_echo_quotes_the_full_url_in_polyv_messages():
    simulator = make_sim(FaultConfig(echo_url="json"))
    async with SimServer(simulator) as server, aiohttp.ClientSession() as session:
        params = signed({"url": "https://hooks.example.com/cb?token=CBTOKEN-1"}, secret="wrong")
        async with session.post(server.url + SET_RECORD, params=params) as response:
            body, url = await response.json(), str(response.url)
        v4 = await call(session, "GET", server.url + LIST, params=signed({"channelId": 9}))
    assert body["message"] == f"invalid signature. (request: {url})"
    assert "token%3DCBTOKEN-1" in url and "sign=" + params["sign"] in url
    assert v4[2]["error"]["desc"].startswith("频道不存在 (channel not found) (request: http://")


async def test_echoing_5xx_quotes_the_url_in_json_and_in_html():
    for mode, kind in (("json", "application/json"), ("html", "text/html")):
        simulator = make_sim(FaultConfig(error_rate=1.0, echo_url=mode))
        async with SimServer(simulator) as server, aiohttp.ClientSession() as session:
            params = signed({"url": "https://h.example.com/cb?token=CBTOKEN-2"})
            async with session.post(server.url + SET_RECORD, params=params) as response:
                text, url = await response.text(), str(response.url)
                assert (response.status >= 500, response.content_type) == (True, kind)
        quoted = url if mode == "json" else url.replace("&", "&amp;")
        assert quoted.replace("/", "\\/") in text or quoted in text
        assert simulator.state.accounts["app-east"].record_callback == "https://old.example.com/cb"


async def test_html_echo_of_a_rejection():
    simulator = make_sim(FaultConfig(echo_url="html"))
    async with SimServer(simulator) as server, aiohttp.ClientSession() as session:
        params = signed({"channelId": 1001}, secret="wrong")
        async with session.get(server.url + LIST, params=params) as response:
            text, url = await response.text(), str(response.url)
            assert (response.status, response.content_type) == (403, "text/html")
    assert f"Error while processing {url.replace('&', '&amp;')}</p>" in text


# --- WAF wall, decompression bomb, refused port (issues 12 and 13) ---------------------------


@pytest.mark.parametrize("status", [403, 502])
async def test_a_waf_wall_answers_html_after_n_requests_for_a_while(status):
    clock = FakeMonotonic()
    faults = FaultConfig(waf_after=3, waf_status=status, waf_seconds=60.0)
    simulator = make_sim(faults, monotonic=clock)
    async with SimServer(simulator) as server, aiohttp.ClientSession() as session:

        async def one() -> tuple[int, str]:
            params = signed({"channelId": 1001})
            async with session.get(server.url + LIST, params=params) as response:
                await response.read()
                return response.status, response.content_type

        seen = [await one() for _ in range(5)]
        clock.now += 59.0
        seen.append(await one())
        clock.now += 1.5
        seen.append(await one())
    assert seen == [(200, "application/json")] * 3 + [(status, "text/html")] * 3 + [
        (200, "application/json")
    ]
    assert simulator.stats.waf_walled == 3


async def test_a_decompression_bomb_is_small_on_the_wire():
    faults = FaultConfig(gzip_bomb_rate=1.0, gzip_bomb_bytes=8 << 20)
    simulator = make_sim(faults)
    async with (
        SimServer(simulator) as server,
        aiohttp.ClientSession(auto_decompress=False) as session,
        session.get(server.url + LIST, params=signed({"channelId": 1001})) as response,
    ):
        raw = await response.read()
        headers = response.headers
    assert (response.status, headers["Content-Encoding"]) == (200, "gzip")
    assert int(headers["Content-Length"]) == len(raw) < 64 << 10
    inflated = zlib.decompress(raw, 31)
    assert len(inflated) == 8 << 20 and inflated.startswith(BOMB_PREFIX)
    assert simulator.stats.gzip_bombs == 1


def test_the_default_bomb_inflates_to_64_mib_from_under_128_kib():
    bomb = gzip_bomb(FaultConfig().gzip_bomb_bytes)
    inflater = zlib.decompressobj(31)
    inflated, rest = 0, bomb
    while rest:
        inflated += len(inflater.decompress(rest, 1 << 20))
        rest = inflater.unconsumed_tail
    assert (len(bomb) < 128 << 10, inflated) == (True, 64 << 20)


def test_new_fates_are_drawn_after_the_old_ones():
    injector = FaultInjector(FaultConfig(redirect_rate=0.5, gzip_bomb_rate=0.5, seed=1))
    assert {injector.fate() for _ in range(40)} == {Fate.REDIRECT, Fate.GZIP_BOMB}


async def test_a_refused_port_refuses():
    async with aiohttp.ClientSession() as session:
        with pytest.raises(aiohttp.ClientConnectorError):
            await session.get(f"http://127.0.0.1:{refused_port()}/")


async def test_the_network_delay_can_be_switched_on_through_admin_config():
    simulator = make_sim()
    async with SimServer(simulator) as server, aiohttp.ClientSession() as session:
        delay = {"network_delay_min": 0.05, "network_delay_max": 0.1, "seed": 4}
        status, _, _ = await call(
            session, "POST", server.url + "/_sim/config", json_body={"faults": delay}
        )
    assert status == 200
    expected = random.Random("network-4").uniform(0.05, 0.1)
    assert simulator.faults.network_delay() == expected

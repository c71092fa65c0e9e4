"""The simulator's protocol truths (issue 13): published shapes, clock offset, the wire log,
clear errors for bad input, and the state file's round trip."""

import re
import socket
from email.utils import formatdate
from pathlib import Path

import aiohttp
import pytest
import yaml

from bulkpolyv.sim import (
    FaultConfig,
    PolyvSimulator,
    SimConfig,
    SimError,
    SimServer,
    SimState,
    parse_clock_offset,
    parse_latency,
    parse_network_delay,
    parse_rate,
    parse_share,
)
from tests.conftest import SEED_STATE
from tests.sim_requests import EAST_SECRET, call, signed

LIST = "/live/v4/seminar/monitor/list"
CALLBACK_GET = "/live/v4/user/global-setting/callback/get"
SET_RECORD = "/live/v2/user/u-east/set-record-callback"
NOTES = Path(__file__).parent.parent / "notes-sim-state.md"
NOW = 1_790_000_000.0


def make_sim(config: SimConfig | None = None, **kw) -> PolyvSimulator:
    return PolyvSimulator(SimState.from_data(SEED_STATE), config or SimConfig(), **kw)


async def test_the_published_list_shape_has_exactly_four_fields():
    simulator = make_sim(SimConfig(list_includes_enable=False))
    async with SimServer(simulator) as server, aiohttp.ClientSession() as session:
        _, _, body = await call(
            session, "GET", server.url + LIST, params=signed({"channelId": 1001})
        )
    assert body["data"] == [
        {"id": 1, "channelId": 1001, "nickname": "alpha", "password": "pw-alpha-1"},
        {"id": 2, "channelId": 1001, "nickname": "beta", "password": "pw-beta-22"},
    ]
    assert all(type(m["id"]) is int and type(m["channelId"]) is int for m in body["data"])


async def test_callback_get_answers_the_full_published_field_set():
    async with SimServer(make_sim()) as server, aiohttp.ClientSession() as session:
        _, _, body = await call(session, "GET", server.url + CALLBACK_GET, params=signed())
    assert body["data"] == {
        "recordCallbackUrl": "https://old.example.com/cb",
        "recordFileCallBackType": None,
        "recordCallbackVideoType": None,
        "playbackCallbackUrl": None,
        "rebirthVodCallbackEnabled": None,
        "pptRecordCallbackUrl": None,
        "streamCallbackUrl": None,
        "channelBasicUpdateCallbackUrl": None,
        "liveScanCallbackUrl": None,
        "chatUserStatusCallbackUrl": None,
        "interactionCallbackUrl": None,
        "playbackCacheCallbackUrl": None,
        "playbackSettingCallbackUrl": None,
    }


@pytest.mark.parametrize("offset", [600.0, -600.0])
async def test_a_shifted_clock_checks_timestamps_and_dates_answers_with_it(offset):
    simulator = make_sim(SimConfig(clock_offset=offset), clock=lambda: NOW)
    async with SimServer(simulator) as server, aiohttp.ClientSession() as session:

        async def at(seconds: float) -> tuple[int, dict[str, str], dict]:
            params = signed({"channelId": 1001}, clock=lambda: seconds)
            return await call(session, "GET", server.url + LIST, params=params)

        local = await at(NOW)
        server_time = await at(NOW + offset)
        edge = await at(NOW + offset - 179)
        beyond = await at(NOW + offset + 181)
    assert (local[0], local[2]["error"]) == (400, {"code": 10003, "desc": "时间戳过期"})
    assert (server_time[0], edge[0], beyond[0]) == (200, 200, 400)
    assert local[1]["Date"] == server_time[1]["Date"] == formatdate(NOW + offset, usegmt=True)


async def test_every_answer_carries_the_simulators_date():
    simulator = make_sim(SimConfig(clock_offset=-42.0), clock=lambda: NOW)
    async with SimServer(simulator) as server, aiohttp.ClientSession() as session:
        rejected = await call(session, "GET", server.url + LIST, params={"appId": "nobody"})
        admin = await call(session, "GET", server.url + "/_sim/stats")
    assert rejected[1]["Date"] == admin[1]["Date"] == "Mon, 21 Sep 2026 14:12:38 GMT"


async def test_v2_takes_its_parameters_from_a_form_body_or_the_query_and_logs_which():
    simulator = make_sim()
    url_value = "https://hooks.example.com/cb?token=CBTOKEN-9"
    async with SimServer(simulator) as server, aiohttp.ClientSession() as session:
        in_form = await call(
            session, "POST", server.url + SET_RECORD, form=signed({"url": url_value})
        )
        assert simulator.state.accounts["app-east"].record_callback == url_value
        in_query = await call(session, "POST", server.url + SET_RECORD, params=signed())
        assert simulator.state.accounts["app-east"].record_callback is None
        _, _, logged = await call(session, "GET", server.url + "/_sim/requests")
    assert (in_form[0], in_query[0]) == (200, 200)
    assert logged[0] == {
        "method": "POST",
        "path": SET_RECORD,
        "query": [],
        "content_type": "application/x-www-form-urlencoded",
        "form_keys": ["appId", "sign", "timestamp", "url"],
    }
    assert [key for key, _ in logged[1]["query"]] == ["appId", "timestamp", "sign"]
    assert (logged[1]["content_type"], logged[1]["form_keys"]) == ("", [])
    assert len(logged) == 2  # the admin request itself is not logged


async def test_a_form_body_signed_with_the_wrong_secret_is_refused():
    simulator = make_sim()
    async with SimServer(simulator) as server, aiohttp.ClientSession() as session:
        form = signed({"url": "https://x.example.com/"}, secret="not-" + EAST_SECRET)
        status, _, body = await call(session, "POST", server.url + SET_RECORD, form=form)
    assert (status, body["message"]) == (403, "invalid signature.")


def test_the_request_log_keeps_the_newest():
    simulator = make_sim(SimConfig(request_log_size=2))
    assert simulator.requests.entries.maxlen == 2


# --- bad input: one error class, one sentence -----------------------------------------------


def test_a_state_missing_a_key_names_the_place(tmp_path):
    path = tmp_path / "state.yaml"
    path.write_text("accounts:\n  - {user_id: u, app_id: a}\n")
    with pytest.raises(SimError) as caught:
        SimState.load(path)
    assert str(caught.value) == f"{path}, accounts[0]: missing key 'app_secret'."


def test_a_manifest_given_as_state_is_recognised():
    manifest = Path(__file__).parent.parent / "manifests"
    example = next(iter(sorted(manifest.glob("*.yaml"))))
    with pytest.raises(SimError, match=r"looks like a bulkpolyv manifest, not a simulator state"):
        SimState.load(example)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("accounts: 3", "`accounts` must be a list."),
        ("[1, 2]", "expected a mapping with an `accounts` list."),
        ("accounts: [{user_id: u, app_id: a, app_secret: s, channels: [{}]}]", "missing key"),
        (
            "accounts: [{user_id: u, app_id: a, app_secret: s, channels: "
            "[{channel_id: 1, monitoring: maybe}]}]",
            "accounts[0].channels[0]: monitoring must be Y or N, not 'maybe'.",
        ),
        ("accounts: [{name: east, channels_file: x.csv}]", "looks like a manifest account"),
        ("accounts: [\n", "is not valid YAML/JSON"),
    ],
)
def test_bad_state_files_get_a_sentence(tmp_path, text, message):
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(SimError) as caught:
        SimState.load(path)
    assert message in str(caught.value) and "Traceback" not in str(caught.value)


def test_an_unknown_fault_setting_changes_nothing():
    faults = FaultConfig(error_rate=0.1)
    with pytest.raises(SimError, match=r"^unknown fault setting 'eror_rate'; known: "):
        faults.update({"error_rate": 0.5, "eror_rate": 0.2})
    assert faults.error_rate == 0.1
    with pytest.raises(SimError, match=r"^every fault rate must be a share between 0 and 1\.$"):
        FaultConfig(error_rate=1.5)
    with pytest.raises(SimError, match=r"^the fault rates add up to more than 1\.$"):
        FaultConfig(error_rate=0.6, drop_rate=0.6)


async def test_admin_config_refuses_a_bad_setting_with_a_sentence():
    simulator = make_sim()
    async with SimServer(simulator) as server, aiohttp.ClientSession() as session:
        async with session.post(
            server.url + "/_sim/config", json={"faults": {"echo_url": "xml"}}
        ) as response:
            status, body = response.status, await response.json()
        async with session.post(
            server.url + "/_sim/config", json={"config": {"clock_offset": 30}}
        ) as response:
            assert response.status == 200
    assert (status, body["error"]) == (400, "echo_url must be '', 'json' or 'html', not 'xml'.")
    assert (simulator.faults.config.echo_url, simulator.config.clock_offset) == ("", 30.0)


@pytest.mark.parametrize(
    ("parse", "text", "message"),
    [
        (parse_latency, "fast", "--latency 'fast' is not seconds or a range MIN-MAX like 0.2-0.6."),
        (
            parse_latency,
            "0.6-0.2",
            "--latency '0.6-0.2' is reversed: write the smaller number first.",
        ),
        (
            parse_network_delay,
            "inf",
            "--network-delay 'inf': seconds must be finite and not negative.",
        ),
        (parse_rate, "fast", "--rate 'fast' is not N/S like 1500/10."),
        (parse_clock_offset, "nan", "--clock-offset 'nan' must be a finite number of seconds."),
    ],
)
def test_bad_flags_get_a_sentence(parse, text, message):
    with pytest.raises(SimError) as caught:
        parse(text)
    assert str(caught.value) == message


def test_good_flags_parse():
    assert (parse_latency("0.2-0.6"), parse_latency("0.3"), parse_network_delay("0-0.3")) == (
        (0.2, 0.6),
        (0.3, 0.3),
        (0.0, 0.3),
    )
    assert (parse_rate("150/1"), parse_share("0.05", "--error-rate")) == ((150, 1.0), 0.05)
    assert parse_clock_offset("-600") == -600.0


@pytest.mark.parametrize("value", ["1.5", "-0.1", "nan", "lots"])
def test_a_share_outside_0_to_1_is_refused(value):
    with pytest.raises(
        SimError, match=r"^--error-rate '.*' (must be|is not a number) between 0 and 1"
    ):
        parse_share(value, "--error-rate")


async def test_a_port_in_use_is_a_sentence():
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        server = SimServer(make_sim(), port=port)
        with pytest.raises(SimError) as caught:
            await server.start()
    assert re.fullmatch(
        rf"cannot listen on 127\.0\.0\.1:{port}: .+; "
        r"choose another --port \(0 picks a free one\)\.",
        str(caught.value),
    )


# --- the state file ---------------------------------------------------------------------------


def _documented_example() -> str:
    return NOTES.read_text().split("```yaml\n", 1)[1].split("```", 1)[0]


def test_the_documented_example_loads_and_round_trips(tmp_path):
    state = SimState.from_data(yaml.safe_load(_documented_example()))
    east = state.accounts["app-east"]
    assert (east.stream_callback, east.monitoring, east.channels[2191532][1002].enable) == (
        "https://hooks.example.com/polyv/stream",
        {2191532: "Y", 2191533: "N"},
        "N",
    )
    assert east.channel_callbacks[2191533].global_enabled == "N"
    dumped = tmp_path / "state.json"
    state.dump(dumped)
    again = SimState.load(dumped)
    assert again == state and again.to_data() == state.to_data()


def test_a_dump_of_every_kind_of_setting_loads_back_identically(tmp_path):
    state = SimState.from_data(SEED_STATE)
    east = state.accounts["app-east"]
    east.playback_callback = "https://p.example.com/?t=1"
    east.other_callbacks["pptRecordCallbackUrl"] = "https://ppt.example.com/"
    east.monitoring[1002] = "N"
    east.channel_callback_of(1001).urls["streamCallbackUrl"] = "https://s.example.com/"
    east.channel_callback_of(1001).global_enabled = "N"
    for name in ("state.json", "state.yaml"):
        path = tmp_path / name
        if name.endswith(".yaml"):
            path.write_text(yaml.safe_dump(state.to_data()))
        else:
            state.dump(path)
        assert SimState.load(path) == state

"""The simulator's issue-14 endpoints: playback/stream callbacks, the channel monitor switch,
the channel callback override, and the admin endpoints that set them."""

import aiohttp
import pytest

from bulkpolyv.sim import PolyvSimulator, SimConfig, SimServer, SimState
from tests.conftest import SEED_STATE
from tests.sim_requests import WEST_APP, WEST_SECRET, call, signed

CALLBACK_GET = "/live/v4/user/global-setting/callback/get"
QUERY = "/live/v4/seminar/monitor/querySetting"
UPDATE = "/live/v4/seminar/monitor/updateSetting"
CHANNEL_SETTING = "/live/v3/channel/callback/get-setting"


def setter(kind: str, user: str = "u-east") -> str:
    return f"/live/v2/user/{user}/set-{kind}-callback"


@pytest.fixture
def simulator() -> PolyvSimulator:
    return PolyvSimulator(SimState.from_data(SEED_STATE), SimConfig())


@pytest.fixture
async def wire(simulator):
    async with SimServer(simulator) as server, aiohttp.ClientSession() as session:

        async def send(method, path, **kw):
            return await call(session, method, server.url + path, **kw)

        yield send


@pytest.mark.parametrize(
    ("kind", "field"), [("playback", "playbackCallbackUrl"), ("stream", "streamCallbackUrl")]
)
async def test_playback_and_stream_callbacks_set_read_and_switch_off(wire, simulator, kind, field):
    url = f"https://hooks.example.com/{kind}?token=T-1"
    assert (await wire("POST", setter(kind), form=signed({"url": url})))[2] == {
        "code": 200,
        "status": "success",
        "message": "",
        "data": "",
    }
    _, _, read = await wire("GET", CALLBACK_GET, params=signed())
    assert (read["data"][field], read["data"]["recordCallbackUrl"]) == (
        url,
        "https://old.example.com/cb",
    )
    await wire("POST", setter(kind), form=signed())
    _, _, read = await wire("GET", CALLBACK_GET, params=signed())
    assert read["data"][field] is None
    assert (simulator.stats.writes, simulator.stats.by_endpoint[f"set-{kind}-callback"]) == (2, 2)


@pytest.mark.parametrize("kind", ["playback", "stream"])
async def test_playback_and_stream_setters_are_as_strict_as_the_record_one(wire, kind):
    answers = [
        await wire("POST", setter(kind), form=signed({"url": "ftp://x.example.com/"})),
        await wire("POST", setter(kind, "u-west"), form=signed({"url": "https://x.example.com/"})),
        await wire("POST", setter(kind), form=signed(secret="wrong")),
        await wire("POST", setter(kind), form=signed(app_id="nobody")),
        await wire("POST", setter(kind), form=signed(clock=lambda: 1_000_000.0)),
    ]
    assert [(status, body["message"]) for status, _, body in answers] == [
        (400, "url format error."),
        (400, "userId is error."),
        (403, "invalid signature."),
        (400, "application not found."),
        (400, "invalid timestamp."),
    ]


async def test_the_monitor_switch_reads_and_writes(wire, simulator):
    _, _, before = await wire("GET", QUERY, params=signed({"channelId": 1001}))
    status, _, updated = await wire(
        "POST", UPDATE, params=signed({"channelId": 1001}), json_body={"enabled": "N"}
    )
    _, _, after = await wire("GET", QUERY, params=signed({"channelId": 1001}))
    assert (before["data"], status, updated["data"], after["data"]) == (
        {"enabled": "Y"},
        200,
        None,
        {"enabled": "N"},
    )
    assert simulator.state.accounts["app-east"].monitoring == {1001: "N", 1002: "Y"}


async def test_the_monitor_switch_is_as_strict_as_the_monitor_calls(wire):
    west = {"app_id": WEST_APP, "secret": WEST_SECRET}
    answers = [
        await wire("GET", QUERY, params=signed({"channelId": 2001}, **west)),
        await wire(
            "POST", UPDATE, params=signed({"channelId": 2001}, **west), json_body={"enabled": "N"}
        ),
        await wire("GET", QUERY, params=signed({"channelId": 2001})),
        await wire("GET", QUERY, params=signed({"channelId": 1001}, secret="wrong")),
        await wire("GET", QUERY, params=signed({"channelId": 1001}, clock=lambda: 1e6)),
        await wire(
            "POST", UPDATE, params=signed({"channelId": 1001}), json_body={"enabled": "yes"}
        ),
        await wire("POST", UPDATE, params=signed({"channelId": 1001}), json_body={"enable": "N"}),
    ]
    assert [
        (status, body["error"]["code"], body["error"]["desc"]) for status, _, body in answers
    ] == [
        (400, 1081, "没有监控轮询权限"),
        (400, 1081, "没有监控轮询权限"),
        (400, 10005, "频道不存在 (channel not found)"),
        (403, 10002, "签名错误"),
        (400, 10003, "时间戳过期"),
        (400, 10001, "enabled只能为Y或N"),
        (400, 10001, "param should not be empty: enabled"),
    ]


@pytest.mark.parametrize(
    ("accepted", "body", "result"),
    [
        ("enable", {"enable": "N"}, "N"),
        ("enable", {"enabled": "N"}, "rejected"),
        ("both", {"enable": "N"}, "N"),
        ("both", {"enabled": "N"}, "N"),
        ("enabled", {"enabled": "N"}, "N"),
    ],
)
async def test_which_body_field_update_setting_reads_is_configurable(accepted, body, result):
    simulator = PolyvSimulator(
        SimState.from_data(SEED_STATE), SimConfig(monitor_setting_field=accepted)
    )
    async with SimServer(simulator) as server, aiohttp.ClientSession() as session:
        status, _, _ = await call(
            session, "POST", server.url + UPDATE, params=signed({"channelId": 1001}), json_body=body
        )
    assert (status, simulator.state.accounts["app-east"].monitoring_of(1001)) == (
        (400, "Y") if result == "rejected" else (200, result)
    )


async def test_a_wrong_field_can_be_silently_ignored_like_a_real_api_might():
    config = SimConfig(wrong_setting_field="ignore")
    simulator = PolyvSimulator(SimState.from_data(SEED_STATE), config)
    async with SimServer(simulator) as server, aiohttp.ClientSession() as session:
        status, _, body = await call(
            session,
            "POST",
            server.url + UPDATE,
            params=signed({"channelId": 1001}),
            json_body={"enable": "N"},
        )
    assert (status, body["success"], simulator.state.accounts["app-east"].monitoring_of(1001)) == (
        200,
        True,
        "Y",
    )
    assert (simulator.stats.writes, simulator.stats.ignored_writes) == (0, 1)


async def test_the_channel_callback_override_follows_the_state_and_admin(wire):
    _, _, default = await wire("GET", CHANNEL_SETTING, params=signed({"channelId": 1002}))
    assert default == {
        "code": 200,
        "status": "success",
        "message": "",
        "data": {
            "channelId": 1002,
            "globalSettingEnabled": "Y",
            "recordCallbackUrl": None,
            "playbackCallbackUrl": None,
            "streamCallbackUrl": None,
        },
    }
    own = {"globalSettingEnabled": "N", "recordCallbackUrl": "https://ch.example.com/rec"}
    assert (await wire("PATCH", "/_sim/channels/1002", json_body={"callback_setting": own}))[
        0
    ] == 200
    _, _, overridden = await wire("GET", CHANNEL_SETTING, params=signed({"channelId": 1002}))
    assert overridden["data"] == {
        "channelId": 1002,
        "globalSettingEnabled": "N",
        "recordCallbackUrl": "https://ch.example.com/rec",
        "playbackCallbackUrl": None,
        "streamCallbackUrl": None,
    }


async def test_the_channel_override_needs_no_monitor_feature_but_its_own_channel(wire):
    west = {"app_id": WEST_APP, "secret": WEST_SECRET}
    answers = [
        await wire("GET", CHANNEL_SETTING, params=signed({"channelId": 2001}, **west)),
        await wire("GET", CHANNEL_SETTING, params=signed({"channelId": 2001})),
        await wire("GET", CHANNEL_SETTING, params=signed({"channelId": 1001}, secret="x")),
    ]
    assert [(status, body["status"], body["message"]) for status, _, body in answers] == [
        (200, "success", ""),
        (400, "error", "频道不存在 (channel not found)"),
        (403, "error", "invalid signature."),
    ]


async def test_admin_patches_accounts_and_channels(wire, simulator):
    changes = {"playback_callback": "https://p.example.com/", "monitor_feature": False}
    assert (await wire("PATCH", "/_sim/accounts/app-east", json_body=changes))[0] == 200
    assert (await wire("PATCH", "/_sim/channels/1001", json_body={"monitoring": "N"}))[0] == 200
    east = simulator.state.accounts["app-east"]
    assert (east.playback_callback, east.monitor_feature, east.monitoring_of(1001)) == (
        "https://p.example.com/",
        False,
        "N",
    )
    refusals = [
        await wire("PATCH", "/_sim/accounts/app-east", json_body={"record": "x"}),
        await wire("PATCH", "/_sim/accounts/nobody", json_body={}),
        await wire("PATCH", "/_sim/channels/1001", json_body={"monitoring": "maybe"}),
        await wire("PATCH", "/_sim/channels/9999", json_body={"monitoring": "N"}),
    ]
    assert [(status, body["error"]) for status, _, body in refusals] == [
        (400, "unknown account field(s): record."),
        (404, "no such app_id"),
        (400, "monitoring must be Y or N, not 'maybe'."),
        (404, "no such channel"),
    ]

"""Unit tests of PolyvClient against aioresponses: every endpoint, every documented error,
and garbage answers."""

import json

import aiohttp
import pytest
from aioresponses import aioresponses

from bulkpolyv.client import Credentials, MonitorUpdate, PolyvClient, monitor_update_body
from bulkpolyv.errors import ErrorKind, PolyvError
from bulkpolyv.records import Monitor
from bulkpolyv.signing import sign
from tests.apimock import BASE, url_re

ACCOUNT = Credentials(user_id="u1", app_id="app1", app_secret="TOPSECRET-app")
NOW = 1_700_000_000.0


@pytest.fixture
async def client():
    async with aiohttp.ClientSession() as session:
        yield PolyvClient(session, api_base=BASE, clock=lambda: NOW)


@pytest.fixture
def mocked():
    with aioresponses() as m:
        yield m


def sent(mocked, method="GET"):
    ((key, calls),) = [(k, v) for k, v in mocked.requests.items() if k[0] == method]
    return key[1], calls[0].kwargs


def v4_error(code, desc, http):
    return {
        "code": http,
        "status": "error",
        "requestId": "rq-9",
        "success": False,
        "error": {"code": code, "desc": desc},
    }


async def test_get_callback_settings_signs_query_and_returns_record_url(client, mocked):
    mocked.get(
        url_re("/live/v4/user/global-setting/callback/get"),
        payload={
            "code": 200,
            "status": "success",
            "requestId": "r1",
            "success": True,
            "data": {"recordCallbackUrl": "https://h/x", "playbackCallbackUrl": "https://p"},
        },
    )
    assert await client.get_callback_settings(ACCOUNT) == "https://h/x"
    url, _ = sent(mocked)
    query = dict(url.query)
    assert query["appId"] == "app1" and query["timestamp"] == "1700000000000"
    assert query["sign"] == sign({"appId": "app1", "timestamp": "1700000000000"}, "TOPSECRET-app")


async def test_unset_record_callback_reads_as_none(client, mocked):
    mocked.get(
        url_re("/live/v4/user/global-setting/callback/get"),
        payload={
            "code": 200,
            "status": "success",
            "success": True,
            "data": {"recordCallbackUrl": None},
        },
    )
    assert await client.get_callback_settings(ACCOUNT) is None


async def test_set_record_callback_signs_every_parameter_sent(client, mocked):
    mocked.post(
        url_re("/live/v2/user/u1/set-record-callback"),
        payload={"code": 200, "status": "success", "message": "", "data": ""},
    )
    await client.set_record_callback(ACCOUNT, "https://hooks/x?token=abc")
    url, kwargs = sent(mocked, "POST")
    form = kwargs["data"]
    assert not url.query  # v2 parameters travel as a form body, never in the query string
    assert form["url"] == "https://hooks/x?token=abc"
    assert form["sign"] == sign({k: v for k, v in form.items() if k != "sign"}, "TOPSECRET-app")


async def test_switching_the_callback_off_leaves_url_out(client, mocked):
    mocked.post(
        url_re("/live/v2/user/u1/set-record-callback"),
        payload={"code": 200, "status": "success", "message": "", "data": ""},
    )
    await client.set_record_callback(ACCOUNT, None)
    _, kwargs = sent(mocked, "POST")
    assert set(kwargs["data"]) == {"appId", "timestamp", "sign"}


async def test_list_monitors_parses_entries(client, mocked):
    mocked.get(
        url_re("/live/v4/seminar/monitor/list"),
        payload={
            "code": 200,
            "status": "success",
            "success": True,
            "requestId": "r",
            "data": [{"id": 3001, "channelId": 10, "nickname": "n", "password": "pw1234"}],
        },
    )
    (monitor,) = await client.list_monitors(ACCOUNT, 10)
    assert (monitor.id, monitor.channel_id, monitor.nickname, monitor.enable) == (
        3001,
        10,
        "n",
        None,
    )
    assert "pw1234" not in repr(monitor)
    url, _ = sent(mocked)
    assert url.query["channelId"] == "10"


def test_monitor_values_keep_passwords_out_of_every_rendering():
    import rich.pretty

    listed = Monitor(3001, 10, "n", "LISTED-PW-77", "Y")
    update = MonitorUpdate(id=3001, password="SENT-PW-88")
    for value, secret in ((listed, "LISTED-PW-77"), (update, "SENT-PW-88")):
        shown = [repr(value), str(value), f"{value}", "%s" % (value,), repr([value])]  # noqa: UP031 (as logging formats)
        shown.append(rich.pretty.pretty_repr({"value": value}))
        assert not [text for text in shown if secret in text]
        with pytest.raises(TypeError):  # not a tuple: nothing serialises it whole by chance
            json.dumps(value)
        with pytest.raises(AttributeError):
            value.password = "x"  # immutable
    assert listed == Monitor(3001, 10, "n", "LISTED-PW-77", "Y") and hash(listed) == hash(
        Monitor(3001, 10, "n", "LISTED-PW-77", "Y")
    )


async def test_update_monitor_sends_signed_query_and_unsigned_json_body(client, mocked):
    mocked.post(
        url_re("/live/v4/seminar/monitor/update"),
        payload={
            "code": 200,
            "status": "success",
            "requestId": "r2",
            "data": None,
            "success": True,
        },
    )
    result = await client.update_monitor(ACCOUNT, 10, MonitorUpdate(id=3001, enable="N"))
    assert result.request_id == "r2"
    url, kwargs = sent(mocked, "POST")
    assert kwargs["json"] == {"id": 3001, "enable": "N"}
    assert set(url.query) == {"appId", "timestamp", "channelId", "sign"}


def test_update_body_names_only_the_fields_being_changed():
    body = monitor_update_body(MonitorUpdate(id=1, nickname="a", password="secret1"))
    assert body == {"id": 1, "nickname": "a", "password": "secret1"}


V4_ERRORS = [
    (400, 10003, "时间戳过期", ErrorKind.TRANSIENT),
    (403, 10002, "签名错误", ErrorKind.AUTH),
    (400, 1081, "没有监控轮询权限", ErrorKind.FEATURE_MISSING),
    (400, 50101, "监控轮询账号不存在", ErrorKind.PERMANENT),
    (400, 10001, "密码长度为6~16", ErrorKind.PERMANENT),
    (400, 10001, "昵称长度为1~16", ErrorKind.PERMANENT),
]


@pytest.mark.parametrize(("http", "code", "desc", "kind"), V4_ERRORS)
async def test_documented_v4_errors_are_classified(client, mocked, http, code, desc, kind):
    mocked.post(
        url_re("/live/v4/seminar/monitor/update"), status=http, payload=v4_error(code, desc, http)
    )
    with pytest.raises(PolyvError) as caught:
        await client.update_monitor(ACCOUNT, 10, MonitorUpdate(id=1, password="hunter22"))
    error = caught.value
    assert (error.kind, error.polyv_code, error.message, error.request_id, error.http_status) == (
        kind,
        code,
        desc,
        "rq-9",
        http,
    )
    assert "hunter22" not in str(error) and "TOPSECRET" not in repr(error)


V2_ERRORS = [
    (400, "appId is required.", ErrorKind.AUTH),
    (400, "application not found.", ErrorKind.AUTH),
    (400, "invalid timestamp.", ErrorKind.TRANSIENT),
    (403, "invalid signature.", ErrorKind.AUTH),
    (400, "userId is error.", ErrorKind.AUTH),
    (400, "url format error.", ErrorKind.PERMANENT),
    (400, "param length is incorrect: url", ErrorKind.PERMANENT),
]


@pytest.mark.parametrize(("http", "message", "kind"), V2_ERRORS)
async def test_documented_v2_errors_are_classified(client, mocked, http, message, kind):
    mocked.post(
        url_re("/live/v2/user/u1/set-record-callback"),
        status=http,
        payload={"code": http, "status": "error", "message": message, "data": ""},
    )
    with pytest.raises(PolyvError) as caught:
        await client.set_record_callback(ACCOUNT, "https://h/x?token=SECRETTOKEN")
    assert (caught.value.kind, caught.value.polyv_code, caught.value.message) == (
        kind,
        http,
        message,
    )
    assert "SECRETTOKEN" not in str(caught.value)


async def test_v2_business_failure_is_permanent_not_transient(client, mocked):
    mocked.post(
        url_re("/live/v2/user/u1/set-record-callback"),
        status=500,
        payload={"code": 500, "status": "fail", "message": "business says no", "data": ""},
    )
    with pytest.raises(PolyvError) as caught:
        await client.set_record_callback(ACCOUNT, None)
    assert caught.value.kind is ErrorKind.PERMANENT


@pytest.mark.parametrize("status", [429, 200, 400])
async def test_qps_message_means_rate_limited(client, mocked, status):
    mocked.get(
        url_re("/live/v4/seminar/monitor/list"),
        status=status,
        payload={"code": 429, "status": "error", "message": "qps exceeds number of calls"},
    )
    with pytest.raises(PolyvError) as caught:
        await client.list_monitors(ACCOUNT, 1)
    assert caught.value.kind is ErrorKind.RATE_LIMITED


async def test_retry_after_is_carried(client, mocked):
    mocked.get(
        url_re("/live/v4/seminar/monitor/list"),
        status=503,
        body="busy",
        headers={"Retry-After": "7"},
    )
    with pytest.raises(PolyvError) as caught:
        await client.list_monitors(ACCOUNT, 1)
    assert (caught.value.kind, caught.value.retry_after) == (ErrorKind.TRANSIENT, 7.0)


GARBAGE = [
    (502, "<html><body>502 Bad Gateway</body></html>", ErrorKind.TRANSIENT, "502 Bad Gateway"),
    (200, "<html>maintenance</html>", ErrorKind.TRANSIENT, "maintenance"),
    (200, "", ErrorKind.TRANSIENT, "empty answer"),
    (200, '{"code":200,"status":"succ', ErrorKind.TRANSIENT, "non-JSON"),
    (403, "<html>Forbidden by WAF</html>", ErrorKind.PERMANENT, "Forbidden by WAF"),
    (200, "[1,2,3]", ErrorKind.TRANSIENT, "non-JSON"),
]


@pytest.mark.parametrize(("status", "body", "kind", "quoted"), GARBAGE)
async def test_garbage_answers_become_errors_quoting_the_body(
    client, mocked, status, body, kind, quoted
):
    mocked.get(url_re("/live/v4/seminar/monitor/list"), status=status, body=body)
    with pytest.raises(PolyvError) as caught:
        await client.list_monitors(ACCOUNT, 1)
    assert caught.value.kind is kind and quoted in str(caught.value)


async def test_wrong_types_in_data_are_an_error_not_a_crash(client, mocked):
    mocked.get(
        url_re("/live/v4/seminar/monitor/list"),
        payload={"code": 200, "status": "success", "success": True, "data": [{"nickname": 5}]},
    )
    with pytest.raises(PolyvError, match="malformed"):
        await client.list_monitors(ACCOUNT, 1)
    mocked.get(
        url_re("/live/v4/user/global-setting/callback/get"),
        payload={"code": 200, "status": "success", "success": True, "data": "nope"},
    )
    with pytest.raises(PolyvError, match="not an object"):
        await client.get_callback_settings(ACCOUNT)


async def test_giant_body_is_refused_without_holding_it(client, mocked):
    mocked.get(url_re("/live/v4/seminar/monitor/list"), body="x" * (3 << 20))
    with pytest.raises(PolyvError, match="over"):
        await client.list_monitors(ACCOUNT, 1)


async def test_connection_errors_and_timeouts_are_transient(client, mocked):
    mocked.get(url_re("/live/v4/seminar/monitor/list"), exception=aiohttp.ClientConnectionError())
    with pytest.raises(PolyvError) as caught:
        await client.list_monitors(ACCOUNT, 1)
    assert caught.value.kind is ErrorKind.TRANSIENT
    mocked.get(url_re("/live/v4/seminar/monitor/list"), exception=TimeoutError())
    with pytest.raises(PolyvError, match="timed out"):
        await client.list_monitors(ACCOUNT, 1)


def test_credentials_repr_hides_the_secret():
    assert "TOPSECRET" not in repr(ACCOUNT)
    assert "TOPSECRET" not in json.dumps(str(ACCOUNT))

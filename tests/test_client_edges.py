"""The client at the edges: redirects, echoed secrets, hostile bodies, unreachable hosts,
proxies, a skewed clock — each against a small real HTTP server on 127.0.0.1 where the
behaviour lives in aiohttp's transport, and aioresponses where it does not."""

from __future__ import annotations

import asyncio
import gzip
import logging
import re
import socket
import tracemalloc
from datetime import UTC, datetime
from email.utils import format_datetime

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from aioresponses import aioresponses

from bulkpolyv.answers import retry_after_seconds
from bulkpolyv.client import (
    MONITOR_SETTING_FIELD,
    PolyvClient,
    new_session,
)
from bulkpolyv.errors import ErrorKind, PolyvError, explain
from bulkpolyv.records import Credentials, MonitorUpdate
from bulkpolyv.urls import redact_text

ACCOUNT = Credentials(user_id="u1", app_id="app1", app_secret="TOPSECRET-app")
OK_V4 = {"code": 200, "status": "success", "requestId": "r1", "success": True, "data": None}
BASE = "https://api.polyv.net"


def url_re(path: str) -> re.Pattern[str]:
    return re.compile("^" + re.escape(BASE + path) + r"(\?.*)?$")


@pytest.fixture
def mocked():
    with aioresponses() as m:
        yield m


@pytest.fixture
async def mock_client():
    async with aiohttp.ClientSession() as session:
        yield PolyvClient(session, api_base=BASE, clock=lambda: 1_700_000_000.0)


async def serve(handler, path="/{tail:.*}"):
    app = web.Application()
    app.router.add_route("*", path, handler)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    return server


def refused_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# --- redirects -----------------------------------------------------------------------------


async def test_a_redirect_is_not_followed_and_names_the_target_host():
    hits = []

    async def elsewhere(request):
        hits.append(request.path)
        return web.json_response(OK_V4)

    other = await serve(elsewhere)
    other_port = other.port

    async def redirect(request):
        raise web.HTTPTemporaryRedirect(f"http://127.0.0.1:{other.port}/steal?token=SECRETTOKEN")

    api = await serve(redirect)
    try:
        async with new_session() as session:
            client = PolyvClient(session, api_base=f"http://127.0.0.1:{api.port}")
            with pytest.raises(PolyvError) as caught:
                await client.set_callback(ACCOUNT, "record", "https://h/x?token=CBTOKEN")
    finally:
        await api.close()
        await other.close()
    assert hits == []  # nothing left for the other host
    text = str(caught.value)
    assert f"redirected to http://127.0.0.1:{other_port}/steal?token=***" in text
    assert "SECRETTOKEN" not in text and "CBTOKEN" not in text
    assert caught.value.kind is ErrorKind.PERMANENT and caught.value.http_status == 307


# --- what a server echoes back ---------------------------------------------------------------


async def test_an_error_message_echoing_the_request_url_is_redacted(mock_client, mocked):
    echoed = (
        "bad request to https://api.polyv.net/live/v2/user/u1/set-record-callback?appId=app1"
        "&timestamp=1700000000000&sign=0D2BDA2FD04D93A2B8832B91FD973C4D"
        "&url=https://hooks/x?token=CBTOKEN"
    )
    mocked.post(
        url_re("/live/v2/user/u1/set-record-callback"),
        status=400,
        payload={"code": 400, "status": "error", "message": echoed},
    )
    with pytest.raises(PolyvError) as caught:
        await mock_client.set_callback(ACCOUNT, "record", "https://hooks/x?token=CBTOKEN")
    text = str(caught.value)
    assert "0D2BDA2FD04D93A2B8832B91FD973C4D" not in text and "CBTOKEN" not in text
    assert "sign=***" in text


async def test_an_answer_echoing_the_monitor_password_sent_is_redacted(mock_client, mocked):
    # the request's secrets are gathered only when an answer is quoted: still all of them
    mocked.post(
        url_re("/live/v4/seminar/monitor/update"),
        status=400,
        payload={"code": 400, "status": "error", "message": "password PW-SENT-7781 too weak"},
    )
    with pytest.raises(PolyvError) as caught:
        await mock_client.update_monitor(ACCOUNT, 1, MonitorUpdate(id=5, password="PW-SENT-7781"))
    assert "PW-SENT-7781" not in str(caught.value) and "too weak" in str(caught.value)


async def test_an_html_page_echoing_secrets_is_quoted_redacted(mock_client, mocked):
    page = (
        "<html><body>Forbidden: /live/v4/seminar/monitor/update?appId=app1&"
        "sign=ABCDEF0123456789ABCDEF0123456789 password hunter22 TOPSECRET-app</body></html>"
    )
    mocked.get(url_re("/live/v4/seminar/monitor/list"), status=403, body=page)
    with pytest.raises(PolyvError) as caught:
        await mock_client.list_monitors(ACCOUNT, 1)
    text = str(caught.value)
    assert "ABCDEF0123456789ABCDEF0123456789" not in text and "TOPSECRET" not in text
    assert caught.value.foreign is True


def test_redact_text_masks_urls_pairs_signs_and_known_secrets():
    text = redact_text(
        "see https://h.example/cb?token=T0K3N&x=1 and appId=a&sign=s "
        "0123456789abcdef0123456789ABCDEF pw=hunter22 plain hunter22",
        secrets=["hunter22"],
    )
    assert text == (
        "see https://h.example/cb?token=***&x=*** and appId=***&sign=*** *** pw=*** plain ***"
    )


async def test_a_web_framework_s_json_404_is_not_taken_for_a_polyv_answer(mock_client, mocked):
    # Spring Boot's "status" is the HTTP status as a number; POLYV's is "error" or "fail".
    page = {"timestamp": "2026-11-23T05:00:00", "status": 404, "error": "Not Found", "path": "/x"}
    mocked.get(url_re("/live/v4/seminar/monitor/list"), status=404, payload=page)
    with pytest.raises(PolyvError) as caught:
        await mock_client.list_monitors(ACCOUNT, 1)
    assert caught.value.foreign is True


# --- hostile bodies ------------------------------------------------------------------------


async def test_a_decompression_bomb_costs_the_cap_not_what_it_inflates_to():
    bomb = gzip.compress(b"[" + b" " * (64 << 20), compresslevel=6)  # 64 MiB inflated

    async def handler(request):  # its Content-Length is small: only the encoding tells
        return web.Response(body=bomb, headers={"Content-Encoding": "gzip"})

    server = await serve(handler)
    try:
        async with new_session() as session:
            client = PolyvClient(session, api_base=f"http://127.0.0.1:{server.port}")
            tracemalloc.start()
            with pytest.raises(PolyvError, match="over 1 MiB"):
                await client.list_monitors(ACCOUNT, 1)
            _, peak = tracemalloc.get_traced_memory()
            tracemalloc.stop()
    finally:
        await server.close()
    assert len(bomb) < 1 << 20
    assert peak < 16 << 20


async def test_a_plain_body_declared_over_the_cap_is_refused_unread():
    async def handler(request):
        return web.Response(body=b"[" + b" " * (2 << 20) + b"]")

    server = await serve(handler)
    try:
        async with new_session() as session:
            client = PolyvClient(session, api_base=f"http://127.0.0.1:{server.port}")
            with pytest.raises(PolyvError, match="over 1 MiB"):
                await client.list_monitors(ACCOUNT, 1)
    finally:
        await server.close()


async def test_a_gzip_answer_is_read():
    async def handler(request):
        body = gzip.compress(b'{"code":200,"status":"success","success":true,"data":[]}')
        return web.Response(body=body, headers={"Content-Encoding": "gzip"})

    server = await serve(handler)
    try:
        async with new_session() as session:
            client = PolyvClient(session, api_base=f"http://127.0.0.1:{server.port}")
            assert await client.list_monitors(ACCOUNT, 1) == []
    finally:
        await server.close()


async def test_deep_nesting_is_an_error_not_a_crash(mock_client, mocked):
    mocked.get(url_re("/live/v4/seminar/monitor/list"), body="[" * 200_000)
    with pytest.raises(PolyvError, match="non-JSON"):
        await mock_client.list_monitors(ACCOUNT, 1)


@pytest.mark.parametrize(
    ("header", "seconds"),
    [
        ("7", 7.0),
        ("100000", 100000.0),
        ("1e400", None),
        ("-5", None),
        ("nan", None),
        ("soon", None),
        (None, None),
    ],
)
def test_retry_after_is_finite_and_non_negative(header, seconds):
    assert retry_after_seconds(header) == seconds


def test_retry_after_as_an_http_date():
    now = 1_700_000_000.0
    header = format_datetime(datetime.fromtimestamp(now + 30, UTC), usegmt=True)
    assert retry_after_seconds(header, now=now) == 30.0


# --- unreachable ---------------------------------------------------------------------------


async def test_a_refused_port_is_unreachable_naming_host_and_os_error():
    port = refused_port()
    async with new_session() as session:
        client = PolyvClient(session, api_base=f"http://127.0.0.1:{port}")
        with pytest.raises(PolyvError) as caught:
            await client.get_callbacks(ACCOUNT)
    assert caught.value.kind is ErrorKind.UNREACHABLE
    assert f"cannot reach 127.0.0.1:{port}: Connect call failed" in str(caught.value) or (
        f"cannot reach 127.0.0.1:{port}: Connection refused" in str(caught.value)
    )


async def test_after_the_host_answered_a_refusal_is_transient():
    async def handler(request):
        return web.json_response({**OK_V4, "data": {}})

    server = await serve(handler)
    async with new_session() as session:
        client = PolyvClient(session, api_base=f"http://127.0.0.1:{server.port}")
        await client.get_callbacks(ACCOUNT)
        await server.close()
        with pytest.raises(PolyvError) as caught:
            await client.get_callbacks(ACCOUNT)
    assert caught.value.kind is ErrorKind.TRANSIENT


# --- the environment's proxy ------------------------------------------------------------------


async def test_the_environment_proxy_is_used_and_no_proxy_bypasses_it(monkeypatch):
    async def api(request):
        return web.json_response({**OK_V4, "data": {"recordCallbackUrl": "https://h/x"}})

    target = await serve(api)
    proxied = []

    async def proxy(request):  # a forward proxy: absolute-form request targets
        proxied.append(str(request.url))
        async with (
            aiohttp.ClientSession() as upstream,
            upstream.request(request.method, str(request.url), data=await request.read()) as answer,
        ):
            return web.Response(
                body=await answer.read(), status=answer.status, content_type="application/json"
            )

    forward = await serve(proxy)
    base = f"http://127.0.0.1:{target.port}"
    try:
        monkeypatch.setenv("HTTP_PROXY", f"http://127.0.0.1:{forward.port}")
        monkeypatch.delenv("NO_PROXY", raising=False)
        monkeypatch.delenv("no_proxy", raising=False)
        async with new_session() as session:
            client = PolyvClient(session, api_base=base)
            assert await client.get_callback_settings(ACCOUNT) == "https://h/x"
        assert len(proxied) == 1 and proxied[0].startswith(base)
        monkeypatch.setenv("NO_PROXY", "127.0.0.1")
        async with new_session() as session:
            client = PolyvClient(session, api_base=base)
            assert await client.get_callback_settings(ACCOUNT) == "https://h/x"
        assert len(proxied) == 1
    finally:
        await target.close()
        await forward.close()


# --- a skewed clock ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("skew", "words"), [(600, "10 min 0 s behind"), (-600, "10 min 0 s ahead of")]
)
async def test_a_server_clock_far_off_is_adopted_and_said_once(caplog, skew, words):
    local = 1_700_000_000.0
    stamps = []

    async def handler(request):
        stamps.append(int(request.query["timestamp"]))
        server_now = datetime.fromtimestamp(local + skew, UTC)
        return web.json_response(
            {**OK_V4, "data": {}}, headers={"Date": format_datetime(server_now, usegmt=True)}
        )

    server = await serve(handler)
    caplog.set_level(logging.WARNING)
    try:
        async with new_session() as session:
            client = PolyvClient(
                session, api_base=f"http://127.0.0.1:{server.port}", clock=lambda: local
            )
            for _ in range(3):
                await client.get_callbacks(ACCOUNT)
    finally:
        await server.close()
    # the first request went out on the local clock, the rest on the server's
    assert stamps == [int(local * 1000), *[int((local + skew) * 1000)] * 2]
    messages = [r.getMessage() for r in caplog.records if r.name == "bulkpolyv.serverclock"]
    assert messages == [
        f"clock: the local clock is {words} 127.0.0.1; signing with the server's time — "
        "fix NTP on this host"
    ]


# --- classification and messages ------------------------------------------------------------


@pytest.mark.parametrize(
    ("code", "desc", "kind"),
    [
        (1081, "没有监控轮询权限", ErrorKind.FEATURE_MISSING),
        (40001, "appId不存在", ErrorKind.AUTH),
        (10004, "anything", ErrorKind.AUTH),
    ],
)
async def test_v4_classification(mock_client, mocked, code, desc, kind):
    mocked.get(
        url_re("/live/v4/seminar/monitor/list"),
        status=400,
        payload={
            "code": 400,
            "status": "error",
            "success": False,
            "error": {"code": code, "desc": desc},
        },
    )
    with pytest.raises(PolyvError) as caught:
        await mock_client.list_monitors(ACCOUNT, 1)
    assert caught.value.kind is kind


def test_explain_glosses_chinese_and_names_what_to_check():
    error = PolyvError(ErrorKind.AUTH, "签名错误", "GET /live/v4/seminar/monitor/list", 403, 10002)
    assert explain(error, "east") == (
        "GET /live/v4/seminar/monitor/list: 签名错误 — bad signature: "
        "check app_secret for account east"
    )
    assert "签名错误 — bad signature (HTTP 403" in str(error)


# --- the new calls ---------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["record", "playback", "stream"])
async def test_each_callback_has_its_own_v2_call(mock_client, mocked, kind):
    mocked.post(
        url_re(f"/live/v2/user/u1/set-{kind}-callback"),
        payload={"code": 200, "status": "success", "message": "", "data": ""},
    )
    await mock_client.set_callback(ACCOUNT, kind, None)


async def test_get_callbacks_reads_all_three_and_the_fields_present(mock_client, mocked):
    data = {
        "recordCallbackUrl": "https://r",
        "playbackCallbackUrl": None,
        "streamCallbackUrl": "",
        "pptRecordCallbackUrl": None,
    }
    mocked.get(url_re("/live/v4/user/global-setting/callback/get"), payload={**OK_V4, "data": data})
    settings = await mock_client.get_callbacks(ACCOUNT)
    assert dict(settings.urls) == {"record": "https://r", "playback": None, "stream": None}
    assert settings.fields == frozenset(data)


async def test_monitor_switch_is_read_and_written_with_the_table_field(mock_client, mocked):
    mocked.get(
        url_re("/live/v4/seminar/monitor/querySetting"), payload={**OK_V4, "data": {"enabled": "N"}}
    )
    mocked.post(url_re("/live/v4/seminar/monitor/updateSetting"), payload=OK_V4)
    assert await mock_client.get_monitoring(ACCOUNT, 7) == "N"
    await mock_client.set_monitoring(ACCOUNT, 7, "Y")
    ((key, calls),) = [(k, v) for k, v in mocked.requests.items() if k[0] == "POST"]
    assert calls[0].kwargs["json"] == {MONITOR_SETTING_FIELD: "Y"} == {"enabled": "Y"}
    assert key[1].query["channelId"] == "7"


async def test_channel_callback_override_is_read(mock_client, mocked):
    mocked.get(
        url_re("/live/v3/channel/callback/get-setting"),
        payload={**OK_V4, "data": {"globalSettingEnabled": "N", "recordCallbackUrl": "x"}},
    )
    setting = await mock_client.get_channel_callback_setting(ACCOUNT, 7)
    assert setting.follows_account is False


async def test_inspect_monitors_reports_the_list_shape(mock_client, mocked):
    mocked.get(
        url_re("/live/v4/seminar/monitor/list"),
        payload={
            **OK_V4,
            "data": [
                {"id": 5, "channelId": 7, "nickname": "n", "password": "p"},
            ],
        },
    )
    listing = await mock_client.inspect_monitors(ACCOUNT, 7)
    assert listing.fields == frozenset({"id", "channelId", "nickname", "password"})
    assert listing.integer_ids is True and listing.monitors[0].enable is None


async def test_an_absurd_monitor_id_is_a_malformed_answer(mock_client, mocked):
    mocked.get(
        url_re("/live/v4/seminar/monitor/list"),
        body='{"code":200,"status":"success","success":true,"data":[{"id":1e999}]}',
    )
    with pytest.raises(PolyvError, match="malformed"):
        await mock_client.list_monitors(ACCOUNT, 7)


async def test_a_garbled_answer_echoing_the_request_is_quoted_redacted_and_short():
    """A broken proxy echoes our request line (``sign`` and all) into a header aiohttp
    cannot parse: aiohttp's complaint quotes it; ours must not."""
    seen: list[bytes] = []

    async def handle(reader, writer):
        first = await reader.readline()
        seen.append(first)
        while (await reader.readline()) not in (b"\r\n", b""):
            pass
        echo = first.strip() * 50  # and long: aiohttp would quote all of it
        writer.write(b"HTTP/1.1 200 OK\r\nX-Echo " + echo + b"\r\nContent-Length: 2\r\n\r\n{}")
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        async with new_session() as session:
            client = PolyvClient(session, api_base=f"http://127.0.0.1:{port}", timeout=2)
            with pytest.raises(PolyvError) as caught:
                await client.get_monitoring(ACCOUNT, 1)
    finally:
        server.close()
    sign = re.search(rb"sign=([0-9A-Fa-f]{32})", seen[0]).group(1).decode()
    assert sign not in str(caught.value) and ACCOUNT.app_secret not in str(caught.value)
    assert len(caught.value.message) <= 260

"""PolyvClient: the POLYV calls bulkpolyv makes, typed results in, typed errors out.

The client owns no session and no policy. It is handed an ``aiohttp.ClientSession`` (tests
hand it one patched by aioresponses, the demo one pointed at the simulator) and an optional
*gate*, the shared object that decides when a request may be sent (rate limit, cool-down,
concurrency). Every request passes through the gate, so no code path can send around it.
One call is one attempt: retries are the executor's business, and because signing happens
here, at send time (with the server's time once a skew was seen), every retry is signed
afresh.

What goes on the wire: v2 calls carry their signed parameters as a form body, as POLYV's
Java SDK does, so a callback URL's token never sits in a query string that proxies and
access logs keep; v4 calls carry the signed ``appId``/``timestamp``/``channelId`` (no
secrets) in the query and the unsigned JSON body. Redirects are never followed: a signed
request and a monitor password must not leave for another host.

This is the only module that knows aiohttp's exceptions; they leave it as
:class:`~bulkpolyv.errors.PolyvError`.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Callable, Coroutine, Iterable, Mapping
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from typing import Any, Protocol
from urllib.parse import urlsplit

import aiohttp
from aiohttp.helpers import get_env_proxy_for_url
from yarl import URL

from bulkpolyv.answers import ApiResult, BodyTooLarge, interpret, read_body, retry_after_seconds
from bulkpolyv.errors import ErrorKind, PolyvError
from bulkpolyv.records import DEFAULT_API_BASE, Credentials, Monitor, MonitorUpdate, yes_no
from bulkpolyv.serverclock import ServerClock
from bulkpolyv.signing import signed_params
from bulkpolyv.urls import RequestSecrets, redact_text, redact_url

DEFAULT_TIMEOUT = 20.0
CONNECT_TIMEOUT = 10.0
# The longest an error from aiohttp or the OS is quoted (a garbled answer can be 100 KB).
MESSAGE_CHARS = 200

# --- The endpoints and bodies. Details marked unconfirmed in shared/polyv-api.md live here.
CALLBACK_KINDS = ("record", "playback", "stream")
SET_CALLBACK = {
    "record": "/live/v2/user/{user_id}/set-record-callback",
    "playback": "/live/v2/user/{user_id}/set-playback-callback",
    "stream": "/live/v2/user/{user_id}/set-stream-callback",
}
GET_CALLBACK_SETTINGS = "/live/v4/user/global-setting/callback/get"
# The field of callback/get (polyv-api.md §2.6) that holds each kind's URL.
CALLBACK_FIELDS = {
    "record": "recordCallbackUrl",
    "playback": "playbackCallbackUrl",
    "stream": "streamCallbackUrl",
}
LIST_MONITORS = "/live/v4/seminar/monitor/list"
UPDATE_MONITOR = "/live/v4/seminar/monitor/update"
QUERY_MONITOR_SETTING = "/live/v4/seminar/monitor/querySetting"
UPDATE_MONITOR_SETTING = "/live/v4/seminar/monitor/updateSetting"
# updateSetting's parameter table names the field ``enabled``; its own example sends
# ``enable`` (polyv-api.md §2.5, unconfirmed which one POLYV honours). We send the table's.
MONITOR_SETTING_FIELD = "enabled"
CHANNEL_CALLBACK_SETTING = "/live/v3/channel/callback/get-setting"


@dataclass(frozen=True)
class CallbackSettings:
    """The account's callbacks by kind (None: unset), and which fields POLYV returned."""

    urls: Mapping[str, str | None]
    fields: frozenset[str]


@dataclass(frozen=True)
class ChannelCallbackSetting:
    """Whether a channel follows the account's callbacks (``globalSettingEnabled``)."""

    follows_account: bool | None  # None: POLYV did not say
    fields: frozenset[str]


@dataclass(frozen=True)
class MonitorListing:
    """A channel's monitor accounts, and what the list showed of its own shape."""

    monitors: list[Monitor]
    fields: frozenset[str]  # every field name seen in any entry
    integer_ids: bool  # every ``id`` was a JSON integer


def monitor_update_body(update: MonitorUpdate) -> dict[str, object]:
    """The JSON body of ``seminar/monitor/update``.

    The published field list is unconfirmed (shared/polyv-api.md §2.4): ``id`` plus the
    fields being changed. Change it here and nowhere else.
    """
    body: dict[str, object] = {"id": update.id}
    for name in ("nickname", "password", "enable"):
        value = getattr(update, name)
        if value is not None:
            body[name] = value
    return body


class Gate(Protocol):
    """Decides when a request may be sent; see :mod:`bulkpolyv.gate`."""

    def slot(self) -> AbstractAsyncContextManager[None]: ...


class _OpenGate:
    @contextlib.asynccontextmanager
    async def _slot(self):  # type: ignore[no-untyped-def]
        yield

    def slot(self) -> AbstractAsyncContextManager[None]:
        return self._slot()


def new_session(*, connections: int = 100) -> aiohttp.ClientSession:
    """A session suited to POLYV: a bounded connection pool, no cookies kept, and
    decompression left to :func:`~bulkpolyv.answers.read_body`, which bounds what a body
    inflates to. The environment's proxy (HTTP(S)_PROXY, NO_PROXY) is honoured by
    :class:`PolyvClient`, which looks it up once: ``trust_env=True`` would make aiohttp look
    it up, and read ``~/.netrc``, in a thread for every request (twice the client's CPU)."""
    return aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(limit=connections),
        cookie_jar=aiohttp.DummyCookieJar(),
        auto_decompress=False,
        headers={"Accept-Encoding": "gzip, deflate"},
    )


def env_proxy(api_base: str) -> tuple[URL | None, aiohttp.BasicAuth | None]:
    """The proxy HTTP(S)_PROXY names for ``api_base`` (and its credentials), or none when
    there is none or NO_PROXY excludes the host; the environment is read as aiohttp reads
    it with ``trust_env=True``."""
    try:
        return get_env_proxy_for_url(URL(api_base))
    except LookupError:
        return None, None


class PolyvClient:
    """The POLYV live API, one attempt per call."""

    def __init__(
        self,
        session: aiohttp.ClientSession,
        *,
        api_base: str = DEFAULT_API_BASE,
        timeout: float = DEFAULT_TIMEOUT,
        gate: Gate | None = None,
        clock: Callable[[], float] = time.time,
        ssl: bool = True,
    ) -> None:
        self._session = session
        # aiohttp silently re-sends an idempotent request (our GETs) once when a reused
        # keep-alive connection is closed under it. That second send never passes the gate,
        # so the rate limit could be exceeded without anyone counting it. There is no public
        # switch (aiohttp 3.10-3.13); the private one is set when present, and a test pins it.
        if hasattr(session, "_retry_connection"):
            session._retry_connection = False
        self._base = api_base.rstrip("/")
        parts = urlsplit(self._base)
        self.host = f"{parts.hostname}:{parts.port or (443 if parts.scheme == 'https' else 80)}"
        self._timeout = aiohttp.ClientTimeout(
            total=timeout, sock_connect=min(CONNECT_TIMEOUT, timeout)
        )
        self._gate: Gate = gate or _OpenGate()
        self.clock = ServerClock(clock, host=parts.hostname or self._base)
        self._ssl = ssl
        self._proxy, self._proxy_auth = env_proxy(self._base)
        self._decode = not getattr(session, "auto_decompress", True)
        # Whether the host has ever answered over HTTP: a connection that fails before any
        # answer means "unreachable", not "rate limited".
        self.answered = False

    # --- account callbacks -----------------------------------------------------------------

    # The writes are plain functions handing back the request's coroutine: an ``async def``
    # that only awaited it was one more frame that every resumption of the request passed
    # through, on every write.

    def set_callback(
        self, account: Credentials, kind: str, url: str | None
    ) -> Coroutine[Any, Any, ApiResult]:
        """Set one of the account's callbacks; ``None`` switches it off (``url`` left out)."""
        path = SET_CALLBACK[kind].format(user_id=account.user_id)
        return self._call("POST", path, account, {"url": url}, v4=False)

    def set_record_callback(
        self, account: Credentials, url: str | None
    ) -> Coroutine[Any, Any, ApiResult]:
        return self.set_callback(account, "record", url)

    async def get_callbacks(self, account: Credentials) -> CallbackSettings:
        """All of the account's callbacks, from one ``callback/get`` read."""
        result = await self._call("GET", GET_CALLBACK_SETTINGS, account, {}, v4=True)
        data = result.data if result.data is not None else {}
        if not isinstance(data, dict):
            raise self._bad_shape(GET_CALLBACK_SETTINGS, result, "data is not an object")
        urls: dict[str, str | None] = {}
        for kind, name in CALLBACK_FIELDS.items():
            value = data.get(name)
            if value is not None and not isinstance(value, str):
                raise self._bad_shape(GET_CALLBACK_SETTINGS, result, f"{name} not a string")
            urls[kind] = value or None
        return CallbackSettings(urls, frozenset(data))

    async def get_callback_settings(self, account: Credentials) -> str | None:
        """The account's record-callback URL, or None when it is not set."""
        return (await self.get_callbacks(account)).urls["record"]

    # --- monitors --------------------------------------------------------------------------

    async def list_monitors(self, account: Credentials, channel_id: int) -> list[Monitor]:
        return (await self.inspect_monitors(account, channel_id)).monitors

    async def inspect_monitors(self, account: Credentials, channel_id: int) -> MonitorListing:
        result = await self._call("GET", LIST_MONITORS, account, {"channelId": channel_id}, v4=True)
        data = result.data if result.data is not None else []
        if not isinstance(data, list):
            raise self._bad_shape(LIST_MONITORS, result, "data is not a list")
        monitors, fields, integer_ids = [], set(), True
        for entry in data:
            try:
                monitors.append(_parse_monitor(entry, channel_id))
            except (KeyError, TypeError, ValueError, OverflowError):
                why = "a monitor entry is malformed"
                raise self._bad_shape(LIST_MONITORS, result, why) from None
            fields.update(entry)
            integer_ids = integer_ids and type(entry["id"]) is int
        return MonitorListing(monitors, frozenset(fields), integer_ids)

    def update_monitor(
        self, account: Credentials, channel_id: int, update: MonitorUpdate
    ) -> Coroutine[Any, Any, ApiResult]:
        body = monitor_update_body(update)
        return self._call(
            "POST", UPDATE_MONITOR, account, {"channelId": channel_id}, v4=True, json_body=body
        )

    async def get_monitoring(self, account: Credentials, channel_id: int) -> str | None:
        """The channel's monitor switch, ``"Y"``/``"N"``, or None when POLYV did not say."""
        params = {"channelId": channel_id}
        result = await self._call("GET", QUERY_MONITOR_SETTING, account, params, v4=True)
        if result.data is None:
            return None
        if not isinstance(result.data, dict):
            raise self._bad_shape(QUERY_MONITOR_SETTING, result, "data is not an object")
        return yes_no(result.data.get("enabled"))

    def set_monitoring(
        self, account: Credentials, channel_id: int, on: str
    ) -> Coroutine[Any, Any, ApiResult]:
        body: dict[str, object] = {MONITOR_SETTING_FIELD: on}
        params = {"channelId": channel_id}
        return self._call(
            "POST", UPDATE_MONITOR_SETTING, account, params, v4=True, json_body=body
        )

    async def get_channel_callback_setting(
        self, account: Credentials, channel_id: int
    ) -> ChannelCallbackSetting:
        params = {"channelId": channel_id}
        result = await self._call("GET", CHANNEL_CALLBACK_SETTING, account, params, v4=True)
        data = result.data if result.data is not None else {}
        if not isinstance(data, dict):
            raise self._bad_shape(CHANNEL_CALLBACK_SETTING, result, "data is not an object")
        follows = yes_no(data.get("globalSettingEnabled"))
        return ChannelCallbackSetting(None if follows is None else follows == "Y", frozenset(data))

    # --- one request -----------------------------------------------------------------------

    async def _call(
        self,
        method: str,
        path: str,
        account: Credentials,
        params: dict[str, object],
        *,
        v4: bool,
        json_body: dict[str, object] | None = None,
    ) -> ApiResult:
        endpoint = f"{method} {path}"
        secrets = RequestSecrets(account.app_secret, params, json_body)
        async with self._gate.slot():
            # Signed inside the slot: a request that waited for the rate limiter still goes
            # out with a fresh timestamp.
            signed = signed_params(
                params, app_id=account.app_id, app_secret=account.app_secret, clock=self.clock
            )
            request: dict[str, Any] = (
                {"params": signed, "json": json_body} if v4 else {"data": signed}
            )
            try:
                async with self._session.request(
                    method,
                    self._base + path,
                    **request,
                    timeout=self._timeout,
                    ssl=None if self._ssl else False,
                    allow_redirects=False,
                    proxy=self._proxy,
                    proxy_auth=self._proxy_auth,
                ) as response:
                    self.answered = True
                    date = response.headers.get("Date")
                    self.clock.observe(date)
                    if 300 <= response.status < 400:
                        raise _redirected(endpoint, response)
                    body = await read_body(response, decode=self._decode)
                    status = response.status
                    retry_after = retry_after_seconds(response.headers.get("Retry-After"))
            except BodyTooLarge:
                raise PolyvError(
                    ErrorKind.PERMANENT, "got an answer over 1 MiB", endpoint, foreign=True
                ) from None
            except TimeoutError as exc:
                raise self._timed_out(endpoint, exc) from None
            except aiohttp.ClientResponseError as exc:
                said = _said(exc.message, secrets)
                raise PolyvError(
                    ErrorKind.TRANSIENT, f"bad HTTP answer: {said}", endpoint, exc.status
                ) from None
            except aiohttp.ClientError as exc:
                raise self._connection_failed(endpoint, exc, secrets) from None
            try:
                return interpret(endpoint, status, body, retry_after, v4=v4, secrets=secrets)
            except PolyvError as error:
                if error.timestamp_rejected:
                    self.clock.observe(date, timestamp_rejected=True)
                raise

    def _timed_out(self, endpoint: str, exc: BaseException) -> PolyvError:
        if isinstance(exc, aiohttp.ConnectionTimeoutError) and not self.answered:
            return PolyvError(
                ErrorKind.UNREACHABLE,
                f"{self.host} did not accept a connection within {CONNECT_TIMEOUT:g} s",
                endpoint,
            )
        return PolyvError(ErrorKind.TRANSIENT, "timed out", endpoint)

    def _connection_failed(
        self, endpoint: str, exc: aiohttp.ClientError, secrets: Iterable[str | None]
    ) -> PolyvError:
        """Refused, DNS, TLS, proxy, no route: "unreachable" while the host has never
        answered; afterwards a transient failure (the gate watches for a burst of them)."""
        reason = _said(_os_reason(exc), secrets)
        if isinstance(exc, aiohttp.ClientConnectorError | aiohttp.ClientSSLError) and (
            not self.answered
            or isinstance(exc, aiohttp.ClientSSLError | aiohttp.ClientConnectorDNSError)
        ):
            return PolyvError(
                ErrorKind.UNREACHABLE, f"cannot reach {self.host}: {reason}", endpoint
            )
        return PolyvError(ErrorKind.TRANSIENT, f"connection failed: {reason}", endpoint)

    @staticmethod
    def _bad_shape(path: str, result: ApiResult, why: str) -> PolyvError:
        return PolyvError(
            ErrorKind.PERMANENT,
            f"unexpected answer: {why}",
            path,
            result.http_status,
            request_id=result.request_id,
        )


def _redirected(endpoint: str, response: aiohttp.ClientResponse) -> PolyvError:
    target = response.headers.get("Location", "")
    try:
        shown = redact_url(str(response.url.join(URL(target))))
    except ValueError:
        shown = "an unreadable Location"
    return PolyvError(
        ErrorKind.PERMANENT,
        f"redirected to {shown} — not followed: bulkpolyv sends signed requests to the "
        "configured API host only (check api_base)",
        endpoint,
        response.status,
        foreign=True,
    )


def _os_reason(exc: aiohttp.ClientError) -> str:
    """The OS's own words (``Connection refused``, ``Name or service not known``)."""
    os_error = getattr(exc, "os_error", None)
    if isinstance(os_error, OSError) and os_error.errno and os_error.errno > 0:
        # (a DNS failure's errno is getaddrinfo's, negative: its strerror says it)
        # asyncio's strerror is "Connect call failed ('127.0.0.1', 9)": the errno's own
        # words say what happened.
        return os.strerror(os_error.errno)
    if isinstance(os_error, OSError) and os_error.strerror:
        return os_error.strerror
    return str(exc) or type(exc).__name__


def _said(text: str, secrets: Iterable[str | None]) -> str:
    """What aiohttp or the OS says about a failed request. It may quote what the server
    sent back — a garbled status line can be our own request line, ``sign`` and all — so
    it is redacted and kept short."""
    text = redact_text(text, secrets)
    return text if len(text) <= MESSAGE_CHARS else text[:MESSAGE_CHARS] + "…"


def _text(value: object) -> str | None:
    return value if isinstance(value, str) else None


def _parse_monitor(entry: object, channel_id: int) -> Monitor:
    if not isinstance(entry, dict):
        raise TypeError("not an object")
    return Monitor(
        int(entry["id"]),
        int(entry.get("channelId", channel_id)),
        _text(entry.get("nickname")),
        _text(entry.get("password")),
        yes_no(entry.get("enable")),
    )  # (by position: one per monitor listed)


__all__ = [
    "CALLBACK_KINDS",
    "DEFAULT_API_BASE",
    "ApiResult",
    "CallbackSettings",
    "ChannelCallbackSetting",
    "Gate",
    "MonitorListing",
    "PolyvClient",
    "monitor_update_body",
    "new_session",
]

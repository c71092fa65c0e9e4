"""PolyvClient: the four POLYV calls bulkpolyv makes, typed results in, typed errors out.

The client owns no session and no policy. It is handed an ``aiohttp.ClientSession`` (tests
hand it one patched by aioresponses, the demo one pointed at the simulator) and an optional
*gate*, the shared object that decides when a request may be sent (rate limit, cool-down,
concurrency). Every request passes through the gate, so no code path can send around it.
One call is one attempt: retries are the executor's business, and because signing happens
here, at send time, every retry is signed afresh.

This is the only module that knows aiohttp's exceptions; they leave it as
:class:`~bulkpolyv.errors.PolyvError`.
"""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from typing import Any, Protocol

import aiohttp

from bulkpolyv.errors import ErrorKind, PolyvError, classify
from bulkpolyv.manifest.model import DEFAULT_API_BASE, yes_no
from bulkpolyv.records import Credentials, Monitor, MonitorUpdate
from bulkpolyv.signing import signed_params

DEFAULT_TIMEOUT = 20.0
# A POLYV answer is a few hundred bytes; anything far larger is a proxy's page or garbage,
# and is not worth holding in memory.
MAX_BODY_BYTES = 1 << 20
QUOTE_BYTES = 120

# --- The endpoints. Details marked unconfirmed in shared/polyv-api.md live here. -----------
SET_RECORD_CALLBACK = "/live/v2/user/{user_id}/set-record-callback"
GET_CALLBACK_SETTINGS = "/live/v4/user/global-setting/callback/get"
LIST_MONITORS = "/live/v4/seminar/monitor/list"
UPDATE_MONITOR = "/live/v4/seminar/monitor/update"


@dataclass(frozen=True)
class ApiResult:
    http_status: int
    request_id: str | None
    data: Any = field(repr=False)


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
    """Decides when a request may be sent; see :mod:`bulkpolyv.ratelimit`."""

    def slot(self) -> AbstractAsyncContextManager[None]: ...


class _OpenGate:
    @contextlib.asynccontextmanager
    async def _slot(self):  # type: ignore[no-untyped-def]
        yield

    def slot(self) -> AbstractAsyncContextManager[None]:
        return self._slot()


def new_session(*, connections: int = 100) -> aiohttp.ClientSession:
    """A session suited to POLYV: a bounded connection pool, no cookies kept."""
    return aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(limit=connections),
        cookie_jar=aiohttp.DummyCookieJar(),
    )


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
        # switch (aiohttp 3.9-3.13); the private one is set when present, and a test pins it.
        if hasattr(session, "_retry_connection"):
            session._retry_connection = False
        self._base = api_base.rstrip("/")
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        self._gate: Gate = gate or _OpenGate()
        self._clock = clock
        self._ssl = ssl

    async def set_record_callback(self, account: Credentials, url: str | None) -> ApiResult:
        """Set the account's record callback; ``None`` switches it off (``url`` left out)."""
        path = SET_RECORD_CALLBACK.format(user_id=account.user_id)
        return await self._call("POST", path, account, {"url": url}, v4=False)

    async def get_callback_settings(self, account: Credentials) -> str | None:
        """The account's record-callback URL, or None when it is not set."""
        result = await self._call("GET", GET_CALLBACK_SETTINGS, account, {}, v4=True)
        data = result.data
        if data is None:
            return None
        if not isinstance(data, dict):
            raise self._bad_shape(GET_CALLBACK_SETTINGS, result, "data is not an object")
        url = data.get("recordCallbackUrl")
        if url is not None and not isinstance(url, str):
            raise self._bad_shape(GET_CALLBACK_SETTINGS, result, "recordCallbackUrl not a string")
        return url or None

    async def list_monitors(self, account: Credentials, channel_id: int) -> list[Monitor]:
        result = await self._call("GET", LIST_MONITORS, account, {"channelId": channel_id}, v4=True)
        data = result.data if result.data is not None else []
        if not isinstance(data, list):
            raise self._bad_shape(LIST_MONITORS, result, "data is not a list")
        monitors = []
        for entry in data:
            try:
                monitors.append(_parse_monitor(entry, channel_id))
            except (KeyError, TypeError, ValueError):
                why = "a monitor entry is malformed"
                raise self._bad_shape(LIST_MONITORS, result, why) from None
        return monitors

    async def update_monitor(
        self, account: Credentials, channel_id: int, update: MonitorUpdate
    ) -> ApiResult:
        return await self._call(
            "POST",
            UPDATE_MONITOR,
            account,
            {"channelId": channel_id},
            v4=True,
            json_body=monitor_update_body(update),
        )

    # --- one request ----------------------------------------------------------------------

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
        async with self._gate.slot():
            # Signed inside the slot: a request that waited for the rate limiter still goes
            # out with a fresh timestamp.
            query = signed_params(
                params, app_id=account.app_id, app_secret=account.app_secret, clock=self._clock
            )
            try:
                async with self._session.request(
                    method,
                    self._base + path,
                    params=query,
                    json=json_body,
                    timeout=self._timeout,
                    ssl=None if self._ssl else False,
                ) as response:
                    body = await _read_capped(response)
                    status = response.status
                    retry_after = _retry_after(response.headers.get("Retry-After"))
            except TimeoutError:
                raise PolyvError(ErrorKind.TRANSIENT, "timed out", endpoint) from None
            except aiohttp.ClientResponseError as exc:
                raise PolyvError(
                    classify(exc.status), f"bad HTTP answer: {exc.message}", endpoint, exc.status
                ) from None
            except aiohttp.ClientError as exc:
                raise PolyvError(
                    ErrorKind.TRANSIENT, f"connection failed: {type(exc).__name__}", endpoint
                ) from None
            return _interpret(endpoint, status, body, retry_after, v4=v4)

    @staticmethod
    def _bad_shape(path: str, result: ApiResult, why: str) -> PolyvError:
        return PolyvError(
            ErrorKind.PERMANENT,
            f"unexpected answer: {why}",
            path,
            result.http_status,
            request_id=result.request_id,
        )


async def _read_capped(response: aiohttp.ClientResponse) -> bytes:
    length = response.content_length
    if length is not None and length <= MAX_BODY_BYTES:
        return await response.read()  # the usual case, in one call
    chunks: list[bytes] = []
    size = 0
    async for chunk in response.content.iter_chunked(65536):
        chunks.append(chunk)
        size += len(chunk)
        if size > MAX_BODY_BYTES:
            break
    return b"".join(chunks)


def _retry_after(value: str | None) -> float | None:
    if value is None:
        return None
    try:
        seconds = float(value)
    except ValueError:
        return None
    return seconds if seconds >= 0 else None


def _quote(body: bytes) -> str:
    text = body[:QUOTE_BYTES].decode("utf-8", "replace")
    text = " ".join(text.split())
    return repr(text + ("…" if len(body) > QUOTE_BYTES else ""))


def _interpret(
    endpoint: str, status: int, body: bytes, retry_after: float | None, *, v4: bool
) -> ApiResult:
    """Turn one HTTP answer into a result or a PolyvError."""
    try:
        payload = json.loads(body) if len(body) <= MAX_BODY_BYTES else None
    except (ValueError, UnicodeDecodeError):
        payload = None
    if not isinstance(payload, dict):
        what = "an empty answer" if not body else f"a non-JSON answer {_quote(body)}"
        if len(body) > MAX_BODY_BYTES:
            what = f"an answer over {MAX_BODY_BYTES} bytes"
        kind = classify(status)
        if 200 <= status < 300:
            kind = ErrorKind.TRANSIENT  # a truncated success body: ask again
        raise PolyvError(kind, f"got {what}", endpoint, status, retry_after=retry_after)

    request_id = _text(payload.get("requestId"))
    code = payload.get("code")
    status_text = _text(payload.get("status")) or ""
    succeeded = status_text == "success" and code in (200, "200") and 200 <= status < 300
    if v4 and payload.get("success") is False:
        succeeded = False
    if succeeded:
        return ApiResult(status, request_id, payload.get("data"))

    error = payload.get("error") if v4 else None
    if isinstance(error, dict):
        v4_code = error.get("code")
        v4_code = v4_code if isinstance(v4_code, int) else None
        message = _text(error.get("desc")) or _text(payload.get("message")) or "error"
        polyv_code: int | str | None = v4_code if v4_code is not None else code
    else:
        v4_code = None
        message = _text(payload.get("message")) or status_text or "error"
        polyv_code = code if isinstance(code, int | str) else None
    http_status = status
    if 200 <= status < 300 and isinstance(code, int) and code >= 400:
        # v2 sometimes answers 200 with the real status in the body.
        http_status = code
    kind = classify(http_status, status=status_text, message=message, v4_code=v4_code)
    raise PolyvError(kind, message, endpoint, http_status, polyv_code, request_id, retry_after)


def _text(value: object) -> str | None:
    return value if isinstance(value, str) else None


def _parse_monitor(entry: object, channel_id: int) -> Monitor:
    if not isinstance(entry, dict):
        raise TypeError("not an object")
    return Monitor(
        id=int(entry["id"]),
        channel_id=int(entry.get("channelId", channel_id)),
        nickname=_text(entry.get("nickname")),
        password=_text(entry.get("password")),
        enable=yes_no(entry.get("enable")),
    )


__all__ = [
    "DEFAULT_API_BASE",
    "ApiResult",
    "Credentials",
    "Gate",
    "Monitor",
    "MonitorUpdate",
    "PolyvClient",
    "monitor_update_body",
]

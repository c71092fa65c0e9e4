"""How POLYV checks a request and shapes its answers, as pure functions.

Authentication (appId, 13-digit timestamp within three minutes of the server's clock,
signature), channel ownership and the monitor feature, and the v2/v3 and v4 answer envelopes.
The signature check is written here independently of bulkpolyv's signing module on purpose:
the shared test vector keeps both sides honest.
"""

from __future__ import annotations

import hashlib
import re
from typing import Any

from bulkpolyv.sim.state import SimAccount, SimState

TIMESTAMP_WINDOW_SECONDS = 180
RATE_LIMIT_BODY = {"code": 429, "status": "error", "message": "qps exceeds number of calls"}
_TIMESTAMP = re.compile(r"^\d{13}$")


class Rejection(Exception):
    """A documented POLYV error answer: HTTP status, message, and the v4 ``error.code``."""

    def __init__(self, http_status: int, message: str, v4_code: int | None = None) -> None:
        super().__init__(message)
        self.http_status = http_status
        self.message = message
        self.v4_code = v4_code


def expected_sign(params: dict[str, str], secret: str) -> str:
    """POLYV's check: md5(secret + sorted non-empty k+v + secret), upper-case hex."""
    pieces = sorted((k, v) for k, v in params.items() if k != "sign" and v.strip())
    raw = secret + "".join(k + v for k, v in pieces) + secret
    return hashlib.md5(raw.encode("utf-8")).hexdigest().upper()


def authenticate(
    state: SimState, params: dict[str, str], now_seconds: float, *, v4: bool
) -> SimAccount:
    """The account a request is signed for, or the rejection POLYV would answer."""
    app_id = params.get("appId", "")
    if not app_id.strip():
        raise Rejection(400, "appId is required.", 10001 if v4 else None)
    account = state.accounts.get(app_id)
    if account is None:
        # 10004 is a guess: no public table gives the v4 code for an unknown appId.
        raise Rejection(400, "application not found.", 10004 if v4 else None)
    stamp = params.get("timestamp", "")
    if not _TIMESTAMP.match(stamp) or (
        abs(now_seconds * 1000 - int(stamp)) > TIMESTAMP_WINDOW_SECONDS * 1000
    ):
        raise Rejection(400, "时间戳过期" if v4 else "invalid timestamp.", 10003 if v4 else None)
    if params.get("sign", "") != expected_sign(params, account.app_secret):
        raise Rejection(403, "签名错误" if v4 else "invalid signature.", 10002 if v4 else None)
    return account


def owned_channel_id(account: SimAccount, params: dict[str, str]) -> int:
    """The request's ``channelId`` when it is one of the account's channels."""
    raw = params.get("channelId", "")
    if not raw.isdigit():
        raise Rejection(400, "param is not digit: channelId", 10001)
    channel_id = int(raw)
    if channel_id not in account.channels:
        # The code POLYV uses for a channel of another account is unconfirmed (10005 a guess).
        raise Rejection(400, "频道不存在 (channel not found)", 10005)
    return channel_id


def require_monitor_feature(account: SimAccount) -> None:
    if not account.monitor_feature:
        raise Rejection(400, "没有监控轮询权限", 1081)


def check_callback_url(url: str | None) -> str | None:
    """The URL to store (None switches the callback off), or ``url format error.``."""
    if url is None or not url.strip():
        return None
    if not url.startswith(("http://", "https://")):
        raise Rejection(400, "url format error.")
    return url


def success(data: Any, request_id: str, *, v4: bool) -> dict[str, Any]:
    if v4:
        return {
            "code": 200,
            "status": "success",
            "requestId": request_id,
            "data": data,
            "success": True,
        }
    return {"code": 200, "status": "success", "message": "", "data": data}


def failure(rejection: Rejection, request_id: str, *, v4: bool) -> dict[str, Any]:
    if v4:
        return {
            "code": rejection.http_status,
            "status": "error",
            "requestId": request_id,
            "success": False,
            "error": {"code": rejection.v4_code, "desc": rejection.message},
        }
    return {
        "code": rejection.http_status,
        "status": "error",
        "message": rejection.message,
        "data": "",
    }

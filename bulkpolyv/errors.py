"""The error base class for POLYV calls and the rules that classify failures.

Every failed request becomes one :class:`PolyvError`; what the caller can do about it is
data on the error (:class:`ErrorKind`), not a subclass: retry it (``transient``), pause the
whole run (``rate_limited``), stop touching the account (``auth``), stop touching the
channel's monitors (``feature_missing``), stop the run because the host cannot be reached
(``unreachable``) or give up on the item (``permanent``). The tables below are the one
place where POLYV's codes and messages are interpreted. Each rule says what evidence it
rests on; ``shared/polyv-api.md`` (§2.4, §4) has the sources. Rules marked *unconfirmed*
are our best reading where POLYV publishes nothing: correct them here.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum


class ErrorKind(StrEnum):
    TRANSIENT = "transient"
    RATE_LIMITED = "rate_limited"
    AUTH = "auth"
    FEATURE_MISSING = "feature_missing"
    UNREACHABLE = "unreachable"
    PERMANENT = "permanent"


# Documented in the v2/v3 error table as the answer for going over the limit.
RATE_LIMIT_MESSAGE = "qps exceeds number of calls"

# v2 messages (documented on the set-record-callback page) that mean the account's
# identity or credentials are wrong: every further request for it would fail the same way.
# "access forbidden" is the table's example of a v2 business failure (status "fail").
V2_AUTH_MESSAGES = frozenset(
    {
        "appid is required.",
        "application not found.",
        "invalid signature.",
        "userid is error.",
        "access forbidden",
    }
)
V2_TIMESTAMP_MESSAGES = frozenset({"invalid timestamp."})

# v4 ``error.code`` values. 10002 签名错误 and 10003 时间戳过期 are documented on the
# monitor pages. 10004 for an unknown appId is NOT in any public table (unconfirmed), so an
# unknown appId is also recognised by its message below.
V4_AUTH_CODES = frozenset({10002, 10004})
V4_TIMESTAMP_CODES = frozenset({10003})
# 1081 没有监控轮询权限: documented on the seminar monitor pages; it means the monitor
# *feature* is missing for the channel/account, not that the credentials are wrong, so it
# fails that channel's monitor items only.
V4_FEATURE_MISSING_CODES = frozenset({1081})
_UNKNOWN_APP = re.compile(
    r"application not found|应用不存在"
    r"|app\s*id\s*(?:不存在|错误|无效|is invalid|not (?:found|exist))",
    re.IGNORECASE,
)

# POLYV's Chinese messages (from its pages) with an English gloss, and what to check.
# ``{account}`` is filled in by :func:`explain`.
GLOSSES: dict[str, tuple[str, str | None]] = {
    "签名错误": ("bad signature", "check app_secret for account {account}"),
    "invalid signature.": ("bad signature", "check app_secret for account {account}"),
    "时间戳过期": ("timestamp expired", "check this host's clock (NTP)"),
    "application not found.": ("unknown appId", "check app_id for account {account}"),
    "userid is error.": ("unknown userId", "check user_id for account {account}"),
    "没有监控轮询权限": (
        "no monitor-polling permission",
        "the monitor feature is not enabled for this channel; ask POLYV to enable it",
    ),
    "监控轮询账号不存在": ("no such monitor account", "check the monitor id in the manifest"),
    "密码长度为6~16": ("password must be 6-16 characters", None),
    "昵称长度为1~16": ("nickname must be 1-16 characters", None),
}


class BulkPolyvError(Exception):
    """Base of every error bulkpolyv raises on purpose."""


@dataclass(eq=False)
class PolyvError(BulkPolyvError):
    """A POLYV call that did not succeed.

    Never holds request parameters: the message is POLYV's own text (redacted by the
    client) or ours, so that the appSecret, the ``sign``, passwords and callback URLs
    cannot reach a log through it. ``foreign`` marks an answer that did not come from
    POLYV's API at all (an HTML page from a proxy, a WAF, a load balancer).
    """

    kind: ErrorKind
    message: str
    endpoint: str = ""
    http_status: int | None = None
    polyv_code: int | str | None = None
    request_id: str | None = None
    retry_after: float | None = None
    foreign: bool = False
    timestamp_rejected: bool = False

    def __post_init__(self) -> None:
        super().__init__(str(self))

    def __str__(self) -> str:
        parts = [f"{self.endpoint}: " if self.endpoint else "", self.message]
        gloss = gloss_of(self.message)
        if gloss:
            parts.append(f" — {gloss[0]}")
        details = []
        if self.http_status is not None:
            details.append(f"HTTP {self.http_status}")
        if self.polyv_code is not None:
            details.append(f"POLYV code {self.polyv_code}")
        if self.request_id:
            details.append(f"requestId {self.request_id}")
        details.append(self.kind.value)
        return "".join(parts) + f" ({', '.join(details)})"

    @property
    def retryable(self) -> bool:
        return self.kind in (ErrorKind.TRANSIENT, ErrorKind.RATE_LIMITED)


def gloss_of(message: str) -> tuple[str, str | None] | None:
    """The English gloss and hint for one of POLYV's messages, if we know it."""
    text = message.strip()
    return GLOSSES.get(text) or GLOSSES.get(text.lower())


def explain(error: PolyvError, account: str) -> str:
    """One sentence for an operator: the call, POLYV's words, their meaning, what to check.

    ``POST /live/v2/…: 签名错误 — bad signature: check app_secret for account east``.
    """
    gloss = gloss_of(error.message)
    text = f"{error.endpoint}: {error.message}" if error.endpoint else error.message
    if gloss is not None:
        text += f" — {gloss[0]}"
        if gloss[1]:
            text += ": " + gloss[1].format(account=account)
    return text


def classify(
    http_status: int | None,
    *,
    status: str | None = None,
    message: str = "",
    v4_code: int | None = None,
) -> ErrorKind:
    """What a failed answer means for the caller, from what POLYV put in it."""
    text = message.strip().lower()
    if http_status == 429 or RATE_LIMIT_MESSAGE in text:
        return ErrorKind.RATE_LIMITED
    if v4_code is not None:
        if v4_code in V4_AUTH_CODES:
            return ErrorKind.AUTH
        if v4_code in V4_FEATURE_MISSING_CODES:
            return ErrorKind.FEATURE_MISSING
        if v4_code in V4_TIMESTAMP_CODES:
            return ErrorKind.TRANSIENT  # re-signed on the retry, with the server's time
    if text in V2_AUTH_MESSAGES or _UNKNOWN_APP.search(message):
        return ErrorKind.AUTH
    if text in V2_TIMESTAMP_MESSAGES:
        return ErrorKind.TRANSIENT
    if http_status is not None and (http_status >= 500 or http_status == 408):
        # A v2 business failure (status "fail") is a decision, not an outage.
        return ErrorKind.PERMANENT if status == "fail" else ErrorKind.TRANSIENT
    return ErrorKind.PERMANENT


def is_timestamp_rejection(message: str, v4_code: int | None) -> bool:
    """POLYV's "timestamp expired", v2 (documented message) or v4 (documented 10003)."""
    return v4_code in V4_TIMESTAMP_CODES or message.strip().lower() in V2_TIMESTAMP_MESSAGES

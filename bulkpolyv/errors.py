"""The error base class for POLYV calls and the rule that classifies failures.

Every failed request becomes one :class:`PolyvError`; what the caller can do about it is
data on the error (:class:`ErrorKind`), not a subclass: retry it (``transient``), pause the
whole run (``rate_limited``), stop touching the account (``auth``) or give up on the item
(``permanent``). The classification tables below are the one place where POLYV's error
codes are interpreted; several codes are **unconfirmed** (see ``shared/polyv-api.md``), so
correct them here.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class ErrorKind(StrEnum):
    TRANSIENT = "transient"
    RATE_LIMITED = "rate_limited"
    AUTH = "auth"
    PERMANENT = "permanent"


# The v2/v3 message POLYV documents for going over its limit.
RATE_LIMIT_MESSAGE = "qps exceeds number of calls"

# v2 messages that mean "this account's credentials or identity are wrong": every further
# request for the account would fail the same way.
V2_AUTH_MESSAGES = frozenset(
    {
        "appid is required.",
        "application not found.",
        "invalid signature.",
        "userid is error.",
        "access forbidden",
    }
)
V2_TRANSIENT_MESSAGES = frozenset({"invalid timestamp."})

# v4 ``error.code`` values. 10004 (unknown appId) is not in the public table: unconfirmed.
V4_AUTH_CODES = frozenset({10002, 10004, 1081})
V4_TRANSIENT_CODES = frozenset({10003})


class BulkPolyvError(Exception):
    """Base of every error bulkpolyv raises on purpose."""


@dataclass(eq=False)
class PolyvError(BulkPolyvError):
    """A POLYV call that did not succeed.

    Never holds request parameters: the message is POLYV's own text or ours, so that the
    appSecret, the ``sign``, passwords and callback URLs cannot reach a log through it.
    """

    kind: ErrorKind
    message: str
    endpoint: str = ""
    http_status: int | None = None
    polyv_code: int | str | None = None
    request_id: str | None = None
    retry_after: float | None = None

    def __post_init__(self) -> None:
        super().__init__(str(self))

    def __str__(self) -> str:
        parts = [f"{self.endpoint}: " if self.endpoint else "", self.message]
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
        if v4_code in V4_TRANSIENT_CODES:
            return ErrorKind.TRANSIENT
    if text in V2_AUTH_MESSAGES:
        return ErrorKind.AUTH
    if text in V2_TRANSIENT_MESSAGES:
        return ErrorKind.TRANSIENT
    if http_status is not None and (http_status >= 500 or http_status == 408):
        # A v2 business failure (status "fail") is a decision, not an outage.
        return ErrorKind.PERMANENT if status == "fail" else ErrorKind.TRANSIENT
    return ErrorKind.PERMANENT

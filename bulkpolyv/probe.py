"""``probe``: a few read-only requests per account that show what the real API answers.

bulkpolyv was built from POLYV's public pages, and some of what it relies on is not
published (shared/polyv-api.md marks it *unconfirmed*): whether the monitor list shows
``enable``, whether ids are integers, what the channel switch reads back. The probe asks,
per account: is the signature accepted, how far off is the local clock, which callback
fields does ``callback/get`` return, what does one managed channel's monitor list look like,
is the monitor feature there. Then it says what bulkpolyv will do differently because of
what it saw. Every request goes through the same client (and so the same rate budget) as a
run; nothing is written.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import asdict, dataclass, field
from typing import Any, Literal, Protocol, TypeVar

from bulkpolyv.client import CALLBACK_FIELDS, PolyvClient
from bulkpolyv.errors import ErrorKind, PolyvError, explain
from bulkpolyv.records import Credentials
from bulkpolyv.serverclock import SKEW_THRESHOLD, describe_offset
from bulkpolyv.stopping import Stopped

Mark = Literal["ok", "bad", "unknown"]
SYMBOLS: dict[Mark, str] = {"ok": "✓", "bad": "✗", "unknown": "?"}
MONITOR_FIELDS = ("id", "channelId", "nickname", "password", "enable")
T = TypeVar("T")


class ProbedAccount(Protocol):
    name: str
    user_id: str
    app_id: str
    app_secret: str

    @property
    def channels(self) -> Iterable[Any]: ...


@dataclass
class Check:
    name: str
    mark: Mark
    detail: str


@dataclass
class AccountProbe:
    account: str
    checks: list[Check] = field(default_factory=list)
    consequences: list[str] = field(default_factory=list)

    @property
    def usable(self) -> bool:
        return all(c.mark != "bad" for c in self.checks if c.name in ("signature", "host"))

    def add(self, name: str, mark: Mark, detail: str) -> None:
        self.checks.append(Check(name, mark, detail))


async def probe_accounts(
    client: PolyvClient, accounts: Iterable[ProbedAccount]
) -> list[AccountProbe]:
    return [await probe_account(client, account) for account in accounts]


async def probe_account(client: PolyvClient, account: ProbedAccount) -> AccountProbe:
    result = AccountProbe(account.name)
    credentials = Credentials(account.user_id, account.app_id, account.app_secret)
    settings = await _ask(result, account.name, lambda: client.get_callbacks(credentials))
    if settings is None:
        return result
    result.add("signature", "ok", "accepted")
    _check_clock(result, client)
    _check_callback_fields(result, settings.fields)
    channel = next((c.channel_id for c in account.channels), None)
    if channel is None:
        result.add("monitor list", "unknown", "no channel in the manifest to look at")
        return result
    await _check_monitors(result, client, credentials, account.name, channel)
    return result


async def _ask(
    result: AccountProbe, account: str, call: Callable[[], Awaitable[T]], check: str = "signature"
) -> T | None:
    """Run one read; record a failure as the check it decides, and return None. A
    timestamp POLYV rejected is asked once more: the client now signs with the server's
    time, which is what a run does too (the clock check reports the offset). Once the
    run has stopped (an earlier account found the host unreachable, or the budget
    failed) nothing more is sent: the read is told as not asked."""
    try:
        try:
            return await call()
        except PolyvError as error:
            if not error.timestamp_rejected:
                raise
            return await call()
    except PolyvError as error:
        if error.kind is ErrorKind.UNREACHABLE:
            result.add("host", "bad", str(error))
        elif error.kind is ErrorKind.AUTH:
            result.add("signature", "bad", explain(error, account))
        elif error.kind is ErrorKind.FEATURE_MISSING:
            result.add("monitor permission", "bad", explain(error, account))
            result.consequences.append(
                "the monitor feature is missing: this account's monitor items will fail, "
                "its callbacks still apply"
            )
        elif error.foreign and check == "signature":  # no POLYV answer: nothing to judge
            result.add(
                "host", "bad", f"{error}: not an answer from POLYV's API (check --api-base)"
            )
        else:
            result.add(check, "unknown", str(error))
        return None
    except Stopped as stopped:
        # Before the signature is known the account cannot be called usable.
        name, mark = ("host", "bad") if check == "signature" else (check, "unknown")
        result.add(name, mark, f"not asked, the probe had stopped: {stopped}")
        return None


def _check_clock(result: AccountProbe, client: PolyvClient) -> None:
    seen = client.clock.last_seen
    if seen is None:
        result.add("clock", "unknown", "the answer had no Date header")
    elif abs(seen) <= SKEW_THRESHOLD:
        result.add("clock", "ok", f"within {abs(round(seen))} s of the server")
    else:
        result.add("clock", "bad", f"the local clock is {describe_offset(seen)} the server")
        result.consequences.append(
            "requests are signed with the server's time (local clock + offset); fix NTP"
        )


def _check_callback_fields(result: AccountProbe, fields: frozenset[str]) -> None:
    missing = [f"{kind} ({name})" for kind, name in CALLBACK_FIELDS.items() if name not in fields]
    if missing:
        result.add("callback fields", "unknown", "not returned: " + ", ".join(missing))
        result.consequences.append(
            f"{', '.join(missing)} cannot be read: they will be written on every run and "
            "cannot be verified"
        )
    else:
        result.add("callback fields", "ok", "record, playback and stream are readable")


async def _check_monitors(
    result: AccountProbe, client: PolyvClient, credentials: Credentials, account: str, channel: int
) -> None:
    listing = await _ask(
        result, account, lambda: client.inspect_monitors(credentials, channel), "monitor list"
    )
    if listing is None:
        return
    result.add("monitor permission", "ok", f"channel {channel} lists its monitors")
    if not listing.monitors:
        result.add("monitor list", "unknown", f"channel {channel} has no monitor accounts")
    else:
        shown = ", ".join(f for f in MONITOR_FIELDS if f in listing.fields)
        result.add("monitor list", "ok", f"channel {channel} shows: {shown}")
        mark: Mark = "ok" if "enable" in listing.fields else "unknown"
        result.add("enable readable", mark, "yes" if mark == "ok" else "not in the list")
        if mark != "ok":
            result.consequences.append(
                "`enable` is not readable on this account: it will be written on every run "
                "and cannot be verified"
            )
        ids: Mark = "ok" if listing.integer_ids else "bad"
        result.add("integer ids", ids, "yes" if listing.integer_ids else "ids are not integers")
    switch = await _ask(
        result, account, lambda: client.get_monitoring(credentials, channel), "monitor switch"
    )
    if switch is not None:
        result.add("monitor switch", "ok", f"channel {channel} reads enabled={switch}")
    elif not any(c.name == "monitor switch" for c in result.checks):
        result.add("monitor switch", "unknown", "querySetting did not return `enabled`")
        result.consequences.append(
            "the channel monitor switch is not readable: it will be written on every run"
        )


LEGEND = "✓ as bulkpolyv expects   ✗ a problem   ? could not be checked"


def render_text(probes: list[AccountProbe]) -> str:
    lines: list[str] = [LEGEND, ""]
    for probe in probes:
        verdict = "usable" if probe.usable else "NOT usable: bulkpolyv cannot work on it"
        lines.append(f"account {probe.account}: {verdict}")
        width = max((len(c.name) for c in probe.checks), default=0)
        for check in probe.checks:
            lines.append(f"  {SYMBOLS[check.mark]} {check.name.ljust(width)}  {check.detail}")
        if probe.consequences:
            lines.append("  What bulkpolyv will do differently on this account:")
        for consequence in probe.consequences:
            lines.append(f"  → {consequence}")
        lines.append("")
    usable = sum(p.usable for p in probes)
    lines.append(f"{usable} of {len(probes)} account{'s' if len(probes) != 1 else ''} usable.")
    return "\n".join(lines)


def render_json(probes: list[AccountProbe]) -> str:
    return json.dumps(
        [{**asdict(p), "usable": p.usable} for p in probes], indent=2, ensure_ascii=False
    )

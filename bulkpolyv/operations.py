"""Per item kind: which client call reads its live value, which writes it, and how a
write is checked by reading it back.

- an account callback (record, playback, stream): read by ``callback/get``, one read per
  account for all three (``client.get_callbacks``); written by ``set-{kind}-callback``
  (v2; ``url`` left out switches it off: ``client.set_callback``).
- a channel's monitor switch: read by ``monitor/querySetting`` (``get_monitoring``),
  written by ``monitor/updateSetting`` (``set_monitoring``).
- a monitor account: read by ``monitor/list`` (``list_monitors``), written by
  ``monitor/update`` (``update_monitor``).
- a channel's callback override: read by v3 ``channel/callback/get-setting`` for
  ``plan --check-channel-callbacks``; never written, only warned about.

A field POLYV does not return is *write-only*: it is planned as unknown (``?``), written
every run, and a read-back reports it unverified — never verified. The executor runs these
calls under its gate and retries; this module only knows what each call is.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterator
from typing import Any, NamedTuple

from bulkpolyv.client import CALLBACK_FIELDS, CallbackSettings, PolyvClient
from bulkpolyv.items import ItemKey
from bulkpolyv.manifest.model import CALLBACK_KINDS, Manifest
from bulkpolyv.plan import LiveState, Operation, ReadKind, credentials_by_account
from bulkpolyv.records import Credentials, Monitor, MonitorUpdate
from bulkpolyv.urls import normalise_url


class NotStuck(Exception):
    """POLYV accepted a write, but reading it back shows the old value."""


class Read(NamedTuple):
    """One live-state read: the account, its credentials, the channel (0: the account's
    callbacks) and what is read."""

    account: str
    credentials: Credentials
    channel_id: int
    what: ReadKind

    @property
    def failure_key(self) -> tuple[str, int, ReadKind]:
        """Where :class:`~bulkpolyv.plan.LiveState` keeps this read's failure."""
        return self.account, self.channel_id, self.what


def reads_for(
    manifest: Manifest, *, everything: bool = False, check_channel_callbacks: bool = False
) -> Iterator[Read]:
    """What a refresh reads: one callback/get per account managing a callback, one
    monitor list per channel with managed monitors, one querySetting per channel whose
    ``monitoring`` is managed, and (``check_channel_callbacks``) one channel callback
    setting per channel. ``everything`` (export) reads all of it for every channel.
    Credentials are built once per account."""
    credentials = credentials_by_account(manifest)
    for account in manifest.accounts:
        signed = credentials[account.name]
        if account.callbacks or everything:
            yield Read(account.name, signed, 0, ReadKind.CALLBACKS)
        for channel in account.channels:
            cid = channel.channel_id
            if channel.monitors or everything:
                yield Read(account.name, signed, cid, ReadKind.MONITORS)
            if channel.monitoring is not None or everything:
                yield Read(account.name, signed, cid, ReadKind.MONITORING)
            if check_channel_callbacks:
                yield Read(account.name, signed, cid, ReadKind.CHANNEL_CALLBACKS)


def fetch(client: PolyvClient, read: Read) -> Awaitable[Any]:
    """The one request a read makes."""
    signed, channel_id = read.credentials, read.channel_id
    if read.what is ReadKind.CALLBACKS:
        return client.get_callbacks(signed)
    if read.what is ReadKind.MONITORS:
        return client.list_monitors(signed, channel_id)
    if read.what is ReadKind.MONITORING:
        return client.get_monitoring(signed, channel_id)
    return client.get_channel_callback_setting(signed, channel_id)


def store(live: LiveState, read: Read, answer: Any) -> None:
    """Put a read's answer where planning looks for it."""
    ref = (read.account, read.channel_id)
    if read.what is ReadKind.CALLBACKS:
        live.callbacks[read.account] = answered_callbacks(answer)
    elif read.what is ReadKind.MONITORS:
        live.monitors[ref] = {m.id: m for m in answer}
    elif read.what is ReadKind.MONITORING:
        live.monitoring[ref] = answer
    else:
        live.follows_account[ref] = answer.follows_account


def answered_callbacks(settings: CallbackSettings) -> dict[str, str | None]:
    """The callbacks POLYV answered, by kind; a kind whose field was missing is left out
    (unknown — not the same as unset, which POLYV answers as null)."""
    return {
        kind: settings.urls[kind]
        for kind in CALLBACK_KINDS
        if CALLBACK_FIELDS[kind] in settings.fields
    }


# --- one item: read it, write it, check it -----------------------------------------------


def live_read(
    client: PolyvClient, credentials: Credentials, key: ItemKey
) -> Callable[[], Awaitable[Any]]:
    """The request that reads ``key``'s live value again (conflict check, --verify)."""
    if key.is_callback:
        return lambda: client.get_callbacks(credentials)
    if key.is_monitoring:
        return lambda: client.get_monitoring(credentials, key.channel_id)
    return lambda: client.list_monitors(credentials, key.channel_id)


def live_fields(op: Operation, answer: Any) -> dict[str, str | None] | None:
    """The live values of the fields ``op`` changes, from :func:`live_read`'s answer.
    A field POLYV did not return is absent (unknown); None when the monitor is gone."""
    key = op.key
    if key.is_callback:
        answered = answered_callbacks(answer)
        kind = key.callback_kind
        return {key.setting: answered[kind]} if kind in answered else {}
    if key.is_monitoring:
        return {} if answer is None else {key.setting: answer}
    found: Monitor | None = next((m for m in answer if m.id == key.monitor_id), None)
    if found is None:
        return None
    values = {change.field: getattr(found, change.field) for change in op.changes}
    return {name: value for name, value in values.items() if value is not None}


def send(client: PolyvClient, credentials: Credentials, op: Operation) -> Awaitable[Any]:
    """The one request that carries out ``op``; its body is the operation's changes."""
    values = op.desired_values()
    key = op.key
    if key.is_callback:
        return client.set_callback(credentials, key.callback_kind, values[key.setting])
    if key.is_monitoring:
        switch = values[key.setting]
        assert switch is not None  # diff_monitoring plans Y or N only
        return client.set_monitoring(credentials, key.channel_id, switch)
    update = MonitorUpdate(id=key.monitor_id, **values)
    return client.update_monitor(credentials, key.channel_id, update)


def check_stuck(op: Operation, live: dict[str, str | None] | None) -> tuple[bool | None, str]:
    """Whether a write stuck, from the fields read back: ``(True, "")`` when every field
    shows the written value, ``(None, why)`` when some field cannot be read back (POLYV
    does not return it: unverified, never taken as verified). Raises NotStuck when a field
    shows another value."""
    if live is None:
        raise NotStuck("written, but the monitor account is gone when read back")
    unreadable = []
    for change in op.changes:
        if change.field not in live:
            unreadable.append(change.field)
            continue
        have = live[change.field]
        same = (
            normalise_url(have) == normalise_url(change.after)
            if change.is_url
            else have == change.after
        )
        if not same:
            raise NotStuck(f"written, but reading back shows {change.field} did not change")
    if unreadable:
        return None, (
            f"unverified: POLYV does not return {', '.join(unreadable)}, so the write "
            "cannot be read back"
        )
    return True, ""


def as_planned(op: Operation, live: dict[str, str | None] | None) -> bool | None:
    """Whether the live values already are what ``op`` writes (a reviewed plan applied once
    already, say): True when every field shows its planned value, None when every field
    POLYV returns does but some it does not return cannot be checked, False otherwise."""
    if live is None:
        return False
    try:
        verified, _ = check_stuck(op, live)
    except NotStuck:
        return False
    return verified

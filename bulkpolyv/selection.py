"""What a run works on: a manifest narrowed by ``--only``, ``--retry-failed`` and
``--shard``, and the list of every item a manifest manages. Pure."""

from __future__ import annotations

import dataclasses
import fnmatch
from collections.abc import Iterable, Iterator

from bulkpolyv.items import ItemKey
from bulkpolyv.manifest.model import Manifest
from bulkpolyv.shard import Shard


def managed_items(manifest: Manifest) -> Iterator[ItemKey]:
    """Every item ``manifest`` manages: each account's callbacks, each channel's monitor
    switch and each monitor account."""
    for account in manifest.accounts:
        for kind in sorted(account.callbacks):
            yield ItemKey.callback(account.name, kind)
        for channel in account.channels:
            if channel.monitoring is not None:
                yield ItemKey.monitoring(account.name, channel.channel_id)
            for monitor in channel.monitors:
                yield ItemKey(account.name, channel.channel_id, monitor.id)


def select(
    manifest: Manifest,
    only: Iterable[str] = (),
    keys: set[ItemKey] | None = None,
    shard: Shard | None = None,
) -> Manifest:
    """The manifest narrowed to ``--only`` patterns (``glob`` or ``glob/channel_id``),
    for ``--retry-failed`` to the given items, and for ``--shard K/N`` to the accounts
    that shard owns (whole accounts: see :mod:`bulkpolyv.shard` for why)."""
    # Each pattern is (account glob, channel id or None for the whole account).
    patterns = [(p.split("/", 1)[0], p.split("/", 1)[1] if "/" in p else None) for p in only]

    def wanted(name: str, channel_id: int | None) -> bool:
        """Whole-account patterns take everything; channel patterns only their channel
        (and not the account's callback)."""
        return not patterns or any(
            fnmatch.fnmatchcase(name, glob) and (channel is None or channel == str(channel_id))
            for glob, channel in patterns
            if channel_id is not None or channel is None
        )

    accounts = []
    for account in manifest.accounts:
        if shard is not None and not shard.owns(account.name):
            continue
        callbacks = {
            kind: url
            for kind, url in account.callbacks.items()
            if wanted(account.name, None)
            and (keys is None or ItemKey.callback(account.name, kind) in keys)
        }
        channels = []
        for channel in account.channels:
            if not wanted(account.name, channel.channel_id):
                continue
            monitors = (
                channel.monitors
                if keys is None
                else tuple(
                    m
                    for m in channel.monitors
                    if ItemKey(account.name, channel.channel_id, m.id) in keys
                )
            )
            monitoring = channel.monitoring
            if (
                keys is not None
                and ItemKey.monitoring(account.name, channel.channel_id) not in keys
            ):
                monitoring = None
            if monitors or monitoring is not None:
                channels.append(
                    dataclasses.replace(channel, monitors=monitors, monitoring=monitoring)
                )
        if callbacks or channels:
            accounts.append(
                dataclasses.replace(account, callbacks=callbacks, channels=tuple(channels))
            )
    return dataclasses.replace(manifest, accounts=tuple(accounts))

"""Which accounts a shard works on: ``--shard K/N`` splits one manifest across N hosts.

Work is split by **account**, not by channel: an account's credentials, its account-level
settings (the record callback) and its per-account circuit breaker stay on one host, so an
account whose appSecret is wrong fails once, in one report, and a host never needs another
host's view of the account. An account's place is a hash of its name (SHA-256 of the UTF-8
bytes, first 8 bytes, modulo N): the same on every host, in every Python process whatever
``PYTHONHASHSEED`` says, and independent of the manifest's order — adding an account moves
no other one. So shards 1..N of one manifest cover every account exactly once.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass

from bulkpolyv.errors import BulkPolyvError

_SPEC = re.compile(r"\s*([0-9]+)\s*/\s*([0-9]+)\s*")


class ShardSpecError(BulkPolyvError):
    """A ``--shard`` value that is not K/N with 1 <= K <= N."""


def shard_of(account_name: str, n: int) -> int:
    """The shard (0 .. n-1) that owns ``account_name`` among ``n``."""
    if n < 1:
        raise ValueError("the number of shards must be at least 1")
    digest = hashlib.sha256(account_name.encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") % n


@dataclass(frozen=True)
class Shard:
    """Shard ``index`` (1-based, as written on the command line) of ``count``."""

    index: int
    count: int

    def __str__(self) -> str:
        return f"{self.index}/{self.count}"

    def owns(self, account_name: str) -> bool:
        return shard_of(account_name, self.count) == self.index - 1


def parse_shard(text: str) -> Shard:
    """``"K/N"`` -> :class:`Shard`; a clear :class:`ShardSpecError` for anything else."""
    match = _SPEC.fullmatch(text)
    if match is None:
        raise ShardSpecError(
            f"--shard {text!r} is not of the form K/N: write e.g. --shard 2/5 for the "
            "second of five shards."
        )
    index, count = int(match[1]), int(match[2])
    if count < 1 or not 1 <= index <= count:
        raise ShardSpecError(
            f"--shard {text!r}: K must be between 1 and N (N at least 1), e.g. 1/{max(count, 1)}"
            f" to {max(count, 1)}/{max(count, 1)}."
        )
    return Shard(index, count)

"""One rate budget per egress IP: where the window's reservations are kept.

``--budget`` / ``BULKPOLYV_BUDGET`` / the manifest's budget key name a store; the
:func:`make_store` mapping is the one place that reads that name:

- ``local`` (the default): :class:`SqliteStore` in the state directory, shared by every
  bulkpolyv process of this user on this host;
- ``sqlite:///PATH``: the same, in a file of your choice (e.g. one that several users share);
- ``redis://HOST:PORT/DB`` (also ``rediss://``, ``unix://``): :class:`RedisStore`, shared by
  every host behind one NAT IP;
- ``memory``: :class:`MemoryStore`, private to this process — only when you know nothing
  else sends from this IP.

Windows are kept per API host (:func:`budget_key`): POLYV counts per IP across its whole
domain, and a simulator on 127.0.0.1 must not eat the real API's budget.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from urllib.parse import urlsplit

from bulkpolyv.budget.base import BudgetUnavailable, ReservationIds, WindowStore
from bulkpolyv.budget.local import SqliteStore, default_budget_path
from bulkpolyv.budget.memory import MemoryStore
from bulkpolyv.budget.redisstore import RedisStore
from bulkpolyv.urls import redact_store_url

__all__ = [
    "BudgetUnavailable",
    "MemoryStore",
    "RedisStore",
    "ReservationIds",
    "SqliteStore",
    "WindowStore",
    "budget_key",
    "default_budget_path",
    "make_store",
    "opened",
]

DEFAULT_BUDGET = "local"
_DEFAULT_PORTS = {"https": 443, "http": 80}


def budget_key(api_base: str) -> str:
    """``scheme://host:port`` of an API base URL: the unit a budget is kept for."""
    parts = urlsplit(api_base)
    scheme = parts.scheme.lower()
    host = (parts.hostname or "").lower()
    if not scheme or not host:
        raise ValueError(f"not an absolute URL: {api_base!r}")
    port = parts.port or _DEFAULT_PORTS.get(scheme, 0)
    return f"{scheme}://{host}:{port}"


def make_store(
    spec: str | None, api_base: str, *, clock: Callable[[], float] = time.monotonic
) -> WindowStore:
    """The (not yet opened) store that ``spec`` names, for the API at ``api_base``.

    ``clock`` is used by the local and memory stores only; Redis keeps its own time."""
    spec = (spec or DEFAULT_BUDGET).strip()
    key = budget_key(api_base)
    try:
        parts = urlsplit(spec)
    except ValueError:  # "redis://[::1" and the like: no store, said below
        parts = urlsplit("")
    scheme = parts.scheme.lower()
    if spec == "local":
        return SqliteStore(key, clock=clock)
    if spec == "memory":
        return MemoryStore(clock=clock)
    if scheme == "sqlite" and (parts.netloc or not parts.path.startswith("/")):
        # sqlite:budget.db or sqlite://tmp/budget.db: a file other runs would not find
        raise BudgetUnavailable(
            f"{spec!r}: name the file by its absolute path, sqlite:///PATH (three slashes), "
            "so every run sharing the budget finds the same file."
        )
    if scheme == "sqlite":
        return SqliteStore(key, path=Path(parts.path), clock=clock, create_directory=False)
    if scheme in ("redis", "rediss", "unix"):
        return RedisStore(spec, key)
    raise BudgetUnavailable(
        f"{redact_store_url(spec)!r} is not a budget store: use local, sqlite:///PATH, "
        "redis://HOST:PORT/DB or memory."
    )


@asynccontextmanager
async def opened(store: WindowStore) -> AsyncIterator[WindowStore]:
    """Open ``store`` for the duration of the block (inside the running loop)."""
    await store.open()
    try:
        yield store
    finally:
        await store.close()

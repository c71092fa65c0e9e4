"""The budget store for a fleet behind one egress IP: a sorted set in Redis.

Every host or pod that opens ``redis://HOST:PORT/DB`` shares one window per API host, in
the key ``bulkpolyv:budget:<api host>``: a sorted set whose members are reservation ids
and whose scores are the millisecond at which each place runs out. Each operation is one
Lua script, so it runs atomically on the server, and every time in it is the server's
``TIME``: the hosts' clocks never enter the count, so a host whose clock is off cannot
take places that are not free. Milliseconds (integers below 2^53) keep scores exact;
expiries are rounded up, which only ever holds a place a little longer.

Nothing here falls back: a server that cannot be reached raises
:class:`~bulkpolyv.budget.base.BudgetUnavailable` naming the store, and the run stops.
"""

from __future__ import annotations

import math
import re

import redis.asyncio as aioredis
import redis.exceptions

from bulkpolyv.budget.base import BudgetUnavailable
from bulkpolyv.urls import redact_store_url, redact_text, url_secrets

# KEYS[1] window; ARGV: id, limit, lease (ms). Returns "0" when a place was taken, else
# the milliseconds until the earliest held place runs out.
RESERVE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
if redis.call('ZCARD', KEYS[1]) < tonumber(ARGV[2]) then
  local lease = tonumber(ARGV[3])
  redis.call('ZADD', KEYS[1], now + lease, ARGV[1])
  if redis.call('PTTL', KEYS[1]) < lease then redis.call('PEXPIRE', KEYS[1], lease) end
  return '0'
end
local first = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
return tostring(math.max(tonumber(first[2]) - now, 1))
"""

# KEYS[1] window; ARGV: id, hold (ms). An upsert: a place whose lease ran out comes back,
# because the request it stood for did happen. The answer time is rounded *up* to the
# millisecond (the purge above rounds "now" down): rounding never frees a place early.
COMPLETE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.ceil(tonumber(t[2]) / 1000)
local hold = tonumber(ARGV[2])
redis.call('ZADD', KEYS[1], now + hold, ARGV[1])
if redis.call('PTTL', KEYS[1]) < hold then redis.call('PEXPIRE', KEYS[1], hold) end
return 1
"""


def _ms(seconds: float) -> int:
    return math.ceil(seconds * 1000)


class RedisStore:
    """Reservations for ``api_host`` in the Redis server at ``url``."""

    def __init__(self, url: str, api_host: str, *, timeout: float = 5.0) -> None:
        self.url = url
        self.key = f"bulkpolyv:budget:{api_host}"
        self.description = f"the Redis budget at {redact_store_url(url)}"
        self._timeout = timeout
        self._redis: aioredis.Redis | None = None

    async def open(self) -> None:
        try:
            # A few connections, waited for: each script takes well under a millisecond, so
            # 256 workers completing at once need not open 256 connections to the server.
            pool = aioredis.BlockingConnectionPool.from_url(
                self.url,
                max_connections=8,
                timeout=self._timeout,
                socket_connect_timeout=self._timeout,
                socket_timeout=self._timeout,
            )
            self._redis = aioredis.Redis.from_pool(pool)
        except ValueError as exc:
            raise self._not_a_url(self._quoted(exc)) from exc
        self._reserve = self._redis.register_script(RESERVE)
        self._complete = self._redis.register_script(COMPLETE)
        try:
            await self._run(self._redis.ping())
        except TypeError as exc:  # redis-py hands an unknown ?option to the connection
            await self.close()
            unknown = re.search(r"keyword argument '(\w+)'", str(exc))
            said = f"it has no option {unknown[1]!r}" if unknown else self._quoted(exc)
            raise self._not_a_url(said) from exc
        except BudgetUnavailable:
            await self.close()  # a store that failed to open holds nothing open
            raise

    def _not_a_url(self, said: str) -> BudgetUnavailable:
        return BudgetUnavailable(
            f"{self.description} is not a usable Redis URL ({said}); "
            "write it as redis://HOST:PORT/DB."
        )

    async def close(self) -> None:
        if self._redis is not None:
            await self._redis.aclose()
            self._redis = None

    async def reserve(self, reservation_id: str, limit: int, lease: float) -> float:
        wait = await self._run(
            self._reserve(keys=[self.key], args=[reservation_id, limit, _ms(lease)])
        )
        return int(wait) / 1000

    def try_reserve(self, reservation_id: str, limit: int, lease: float) -> float | None:
        return None  # every change is a round trip to the server

    def try_complete(self, reservation_id: str, hold: float) -> bool:
        return False  # every change is a round trip to the server

    async def complete(self, reservation_id: str, hold: float) -> None:
        await self._run(self._complete(keys=[self.key], args=[reservation_id, _ms(hold)]))

    async def cancel(self, reservation_id: str) -> None:
        if self._redis is None:
            raise BudgetUnavailable(f"{self.description} is not open.")
        await self._run(self._redis.zrem(self.key, reservation_id))

    async def held(self) -> int:
        """Places held now (tests and diagnostics)."""
        assert self._redis is not None
        now_s, now_us = await self._redis.time()
        return await self._redis.zcount(self.key, f"({now_s * 1000 + now_us // 1000}", "+inf")

    async def _run(self, command):  # type: ignore[no-untyped-def]
        try:
            return await command
        except (redis.exceptions.RedisError, OSError) as exc:
            raise BudgetUnavailable(
                f"{self.description} cannot be reached "
                f"({type(exc).__name__}: {self._quoted(exc)}); "
                "check the server, or choose another store with --budget."
            ) from exc

    def _quoted(self, error: Exception) -> str:
        """The library's message, with every secret of the URL masked (it may quote them)."""
        return redact_text(str(error), url_secrets(self.url))

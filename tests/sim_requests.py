"""Raw, signed requests to the simulator for its own tests, and a port nothing listens on.

The simulator's tests talk HTTP directly (not through bulkpolyv's client) so that they pin
what the simulator answers on the wire: statuses, headers and bodies.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Callable
from typing import Any

import aiohttp

from bulkpolyv.signing import signed_params

EAST_APP, EAST_SECRET = "app-east", "SECRET-EAST-0001"
WEST_APP, WEST_SECRET = "app-west", "SECRET-WEST-0002"


def signed(
    params: dict[str, Any] | None = None,
    *,
    app_id: str = EAST_APP,
    secret: str = EAST_SECRET,
    clock: Callable[[], float] = time.time,
) -> dict[str, str]:
    return signed_params(params or {}, app_id=app_id, app_secret=secret, clock=clock)


async def call(
    session: aiohttp.ClientSession,
    method: str,
    url: str,
    *,
    params: dict[str, str] | None = None,
    json_body: Any = None,
    form: dict[str, str] | None = None,
) -> tuple[int, dict[str, str], Any]:
    """(status, headers, JSON body or text) of one request; redirects are not followed."""
    async with session.request(
        method, url, params=params, json=json_body, data=form, allow_redirects=False
    ) as response:
        text = await response.text()
        try:
            body: Any = await response.json(content_type=None)
        except ValueError:
            body = text
        return response.status, dict(response.headers), body


def refused_port() -> int:
    """A local port with nothing listening: bind one, note it, close it."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]

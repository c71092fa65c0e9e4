"""The answers a misbehaving POLYV (or something in front of it) gives instead of a normal one.

Injected 5xx pages, rate-limit refusals with an optional ``Retry-After``, redirects, answers
that echo the request URL (so a client that quotes server text verbatim leaks ``sign`` and
callback tokens), decompression bombs and trickled bodies. Each is a small function of the
request and the fault settings, so the pipeline in ``app`` only decides *which* one.
"""

from __future__ import annotations

import asyncio
import html
import json
from typing import Any

from aiohttp import web

from bulkpolyv.sim.faults import FaultConfig, gzip_bomb
from bulkpolyv.sim.protocol import RATE_LIMIT_BODY, Rejection, failure


def _retry_after(faults: FaultConfig, status: int) -> dict[str, str]:
    if faults.retry_after and status in (429, 503):
        return {"Retry-After": faults.retry_after}
    return {}


def rate_limited(faults: FaultConfig) -> web.Response:
    return web.json_response(RATE_LIMIT_BODY, status=429, headers=_retry_after(faults, 429))


def echo_page(status: int, url: str) -> web.Response:
    """An HTML error page quoting the full URL, as some gateways and frameworks do."""
    return web.Response(
        status=status,
        text=(
            f"<html><body><h1>{status} Error</h1><p>Error while processing "
            f"{html.escape(url)}</p></body></html>"
        ),
        content_type="text/html",
    )


def injected_error(
    request: web.Request, faults: FaultConfig, status: int, request_id: str, *, v4: bool
) -> web.Response:
    """A 500/502/503 from in front of POLYV: a bare page, or an echo of the URL if asked."""
    headers = _retry_after(faults, status)
    url = str(request.url)
    if faults.echo_url == "html":
        response = echo_page(status, url)
    elif faults.echo_url == "json":
        # 50000 is made up: what matters is a POLYV-shaped body quoting the URL.
        rejection = Rejection(status, f"internal error while processing {url}", 50000)
        body = failure(rejection, request_id, v4=v4)
        response = web.json_response(body, status=status)
    else:
        response = web.Response(
            status=status,
            text=f"<html><body><h1>{status}</h1></body></html>",
            content_type="text/html",
        )
    response.headers.update(headers)
    return response


def rejection_answer(
    request: web.Request, faults: FaultConfig, rejection: Rejection, request_id: str, *, v4: bool
) -> web.Response:
    """A documented POLYV error; with ``echo_url`` set, one that quotes the request URL."""
    if faults.echo_url == "html":
        return echo_page(rejection.http_status, str(request.url))
    if faults.echo_url == "json":
        rejection = Rejection(
            rejection.http_status,
            f"{rejection.message} (request: {request.url})",
            rejection.v4_code,
        )
    return web.json_response(failure(rejection, request_id, v4=v4), status=rejection.http_status)


def redirect(request: web.Request, faults: FaultConfig) -> web.Response:
    """A 3xx to ``redirect_target`` + the same path and query, or to the same URL (a loop)."""
    if faults.redirect_target:
        location = faults.redirect_target.rstrip("/") + request.path_qs
    else:
        location = str(request.url)
    return web.Response(
        status=faults.redirect_status,
        headers={"Location": location},
        text=f"Redirecting to {location}",
    )


def decompression_bomb(faults: FaultConfig) -> web.Response:
    """200 with ``Content-Encoding: gzip``: small on the wire, ``gzip_bomb_bytes`` inflated."""
    return web.Response(
        body=gzip_bomb(faults.gzip_bomb_bytes),
        headers={"Content-Encoding": "gzip", "Content-Type": "application/json"},
    )


async def trickle(
    request: web.Request, status: int, body: dict[str, Any], seconds: float
) -> web.StreamResponse:
    """Serve the JSON body in four pieces spread over ``seconds``."""
    payload = json.dumps(body).encode()
    response = web.StreamResponse(status=status)
    response.content_type = "application/json"
    response.content_length = len(payload)
    await response.prepare(request)
    pieces = 4
    step = max(1, len(payload) // pieces)
    for start in range(0, len(payload), step):
        await asyncio.sleep(seconds / pieces)
        await response.write(payload[start : start + step])
    await response.write_eof()
    return response

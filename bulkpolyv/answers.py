"""One HTTP answer from POLYV, read with bounded memory and turned into a result or an error.

A POLYV answer is a few hundred bytes of JSON. Anything else — a proxy's HTML page, a
truncated body, a body far over a mebibyte, a compressed body that would inflate to a
gibibyte — becomes a :class:`~bulkpolyv.errors.PolyvError` with a short, redacted quote of
what came back, never an exception from a parser and never a secret echoed by the server.
"""

from __future__ import annotations

import math
import time
import zlib
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import aiohttp

from bulkpolyv.errors import ErrorKind, PolyvError, classify, is_timestamp_rejection
from bulkpolyv.fastjson import loads
from bulkpolyv.serverclock import parse_http_date
from bulkpolyv.urls import redact_text

# A POLYV answer is a few hundred bytes; anything far larger is a proxy's page or garbage,
# and is not worth holding in memory. The cap is on the *decoded* size.
MAX_BODY_BYTES = 1 << 20
QUOTE_CHARS = 120
_CHUNK = 65536


@dataclass(frozen=True)
class ApiResult:
    http_status: int
    request_id: str | None
    data: Any = field(repr=False)


class BodyTooLarge(Exception):
    pass


async def read_body(response: aiohttp.ClientResponse, *, decode: bool) -> bytes:
    """The answer's body, decoded, at most :data:`MAX_BODY_BYTES` (+1, to tell "over").

    With ``decode`` the session left compression to us (``auto_decompress=False``): gzip
    and deflate are inflated here with ``max_length``, so a decompression bomb costs at
    most the cap, never what it would inflate to.
    """
    declared = response.headers.get("Content-Encoding", "").strip().lower()
    if declared in ("", "identity") and _declared_length(response) <= MAX_BODY_BYTES:
        # The common answer: a few hundred plain bytes with their length declared, which is
        # all aiohttp will read (a compressed one could inflate to anything). One read, not
        # an iterator of chunks.
        return await response.read()
    encoding = declared if decode else ""
    inflater = _inflater(encoding)
    chunks: list[bytes] = []
    size = 0
    async for raw in response.content.iter_chunked(_CHUNK):
        piece = raw
        if inflater is not None:
            piece = inflater.decompress(raw, MAX_BODY_BYTES + 1 - size)
            if inflater.unconsumed_tail:
                raise BodyTooLarge
        chunks.append(piece)
        size += len(piece)
        if size > MAX_BODY_BYTES:
            raise BodyTooLarge
    if inflater is not None:
        tail = inflater.flush(MAX_BODY_BYTES + 1 - size)
        chunks.append(tail)
        if size + len(tail) > MAX_BODY_BYTES:
            raise BodyTooLarge
    return b"".join(chunks)


def _declared_length(response: aiohttp.ClientResponse) -> float:
    """The body's Content-Length, or infinity when it is missing or unreadable."""
    value = response.headers.get("Content-Length", "")
    return int(value) if value.isdigit() else math.inf


def _inflater(encoding: str) -> Any:
    if encoding in ("gzip", "x-gzip"):
        return zlib.decompressobj(16 + zlib.MAX_WBITS)
    if encoding == "deflate":
        return zlib.decompressobj(32 + zlib.MAX_WBITS)  # zlib header or not, auto-detected
    return None  # identity, or an encoding we never asked for: left as it is (not JSON)


def retry_after_seconds(value: str | None, *, now: float | None = None) -> float | None:
    """``Retry-After`` as seconds: delay-seconds or an HTTP-date; None when it is missing,
    negative, not finite or not understood. Capping it is the caller's business."""
    if value is None:
        return None
    try:
        seconds = float(value)
    except ValueError:
        moment = parse_http_date(value)
        if moment is None:
            return None
        seconds = moment - (time.time() if now is None else now)
        return max(0.0, seconds)
    return seconds if math.isfinite(seconds) and seconds >= 0 else None


def quote(body: bytes, secrets: Iterable[str | None] = ()) -> str:
    """A short quote of a body for an error message, with anything secret masked."""
    text = redact_text(body.decode("utf-8", "replace"), secrets)
    text = " ".join(text.split())
    return repr(text[:QUOTE_CHARS] + ("…" if len(text) > QUOTE_CHARS else ""))


def interpret(
    endpoint: str,
    status: int,
    body: bytes,
    retry_after: float | None,
    *,
    v4: bool,
    secrets: Iterable[str | None] = (),
) -> ApiResult:
    """Turn one HTTP answer into a result or a PolyvError (POLYV's text redacted)."""
    try:
        payload = loads(body)
    except (ValueError, UnicodeDecodeError, RecursionError):
        payload = None
    if not isinstance(payload, dict):
        what = "an empty answer" if not body else f"a non-JSON answer {quote(body, secrets)}"
        kind = classify(status)
        if 200 <= status < 300:
            kind = ErrorKind.TRANSIENT  # a truncated success body: ask again
        raise PolyvError(
            kind, f"got {what}", endpoint, status, retry_after=retry_after, foreign=True
        )
    code = payload.get("code")
    status_text = _text(payload.get("status")) or ""
    succeeded = status_text == "success" and code in (200, "200") and 200 <= status < 300
    if v4 and payload.get("success") is False:
        succeeded = False
    if succeeded:
        return ApiResult(status, _text(payload.get("requestId")), payload.get("data"))
    raise _error(endpoint, status, payload, retry_after, v4=v4, secrets=secrets)


def _error(
    endpoint: str,
    status: int,
    payload: dict[str, Any],
    retry_after: float | None,
    *,
    v4: bool,
    secrets: Iterable[str | None],
) -> PolyvError:
    code = payload.get("code")
    status_text = _text(payload.get("status")) or ""
    error = payload.get("error") if v4 else None
    if isinstance(error, dict):
        v4_code = error.get("code") if isinstance(error.get("code"), int) else None
        message = _text(error.get("desc")) or _text(payload.get("message")) or "error"
        polyv_code: int | str | None = v4_code if v4_code is not None else code
    else:
        v4_code = None
        message = _text(payload.get("message")) or status_text or "error"
        polyv_code = code if isinstance(code, int | str) and not isinstance(code, bool) else None
    http_status = status
    if 200 <= status < 300 and isinstance(code, int) and code >= 400:
        http_status = code  # v2 sometimes answers 200 with the real status in the body
    kind = classify(http_status, status=status_text, message=message, v4_code=v4_code)
    # A body with neither POLYV's ``code`` nor its ``status`` (a word: "error", "fail") came
    # from something else, such as a web framework's JSON 404 with a numeric status.
    foreign = "code" not in payload and not isinstance(payload.get("status"), str)
    return PolyvError(
        kind,
        redact_text(message, secrets)[:500],
        endpoint,
        http_status,
        polyv_code,
        _text(payload.get("requestId")),
        retry_after,
        foreign=foreign,
        timestamp_rejected=is_timestamp_rejection(message, v4_code),
    )


def _text(value: object) -> str | None:
    return value if isinstance(value, str) else None

"""URLs as bulkpolyv compares them and as it shows them: normalising and redacting.

A callback URL may carry a token in its query string, and a request URL carries ``sign``;
both must stay out of plans, logs, reports and error messages. Everything that shows a URL,
or quotes text a server sent back (which may echo the request URL), goes through here.
Pure: no I/O.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Mapping
from urllib.parse import parse_qsl, urlsplit, urlunsplit

MASK = "***"
_DEFAULT_PORTS = {"http": 80, "https": 443}
# A URL inside free text: a scheme, then everything up to white space or a quote/bracket.
_URL_IN_TEXT = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://[^\s\"'<>()\[\]{}]+")
# A query string without its URL (a server may echo only "appId=…&sign=…"), and any
# 32-hex-digit run, which is what an MD5 ``sign`` looks like.
_QUERY_PAIR = re.compile(r"(?<![A-Za-z0-9_])([A-Za-z_][A-Za-z0-9_.-]*)=([^&\s\"'<>]+)")
_HEX32 = re.compile(r"\b[0-9A-Fa-f]{32}\b")


def normalise_url(url: str | None) -> str | None:
    """The form two URLs are compared in: scheme and host lower case, default port dropped."""
    if url is None or not url.strip():
        return None
    parts = urlsplit(url.strip())
    host = (parts.hostname or "").lower()
    port = parts.port if parts.port != _DEFAULT_PORTS.get(parts.scheme.lower()) else None
    netloc = host if port is None else f"{host}:{port}"
    if parts.username or parts.password:
        netloc = parts.netloc.rsplit("@", 1)[0] + "@" + netloc
    return urlunsplit(
        (parts.scheme.lower(), netloc, parts.path or "/", parts.query, parts.fragment)
    )


def redact_url(url: str | None) -> str | None:
    """A URL fit for logs: query values (tokens, signatures) and credentials masked."""
    if url is None:
        return None
    try:
        parts = urlsplit(url)
        has_credentials = bool(parts.username or parts.password)
    except ValueError:  # an unparseable port or bracket: show nothing of it
        return MASK
    netloc = parts.netloc.rsplit("@", 1)[-1]
    if has_credentials:
        netloc = f"{MASK}@{netloc}"
    return urlunsplit((parts.scheme, netloc, parts.path, _masked_query(parts.query), ""))


def redact_store_url(url: str) -> str:
    """A store URL (``--budget redis://…``) fit to show: the user name, host, port and
    path kept, since they say which store is meant; the password and every query value
    masked, since a client library may read a password (or a token) from either."""
    try:
        parts = urlsplit(url)
    except ValueError:  # an unparseable bracket: show nothing of it
        return MASK
    # Host and port as written (a bad port is shown, not parsed); the user as written.
    userinfo, at, hostport = parts.netloc.rpartition("@")
    user, colon, _ = userinfo.partition(":")
    netloc = f"{user}{':' + MASK if colon else ''}{at}{hostport}"
    # Put together by hand: urlunsplit drops the ``//`` of schemes it does not know
    # (``unix:///run/redis.sock`` would show as ``unix:/run/redis.sock``).
    scheme = f"{parts.scheme}:" if parts.scheme else ""
    authority = f"//{netloc}" if url[len(scheme) : len(scheme) + 2] == "//" else ""
    query = _masked_query(parts.query)
    return f"{scheme}{authority}{parts.path}" + (f"?{query}" if query else "")


def url_secrets(url: str) -> list[str]:
    """The values :func:`redact_store_url` masks, for masking them in other text (an error
    message a library made from the URL)."""
    try:
        parts = urlsplit(url)
        secrets = [parts.password or ""]
    except ValueError:
        return [url]
    # as written and as decoded: a library may quote either
    secrets += [piece.split("=", 1)[1] for piece in parts.query.split("&") if "=" in piece]
    secrets += [value for _, value in parse_qsl(parts.query)]
    return [s for s in secrets if s]


def _masked_query(query: str) -> str:
    """``a=1&b&c=2`` as ``a=***&***&c=***``: names kept, every value masked."""
    return "&".join(
        (piece.split("=", 1)[0] + "=" + MASK) if "=" in piece else MASK
        for piece in query.split("&")
        if piece
    )


def redact_text(text: str, secrets: Iterable[str | None] = ()) -> str:
    """Text a server sent back, fit to quote: every URL redacted as :func:`redact_url`
    does, every ``name=value`` pair's value and every 32-hex run (a ``sign``) masked, and
    each of ``secrets`` (the request's own secret values) masked wherever it appears."""
    for secret in sorted({s for s in secrets if s and len(s) >= 4}, key=len, reverse=True):
        text = text.replace(secret, MASK)
    text = _URL_IN_TEXT.sub(lambda m: redact_url(m.group(0)) or MASK, text)
    text = _QUERY_PAIR.sub(lambda m: f"{m.group(1)}={MASK}", text)
    return _HEX32.sub(MASK, text)


class RequestSecrets:
    """A request's values that must not come back in a quoted answer (the app secret, a
    callback URL, a password), gathered only when something is quoted: an error. Nearly
    every request succeeds and never needs them."""

    __slots__ = ("_body", "_params", "_secret")

    def __init__(
        self, secret: str, params: Mapping[str, object], body: Mapping[str, object] | None
    ) -> None:
        self._secret, self._params, self._body = secret, params, body

    def __iter__(self) -> Iterator[str]:
        yield self._secret
        yield from _secret_values(self._params)
        yield from _secret_values(self._body)


def _secret_values(values: Mapping[str, object] | None) -> list[str]:
    """Values of a request that must not come back in a quoted answer."""
    if not values:
        return []
    return [str(v) for k, v in values.items() if k in ("url", "password") and v]

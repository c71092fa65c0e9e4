"""POLYV request signing: a pure function, no I/O.

POLYV signs every API call the same way (v2, v3 and v4): take the non-empty parameters, sort
them by key, concatenate ``key + value`` pairs, wrap the result in the appSecret on both
sides and take the upper-case hex MD5. The timestamp is part of what is signed and expires
after three minutes, so a request is signed when it is sent, and again on every retry; that
is why the client calls :func:`signed_params` itself and nothing is signed at plan time.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Mapping

SIGN_KEY = "sign"


def signable_params(params: Mapping[str, object]) -> dict[str, str]:
    """The parameters POLYV signs and that may be sent: non-empty values, as strings.

    ``None``, ``""`` and whitespace-only values are dropped, because POLYV drops them when it
    checks the signature; sending one unsigned would make the request fail.
    """
    kept: dict[str, str] = {}
    for key, value in params.items():
        if key == SIGN_KEY or value is None:
            continue
        text = str(value)
        if text.strip():
            kept[key] = text
    return kept


def sign(params: Mapping[str, object], app_secret: str) -> str:
    """The ``sign`` value for ``params``: upper-case MD5 of secret + k1v1k2v2… + secret."""
    kept = signable_params(params)
    joined = "".join(key + kept[key] for key in sorted(kept))
    digest = hashlib.md5((app_secret + joined + app_secret).encode("utf-8"))
    return digest.hexdigest().upper()


def timestamp_ms(clock: Callable[[], float] = time.time) -> str:
    """POLYV's 13-digit millisecond timestamp for the moment of sending."""
    return str(int(clock() * 1000))


def signed_params(
    params: Mapping[str, object],
    *,
    app_id: str,
    app_secret: str,
    clock: Callable[[], float] = time.time,
) -> dict[str, str]:
    """``params`` plus appId, a fresh timestamp and their ``sign``, empties left out."""
    kept = signable_params({**params, "appId": app_id, "timestamp": timestamp_ms(clock)})
    kept[SIGN_KEY] = sign(kept, app_secret)
    return kept

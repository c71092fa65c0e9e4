"""JSON in and out of the hot paths, by orjson when it is installed (the ``fast`` extra).

Either way the bytes and the values are the same, so nothing a run writes or decides
depends on what is installed:

- :func:`dumps` writes compact JSON, UTF-8 as it is (``ensure_ascii=False``), which is what
  orjson writes; the stdlib fallback is told to write the same (tests compare the two).
- :func:`loads` hands anything orjson refuses to :mod:`json`, which then parses it or
  raises as it always did. orjson is stricter (no ``NaN``, no UTF-16, no byte-order mark, no
  lone surrogates) but for one thing: an integer beyond 64 bits becomes a float. A text
  with a run of 19 digits or more therefore goes to :mod:`json` from the start.
"""

from __future__ import annotations

import json
import re
from typing import Any

try:
    import orjson
except ImportError:  # pragma: no cover - depends on what is installed
    orjson = None  # type: ignore[assignment]


def dumps_stdlib(value: Any, *, sort_keys: bool = False, newline: bool = False) -> bytes:
    end = "\n" if newline else ""
    text = json.dumps(value, ensure_ascii=False, separators=(",", ":"), sort_keys=sort_keys)
    try:
        return (text + end).encode()
    except UnicodeEncodeError:  # a lone surrogate (an answer's "\ud800"): escaped, as ASCII
        return (json.dumps(value, separators=(",", ":"), sort_keys=sort_keys) + end).encode()


def dumps_orjson(value: Any, *, sort_keys: bool = False, newline: bool = False) -> bytes:
    option = (orjson.OPT_SORT_KEYS if sort_keys else 0) | (
        orjson.OPT_APPEND_NEWLINE if newline else 0
    )
    try:
        return orjson.dumps(value, option=option)
    except TypeError:  # a lone surrogate, an integer over 64 bits: json writes those
        return dumps_stdlib(value, sort_keys=sort_keys, newline=newline)


# An integer orjson may read as a float: beyond -2**63 .. 2**64-1, at least 19 digits.
_LONG_DIGITS = re.compile(rb"[0-9]{19}")


def loads_orjson(data: bytes) -> Any:
    if _LONG_DIGITS.search(data) is not None:
        return json.loads(data)
    try:
        return orjson.loads(data)
    except ValueError:  # orjson.JSONDecodeError: json decides (and raises what it raises)
        return json.loads(data)


if orjson is None:  # pragma: no cover - depends on what is installed
    dumps, loads = dumps_stdlib, json.loads
else:
    dumps, loads = dumps_orjson, loads_orjson

"""Compact JSON for the hot paths (journal lines, the plan's checksum) and POLYV's answers
read, by orjson (a dependency), by :mod:`json` should orjson fail to import.

For what bulkpolyv writes there (text, integers, booleans, null, and durations rounded to
milliseconds) the bytes are the same either way, so nothing a run writes depends on which one
runs: compact separators, UTF-8 as it is (``ensure_ascii=False``); tests compare the
two. Two kinds of value orjson refuses, a lone surrogate (POLYV's ``"\\ud800"``) and an
integer beyond 64 bits, go to :mod:`json`, the surrogate escaped. (They differ on values
bulkpolyv never writes here: orjson writes NaN as ``null`` and ``1e-7`` for ``1e-07``.)

:func:`loads` reads an answer to the same value :func:`json.loads` does: orjson refuses
what json alone reads (``NaN``, a byte-order mark, UTF-16) and reads an integer beyond 64
bits as a float, so a refusal, or a body with 19 digits in a row, goes to :mod:`json`.
"""

from __future__ import annotations

import json
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


# An integer orjson would read as a float (beyond 64 bits) has 19 digits or more in a row:
# with every digit mapped to a 9 and anything else to a space, a C-speed substring search
# finds one.
_DIGITS_AS_NINES = bytes(0x39 if 0x30 <= byte <= 0x39 else 0x20 for byte in range(256))
_WIDE_INTEGER = b"9" * 19


def _loads_orjson(data: bytes) -> Any:
    if _WIDE_INTEGER in data.translate(_DIGITS_AS_NINES):
        # Rare (ids are Java longs); a long run of digits in a text only costs a slower read.
        return json.loads(data)
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError:
        return json.loads(data)  # NaN, a BOM, UTF-16... or an error of json's own kind


def _line_orjson(value: Any) -> bytes:
    try:
        return orjson.dumps(value, option=orjson.OPT_APPEND_NEWLINE)
    except TypeError:
        return dumps_stdlib(value, newline=True)


def _line_stdlib(value: Any) -> bytes:
    return dumps_stdlib(value, newline=True)


dumps = dumps_stdlib if orjson is None else dumps_orjson
#: One journal line: ``dumps(value, newline=True)`` without choosing options per line
#: (two lines per write).
dumps_line = _line_stdlib if orjson is None else _line_orjson
#: ``json.loads`` of an answer's body (bytes): with orjson, a third of its instructions
#: for a write's answer, half for a list of ten monitors.
loads = json.loads if orjson is None else _loads_orjson

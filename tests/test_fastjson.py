"""orjson and the json fallback write the same bytes."""

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bulkpolyv.fastjson import (
    _line_orjson,
    _line_stdlib,
    _loads_orjson,
    dumps_orjson,
    dumps_stdlib,
)

# What a plan, a journal line or a POLYV answer holds: text (any code point orjson takes),
# 64-bit integers, booleans, null, nested lists and objects.
SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**64 - 1)
    | st.text(alphabet=st.characters(exclude_categories=["Cs"]))
)
VALUES = st.recursive(
    SCALARS,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=12,
)


@given(VALUES, st.booleans(), st.booleans())
def test_both_encoders_write_the_same_bytes(value, sort_keys, newline):
    written = dumps_orjson(value, sort_keys=sort_keys, newline=newline)
    assert written == dumps_stdlib(value, sort_keys=sort_keys, newline=newline)
    assert json.loads(written) == value


@given(VALUES)
def test_both_line_writers_write_a_compact_line(value):
    line = _line_orjson(value)
    assert line == _line_stdlib(value) == dumps_stdlib(value, newline=True)


@pytest.mark.parametrize("dumps", [dumps_orjson, dumps_stdlib])
def test_a_lone_surrogate_or_a_huge_integer_is_written_not_raised(dumps):
    # POLYV's text reaches the journal as an outcome's message; "\\ud800" in its JSON is a
    # lone surrogate in Python, which UTF-8 cannot hold (orjson raised TypeError on it).
    record = {"message": "bad \ud800 name", "n": 2**70}
    line = dumps(record, newline=True)
    assert json.loads(line) == record
    assert line.endswith(b"\n") and line.isascii()


# What an answer may hold, beyond what bulkpolyv writes: floats, integers past 64 bits
# (orjson reads those as floats, json exactly), NaN and infinities (json alone reads them).
ANSWERS = st.recursive(
    SCALARS | st.integers() | st.floats(allow_nan=True, allow_infinity=True),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=12,
)


def _read(reader, data):
    try:
        return "value", reader(data)
    except (ValueError, UnicodeDecodeError, RecursionError) as exc:  # as interpret catches
        return "refused", type(exc).__name__


@given(ANSWERS, st.sampled_from(["utf-8", "utf-8-sig", "utf-16"]))
def test_an_answer_reads_as_json_reads_it(value, encoding):
    data = json.dumps(value, ensure_ascii=False).encode(encoding, "surrogatepass")
    got, want = _read(_loads_orjson, data), _read(json.loads, data)
    # (NaN is never equal to itself: compare the texts json writes back)
    assert json.dumps(got) == json.dumps(want)


@given(st.binary(max_size=64))
def test_any_bytes_read_as_json_reads_them(data):
    got, want = _read(_loads_orjson, data), _read(json.loads, data)
    assert json.dumps(got) == json.dumps(want)


def test_an_integer_past_64_bits_is_read_exactly():
    assert _loads_orjson(b'{"id": 18446744073709551616, "n": -9223372036854775809}') == {
        "id": 18446744073709551616,
        "n": -9223372036854775809,
    }

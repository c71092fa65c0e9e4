"""orjson and the json fallback write the same bytes and read the same values."""

import json
import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bulkpolyv.fastjson import dumps_orjson, dumps_stdlib, loads_orjson

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


@given(VALUES | st.integers() | st.lists(st.integers() | st.floats(allow_nan=False)))
def test_what_orjson_reads_json_reads_the_same(value):
    # integers of any size: orjson alone reads one beyond 64 bits as a float
    text = json.dumps(value, ensure_ascii=False).encode()
    read = loads_orjson(text)
    assert read == json.loads(text) == value
    assert repr(read) == repr(json.loads(text))


@pytest.mark.parametrize(
    "text",
    [
        b'{"message":"\\ud800 half a pair"}',  # a lone surrogate
        b'{"n":123456789012345678901234567890}',  # beyond 64 bits
        b'{"x":NaN}',
        b'\xef\xbb\xbf{"code":200}',  # a byte-order mark
        '{"code":200}'.encode("utf-16"),
    ],
)
def test_what_orjson_refuses_json_decides(text):
    read, expected = loads_orjson(text), json.loads(text)
    assert read.keys() == expected.keys()
    for key, value in read.items():
        assert value == expected[key] or (math.isnan(value) and math.isnan(expected[key]))


def test_what_neither_reads_raises_a_value_error():
    with pytest.raises(ValueError):
        loads_orjson(b"<html>502</html>")


@pytest.mark.parametrize("dumps", [dumps_orjson, dumps_stdlib])
def test_a_lone_surrogate_or_a_huge_integer_is_written_not_raised(dumps):
    # POLYV's text reaches the journal as an outcome's message; "\\ud800" in its JSON is a
    # lone surrogate in Python, which UTF-8 cannot hold (orjson raised TypeError on it).
    record = {"message": "bad \ud800 name", "n": 2**70}
    line = dumps(record, newline=True)
    assert json.loads(line) == record
    assert line.endswith(b"\n") and line.isascii()

"""orjson and the json fallback write the same bytes."""

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bulkpolyv.fastjson import _line_orjson, _line_stdlib, dumps_orjson, dumps_stdlib

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

"""The event-stream YAML reader: same values as yaml.safe_load, plus places and refusals."""

import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from bulkpolyv.manifest.yamlsource import load_yaml

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(10**12), 10**12),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=20),
    st.sampled_from(
        [
            "yes",
            "No",
            "null",
            "~",
            "0x1F",
            "0o17",
            "1_000",
            "12:30",
            "2026-11-22",
            "1e3",
            ".inf",
            "-",
            "<<",
            "=",
            "true",
            "nickname",
            "Y",
            "N",
            "on",
        ]
    ),
)
documents = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.dictionaries(st.text(min_size=1, max_size=8), inner, max_size=4),
    ),
    max_leaves=30,
)


@settings(max_examples=200, deadline=None)
@given(data=documents, flow=st.booleans())
def test_values_match_safe_load(data, flow):
    text = yaml.safe_dump({"root": data}, default_flow_style=flow, allow_unicode=True)
    value, _, problems = load_yaml(text, "x.yaml")
    assert problems == []
    assert value == yaml.safe_load(text)


def test_anchors_aliases_and_merge_keys():
    text = (
        "base: &base {enable: Y, nickname: a}\n"
        "more: &more {password: pppppp}\n"
        "one:\n  <<: *base\n  nickname: b\n"
        "two:\n  <<: [*base, *more]\n"
        "list: [*base, *base]\n"
    )
    value, source, problems = load_yaml(text, "m.yaml")
    assert problems == []
    assert value == yaml.safe_load(text)
    assert str(source.locate(("one", "nickname"))) == "m.yaml:5:13"
    assert str(source.locate(("one",))) == "m.yaml:4:3"  # the merge did not move it


def test_places_of_keys_values_and_list_items():
    text = "a:\n  - x\n  - {b: 1, c: [2, 3]}\n"
    _, source, _ = load_yaml(text, "p.yaml")
    assert str(source.locate(("a", 0))) == "p.yaml:2:5"
    assert str(source.locate(("a", 1, "c", 1))) == "p.yaml:3:19"
    assert str(source.locate(("a", 1, "missing"))) == "p.yaml:3:5"  # falls back to the parent


def test_refusals_are_located():
    cases = {
        "a: 1\n---\nb: 2\n": "p.yaml:2:1: more than one YAML document",
        "a: *nothing\n": "p.yaml:1:4: a: alias *nothing has no anchor before it",
        "? [1, 2]\n: x\nb: 1\n": "p.yaml:1:3: a key must be plain text",
        "a: 1\nb: 2\na: 3\n": "p.yaml:3:1: a: duplicate key (first at line 1)",
        "a: !!int nope\n": "p.yaml:1:4: a: cannot read the value as int",
        "a: &x [1, *x]\n": "p.yaml:1:11: a[1]: alias *x has no anchor before it",
    }
    for text, expected in cases.items():
        _, _, problems = load_yaml(text, "p.yaml")
        assert problems and str(problems[0]).startswith(expected), (text, problems)


def test_a_dropped_duplicate_does_not_move_the_first_ones_place():
    text = "a:\n  b: 1\na:\n  b: 2\n"
    value, source, _ = load_yaml(text, "d.yaml")
    assert value == {"a": {"b": 1}}
    assert str(source.locate(("a", "b"))) == "d.yaml:2:6"


def test_each_value_counts_once_towards_the_cap_and_aliases_as_often_as_used(monkeypatch):
    from bulkpolyv.manifest import yamlsource

    monkeypatch.setattr(yamlsource, "MAX_VALUES", 1000)
    # 1 + 50 * (1 mapping + 2 keys' values + 1 list + 3 items + 1 nested map + 1 value)
    # = 451 values, nested five deep: counting parents again would go over 1,000.
    items = "".join(f"  - {{id: {i}, a: x, c: [1, 2, {{d: [e]}}]}}\n" for i in range(50))
    value, _, problems = load_yaml("items:\n" + items, "ok.yaml")
    assert problems == [] and len(value["items"]) == 50
    bomb = (
        "a: &a [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]\nb: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a, *a]\n"
        "c: [*b, *b, *b, *b, *b, *b, *b, *b, *b, *b]\n"
    )
    _, _, problems = load_yaml(bomb, "bomb.yaml")
    assert [p.message for p in problems] == [
        "expands to more than 1,000 values (an alias bomb?); refusing to read further"
    ]


def test_keys_keep_their_own_position_beside_their_values():
    _, source, problems = load_yaml("a:\n  b:\n    - 1\n  c: 2\n", "x.yaml")
    assert problems == []
    assert str(source.locate_key(("a", "b"))) == "x.yaml:2:3"
    assert str(source.locate(("a", "b"))) == "x.yaml:3:5"  # the list under it
    assert str(source.locate_key(("a", "c"))) == "x.yaml:4:3"
    assert str(source.locate_key(("a", "missing"))) == "x.yaml:2:3"  # falls back to a's value

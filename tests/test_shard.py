"""--shard K/N: a stable split of the accounts, with no overlap and no gap."""

import os
import subprocess
import sys

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bulkpolyv.shard import Shard, ShardSpecError, parse_shard, shard_of


@given(names=st.sets(st.text(min_size=1, max_size=30), max_size=60), n=st.integers(1, 12))
def test_the_shards_cover_every_account_exactly_once(names, n):
    shards = [Shard(k, n) for k in range(1, n + 1)]
    owned = [{name for name in names if shard.owns(name)} for shard in shards]
    assert set().union(*owned) == names
    assert sum(len(part) for part in owned) == len(names)  # pairwise disjoint


@given(names=st.lists(st.text(min_size=1), unique=True, max_size=40), n=st.integers(1, 9))
def test_a_shard_does_not_depend_on_manifest_order(names, n):
    assert [shard_of(name, n) for name in names] == [
        shard_of(name, n) for name in reversed(names)
    ][::-1]


def test_shard_of_is_pinned_across_processes_and_hash_seeds():
    pinned = [shard_of(name, 4) for name in ("acme", "东方", "beta")]
    assert pinned == [0, 1, 1]
    code = "from bulkpolyv.shard import shard_of; print(shard_of('东方', 4), shard_of('acme', 7))"
    outputs = {
        subprocess.run(
            [sys.executable, "-c", code],
            env={**os.environ, "PYTHONHASHSEED": seed},
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        for seed in ("1", "2")
    }
    assert outputs == {f"1 {shard_of('acme', 7)}\n"}


def test_four_shards_split_4000_accounts_evenly_and_always_the_same_way():
    counts = [0] * 4
    for i in range(4000):
        counts[shard_of(f"account-{i}", 4)] += 1
    # pinned: changing the hash would move accounts between hosts of a running fleet
    assert counts == [993, 1009, 1011, 987]


@pytest.mark.parametrize(("text", "shard"), [("1/1", Shard(1, 1)), (" 3 / 5 ", Shard(3, 5))])
def test_parse_shard_reads_k_of_n(text, shard):
    assert parse_shard(text) == shard
    assert str(shard) == text.replace(" ", "")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("2", "--shard '2' is not of the form K/N: write e.g. --shard 2/5"),
        ("a/b", "--shard 'a/b' is not of the form K/N"),
        ("-1/3", "--shard '-1/3' is not of the form K/N"),
        ("٣/5", "--shard '٣/5' is not of the form K/N"),
        ("0/3", "--shard '0/3': K must be between 1 and N (N at least 1), e.g. 1/3 to 3/3."),
        ("4/3", "--shard '4/3': K must be between 1 and N"),
        ("1/0", "--shard '1/0': K must be between 1 and N (N at least 1), e.g. 1/1 to 1/1."),
    ],
)
def test_parse_shard_explains_what_is_wrong(text, message):
    with pytest.raises(ShardSpecError) as caught:
        parse_shard(text)
    assert str(caught.value).startswith(message)

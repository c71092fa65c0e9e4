"""Narrowing a manifest with --only and --retry-failed."""

from pathlib import Path

import pytest

from bulkpolyv.manifest import load_manifest
from bulkpolyv.plan import ItemKey
from bulkpolyv.selection import select

EXAMPLE = Path(__file__).parent.parent / "manifests" / "example.yaml"


def shape(manifest):
    return [
        (a.name, "record" in a.callbacks, [c.channel_id for c in a.channels])
        for a in manifest.accounts
    ]


@pytest.fixture(scope="module")
def example():
    return load_manifest(EXAMPLE, resolve_env=False)


@pytest.mark.parametrize(
    ("only", "expected"),
    [
        (["east"], [("east", True, [2191532, 2191533])]),
        (["east/2191532"], [("east", False, [2191532])]),
        # a whole-account pattern beside a channel pattern keeps the whole account
        (["east", "east/2191532"], [("east", True, [2191532, 2191533])]),
        (["w*"], [("west", True, [3100001, 3100002, 3100003])]),
        (["nope"], []),
    ],
)
def test_only_patterns(example, only, expected):
    assert shape(select(example, only)) == expected


def test_retry_failed_keeps_just_the_named_items(example):
    keys = {ItemKey("west", 3100002, 4003), ItemKey.callback("archive", "record")}
    assert shape(select(example, (), keys)) == [("west", False, [3100002]), ("archive", True, [])]

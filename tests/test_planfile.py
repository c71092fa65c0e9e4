"""Reviewed plan files: fingerprints keyed with the account's secret, and what they catch."""

import json

import pytest

from bulkpolyv.plan import LiveState, make_plan
from bulkpolyv.planfile import (
    ReviewedPlan,
    ReviewedPlanError,
    fingerprint,
    plan_file_dict,
    write_plan_file,
)
from bulkpolyv.records import Monitor
from tests.models import account, channel, manifest_of, monitor

SECRET = "SECRET-east-1"


def world(password="new-pass-1", digest="digest"):
    desired = account(
        "east", manages=False, secret=SECRET, channels=[channel(10, monitor(1, "nick", password))]
    )
    live = LiveState(monitors={("east", 10): {1: Monitor(1, 10, "old", "old-pass")}})
    manifest = manifest_of(desired, digest=digest)
    return manifest, make_plan(manifest, live)


def test_a_fingerprint_depends_on_secret_field_and_value_and_tells_none_from_empty():
    base = fingerprint(SECRET, "password", "abc")
    assert base == fingerprint(SECRET, "password", "abc")
    assert len(base) == 32
    assert base != fingerprint("other-secret", "password", "abc")
    assert base != fingerprint(SECRET, "nickname", "abc")
    assert base != fingerprint(SECRET, "password", "abd")
    assert fingerprint(SECRET, "nickname", None) != fingerprint(SECRET, "nickname", "")


def test_the_plan_file_holds_fingerprints_of_before_and_after_never_the_values():
    _, plan = world()
    data = plan_file_dict(plan)
    (entry,) = data["operations"]
    by_field = {c["field"]: c for c in entry["changes"]}
    assert by_field["password"]["before_fingerprint"] == fingerprint(SECRET, "password", "old-pass")
    assert by_field["password"]["after_fingerprint"] == fingerprint(
        SECRET, "password", "new-pass-1"
    )
    text = json.dumps(data)
    assert "old-pass" not in text and "new-pass-1" not in text and SECRET not in text


def test_a_reviewed_plan_applies_as_written_and_sees_a_moved_live_value(tmp_path):
    path, manifest = written(tmp_path)
    reviewed = ReviewedPlan(path, manifest)
    (op,) = reviewed.plan.operations
    assert op.desired_values() == {"nickname": "nick", "password": "new-pass-1"}
    assert reviewed.plan.credentials["east"].app_secret == SECRET
    assert reviewed.conflict(op, {"nickname": "old", "password": "old-pass"}) is None
    assert reviewed.conflict(op, {"nickname": "moved", "password": "old-pass"}) == (
        "the live nickname changed since the plan was reviewed"
    )
    assert reviewed.conflict(op, None) == "the monitor account no longer exists"


def written(tmp_path):
    """A plan file for :func:`world`, and the manifest it was made from."""
    manifest, plan = world()
    path = tmp_path / "plan.json"
    write_plan_file(path, plan)
    return path, manifest


def test_a_manifest_asking_for_another_value_than_reviewed_is_refused(tmp_path):
    path, _ = written(tmp_path)
    changed, _ = world(password="another-pass")
    with pytest.raises(ReviewedPlanError, match="no longer asks for the reviewed password"):
        ReviewedPlan(path, changed)


def test_a_changed_manifest_digest_or_a_broken_file_is_refused(tmp_path):
    path, manifest = written(tmp_path)
    other, _ = world(digest="other")
    with pytest.raises(ReviewedPlanError, match="changed since this plan was made"):
        ReviewedPlan(path, other)
    data = json.loads(path.read_text())
    del data["operations"][0]["changes"][0]["field"]
    path.write_text(json.dumps(data))
    with pytest.raises(ReviewedPlanError, match="operation 1 of the plan is broken"):
        ReviewedPlan(path, manifest)


def test_a_format_1_plan_file_still_applies_its_record_callback(tmp_path):
    desired = account("east", "https://h/new", secret=SECRET)
    manifest = manifest_of(desired)
    plan = make_plan(manifest, LiveState(callbacks={"east": {"record": "https://h/old"}}))
    data = plan_file_dict(plan)
    data["format_version"] = 1
    for entry in data["operations"]:
        del entry["setting"]  # format 1 named the record callback by the account alone
    path = tmp_path / "old.json"
    path.write_text(json.dumps(data))
    (op,) = ReviewedPlan(path, manifest).plan.operations
    assert (str(op.key), op.desired_values()) == (
        "east record callback",
        {"record_callback": "https://h/new"},
    )


def test_a_plan_file_from_before_its_kind_still_reads_and_a_newer_format_is_refused(tmp_path):
    path, manifest = written(tmp_path)
    data = json.loads(path.read_text())
    assert data["kind"] == "bulkpolyv plan file"
    del data["kind"]  # as written before plan files said what they are
    path.write_text(json.dumps(data))
    (op,) = ReviewedPlan(path, manifest).plan.operations
    assert op.desired_values() == {"nickname": "nick", "password": "new-pass-1"}
    del data["operations"][0]["changes"][0]["after_fingerprint"]  # plain `plan` JSON
    path.write_text(json.dumps(data))
    with pytest.raises(ReviewedPlanError, match="is not a bulkpolyv plan file"):
        ReviewedPlan(path, manifest)
    newer = json.loads(written(tmp_path)[0].read_text())
    path.write_text(json.dumps({**newer, "format_version": 9}))
    with pytest.raises(ReviewedPlanError, match=r"plan file format 9, this bulkpolyv reads "):
        ReviewedPlan(path, manifest)

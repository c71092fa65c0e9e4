"""The report: one module writes it and reads it back; a broken one is our error, located."""

import json

import pytest

from bulkpolyv.errors import BulkPolyvError
from bulkpolyv.plan import FieldChange, ItemKey, Operation, OpKind, Plan
from bulkpolyv.report import (
    REPORT_FORMAT_VERSION,
    ApplyResult,
    ApplyStatus,
    ItemOutcome,
    ReportError,
    Status,
    build_report,
    failed_items,
    not_attempted,
    write_report,
)
from tests.models import HERE

OP = Operation(
    OpKind.UPDATE_MONITOR, ItemKey("east", 10, 2), (FieldChange("nickname", "old", "new"),), HERE
)


def result_with(*outcomes):
    plan = Plan("m.yaml", "d", (OP,), (), (), 0, 0)
    return ApplyResult(ApplyStatus.COMPLETED, plan, list(outcomes), requests=7, duration=1.25)


@pytest.mark.parametrize(
    ("key", "written"),
    [
        (
            ItemKey.callback("east", "record"),
            {
                "account": "east",
                "channel_id": None,
                "monitor_id": None,
                "setting": "record_callback",
            },
        ),
        (
            ItemKey.monitoring("east", 10),
            {"account": "east", "channel_id": 10, "monitor_id": None, "setting": "monitoring"},
        ),
        (
            ItemKey("east", 10, 2),
            {"account": "east", "channel_id": 10, "monitor_id": 2, "setting": None},
        ),
    ],
)
def test_item_keys_write_absent_ids_as_null_and_read_them_back(key, written):
    assert key.to_dict() == written
    assert ItemKey.from_dict(written) == key


def test_outcomes_are_immutable_values():
    outcome = ItemOutcome.of_operation(OP, Status.CHANGED, attempts=1)
    with pytest.raises(AttributeError):
        outcome.status = Status.FAILED  # type: ignore[misc]
    assert outcome.to_dict()["changes"] == [
        {"field": "nickname", "before": "old", "after": "new", "before_known": True}
    ]


def test_an_outcome_keeps_its_duration_to_the_millisecond_in_a_float_shared_by_its_like():
    # (a million outcomes are held until the report: one float each was 32 MB)
    first = ItemOutcome.of_operation(OP, Status.CHANGED, duration=0.1234567)
    second = ItemOutcome.of_operation(OP, Status.CHANGED, duration=0.12341)
    assert first.duration == 0.123 and first.duration is second.duration
    assert first.to_dict()["duration"] == 0.123
    long = ItemOutcome.of_operation(OP, Status.CHANGED, duration=61.23456)
    assert long.duration == 61.235  # kept to the millisecond, not shared


def test_a_written_report_gives_back_its_failed_and_skipped_items(tmp_path):
    result = result_with(
        ItemOutcome(ItemKey.callback("west", "record"), Status.SKIPPED, message="auth"),
        ItemOutcome.of_operation(OP, Status.FAILED, attempts=5),
        ItemOutcome(ItemKey("east", 10, 1), Status.CHANGED),
        ItemOutcome(ItemKey.callback("east", "record"), Status.UNCHANGED),
    )
    report = build_report(result, manifest_digest="d", started="t0", cooldowns=2)
    path = tmp_path / "r.json"
    write_report(path, report)
    assert failed_items(path) == {ItemKey.callback("west", "record"), ItemKey("east", 10, 2)}
    data = json.loads(path.read_text())
    assert data["format_version"] == REPORT_FORMAT_VERSION
    assert [(i["account"], i["channel_id"], i["monitor_id"]) for i in data["items"]] == [
        ("east", None, None),
        ("east", 10, 1),
        ("east", 10, 2),
        ("west", None, None),
    ]
    assert data["totals"] == {
        "changed": 1,
        "unchanged": 1,
        "failed": 1,
        "skipped": 1,
        "conflict": 0,
        "requests": 7,
        "cooldowns": 2,
    }
    assert path.stat().st_mode & 0o777 == 0o600


def test_the_summary_line_counts_items_requests_and_time():
    result = result_with(ItemOutcome(ItemKey("east"), Status.CHANGED))
    assert result.summary == "changed=1 unchanged=0 failed=0 skipped=0 requests=7 in 1.2s"


def test_operations_never_dispatched_are_skipped_as_interrupted():
    (outcome,) = not_attempted([OP], done=set())
    assert (outcome.key, outcome.status, outcome.operation) == (
        ItemKey("east", 10, 2),
        Status.SKIPPED,
        "update_monitor",
    )
    assert list(not_attempted([OP], done={OP.key})) == []


def good_report(**changes):
    return {"format_version": REPORT_FORMAT_VERSION, "items": [], **changes}


@pytest.mark.parametrize(
    ("content", "says"),
    [
        ("{not json", "not valid JSON"),
        ("", "not valid JSON"),
        (json.dumps([1, 2]), "has no list of items"),
        (json.dumps({"format_version": 1}), "has no list of items"),
        (json.dumps(good_report(format_version=99)), "report format 99"),
        (json.dumps(good_report(items=["x"])), "item 1 of the report is broken: not an object"),
        (
            json.dumps(good_report(items=[{"status": "failed", "channel_id": 1}])),
            "item 1 of the report is broken: an item without an account name",
        ),
        (
            json.dumps(good_report(items=[{"status": "failed", "account": 5}])),
            "item 1 of the report is broken: an item without an account name",
        ),
        (
            json.dumps(
                good_report(
                    items=[
                        {"status": "changed", "account": "a"},
                        {"status": "skipped", "account": "a", "channel_id": "12"},
                    ]
                )
            ),
            "item 2 of the report is broken: channel_id '12' is not a whole number",
        ),
    ],
)
def test_a_broken_report_is_refused_with_a_sentence_naming_the_file(tmp_path, content, says):
    path = tmp_path / "broken.json"
    path.write_text(content)
    with pytest.raises(ReportError) as caught:
        failed_items(path)
    assert isinstance(caught.value, BulkPolyvError)
    assert str(caught.value).startswith(f"{path}: ")
    assert says in str(caught.value)


def test_retry_failed_takes_conflicts_too_and_only_from_this_manifests_report(tmp_path):
    result = result_with(
        ItemOutcome(ItemKey("west"), Status.CONFLICT, message="conflict: moved"),
        ItemOutcome(ItemKey("east", 10, 1), Status.CHANGED),
    )
    path = tmp_path / "r.json"
    write_report(path, build_report(result, manifest_digest="d1", started="t0", cooldowns=0))
    assert failed_items(path, "d1") == {ItemKey.callback("west", "record")}
    with pytest.raises(ReportError, match="this report is of another manifest"):
        failed_items(path, "d2")


def test_a_missing_report_is_refused_naming_the_file(tmp_path):
    with pytest.raises(ReportError, match=r"gone\.json: cannot read the report"):
        failed_items(tmp_path / "gone.json")


def test_retry_failed_with_a_broken_report_exits_1_with_the_sentence(tmp_path, monkeypatch, capsys):
    from bulkpolyv.cli import main

    broken = tmp_path / "report.json"
    broken.write_text('{"format_version": 1, "items": [')
    manifest = tmp_path / "m.yaml"  # read first: the report must be of this manifest
    manifest.write_text(
        "version: 1\naccounts:\n  - name: a\n    user_id: u\n    app_id: x\n"
        "    app_secret: ${T_S}\n    record_callback: https://h.example.com/cb\n"
    )
    monkeypatch.setenv("T_S", "secret-value")
    argv = ["bulkpolyv", "apply", str(manifest), "--yes", "--retry-failed", str(broken)]
    monkeypatch.setattr("sys.argv", argv)
    with pytest.raises(SystemExit) as exited:
        main()
    assert exited.value.code == 1
    err = capsys.readouterr().err
    assert err.startswith(f"bulkpolyv: {broken}: not a bulkpolyv report: not valid JSON (")
    assert "Traceback" not in err

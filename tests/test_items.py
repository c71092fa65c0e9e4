"""Each callback and each channel's monitor switch as its own plan item: keys, diffs,
rendering, the safety check and the override warning (pure; no I/O)."""

import json

import pytest

from bulkpolyv.items import ItemKey
from bulkpolyv.manifest.model import DesiredChannel
from bulkpolyv.manifest.problems import Location
from bulkpolyv.plan import LiveState, OpKind, ReadKind, make_plan
from bulkpolyv.records import Monitor
from bulkpolyv.render import render_json, render_markdown, render_text, totals_line
from bulkpolyv.safety import check_safety
from tests.models import HERE, account, monitor
from tests.models import manifest_of as manifest

SWITCH = Location("m.yaml", 30, 9)


def switch_channel(channel_id: int, monitoring: str, *monitors) -> DesiredChannel:  # type: ignore[no-untyped-def]
    return DesiredChannel(channel_id, tuple(monitors), HERE, monitoring, SWITCH)


@pytest.mark.parametrize(
    "key",
    [
        ItemKey.callback("east", "record"),
        ItemKey.callback("east", "playback"),
        ItemKey.callback("east", "stream"),
        ItemKey.monitoring("east", 10),
        ItemKey("east", 10, 7),
    ],
)
def test_every_kind_of_key_round_trips_through_its_dict(key):
    assert ItemKey.from_dict(json.loads(json.dumps(key.to_dict()))) == key


def test_a_key_written_before_settings_existed_reads_as_the_record_callback():
    old = {"account": "east", "channel_id": None, "monitor_id": None}
    assert ItemKey.from_dict(old) == ItemKey.callback("east", "record")
    with pytest.raises(ValueError, match="does not fit"):
        ItemKey.from_dict({"account": "east", "channel_id": 5, "setting": "stream_callback"})


def test_keys_sort_naturally_and_name_what_they_are():
    keys = [ItemKey("a10", 1, 1), ItemKey("a2", 1, 2), ItemKey.monitoring("a2", 1)]
    assert sorted(keys) == [ItemKey.monitoring("a2", 1), ItemKey("a2", 1, 2), ItemKey("a10", 1, 1)]
    assert str(ItemKey.callback("east", "playback")) == "east playback callback"
    assert str(ItemKey.monitoring("east", 10)) == "east/10 monitoring"


def test_each_callback_is_set_switched_off_left_alone_or_unchanged():
    desired = manifest(
        account(callbacks={"record": "https://new/r", "playback": None, "stream": "https://h/s"}),
        account("west", callbacks={"stream": None}),  # record and playback left alone
    )
    live = LiveState(
        callbacks={
            "east": {"record": "https://old/r", "playback": "https://h/p?t=TOKEN-1"},
            "west": {"record": "https://west/r", "playback": None, "stream": "https://w/s"},
        }
    )
    plan = make_plan(desired, live)
    assert [(str(o.key), o.kind, o.symbol) for o in plan.operations] == [
        ("east playback callback", OpKind.SWITCH_OFF_CALLBACK, "-"),
        ("east record callback", OpKind.SET_CALLBACK, "~"),
        # POLYV's answer had no streamCallbackUrl: unknown, written blind
        ("east stream callback", OpKind.SET_CALLBACK, "?"),
        ("west stream callback", OpKind.SWITCH_OFF_CALLBACK, "-"),
    ]
    assert plan.unchanged == ()
    assert plan.managed_callbacks == 4
    rows = render_markdown(plan).splitlines()
    assert (
        "| - switch_off_callback | east |  |  | playback_callback | https://h/p?t=*** | (none) |"
        in (rows[2])
    )
    ops = json.loads(render_json(plan))["operations"]
    assert [(o["account"], o["setting"]) for o in ops] == [
        ("east", "playback_callback"),
        ("east", "record_callback"),
        ("east", "stream_callback"),
        ("west", "stream_callback"),
    ]


def test_switching_a_callback_off_shows_what_is_removed_redacted():
    desired = manifest(account(callbacks={"playback": None}))
    live = LiveState(callbacks={"east": {"playback": "https://h/p?token=TOKEN-1"}})
    text = render_text(make_plan(desired, live))
    assert "  - playback callback: https://h/p?token=*** → switched off  [m.yaml:5:3]" in text
    assert "TOKEN-1" not in text


def test_channel_monitoring_is_its_own_item_and_switching_it_off_is_destructive():
    channels = [
        switch_channel(10, "Y"),
        switch_channel(11, "N", monitor(1, "n")),
        switch_channel(12, "Y"),
        switch_channel(13, "N"),
    ]
    desired = manifest(account(manages=False, channels=channels))
    live = LiveState(
        monitoring={("east", 10): "N", ("east", 11): "Y", ("east", 12): "Y", ("east", 13): None},
        monitors={("east", 11): {1: Monitor(1, 11, "n")}},
    )
    plan = make_plan(desired, live)
    assert [(str(o.key), o.kind, o.symbol, o.destructive) for o in plan.operations] == [
        ("east/10 monitoring", OpKind.SET_MONITORING, "~", False),
        ("east/11 monitoring", OpKind.SWITCH_OFF_MONITORING, "-", True),
        ("east/13 monitoring", OpKind.SWITCH_OFF_MONITORING, "-", True),
    ]
    assert [str(k) for k, _ in plan.unchanged] == ["east/11 monitor 1", "east/12 monitoring"]
    text = render_text(plan)
    assert "    ~ monitoring: N → Y  [m.yaml:30:9]" in text
    assert "    - monitoring: (unknown) → N  [m.yaml:30:9]" in text
    assert totals_line(plan) == "Plan: 1 to change, 2 to switch off, 2 unchanged."


def test_a_failed_switch_read_fails_that_item_only():
    channel = switch_channel(10, "Y", monitor(1, "n"))
    desired = manifest(account(manages=False, channels=[channel]))
    live = LiveState(
        monitors={("east", 10): {1: Monitor(1, 10, "old")}},
        failures={("east", 10, ReadKind.MONITORING): "没有监控轮询权限"},
    )
    plan = make_plan(desired, live)
    assert [str(o.key) for o in plan.operations] == ["east/10 monitor 1"]
    assert [(str(p.key), p.message) for p in plan.problems] == [
        ("east/10 monitoring", "没有监控轮询权限")
    ]


def test_safety_counts_callbacks_and_channel_switches_switched_off():
    kinds = ("record", "playback", "stream")
    callers = [account(f"a{i}", callbacks=dict.fromkeys(kinds)) for i in range(4)]
    live = LiveState(callbacks={f"a{i}": dict.fromkeys(kinds, "https://h/x") for i in range(4)})
    verdict = check_safety(make_plan(manifest(*callers), live))
    assert verdict.reasons == ("12 of 12 managed callbacks switched off (100%, over 30%)",)

    channels = [switch_channel(c, "N") for c in range(1, 13)]
    live = LiveState(monitoring={("east", c): "Y" for c in range(1, 13)})
    verdict = check_safety(make_plan(manifest(account(manages=False, channels=channels)), live))
    assert verdict.reasons == (
        "12 of 12 managed channels' monitoring switched off (100%, over 30%)",
    )


def test_channels_that_ignore_the_accounts_callbacks_are_a_warning_under_the_plan():
    desired = manifest(account(callbacks={"record": "https://h/r"}))
    live = LiveState(
        callbacks={"east": {"record": "https://h/r"}},
        follows_account={("east", 12): False, ("east", 10): False, ("east", 11): True},
        failures={("east", 13, ReadKind.CHANNEL_CALLBACKS): "timed out"},
    )
    plan = make_plan(desired, live)
    assert plan.warnings == (
        "east: channels 10, 12 use their own callback settings (globalSettingEnabled: N): "
        "the account's callbacks do not reach them",
        "east/13: could not check its callback setting: timed out",
    )
    text = render_text(plan).splitlines()
    assert text[-3].startswith("Warning: east: channels 10, 12 use their own")
    assert text[-1] == "No changes. 1 item already as the manifest says."
    assert plan.warnings[0] in render_markdown(plan)
    assert json.loads(render_json(plan))["warnings"] == list(plan.warnings)
    assert plan.problems == ()  # a warning, not an error: the plan is still applicable


def test_summary_lines_are_simple():
    empty = make_plan(manifest(account(manages=False)), LiveState())
    assert totals_line(empty) == "No changes."
    desired = manifest(account(callbacks={"record": "https://h/r", "stream": None}))
    unknown = make_plan(desired, LiveState(callbacks={"east": {"stream": "https://h/s"}}))
    # record is not in POLYV's answer: write-only, written again but not drift
    assert totals_line(unknown) == (
        "Plan: 0 to change, 1 to switch off, 0 unchanged. 1 write-only item will be "
        "written again (POLYV does not return the value, so it cannot be checked)."
    )
    drifted = make_plan(
        desired,
        LiveState(callbacks={"east": {"record": "https://o/r", "stream": "https://h/s"}}),
    )
    assert totals_line(drifted) == "Plan: 1 to change, 1 to switch off, 0 unchanged."


def test_accounts_sort_naturally_in_plans():
    names = ["a10", "a2", "a1"]
    desired = manifest(*(account(n, "https://h/new") for n in names))
    live = LiveState(callbacks={n: {"record": "https://h/old"} for n in names})
    text = render_text(make_plan(desired, live))
    heads = [line for line in text.splitlines() if line.startswith("a")]
    assert heads == ["a1", "a2", "a10"]


def test_colour_only_when_asked():
    desired = manifest(account(callbacks={"record": "https://h/r", "stream": None}))
    plan = make_plan(
        desired, LiveState(callbacks={"east": {"record": "https://o/r", "stream": "https://h/s"}})
    )
    plain = render_text(plan)
    assert "\x1b[" not in plain
    coloured = render_text(plan, color=True)
    assert "\x1b[31m- stream callback\x1b[0m" in coloured  # red: switched off
    assert "\x1b[33m~ record callback\x1b[0m" in coloured  # yellow: changed


def test_reads_are_one_callback_get_per_account_and_per_channel_what_it_manages():
    from bulkpolyv.operations import reads_for

    channels = [switch_channel(10, "Y"), DesiredChannel(11, (monitor(1, "n"),), HERE)]
    desired = manifest(
        account(callbacks={"record": None, "stream": None}, channels=channels),
        account("west", manages=False),
    )
    plain = [(r.account, r.channel_id, r.what) for r in reads_for(desired)]
    assert plain == [
        ("east", 0, ReadKind.CALLBACKS),
        ("east", 10, ReadKind.MONITORING),
        ("east", 11, ReadKind.MONITORS),
    ]
    checked = [r.what for r in reads_for(desired, check_channel_callbacks=True)]
    assert checked.count(ReadKind.CHANNEL_CALLBACKS) == 2


def test_a_field_that_cannot_be_read_back_is_unverified_never_verified():
    from bulkpolyv.operations import NotStuck, check_stuck

    desired = manifest(
        account(manages=False, channels=[DesiredChannel(10, (monitor(1, "n", enable="N"),), HERE)])
    )
    (op,) = make_plan(
        desired, LiveState(monitors={("east", 10): {1: Monitor(1, 10, "x")}})
    ).operations
    assert check_stuck(op, {"nickname": "n", "enable": "N"}) == (True, "")
    assert check_stuck(op, {"nickname": "n"}) == (
        None,
        "unverified: POLYV does not return enable, so the write cannot be read back",
    )
    with pytest.raises(NotStuck, match="nickname did not change"):
        check_stuck(op, {"nickname": "x"})
    with pytest.raises(NotStuck, match="gone"):
        check_stuck(op, None)


def test_write_only_items_are_one_line_per_account_in_text_and_each_in_json():
    channel = DesiredChannel(10, (monitor(1, enable="Y"), monitor(2, enable="N")), HERE)
    desired = manifest(account(manages=False, channels=[channel]))
    live = LiveState(monitors={("east", 10): {1: Monitor(1, 10, "a"), 2: Monitor(2, 10, "b")}})
    plan = make_plan(desired, live)
    assert render_text(plan).splitlines() == [
        "east",
        "  ? 2 write-only items written again, unverifiable (enable ×2)",
        "No changes. 2 write-only items will be written again (POLYV does not return the "
        "value, so it cannot be checked).",
    ]
    assert len(json.loads(render_json(plan))["operations"]) == 2
    assert not plan.has_drift and plan.has_changes


def test_an_account_refused_by_polyv_is_one_line_in_a_text_plan():
    channel = DesiredChannel(10, (monitor(1, nickname="a"), monitor(2, nickname="b")), HERE)
    desired = manifest(account(callbacks={"record": "https://h/r"}, channels=[channel]))
    reason = "could not read the live state: GET /x: 签名错误 — bad signature (HTTP 403, auth)"
    plan = make_plan(desired, LiveState(account_failures={"east": reason}))
    assert render_text(plan).splitlines()[:2] == ["east", f"  ! 3 items not planned: {reason}"]
    assert len(plan.problems) == 3  # each is still in the JSON plan and the report

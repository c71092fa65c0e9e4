"""Pure planning: diffs, normalisation, redaction, sorting, safety."""

from bulkpolyv.manifest.model import DesiredChannel
from bulkpolyv.plan import (
    FieldChange,
    ItemKey,
    LiveState,
    Operation,
    OpKind,
    ReadKind,
    assemble_plan,
    make_plan,
    normalise_url,
    redact_url,
)
from bulkpolyv.records import Monitor
from bulkpolyv.render import render_json, render_markdown, render_text
from bulkpolyv.safety import check_safety
from tests.models import HERE, account, monitor
from tests.models import manifest_of as manifest


def test_urls_compare_after_normalising_scheme_host_and_default_port():
    assert normalise_url("HTTPS://Hooks.Example.com:443/x?a=1") == normalise_url(
        "https://hooks.example.com/x?a=1"
    )
    assert normalise_url("http://h:8080/x") != normalise_url("http://h/x")
    assert normalise_url("") is None


def test_redacted_urls_hide_query_values_and_credentials():
    assert redact_url("https://u:pw@h.example/cb?token=abc&team=east") == (
        "https://***@h.example/cb?token=***&team=***"
    )


def test_callback_set_switch_off_and_unchanged():
    desired = manifest(
        account("a", "https://new/x"), account("b", None), account("c", "https://same/x")
    )
    live = LiveState(
        callbacks={
            "a": {"record": "https://old/x"},
            "b": {"record": "https://old/y"},
            "c": {"record": "HTTPS://SAME:443/x"},
        }
    )
    plan = make_plan(desired, live)
    assert [(o.key.account, o.kind) for o in plan.operations] == [
        ("a", OpKind.SET_CALLBACK),
        ("b", OpKind.SWITCH_OFF_CALLBACK),
    ]
    assert [k.account for k, _ in plan.unchanged] == ["c"]


def test_monitor_changes_only_name_fields_that_differ_and_unknowns_are_written():
    channel = DesiredChannel(10, (monitor(1, "n", "secret-pw", "Y"), monitor(2, enable="N")), HERE)
    desired = manifest(account(manages=False, channels=[channel]))
    live = LiveState(
        monitors={
            ("east", 10): {
                1: Monitor(1, 10, "n", "other-pw", "Y"),
                2: Monitor(2, 10, "x", "p", None),  # POLYV did not say whether it is enabled
            }
        }
    )
    plan = make_plan(desired, live)
    first, second = plan.operations
    assert [c.field for c in first.changes] == ["password"]
    assert first.changes[0].shown() == ("(hidden)", "(changed)")
    assert second.symbol == "?" and second.changes[0].before_known is False


def test_unknown_monitor_id_is_an_item_error_not_a_crash():
    channel = DesiredChannel(10, (monitor(9, "n"),), HERE)
    plan = make_plan(
        manifest(account(manages=False, channels=[channel])), LiveState(monitors={("east", 10): {}})
    )
    (problem,) = plan.problems
    assert "does not exist" in problem.message and problem.key == ItemKey("east", 10, 9)


def test_plans_are_sorted_and_stable_whatever_the_read_order():
    channels = [DesiredChannel(c, (monitor(c, "new"),), HERE) for c in (30, 10, 20)]
    desired = manifest(account(manages=False, channels=channels))
    monitors = {("east", c): {c: Monitor(c, c, "old")} for c in (20, 30, 10)}
    one = make_plan(desired, LiveState(monitors=monitors))
    two = make_plan(desired, LiveState(monitors=dict(reversed(monitors.items()))))
    assert [o.key.channel_id for o in one.operations] == [10, 20, 30]
    assert one.checksum() == two.checksum()


def test_renderers_never_show_passwords_or_query_tokens():
    channel = DesiredChannel(10, (monitor(1, password="PASSWORD-XYZ"),), HERE)
    desired = manifest(account(callback="https://h/cb?token=TOKEN-XYZ", channels=[channel]))
    live = LiveState(
        callbacks={"east": {"record": None}},
        monitors={("east", 10): {1: Monitor(1, 10, "n", "OLDPASS-XYZ", "Y")}},
    )
    plan = make_plan(desired, live)
    for text in (render_text(plan), render_json(plan), render_markdown(plan), repr(plan)):
        assert "XYZ" not in text
    assert "token=***" in render_text(plan)
    assert "m.yaml:5:3" in render_text(plan)


def test_safety_refuses_mass_disabling_but_not_a_few():
    def plan_with(disabled: int, total: int):
        monitors = tuple(
            monitor(i, enable="N" if i < disabled else "Y") for i in range(1, total + 1)
        )
        desired = manifest(account(manages=False, channels=[DesiredChannel(10, monitors, HERE)]))
        live = LiveState(
            monitors={
                ("east", 10): {i: Monitor(i, 10, "n", None, "Y") for i in range(1, total + 1)}
            }
        )
        return make_plan(desired, live)

    assert check_safety(plan_with(12, 20)).refused  # 11 of 20 disabled
    assert not check_safety(plan_with(5, 10)).refused  # fewer than 10
    assert not check_safety(plan_with(11, 100)).refused  # 10 %


def test_a_failed_callback_read_fails_only_the_callback_but_auth_skips_the_account():
    channel = DesiredChannel(10, (monitor(1, "n"),), HERE)
    desired = manifest(
        account("a", "https://x/cb", channels=[channel]),
        account("b", "https://x/cb", channels=[channel]),
    )
    live = LiveState(
        callbacks={},
        monitors={("a", 10): {1: Monitor(1, 10, "old")}, ("b", 10): {1: Monitor(1, 10, "n")}},
        failures={("a", 0, ReadKind.CALLBACKS): "timed out"},
        account_failures={"b": "invalid signature."},
    )
    plan = make_plan(desired, live)
    assert [o.key for o in plan.operations] == [ItemKey("a", 10, 1)]
    assert [(p.key, p.auth) for p in plan.problems] == [
        (ItemKey.callback("a", "record"), False),
        (ItemKey.callback("b", "record"), True),
        (ItemKey("b", 10, 1), True),
    ]


def test_the_checksum_tells_apart_plans_that_differ_anywhere():
    def plan_of(nicknames, live_nickname="old", missing=False):
        ids = range(1, len(nicknames) + 1)
        monitors = tuple(monitor(i, n) for i, n in enumerate(nicknames, start=1))
        channel = DesiredChannel(10, monitors, HERE)
        listed = {i: Monitor(i, 10, live_nickname) for i in ids if not (missing and i == 1)}
        return make_plan(manifest(account(manages=False, channels=[channel])),
                         LiveState(monitors={("east", 10): listed}))  # fmt: skip

    names = [f"n{i}" for i in range(2500)]  # three slices of operations
    late = [*names[:2000], "other", *names[2001:]]
    base = plan_of(names).checksum()
    assert plan_of(list(names)).checksum() == base
    assert plan_of(late).checksum() != base  # an operation in the third slice
    assert plan_of(names, live_nickname="n1").checksum() != base  # one item unchanged
    assert plan_of(names, missing=True).checksum() != base  # a problem instead of an op


def test_the_checksum_tells_apart_operations_whose_to_dict_differs_only_in_destructive():
    # (make_plan never writes before_known=False with a known before; a reviewed plan
    # file could hold anything, and the checksum must follow what to_dict shows)
    def plan_with(before):
        change = FieldChange("enable", before, "N", before_known=False)
        op = Operation(OpKind.UPDATE_MONITOR, ItemKey("east", 10, 1), (change,), HERE)
        return assemble_plan(manifest(account(manages=False)), [op])

    unknown, already_off = plan_with(None), plan_with("N")
    assert unknown.to_dict() != already_off.to_dict()
    assert unknown.checksum() != already_off.checksum()

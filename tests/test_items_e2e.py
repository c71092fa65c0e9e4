"""All three callbacks and each channel's monitor switch, end to end: the CLI against the
simulator on 127.0.0.1 (issue 14), and write-only fields reported as unverified (issue 13)."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from bulkpolyv.cli import cli
from bulkpolyv.sim import SimState
from tests.simthread import running_sim

SECRETS = {"A2_SECRET": "A2SECRET-0123", "A10_SECRET": "A10SECRET-4567"}
OLD_STREAM = "https://old.example.com/stream?token=OLDTOKEN-9"
REC_A2 = "https://hooks.example.com/rec?token=TOK-A2"
REC_A10 = "https://hooks.example.com/rec?token=TOK-A10"
PLAY = "https://hooks.example.com/play"
A10_STREAM = "https://a10.example.com/stream"

MANIFEST = """\
version: 1
limits: {concurrency: 4, timeout: 3, attempts: 3}
defaults:
  callbacks:
    playback: https://hooks.example.com/play
  monitoring: Y
accounts:
  - name: a2
    user_id: u-a2
    app_id: app-a2
    app_secret: ${A2_SECRET}
    callbacks:
      record: https://hooks.example.com/rec?token=TOK-A2
      stream: null                    # switch it off
    channels:
      - channel_id: 201               # monitoring from defaults
        monitors: [{id: 1, nickname: one}]
      - channel_id: 202
        monitoring: N
        monitors: [{id: 2, nickname: two, enable: N}]
  - name: a10
    user_id: u-a10
    app_id: app-a10
    app_secret: ${A10_SECRET}
    RECORD                             # stream: not managed, left alone
    channels_file: a10.csv
"""
CSV = "channel_id,monitor_id,nickname,monitoring\n1001,11,eleven,N\n1001,12,twelve,N\n1002,13,x,\n"


def state() -> SimState:
    def monitor(mid: int, nickname: str) -> dict[str, object]:
        return {"id": mid, "nickname": nickname, "password": "pw-123456", "enable": "Y"}

    return SimState.from_data(
        {
            "accounts": [
                {
                    "user_id": "u-a2",
                    "app_id": "app-a2",
                    "app_secret": SECRETS["A2_SECRET"],
                    "record_callback": "https://old.example.com/rec",
                    "playback_callback": None,
                    "stream_callback": OLD_STREAM,
                    "channels": [
                        {"channel_id": 201, "monitoring": "N", "monitors": [monitor(1, "one")]},
                        {
                            "channel_id": 202,
                            "monitoring": "Y",
                            "monitors": [monitor(2, "old-two")],
                            "callback_setting": {"globalSettingEnabled": "N"},
                        },
                    ],
                },
                {
                    "user_id": "u-a10",
                    "app_id": "app-a10",
                    "app_secret": SECRETS["A10_SECRET"],
                    "record_callback": REC_A10,
                    "playback_callback": PLAY,
                    "stream_callback": A10_STREAM,
                    "channels": [
                        {
                            "channel_id": 1001,
                            "monitoring": "Y",
                            "monitors": [monitor(11, "eleven"), monitor(12, "twelve")],
                        },
                        {"channel_id": 1002, "monitoring": "N", "monitors": [monitor(13, "x")]},
                    ],
                },
            ]
        }
    )


def write(tmp_path, record: str = f"record_callback: {REC_A10}", text: str = MANIFEST):
    (tmp_path / "a10.csv").write_text(CSV)
    path = tmp_path / "m.yaml"
    path.write_text(text.replace("RECORD", record))
    return path


@pytest.fixture
def world(tmp_path, monkeypatch):
    for name, value in SECRETS.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    return tmp_path, write(tmp_path)


def invoke(*args: str):
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


def apply_args(sim, manifest, tmp_path, *extra: str) -> list[str]:
    return [
        "apply",
        str(manifest),
        "--yes",
        "--api-base",
        sim.url,
        "--report",
        str(tmp_path / "report.json"),
        "--journal",
        str(tmp_path / "j.jsonl"),
        "--lock",
        str(tmp_path / "run.lock"),
        *extra,
    ]


def test_callbacks_set_switched_off_left_alone_and_monitoring_from_yaml_defaults_csv(world):
    tmp_path, manifest = world
    with running_sim(state()) as sim:
        planned = invoke("plan", str(manifest), "--api-base", sim.url)
        assert planned.exit_code == 2
        lines = planned.stdout.splitlines()
        assert lines.index("a2") < lines.index("a10")  # natural order
        assert (
            "  - stream callback: https://old.example.com/stream?token=*** → switched off"
            in planned.stdout
        )
        assert "OLDTOKEN" not in planned.stdout and "TOK-A2" not in planned.stdout
        assert lines[-1] == "Plan: 5 to change (1 of them unknown), 3 to switch off, 6 unchanged."

        applied = invoke(*apply_args(sim, manifest, tmp_path))
        assert applied.exit_code == 0, applied.stdout
        a2 = sim.simulator.state.accounts["app-a2"]
        a10 = sim.simulator.state.accounts["app-a10"]
        assert (a2.record_callback, a2.playback_callback, a2.stream_callback) == (
            REC_A2,
            PLAY,
            None,
        )
        assert (a10.record_callback, a10.playback_callback, a10.stream_callback) == (
            REC_A10,
            PLAY,
            A10_STREAM,  # not in the manifest: left alone
        )
        assert a2.monitoring == {201: "Y", 202: "N"}  # defaults, YAML
        assert a10.monitoring == {1001: "N", 1002: "Y"}  # CSV, defaults
        writes = sim.simulator.stats.by_endpoint
        assert (writes["set-stream-callback"], writes["monitor/updateSetting"]) == (1, 4)

    report = json.loads((tmp_path / "report.json").read_text())
    changed = {
        (i["account"], i["channel_id"], i["setting"]): i["operation"]
        for i in report["items"]
        if i["status"] == "changed"
    }
    assert changed[("a2", None, "stream_callback")] == "switch_off_callback"
    assert changed[("a2", 202, "monitoring")] == "switch_off_monitoring"
    assert changed[("a10", 1002, "monitoring")] == "set_monitoring"


def test_record_callback_and_callbacks_record_plan_the_same(world):
    tmp_path, short = world
    long = tmp_path / "long.yaml"
    long.write_text(
        short.read_text().replace(
            f"record_callback: {REC_A10}", f"callbacks: {{record: '{REC_A10}-new'}}"
        )
    )
    short.write_text(short.read_text().replace(REC_A10, REC_A10 + "-new"))
    with running_sim(state()) as sim:
        plans = [
            json.loads(invoke("plan", str(p), "--api-base", sim.url, "--format", "json").stdout)
            for p in (short, long)
        ]
    for plan in plans:
        for op in plan["operations"]:
            del op["source"]
    assert plans[0]["operations"] == plans[1]["operations"]
    ops = {(o["account"], o["setting"]) for o in plans[0]["operations"]}
    assert ("a10", "record_callback") in ops


def test_verify_reads_callbacks_and_switches_back_and_reports_enable_as_unverified(world):
    tmp_path, manifest = world
    with running_sim(state()) as sim:  # the default: the published list, no `enable`
        result = invoke(*apply_args(sim, manifest, tmp_path, "--verify"))
        assert result.exit_code == 0, result.stdout
        assert "unverified=1 " in result.stdout
    items = json.loads((tmp_path / "report.json").read_text())["items"]
    verified = {
        (i["account"], i["channel_id"], i["monitor_id"], i["setting"]): i["verified"]
        for i in items
        if i["status"] == "changed"
    }
    assert verified == {
        ("a2", None, None, "playback_callback"): True,
        ("a2", None, None, "record_callback"): True,
        ("a2", None, None, "stream_callback"): True,
        ("a2", 201, None, "monitoring"): True,
        ("a2", 202, None, "monitoring"): True,
        ("a2", 202, 2, None): None,  # nickname and enable: enable cannot be read back
        ("a10", 1001, None, "monitoring"): True,
        ("a10", 1002, None, "monitoring"): True,
    }
    (blind,) = [i for i in items if i["monitor_id"] == 2]
    assert blind["message"] == (
        "unverified: POLYV does not return enable, so the write cannot be read back"
    )
    assert all(i["verified"] is None for i in items if i["status"] == "unchanged")


def test_a_switch_that_did_not_stick_fails_verification(world):
    tmp_path, manifest = world
    with running_sim(state()) as sim:
        # POLYV answers success to updateSetting but ignores a body without `enable`
        sim.simulator.config.update(
            {"monitor_setting_field": "enable", "wrong_setting_field": "ignore"}
        )
        result = invoke(*apply_args(sim, manifest, tmp_path, "--verify"))
        assert result.exit_code == 3
    items = json.loads((tmp_path / "report.json").read_text())["items"]
    failed = {
        (i["channel_id"], i["verified"], i["message"]) for i in items if i["status"] == "failed"
    }
    message = "written, but reading back shows monitoring did not change"
    assert failed == {(c, False, message) for c in (201, 202, 1001, 1002)}


def test_safety_check_counts_callbacks_and_channel_switches_switched_off(world):
    tmp_path, _ = world
    accounts, sim_accounts = [], []
    for n in range(4):
        channels = ", ".join(f"{{channel_id: {100 * n + c + 1}}}" for c in range(3))
        accounts.append(
            f"  - {{name: s{n}, user_id: u{n}, app_id: app{n}, app_secret: '${{A2_SECRET}}',\n"
            f"     callbacks: {{record: null, playback: null, stream: null}},\n"
            f"     channels: [{channels}]}}"
        )
        sim_accounts.append(
            {
                "user_id": f"u{n}",
                "app_id": f"app{n}",
                "app_secret": SECRETS["A2_SECRET"],
                "record_callback": "https://h.example.com/r",
                "playback_callback": "https://h.example.com/p",
                "stream_callback": "https://h.example.com/s",
                "channels": [{"channel_id": 100 * n + c + 1, "monitoring": "Y"} for c in range(3)],
            }
        )
    text = "version: 1\ndefaults: {monitoring: N}\naccounts:\n" + "\n".join(accounts)
    manifest = tmp_path / "off.yaml"
    manifest.write_text(text + "\n")
    with running_sim(SimState.from_data({"accounts": sim_accounts})) as sim:
        refused = invoke(*apply_args(sim, manifest, tmp_path))
        assert refused.exit_code == 4, refused.output
        assert "12 of 12 managed callbacks switched off" in refused.stderr
        assert "12 of 12 managed channels' monitoring switched off" in refused.stderr
        assert sim.simulator.stats.writes == 0
        forced = invoke(*apply_args(sim, manifest, tmp_path, "--force"))
        assert forced.exit_code == 0, forced.stdout
        assert sim.simulator.stats.writes == 24


def test_check_channel_callbacks_warns_about_channels_with_their_own_settings(world):
    _, manifest = world
    with running_sim(state()) as sim:
        plain = invoke("plan", str(manifest), "--api-base", sim.url)
        assert "Warning" not in plain.stdout
        assert "channel/callback/get-setting" not in sim.simulator.stats.by_endpoint
        checked = invoke("plan", str(manifest), "--api-base", sim.url, "--check-channel-callbacks")
        assert checked.exit_code == 2
        assert sim.simulator.stats.by_endpoint["channel/callback/get-setting"] == 4
    assert (
        "Warning: a2: channel 202 uses its own callback settings (globalSettingEnabled: N): "
        "the account's callbacks do not reach them"
    ) in checked.stdout.splitlines()


def test_a_reviewed_plan_covers_callbacks_and_switches(world):
    tmp_path, manifest = world
    with running_sim(state()) as sim:
        planned = invoke(
            "plan", str(manifest), "--api-base", sim.url, "--out", str(tmp_path / "p.json")
        )
        assert planned.exit_code == 2
        applied = invoke(*apply_args(sim, manifest, tmp_path, "--plan", str(tmp_path / "p.json")))
        assert applied.exit_code == 0, applied.stdout
        assert sim.simulator.state.accounts["app-a2"].stream_callback is None
        assert sim.simulator.state.accounts["app-a10"].monitoring[1001] == "N"
        again = invoke("plan", str(manifest), "--api-base", sim.url)
    # only the write-only `enable` is still planned (it cannot be read back): not drift
    assert again.stdout.splitlines()[-1] == (
        "No changes. 13 items already as the manifest says. 1 write-only item will be "
        "written again (POLYV does not return the value, so it cannot be checked)."
    )
    assert again.exit_code == 0


def test_export_writes_every_callback_and_switch_privately_and_refuses_to_overwrite(world):
    tmp_path, manifest = world
    out = tmp_path / "exported" / "live.yaml"
    out.parent.mkdir()
    args = ["export", str(manifest), "--api-base", "", "--out", str(out)]
    with running_sim(state()) as sim:
        args[3] = sim.url
        first = invoke(*args)
        assert first.exit_code == 0, first.output
        assert f"wrote {out} (mode 0600: callback URLs may carry tokens)" in first.stdout
        assert oct(out.stat().st_mode & 0o777) == "0o600"
        text = out.read_text()
        assert "stream: https://old.example.com/stream?token=OLDTOKEN-9" in text
        assert "monitoring: N" in text and "A2SECRET" not in text
        listing = out.with_name("live-channels.csv")
        assert f"wrote {listing} (mode 0600)\n" in first.stdout  # it holds no callback URL
        assert listing.read_text() == ("account,channel_id\na2,201\na2,202\na10,1001\na10,1002\n")
        out.write_text("# edited by hand\n")
        again = invoke(*args)
        assert again.exit_code == 1 and "already exists" in again.stderr
        assert out.read_text() == "# edited by hand\n"
        assert invoke(*args, "--force").exit_code == 0
        round_trip = invoke("plan", str(out), "--api-base", sim.url)
        assert round_trip.exit_code == 0, round_trip.stdout
        assert (
            round_trip.stdout.splitlines()[-1]
            == "No changes. 15 items already as the manifest says."
        )
        # the channels CSV with an account column picks each account's own channels
        other = tmp_path / "exported" / "again.yaml"
        picked = invoke(*args[:4], "--out", str(other), "--channels-file", str(listing))
        assert picked.exit_code == 0, picked.output
    assert other.read_text().replace("again", "live") == out.read_text().replace("again", "live")


def test_retry_failed_redoes_just_the_failed_switches(world):
    tmp_path, manifest = world
    with running_sim(state()) as sim:
        sim.simulator.config.update({"monitor_setting_field": "enable"})  # rejects `enabled`
        first = invoke(*apply_args(sim, manifest, tmp_path))
        assert first.exit_code == 3
        report = json.loads((tmp_path / "report.json").read_text())
        failed = sorted(
            (i["account"], i["channel_id"]) for i in report["items"] if i["status"] == "failed"
        )
        assert failed == [("a10", 1001), ("a10", 1002), ("a2", 201), ("a2", 202)]
        (tmp_path / "first.json").write_text(json.dumps(report))
        sim.simulator.config.update({"monitor_setting_field": "enabled"})
        before = dict(sim.simulator.stats.by_endpoint)
        again = invoke(
            *apply_args(sim, manifest, tmp_path, "--retry-failed", str(tmp_path / "first.json"))
        )
        assert again.exit_code == 0, again.stdout
        after = sim.simulator.stats.by_endpoint
        # only the four switches were read and written again: no callback or monitor reads
        assert {k: after[k] - before.get(k, 0) for k in after if after[k] != before.get(k, 0)} == {
            "monitor/querySetting": 4,
            "monitor/updateSetting": 4,
        }
        assert sim.simulator.state.accounts["app-a10"].monitoring == {1001: "N", 1002: "Y"}

"""The operator's toolkit end to end: reviewed plans, verified applies, export."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from bulkpolyv.cli import cli
from bulkpolyv.sim import FaultConfig
from tests.simthread import (
    prepared_world,
    run_args,
    running_sim,
    seeded_state,
    state_matches_manifest,
)


@pytest.fixture
def world(tmp_path, monkeypatch):
    return prepared_world(tmp_path, monkeypatch, channels=6)


def invoke(*args: str):
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


def test_reviewed_plan_is_applied_exactly(world):
    tmp_path, manifest = world
    with running_sim(seeded_state(manifest, {})) as sim:
        planned = invoke(
            "plan", str(manifest), "--api-base", sim.url, "--out", str(tmp_path / "plan.json")
        )
        assert planned.exit_code == 2
        reviewed = json.loads((tmp_path / "plan.json").read_text())
        assert all(c["after_fingerprint"] for o in reviewed["operations"] for c in o["changes"])
        result = invoke(*run_args(sim, manifest, tmp_path, "--plan", str(tmp_path / "plan.json")))
        assert result.exit_code == 0, result.output
        assert state_matches_manifest(sim)
        report = json.loads((tmp_path / "report.json").read_text())
        assert report["totals"]["changed"] == len(reviewed["operations"])


def test_a_reviewed_plan_applied_twice_is_unchanged_the_second_time(world):
    tmp_path, manifest = world
    plan_file = str(tmp_path / "plan.json")
    with running_sim(seeded_state(manifest, {})) as sim:
        invoke("plan", str(manifest), "--api-base", sim.url, "--out", plan_file)
        first = invoke(*run_args(sim, manifest, tmp_path, "--plan", plan_file))
        assert first.exit_code == 0, first.output
        writes = sim.simulator.stats.writes
        second = invoke(*run_args(sim, manifest, tmp_path, "--plan", plan_file))
        assert second.exit_code == 0, second.output  # was 3: every item a "conflict"
        rewritten = sim.simulator.stats.writes - writes
    items = json.loads((tmp_path / "report.json").read_text())["items"]
    statuses = {i["status"] for i in items}
    assert "conflict" not in statuses
    # only what cannot be read back (write-only `enable`) is written again
    assert rewritten == sum(1 for i in items if i["status"] == "changed")
    assert all(
        i["status"] == "unchanged" or any(c["field"] == "enable" for c in i["changes"])
        for i in items
    )
    operations = json.loads((tmp_path / "plan.json").read_text())["operations"]
    readable = [o for o in operations if all(c["field"] != "enable" for c in o["changes"])]
    assert sum(1 for i in items if i["status"] == "unchanged") == len(readable) > 0


def test_an_item_that_moved_since_the_review_is_a_conflict(world):
    tmp_path, manifest = world
    with running_sim(seeded_state(manifest, {})) as sim:
        invoke("plan", str(manifest), "--api-base", sim.url, "--out", str(tmp_path / "plan.json"))
        operations = json.loads((tmp_path / "plan.json").read_text())["operations"]
        # a field whose live value the plan saw (`enable` is write-only by default)
        moved = next(
            o
            for o in operations
            if o["monitor_id"] and o["account"] == "east" and o["changes"][0]["before_known"]
        )
        monitor = sim.simulator.state.accounts["app-east"].channels[moved["channel_id"]][
            moved["monitor_id"]
        ]
        field = moved["changes"][0]["field"]
        edit = {
            "nickname": "edited-by-hand",
            "password": "hand-pw-1",
            "enable": moved["changes"][0]["after"],
        }[field]  # someone got there first
        setattr(monitor, field, edit)
        result = invoke(*run_args(sim, manifest, tmp_path, "--plan", str(tmp_path / "plan.json")))
        assert result.exit_code == 3
        assert "conflicts=1" in result.output
        assert getattr(monitor, field) == edit
    items = json.loads((tmp_path / "report.json").read_text())["items"]
    (conflict,) = [i for i in items if i["status"] == "conflict"]
    assert (conflict["channel_id"], conflict["monitor_id"]) == (
        moved["channel_id"],
        moved["monitor_id"],
    )
    assert "changed since the plan was reviewed" in conflict["message"]


def test_a_plan_for_an_older_manifest_is_refused(world):
    tmp_path, manifest = world
    with running_sim(seeded_state(manifest, {})) as sim:
        invoke("plan", str(manifest), "--api-base", sim.url, "--out", str(tmp_path / "plan.json"))
        manifest.write_text(manifest.read_text() + "# edited after the review\n")
        result = invoke(*run_args(sim, manifest, tmp_path, "--plan", str(tmp_path / "plan.json")))
        assert result.exit_code == 1
        assert "changed since this plan was made" in result.stderr
        assert sim.simulator.stats.writes == 0


def test_a_reviewed_plan_whose_secret_values_changed_is_refused(world, monkeypatch):
    tmp_path, manifest = world
    state = seeded_state(manifest, {})
    state.accounts["app-east"].channels[1000][1].password = "stale-password"
    with running_sim(state) as sim:
        invoke("plan", str(manifest), "--api-base", sim.url, "--out", str(tmp_path / "plan.json"))
        monkeypatch.setenv("T_MON_PW", "ANOTHER-PASSWORD")
        result = invoke(*run_args(sim, manifest, tmp_path, "--plan", str(tmp_path / "plan.json")))
        assert result.exit_code == 1 and "no longer asks for the reviewed password" in result.stderr


def test_verify_catches_writes_that_did_not_stick(world):
    tmp_path, manifest = world
    faults = FaultConfig(lost_write_rate=1.0)
    with running_sim(seeded_state(manifest, {}), faults=faults) as sim:
        unverified = invoke(*run_args(sim, manifest, tmp_path))
        assert unverified.exit_code == 0  # POLYV said success every time
        verified = invoke(*run_args(sim, manifest, tmp_path, "--verify"))
        assert verified.exit_code == 3
    items = json.loads((tmp_path / "report.json").read_text())["items"]
    failed = [i for i in items if i["status"] == "failed"]
    assert failed and all("did not change" in i["message"] for i in failed)


@pytest.mark.parametrize("csv_over", [100, 5])
def test_export_then_plan_shows_no_changes(world, csv_over):
    tmp_path, manifest = world
    state = seeded_state(manifest, {})
    with running_sim(state) as sim:
        out = tmp_path / "exported" / "live.yaml"
        out.parent.mkdir()
        result = invoke(
            "export",
            str(manifest),
            "--api-base",
            sim.url,
            "--out",
            str(out),
            "--csv-over",
            str(csv_over),
        )
        assert result.exit_code == 0, result.output
        text = out.read_text()
        assert "${T_EAST_SECRET}" in text and "EASTSECRET" not in text
        assert "MONPASS" not in text and "password" not in text.split("accounts:")[1]
        assert ("channels_file" in text) == (csv_over == 5)
        planned = invoke("plan", str(out), "--api-base", sim.url)
        assert planned.exit_code == 0, planned.output
        assert "No changes" in planned.output


def test_export_of_chosen_accounts_and_channels(world):
    tmp_path, manifest = world
    with running_sim(seeded_state(manifest, {})) as sim:
        (tmp_path / "ids.csv").write_text("channel_id\n1001\n1003\n")
        out = tmp_path / "east.yaml"
        result = invoke(
            "export",
            str(manifest),
            "--api-base",
            sim.url,
            "--account",
            "east",
            "--channels-file",
            str(tmp_path / "ids.csv"),
            "--out",
            str(out),
        )
        assert result.exit_code == 0, result.output
        # one callback read; per channel, its monitor list and its monitoring switch
        assert sim.simulator.stats.requests == 5
        validated = invoke("validate", str(out))
        assert (
            "east: 3 callbacks, 4 monitors on 2 channels, monitoring set on 2 channels"
            in validated.output
        )


def test_export_refuses_to_write_a_partial_manifest(world):
    tmp_path, manifest = world
    with running_sim(seeded_state(manifest, {})) as sim:
        result = invoke(
            "export",
            str(manifest),
            "--api-base",
            sim.url,
            "--channels",
            "999",
            "--out",
            str(tmp_path / "x.yaml"),
        )
        assert result.exit_code == 1
        assert "nothing written" in result.stderr and not (tmp_path / "x.yaml").exists()


def test_log_format_json_verbosity_and_quiet(world, monkeypatch):
    tmp_path, manifest = world
    monkeypatch.setenv("T_WEST_SECRET", "WRONG-west")  # some warnings to log
    with running_sim(seeded_state(manifest, {})) as sim:
        loud = invoke("-v", "--log-format", "json", *run_args(sim, manifest, tmp_path))
        lines = [json.loads(line) for line in loud.stderr.splitlines() if line.startswith("{")]
        assert {"ts", "level", "logger", "message"} <= set(lines[0])
        assert any(line["level"] == "INFO" for line in lines)
        assert any(line["message"].startswith("apply: item=") for line in lines)
        quiet = invoke("-q", *run_args(sim, manifest, tmp_path))
        assert "WARNING" not in quiet.stderr and "apply: item=" not in quiet.stderr
        assert "changed=" in quiet.stdout  # the final line always comes


def test_plan_as_markdown_is_a_table_with_manifest_places(world):
    _, manifest = world
    with running_sim(seeded_state(manifest, {})) as sim:
        result = invoke("plan", str(manifest), "--api-base", sim.url, "--format", "markdown")
    assert result.exit_code == 2
    lines = result.stdout.splitlines()
    assert lines[0] == "| op | account | channel | monitor | field | before | after | manifest |"
    rows = [line for line in lines[2:] if line.startswith("|")]
    assert rows and all(line.count(" | ") == 7 for line in rows)
    assert any(f"{manifest}:" in row or "west.csv:" in row for row in rows)
    assert "CBTOKEN" not in result.stdout and "MONPASS" not in result.stdout
    assert lines[-1].startswith("Plan: ")


def test_plan_out_is_checked_before_any_request_and_written_private(world, monkeypatch):
    """An --out that cannot be written is refused before the first read; one that fails
    at the end (a full disk) is a sentence naming it, exit 1; the file is mode 0600."""
    import errno
    import os

    tmp_path, manifest = world
    with running_sim(seeded_state(manifest, {})) as sim:
        args = ["plan", str(manifest), "--api-base", sim.url, "--out"]
        refused = invoke(*args, "/proc/nope/plan.json")
        assert refused.exit_code == 1
        assert refused.stderr.startswith("bulkpolyv: cannot write /proc/nope/plan.json: ")
        assert sim.simulator.stats.requests == 0
        written = invoke(*args, str(tmp_path / "plan.json"))
        assert written.exit_code == 2
        assert (tmp_path / "plan.json").stat().st_mode & 0o777 == 0o600

        def disk_full(fd: int) -> None:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

        monkeypatch.setattr("bulkpolyv.privatefiles.os.fsync", disk_full)
        full = invoke(*args, str(tmp_path / "full.json"))
    assert full.exit_code == 1
    assert full.stderr.endswith(
        f"bulkpolyv: cannot write {tmp_path / 'full.json'}: No space left on device\n"
    )
    assert not (tmp_path / "full.json").exists()


def test_a_report_or_other_json_given_as_a_plan_file_is_refused_and_nothing_sent(world):
    """`apply --plan` of a report of the same manifest said "No changes." and exited 0;
    a report, `plan --format json` output or any other JSON is one sentence, exit 1."""
    tmp_path, manifest = world
    hint = "(write one with `bulkpolyv plan --out`)"
    with running_sim(seeded_state(manifest, {})) as sim:
        shown = invoke("plan", str(manifest), "--api-base", sim.url, "--format", "json")
        assert shown.exit_code == 2
        (tmp_path / "shown.json").write_text(shown.stdout)
        assert invoke(*run_args(sim, manifest, tmp_path)).exit_code == 0
        (tmp_path / "report.json").rename(tmp_path / "last-run.json")
        (tmp_path / "other.json").write_text('{"format_version": 2, "operations": []}')
        sent = sim.simulator.stats.requests
        refusals = {
            name: invoke(*run_args(sim, manifest, tmp_path, "--plan", str(tmp_path / name)))
            for name in ("last-run.json", "shown.json", "other.json")
        }
        assert sim.simulator.stats.requests == sent
    assert {name: result.exit_code for name, result in refusals.items()} == dict.fromkeys(
        refusals, 1
    )
    assert refusals["last-run.json"].stderr == (
        f"bulkpolyv: {tmp_path / 'last-run.json'} is a bulkpolyv report, not a plan file "
        f"{hint}\n"
    )
    for name in ("shown.json", "other.json"):
        assert refusals[name].stderr == (
            f"bulkpolyv: {tmp_path / name} is not a bulkpolyv plan file {hint}\n"
        )
    assert not (tmp_path / "report.json").exists()

"""``bulkpolyv probe`` end to end against the simulator, in each shape POLYV may have (#13)."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from bulkpolyv.cli import cli
from bulkpolyv.sim import SimConfig
from tests.sim_requests import refused_port
from tests.simthread import ENV, running_sim, seeded_state, write_manifest


@pytest.fixture
def manifest(tmp_path, monkeypatch):
    for name, value in ENV.items():
        monkeypatch.setenv(name, value)
    return write_manifest(tmp_path, channels=2)


def probe(manifest, sim, *extra: str):
    return CliRunner().invoke(
        cli, ["probe", str(manifest), "--api-base", sim.url, *extra], catch_exceptions=False
    )


def checks_of(stdout: str, account: str) -> dict[str, str]:
    """{check name: "✓ detail"} for one account of the text output."""
    block = stdout.split(f"account {account}: ", 1)[1].split("\n\n", 1)[0]
    rows = {}
    for line in block.splitlines()[1:]:
        if line.startswith("  ") and line[2] in "✓✗?":
            name, _, detail = line[4:].partition("  ")
            rows[name.strip()] = f"{line[2]} {detail.strip()}"
    return rows


def test_with_enable_in_the_list_every_check_passes(manifest):
    with running_sim(seeded_state(manifest, {}), SimConfig(list_includes_enable=True)) as sim:
        result = probe(manifest, sim, "--account", "east")
        writes = sim.simulator.stats.writes
    assert result.exit_code == 0, result.output
    checks = checks_of(result.stdout, "east")
    assert checks["signature"] == "✓ accepted"
    assert checks["enable readable"] == "✓ yes"
    assert (
        checks["monitor list"] == "✓ channel 1000 shows: id, channelId, nickname, password, enable"
    )
    assert "account west" not in result.stdout
    assert result.stdout.rstrip().endswith("1 of 1 account usable.")
    assert writes == 0


def test_the_published_list_shape_says_enable_cannot_be_verified(manifest):
    with running_sim(seeded_state(manifest, {}), SimConfig(list_includes_enable=False)) as sim:
        result = probe(manifest, sim)
    assert result.exit_code == 0
    assert checks_of(result.stdout, "east")["enable readable"] == "? not in the list"
    assert (
        "  → `enable` is not readable on this account: it will be written on every run and "
        "cannot be verified"
    ) in result.stdout


def test_a_wrong_secret_makes_the_account_unusable_and_exit_1(manifest, monkeypatch):
    monkeypatch.setenv("T_WEST_SECRET", "WRONG-SECRET-zz")
    with running_sim(seeded_state(manifest, {})) as sim:
        result = probe(manifest, sim)
    assert result.exit_code == 1
    assert "account west: NOT usable" in result.stdout
    assert checks_of(result.stdout, "west")["signature"].endswith(
        "bad signature: check app_secret for account west"
    )
    assert "account east: usable" in result.stdout
    assert "WRONG-SECRET" not in result.output


def test_a_wrong_api_base_path_makes_every_account_unusable(manifest):
    # Its "404: Not Found" page was a "?" beside the signature, and the probe said "2 of 2
    # accounts usable", exit 0, for a base where no request could work.
    with running_sim(seeded_state(manifest, {})) as sim:
        result = CliRunner().invoke(
            cli, ["probe", str(manifest), "--api-base", sim.url + "/wrong"], catch_exceptions=False
        )
    assert result.exit_code == 1
    assert checks_of(result.stdout, "east")["host"] == (
        "✗ GET /live/v4/user/global-setting/callback/get: got a non-JSON answer '404: Not "
        "Found' (HTTP 404, permanent): not an answer from POLYV's API (check --api-base)"
    )
    assert result.stdout.rstrip().endswith("0 of 2 accounts usable.")


def test_no_monitor_permission_is_told_but_the_account_stays_usable(manifest):
    state = seeded_state(manifest, {})
    state.accounts["app-west"].monitor_feature = False
    with running_sim(state) as sim:
        result = probe(manifest, sim, "--format", "json")
    assert result.exit_code == 0
    west = next(p for p in json.loads(result.stdout) if p["account"] == "west")
    permission = next(c for c in west["checks"] if c["name"] == "monitor permission")
    assert permission["mark"] == "bad"
    assert "no monitor-polling permission" in permission["detail"]
    assert west["consequences"] == [
        "the monitor feature is missing: this account's monitor items will fail, "
        "its callbacks still apply"
    ]


@pytest.mark.parametrize("offset", [600, -600])
def test_a_skewed_clock_is_reported_and_the_probe_still_gets_through(manifest, offset):
    with running_sim(seeded_state(manifest, {}), SimConfig(clock_offset=offset)) as sim:
        result = probe(manifest, sim)
    assert result.exit_code == 0, result.output
    side = "behind" if offset > 0 else "ahead of"
    for account in ("east", "west"):
        checks = checks_of(result.stdout, account)
        assert checks["signature"] == "✓ accepted"
        assert checks["clock"].startswith("✗ the local clock is ")
        assert checks["clock"].endswith(f"{side} the server")
    assert "signed with the server's time (local clock + offset); fix NTP" in result.stdout


def test_an_unknown_account_name_is_refused_naming_the_accounts(manifest):
    result = CliRunner().invoke(cli, ["probe", str(manifest), "--account", "north"])
    assert result.exit_code == 1
    assert (
        "--account north: not in" in result.stderr and "its accounts: east, west" in result.stderr
    )


def test_an_unreachable_host_with_several_accounts_is_one_line_each_not_a_traceback(manifest):
    """The first account's refused connection stops the run's requests: every account
    after it is told as not asked (the same host), never a ``Stopped`` traceback."""
    address = f"127.0.0.1:{refused_port()}"
    result = CliRunner().invoke(
        cli, ["probe", str(manifest), "--api-base", f"http://{address}"], catch_exceptions=False
    )
    assert result.exit_code == 1
    east, west = checks_of(result.stdout, "east"), checks_of(result.stdout, "west")
    assert east["host"].startswith("✗ GET /live/v4/user/global-setting/callback/get: cannot reach")
    assert west == {
        "host": f"✗ not asked, the probe had stopped: cannot reach {address}: Connection refused"
    }
    assert "account west: NOT usable" in result.stdout
    assert result.stdout.rstrip().endswith("0 of 2 accounts usable.")


def test_quiet_prints_nothing_when_every_account_is_usable_and_the_table_when_not(
    manifest, monkeypatch
):
    with running_sim(seeded_state(manifest, {})) as sim:
        result = probe(manifest, sim, "-q")
        assert result.exit_code == 0 and result.output == ""
        monkeypatch.setenv("T_WEST_SECRET", "WRONG-SECRET-zz")
        result = probe(manifest, sim, "-q")
        assert result.exit_code == 1 and "account west: NOT usable" in result.output

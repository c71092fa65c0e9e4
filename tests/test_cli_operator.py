"""The operator's day (#15), run the way it was found: the command, its output, its exit code."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from bulkpolyv.cli import cli
from tests.simthread import prepared_world, run_args, running_sim, seeded_state


@pytest.fixture
def world(tmp_path, monkeypatch):
    return prepared_world(tmp_path, monkeypatch, channels=4)


# The demo manifest of this checkout, wherever the tests run from.
DEMO_MANIFEST = Path(__file__).resolve().parent.parent / "manifests" / "demo.yaml"


def invoke(*args: str, **kwargs):
    return CliRunner().invoke(cli, list(args), catch_exceptions=False, **kwargs)


# --- exit codes and the drift alarm ------------------------------------------------------


@pytest.mark.parametrize(
    "args",
    [
        ["plan", "MANIFEST", "--formt", "json"],
        ["plan", "MANIFEST", "--rate", "2000/10"],
        ["plan", "MANIFEST", "--rate", "-5/10"],
        ["plan", "MANIFEST", "--rate", "1/0"],
        ["plan", "MANIFEST", "--rate", "1/1e400"],
        ["plan", "MANIFEST", "--rate", "0/10"],
        ["sim", "--port", "99999"],
        ["plan"],
        ["nosuchcommand"],
        ["plan", "MANIFEST", "--api-base", "127.0.0.1:8790"],
    ],
)
def test_usage_errors_exit_1_never_2(world, args):
    _, manifest = world
    result = invoke(*[str(manifest) if a == "MANIFEST" else a for a in args])
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output
    assert isinstance(result.exception, SystemExit), repr(result.exception)  # no crash


def test_api_base_without_a_scheme_is_refused_before_any_request(world):
    _, manifest = world
    result = invoke("plan", str(manifest), "--api-base", "127.0.0.1:8790")
    assert result.exit_code == 1
    assert "'127.0.0.1:8790' is not a URL: write the scheme and host" in result.stderr


def test_only_that_matches_nothing_exits_1_naming_the_pattern_and_the_accounts(world):
    tmp_path, manifest = world
    result = invoke(*run_args_offline(manifest, tmp_path), "--only", "eats*")
    assert result.exit_code == 1
    assert result.stderr.strip() == (
        f"bulkpolyv: --only 'eats*' matches nothing in {manifest}; its accounts: east, west"
    )
    assert not (tmp_path / "j.jsonl").exists()


def run_args_offline(manifest, tmp_path) -> list[str]:
    # A port nothing listens on: --only is checked before anything is sent.
    return [
        "apply",
        str(manifest),
        "--yes",
        "--api-base",
        "http://127.0.0.1:9",
        "--journal",
        str(tmp_path / "j.jsonl"),
        "--lock",
        str(tmp_path / "run.lock"),
    ]


def test_export_channels_that_are_not_numbers_say_what_is_wrong(world):
    _tmp_path, manifest = world
    result = invoke("export", str(manifest), "--channels", "1001,abc", "--out", "x.yaml")
    assert result.exit_code == 1
    assert "'abc' is not a channel id: give whole numbers separated by commas" in result.stderr
    assert "invalid literal" not in result.output


# --- quiet means quiet -------------------------------------------------------------------


def test_quiet_apply_that_succeeds_prints_nothing_even_after_the_command(world):
    tmp_path, manifest = world
    with running_sim(seeded_state(manifest, {})) as sim:
        changed = invoke(*run_args(sim, manifest, tmp_path), "-q")
        converged = invoke("-q", *run_args(sim, manifest, tmp_path))
        plan = invoke("plan", str(manifest), "--api-base", sim.url, "-q")
    assert (changed.exit_code, changed.output) == (0, "")
    assert (converged.exit_code, converged.output) == (0, "")
    assert (plan.exit_code, plan.output) == (0, "")


def test_quiet_apply_that_fails_prints_one_line_per_cause_and_the_summary(world, monkeypatch):
    tmp_path, manifest = world
    state = seeded_state(manifest, {})
    monkeypatch.setenv("T_WEST_SECRET", "WRONG-SECRET-zz")
    with running_sim(state) as sim:
        result = invoke(*run_args(sim, manifest, tmp_path), "-q")
    assert result.exit_code == 3
    stdout, stderr = result.stdout.splitlines(), result.stderr.splitlines()
    assert len(stdout) == 1 and stdout[0].startswith("changed=")
    (west,) = [line for line in stderr if "account west" in line]
    assert west.startswith(
        "bulkpolyv: account west: POLYV refused its credentials (9 items not done): GET /live/"
    )
    assert "签名错误 — bad signature: check app_secret for account west (HTTP 403" in west
    assert len(stderr) == 1
    assert "WRONG-SECRET" not in result.output


# --- the prompt -------------------------------------------------------------------------


def test_declining_the_prompt_says_apply_cancelled(world, monkeypatch):
    tmp_path, manifest = world
    monkeypatch.setattr("bulkpolyv.commands.plan_apply.on_a_terminal", lambda: True)
    with running_sim(seeded_state(manifest, {})) as sim:
        args = [a for a in run_args(sim, manifest, tmp_path) if a != "--yes"]
        result = invoke(*args, input="n\n")
        writes = sim.simulator.stats.writes
    assert result.exit_code == 1
    assert result.stderr.strip().endswith("Apply cancelled.")
    assert writes == 0


class ShiftedTime:
    """``time`` for bulkpolyv.run only: real monotonic time plus the hours at the prompt."""

    def __init__(self) -> None:
        self.shift = 0.0

    def monotonic(self) -> float:
        return time.monotonic() + self.shift


def test_time_at_the_prompt_is_not_the_runs(world, monkeypatch):
    tmp_path, manifest = world
    shifted = ShiftedTime()

    def answer_after_an_hour(*_args, **_kwargs) -> bool:
        shifted.shift += 3600.0
        return True

    monkeypatch.setattr("bulkpolyv.commands.plan_apply.on_a_terminal", lambda: True)
    monkeypatch.setattr("bulkpolyv.commands.plan_apply.click.confirm", answer_after_an_hour)
    monkeypatch.setattr("bulkpolyv.run.time", shifted)
    with running_sim(seeded_state(manifest, {})) as sim:
        args = [a for a in run_args(sim, manifest, tmp_path) if a != "--yes"]
        result = invoke(*args)
    assert result.exit_code == 0, result.output
    report = json.loads((tmp_path / "report.json").read_text())
    # Before the fix the duration was the hour at the prompt plus the run (3600.x s).
    assert report["duration"] < 60


def test_a_wrong_api_base_path_stops_at_once_instead_of_cooling_down(tmp_path, monkeypatch):
    # Every read met the simulator's "404: Not Found" page: past 50 of them (the burst) it
    # was taken for a WAF wall and bought "POLYV rate limit hit: every request paused for
    # 300 s" before the run gave up.
    _, manifest = prepared_world(tmp_path, monkeypatch, channels=30)  # 60 channels
    with running_sim(seeded_state(manifest, {})) as sim:
        result = invoke("plan", str(manifest), "--api-base", sim.url + "/wrong")
    assert result.exit_code == 1
    assert "rate limit" not in result.stderr
    assert result.stderr.endswith(
        "got a non-JSON answer '404: Not Found' (HTTP 404, permanent): this API base has "
        "not answered like POLYV's API (check --api-base, or the manifest's api_base; if it "
        "is POLYV's, this IP may be blocked: try again in 5 minutes)\n"
    )


# --- smaller snags -------------------------------------------------------------------------


def test_demo_help_shows_the_manifest_as_optional_and_plan_format_has_help():
    demo = invoke("demo", "--help")
    assert "Usage: cli demo [OPTIONS] [MANIFEST]\n" in demo.stdout
    plan = invoke("plan", "--help")
    assert "--format [text|json|markdown]" in plan.stdout
    assert "text for people, json for programs" in plan.stdout


def test_demo_outside_the_checkout_says_where_its_manifest_is(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # a pip user's directory: no manifests/demo.yaml in it
    result = invoke("demo")
    assert result.exit_code == 1
    assert result.stderr == (
        "bulkpolyv demo: its manifest, manifests/demo.yaml, is not in this directory.\n"
        "Run it from the bulkpolyv checkout (see the README's quick start), or name a "
        "manifest: bulkpolyv demo MANIFEST\n"
    )


def test_demo_with_an_empty_state_out_says_so_instead_of_writing_nothing():
    result = invoke("demo", "--state-out", "")
    assert result.exit_code == 1  # bad flags (README's exit codes)
    assert "Invalid value for --state-out: give a file name" in result.stderr


def test_demo_quiet_prints_nothing_when_it_converges():
    result = invoke("demo", str(DEMO_MANIFEST), "-q")
    assert result.exit_code == 0
    assert result.stdout == ""


def test_demo_with_a_broken_link_for_its_manifest_says_what_is_wrong(tmp_path, monkeypatch):
    # There is something at manifests/demo.yaml: "not in this directory" would be wrong.
    monkeypatch.chdir(tmp_path)
    (tmp_path / "manifests").mkdir()
    (tmp_path / "manifests" / "demo.yaml").symlink_to(tmp_path / "gone.yaml")
    result = invoke("demo")
    assert result.exit_code == 1
    assert "cannot read the file: No such file or directory" in result.stderr
    assert "not in this directory" not in result.stderr


def test_demo_s_absent_check_leaves_an_unreadable_path_to_the_loader(monkeypatch):
    from bulkpolyv import demo

    def denied(self):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(Path, "lstat", denied)
    assert demo._absent(Path("manifests/demo.yaml")) is False  # it raised before


def test_an_interrupted_apply_stops_the_demo(monkeypatch):
    # A Ctrl-C during the demo's apply stopped the apply, and the demo went on to plan
    # again and say "Not converged" (exit 3).
    from bulkpolyv import demo
    from bulkpolyv.report import ApplyStatus

    real_apply = demo.apply

    async def interrupted_apply(*args, **kwargs):
        result = await real_apply(*args, **kwargs)
        result.status = ApplyStatus.INTERRUPTED  # as after the run's SIGINT handler
        return result

    monkeypatch.setattr(demo, "apply", interrupted_apply)
    result = invoke("demo", str(DEMO_MANIFEST))
    assert result.exit_code == 130
    assert result.stderr.endswith("bulkpolyv: interrupted\n")
    assert "(again)" not in result.stdout and "What to try next" not in result.stdout


def test_end_of_input_at_the_apply_prompt_cancels_like_no(world, monkeypatch):
    # Ctrl-D at "Apply these changes?": click raises Abort, which the run took for an
    # unexpected error ("stopped: unexpected error: Abort", exit 3).
    from bulkpolyv.commands import plan_apply

    tmp_path, manifest = world
    monkeypatch.setattr(plan_apply, "on_a_terminal", lambda: True)
    with running_sim(seeded_state(manifest, {})) as sim:
        args = [arg for arg in run_args(sim, manifest, tmp_path) if arg != "--yes"]
        result = invoke(*args, input="")
        assert sim.simulator.stats.writes == 0
    assert result.exit_code == 1
    assert result.stderr.endswith("Apply cancelled.\n")
    assert "unexpected" not in result.stdout + result.stderr


def test_a_ctrl_c_at_the_apply_prompt_stays_an_interrupt(monkeypatch):
    # Only end of input means "no": click's Abort from a KeyboardInterrupt goes on up, to
    # "bulkpolyv: interrupted" and exit 130.
    import click

    from bulkpolyv.commands import common, plan_apply

    def interrupted(*args, **kwargs):
        try:
            raise KeyboardInterrupt
        except KeyboardInterrupt:
            raise click.Abort() from None

    monkeypatch.setattr(plan_apply.click, "confirm", interrupted)
    monkeypatch.setattr(plan_apply, "show_plan", lambda *args, **kwargs: None)
    confirm = plan_apply.confirmation(common.Output(), None, yes=False, dry_run=False)
    with pytest.raises(click.Abort):
        confirm(None)


def test_plans_are_coloured_only_on_a_terminal_without_no_color(monkeypatch):
    from bulkpolyv.commands import common

    monkeypatch.delenv("NO_COLOR", raising=False)
    monkeypatch.setattr(common.sys.stdout, "isatty", lambda: True, raising=False)
    assert common.plan_colour() is True
    monkeypatch.setenv("NO_COLOR", "1")
    assert common.plan_colour() is False
    monkeypatch.delenv("NO_COLOR")
    monkeypatch.setattr(common.sys.stdout, "isatty", lambda: False, raising=False)
    assert common.plan_colour() is False


def test_a_report_that_cannot_be_written_at_the_end_is_said_and_exits_3(world, monkeypatch):
    import errno

    import bulkpolyv.run
    from bulkpolyv.privatefiles import PrivateFileError

    def disk_full(path: Path, report: dict) -> None:
        raise PrivateFileError(path, OSError(errno.ENOSPC, "No space left on device"))

    tmp_path, manifest = world
    monkeypatch.setattr(bulkpolyv.run, "write_report", disk_full)
    with running_sim(seeded_state(manifest, {})) as sim:
        result = invoke(*run_args(sim, manifest, tmp_path))
    assert result.exit_code == 3  # was 1 with "error before any write" after every write
    assert result.stdout.splitlines()[-1].startswith("changed=")  # the run's summary
    assert (
        f"bulkpolyv: cannot write {tmp_path / 'report.json'}: No space left on device; "
        f"the journal has the record: {tmp_path / 'j.jsonl'}"
    ) in result.stderr


def test_a_dry_run_says_nothing_was_applied(world):
    tmp_path, manifest = world
    with running_sim(seeded_state(manifest, {})) as sim:
        result = invoke(*run_args(sim, manifest, tmp_path), "--dry-run")
        assert sim.simulator.stats.writes == 0
    assert result.exit_code == 0
    assert result.stderr.strip().splitlines()[-1] == "Dry run: nothing was applied."

"""``bulkpolyv sim`` as operators start it, and ``demo --state-out`` feeding it (#13 item 6)."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys

import pytest
from click.testing import CliRunner

from bulkpolyv.cli import cli
from bulkpolyv.demo import DEMO_ENV
from tests.signalled import signalled_at


def invoke(*args: str):
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


@pytest.mark.parametrize(
    ("args", "sentence"),
    [
        (["--latency", "fast"], "--latency 'fast' is not seconds or a range MIN-MAX like 0.2-0.6."),
        (
            ["--latency", "0.6-0.2"],
            "--latency '0.6-0.2' is reversed: write the smaller number first.",
        ),
        (["--network-delay", "1-0"], "--network-delay '1-0' is reversed"),
        (["--error-rate", "1.5"], "--error-rate '1.5' must be between 0 and 1"),
        (["--drop-rate", "lots"], "--drop-rate 'lots' is not a number between 0 and 1."),
        (["--rate", "fast"], "--rate 'fast' is not N/S like 1500/10."),
        (["--clock-offset", "soon"], "--clock-offset 'soon' is not a number of seconds."),
        (["--redirect-status", "200"], "redirect_status must be one of (301, 302, 303, 307, 308)."),
    ],
)
def test_bad_flags_get_one_sentence_and_exit_1(args, sentence):
    result = invoke("sim", "--port", "0", *args)
    assert result.exit_code == 1
    assert result.stderr.startswith(f"bulkpolyv: {sentence}")
    assert "Traceback" not in result.output


def test_a_state_file_missing_a_key_names_the_file_and_the_place(tmp_path):
    state = tmp_path / "state.yaml"
    state.write_text("accounts:\n  - user_id: u\n    app_id: a\n")
    result = invoke("sim", "--port", "0", "--state", str(state))
    assert result.exit_code == 1
    assert result.stderr == f"bulkpolyv: {state}, accounts[0]: missing key 'app_secret'.\n"


def test_a_manifest_given_as_state_is_told_apart():
    result = invoke("sim", "--port", "0", "--state", "manifests/demo.yaml")
    assert result.exit_code == 1
    assert "manifests/demo.yaml looks like a bulkpolyv manifest, not a simulator state" in (
        result.stderr
    )


def test_a_port_in_use_is_a_sentence_not_a_traceback():
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = invoke("sim", "--port", str(port))
    assert result.exit_code == 1
    assert result.stderr.startswith(f"bulkpolyv: cannot listen on 127.0.0.1:{port}: ")
    assert result.stderr.rstrip().endswith("choose another --port (0 picks a free one).")


def test_demo_state_out_started_by_sim_shows_the_demos_first_plan(tmp_path, monkeypatch):
    for name, value in DEMO_ENV.items():
        monkeypatch.setenv(name, value)
    state = tmp_path / "demo-state.json"
    demo = invoke("demo", "--state-out", str(state))
    assert demo.exit_code == 0, demo.output
    demo_plan = demo.stdout.split("== bulkpolyv plan manifests/demo.yaml\n", 1)[1]
    demo_plan = demo_plan.split("\n\n== bulkpolyv apply", 1)[0]
    assert f"bulkpolyv sim --state {state} " in demo.stdout
    assert json.loads(state.read_text())["accounts"][0]["user_id"] == "demo-u-east"
    sim = subprocess.Popen(
        [sys.executable, "-m", "bulkpolyv", "sim", "--port", "0", "--state", str(state)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        line = sim.stdout.readline()
        assert line.startswith("bulkpolyv sim listening on http://127.0.0.1:"), line
        url = line.rsplit(" ", 1)[1].strip()
        plan = invoke("plan", "manifests/demo.yaml", "--api-base", url)
    finally:
        sim.send_signal(signal.SIGINT)
        sim.communicate(timeout=10)
    assert plan.exit_code == 2
    assert plan.stdout.strip() == demo_plan.strip()
    assert sim.returncode == 0


@pytest.mark.parametrize(
    ("args", "includes_enable"),
    [
        (["--list-shape", "published"], False),
        (["--list-shape", "with-enable"], True),
        (["--omit-enable"], False),
        (["--with-enable"], True),
    ],
)
def test_the_list_shape_flags_choose_whether_monitor_list_shows_enable(args, includes_enable):
    from bulkpolyv.commands.sim_cmd import build_simulator, sim_command

    ctx = sim_command.make_context("sim", ["--port", "0", *args])
    simulator = build_simulator(ctx.params)
    assert simulator.config.list_includes_enable is includes_enable


def test_every_sim_flag_reaches_the_simulator():
    from bulkpolyv.commands.sim_cmd import build_simulator, sim_command

    ctx = sim_command.make_context(
        "sim",
        [
            *("--rate", "300/2", "--block", "5", "--latency", "0.1-0.2"),
            *("--network-delay", "0.3", "--error-rate", "0.1", "--drop-rate", "0.05"),
            *("--clock-offset", "-600", "--retry-after", "7", "--redirect-rate", "0.02"),
            *("--redirect-status", "302", "--redirect-to", "http://other.example:8080"),
            *("--echo-url", "html", "--waf-after", "100", "--waf-status", "503"),
            *("--waf-seconds", "9", "--gzip-bomb-rate", "0.01", "--gzip-bomb-bytes", "1000"),
            *("--monitor-setting-field", "both", "--wrong-setting-field", "ignore", "--seed", "4"),
        ],
    )
    simulator = build_simulator(ctx.params)
    config, faults = simulator.config, simulator.faults.config
    assert (config.rate_requests, config.rate_seconds, config.block_seconds) == (300, 2.0, 5.0)
    assert (config.clock_offset, config.monitor_setting_field) == (-600.0, "both")
    assert config.wrong_setting_field == "ignore"
    assert (faults.latency_min, faults.latency_max) == (0.1, 0.2)
    assert (faults.network_delay_min, faults.network_delay_max) == (0.3, 0.3)
    assert (faults.error_rate, faults.drop_rate, faults.redirect_rate) == (0.1, 0.05, 0.02)
    assert (faults.retry_after, faults.redirect_status) == ("7", 302)
    assert (faults.redirect_target, faults.echo_url) == ("http://other.example:8080", "html")
    assert (faults.waf_after, faults.waf_status, faults.waf_seconds) == (100, 503, 9.0)
    assert (faults.gzip_bomb_rate, faults.gzip_bomb_bytes, faults.seed) == (0.01, 1000, 4)


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGHUP])
def test_sim_writes_its_dump_private_when_stopped_by_a_signal(tmp_path, signum):
    dump = tmp_path / "dump.json"
    process = subprocess.Popen(
        [sys.executable, "-m", "bulkpolyv", "sim", "--port", "0", "--dump", str(dump)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None
    assert "listening on" in process.stdout.readline()
    process.send_signal(signum)
    process.communicate(timeout=20)
    assert process.returncode == 0  # was killed (-15) with no dump written
    assert json.loads(dump.read_text()) == {"accounts": []}
    assert dump.stat().st_mode & 0o777 == 0o600  # it holds app secrets


def test_a_second_signal_while_the_sim_dumps_does_not_lose_the_dump(tmp_path):
    dump = tmp_path / "dump.json"
    # the second kill comes from inside, as the dump starts
    args = signalled_at("bulkpolyv.commands.sim_cmd:dump_or_fail", "SIGTERM",
                        "sim", "--port", "0", "--dump", str(dump))  # fmt: skip
    process = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert process.stdout is not None
    assert "listening on" in process.stdout.readline()
    process.send_signal(signal.SIGTERM)
    _, err = process.communicate(timeout=20)
    assert process.returncode == 0, err  # was killed (-15) by the second signal, no dump
    assert json.loads(dump.read_text()) == {"accounts": []}


def start_sim(dump: str) -> tuple[subprocess.Popen, str]:
    """``bulkpolyv sim --dump DUMP`` on a free port, and its first line of output."""
    process = subprocess.Popen(
        [sys.executable, "-m", "bulkpolyv", "sim", "--port", "0", "--dump", dump],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None
    return process, process.stdout.readline()


def test_a_dump_that_cannot_be_written_is_refused_at_start_not_at_exit():
    process, first = start_sim("/proc/nope/d.json")
    if first:  # it started serving (the bug): stop it, so the test fails instead of hanging
        process.send_signal(signal.SIGTERM)
    _, err = process.communicate(timeout=20)
    assert (first, process.returncode) == ("", 1)
    assert err.startswith("bulkpolyv: cannot write /proc/nope/d.json: ") and err.count("\n") == 1


def test_a_dump_that_cannot_be_written_at_exit_is_a_sentence_and_exit_1(tmp_path):
    """Writable at start, not at exit (its directory replaced by a file)."""
    (tmp_path / "gone").mkdir()
    process, first = start_sim(str(tmp_path / "gone" / "d.json"))
    assert "listening on" in first
    (tmp_path / "gone").rmdir()
    (tmp_path / "gone").write_text("a file where the directory was")
    process.send_signal(signal.SIGTERM)
    _, err = process.communicate(timeout=20)
    assert process.returncode == 1
    assert err == (
        f"bulkpolyv: cannot write {tmp_path / 'gone' / 'd.json'}: Not a directory; "
        "the simulator's state was not saved\n"
    )


def test_the_demo_s_next_steps_say_how_to_put_bulkpolyv_on_the_path_when_it_is_not(
    monkeypatch,
):
    # The README's quick start runs .venv/bin/bulkpolyv: the next steps' bare `bulkpolyv`
    # would be "command not found" until the venv is activated.
    import shutil
    import sys
    from pathlib import Path

    from bulkpolyv.demo import next_steps

    monkeypatch.setattr(shutil, "which", lambda name: None)
    activate = f". {Path(sys.prefix) / 'bin' / 'activate'}"
    assert activate in next_steps("manifests/demo.yaml", None, 7)
    monkeypatch.setattr(shutil, "which", lambda name: f"/usr/local/bin/{name}")
    assert "activate" not in next_steps("manifests/demo.yaml", None, 7)


def test_the_demo_s_next_steps_name_its_manifest_and_stop_the_simulator():
    # `bulkpolyv demo /elsewhere/m.yaml` from another directory: a bare `demo --state-out`
    # would look for manifests/demo.yaml there and fail.
    from pathlib import Path

    from bulkpolyv.demo import next_steps

    steps = next_steps("/elsewhere/m.yaml", None, 7)
    assert "bulkpolyv demo /elsewhere/m.yaml --state-out demo-state.json   # " in steps
    assert "--seed 7 & SIM=$!\n" in steps  # its own pid: %1 may be another job
    assert '  kill "$SIM"   # stop the simulator\n' in steps
    prose = [line for line in steps.splitlines()[2:] if line and not line.startswith("  bulkpolyv")]
    assert all(line.startswith(("  #", "  eval", "  kill", "  .")) for line in prose), prose
    spaced = next_steps("/my manifests/m.yaml", Path("/tmp/a b.json"), 7)
    assert "bulkpolyv sim --state '/tmp/a b.json' --latency" in spaced
    assert "bulkpolyv plan '/my manifests/m.yaml' --api-base" in spaced
    # a leading dash is not an option; a carriage return cannot draw a command over the line
    assert "bulkpolyv plan ./-m.yaml --api-base" in next_steps("-m.yaml", None, 7)
    crafted = next_steps("m\r  bulkpolyv plan x; touch PWNED #/d.yaml", None, 7)
    assert "bulkpolyv plan $'m\\x0d  bulkpolyv plan x; touch PWNED #/d.yaml' --api" in crafted
    assert "\r" not in crafted


def test_shell_word_pastes_back_as_the_same_text():
    import subprocess

    from bulkpolyv.demo import shell_word

    for text in [
        "plain.yaml",
        "a b/'q'\"$x`y`.yaml",
        "-d.yaml",
        "m\r\n\x1b[2Kz\\'.yaml",
        "é\u2028.yaml",
    ]:
        echoed = subprocess.run(
            ["bash", "-c", f"printf %s {shell_word(text)}"], capture_output=True, check=True
        ).stdout.decode()
        assert echoed == (("./" + text) if text.startswith("-") else text)

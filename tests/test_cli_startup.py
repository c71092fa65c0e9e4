"""``bulkpolyv --help`` and ``validate`` import only what they use (issue 16: start-up)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from bulkpolyv.cli import COMMANDS, cli
from bulkpolyv.commands.lazy import LazyGroup
from tests.signalled import run_child, signalled_at

ROOT = Path(__file__).resolve().parent.parent
HEAVY = ["aiohttp", "rich", "redis", "pydantic", "yaml", "bulkpolyv.run", "bulkpolyv.client"]


def modules_after(args: list[str]) -> set[str]:
    """The heavy modules imported by ``bulkpolyv ARGS`` in a fresh interpreter."""
    script = (
        "import json, sys\n"
        "from bulkpolyv.cli import cli\n"
        "try:\n"
        f"    cli.main({args!r}, prog_name='bulkpolyv')\n"
        "except SystemExit:\n"
        "    pass\n"
        f"print(json.dumps(sorted(m for m in {HEAVY!r} if m in sys.modules)), file=sys.stderr)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, check=True
    )
    return set(json.loads(done.stderr.strip().splitlines()[-1]))


def test_help_imports_no_command_module_nor_heavy_library() -> None:
    assert modules_after(["--help"]) == set()


def test_validate_imports_the_manifest_reader_only() -> None:
    manifest = str(ROOT / "manifests" / "example.yaml")
    assert modules_after(["validate", "--no-env", manifest]) == {"pydantic", "yaml"}


def test_help_lists_each_command_as_its_own_help_would() -> None:
    eager = click.Group(name="bulkpolyv", context_settings={"help_option_names": ["-h"]})
    lazy = LazyGroup(name="bulkpolyv", lazy=COMMANDS, context_settings=eager.context_settings)
    for name, entry in COMMANDS.items():
        eager.add_command(entry.load(), name)
    listing = CliRunner().invoke(eager, ["-h"]).output
    assert CliRunner().invoke(lazy, ["-h"]).output == listing
    assert "apply" in listing and "sim" in listing


def test_a_lazy_command_runs_and_its_help_is_its_own() -> None:
    result = CliRunner().invoke(cli, ["report", "--help"])
    assert result.exit_code == 0
    assert "Read the reports of past runs" in result.output


@pytest.mark.parametrize("name", ["SIGTERM", "SIGHUP"])
def test_sigterm_or_sighup_before_a_run_handles_signals_is_interrupted_not_a_silent_kill(name):
    # before the command's own module is even imported
    done = run_child(signalled_at("bulkpolyv.commands.lazy:LazyGroup.get_command", name,
                                  "plan", "nothing.yaml"))  # fmt: skip
    assert done.returncode == 130, (done.returncode, done.stderr)  # was -15 / -1: no word
    assert done.stderr.strip().splitlines()[-1] == "bulkpolyv: interrupted"
    assert "Traceback" not in done.stderr


SIGNALLED_WHILE_THE_CLI_LOADS = """
import builtins, os, signal, sys
real_import = builtins.__import__
def hooked(name, *args, **kwargs):
    if name == "bulkpolyv.cli":
        os.kill(os.getpid(), signal.{name})  # Ctrl-C while the command table is imported
    return real_import(name, *args, **kwargs)
builtins.__import__ = hooked
from bulkpolyv.entry import main
sys.argv = ["bulkpolyv", "--help"]
main()
"""


@pytest.mark.parametrize("name", ["SIGINT", "SIGTERM"])
def test_a_signal_while_the_cli_itself_loads_is_one_line_not_a_traceback(name):
    done = run_child([sys.executable, "-c", SIGNALLED_WHILE_THE_CLI_LOADS.format(name=name)])
    assert done.returncode == 130, (done.returncode, done.stderr)  # SIGINT: a traceback
    assert done.stderr == "bulkpolyv: interrupted\n"


SIGNALLED_AS_IT_EXITS = """
import atexit, os, signal, sys
# a Ctrl-C or kill that lands as the interpreter tears down, the work done and said
atexit.register(lambda: os.kill(os.getpid(), signal.{name}))
from bulkpolyv.entry import main
sys.argv = ["bulkpolyv", "validate", "--no-env", {manifest!r}]
main()
"""


@pytest.mark.parametrize("name", ["SIGINT", "SIGTERM", "SIGHUP"])
def test_a_signal_as_the_finished_command_exits_keeps_its_status_and_prints_nothing(name):
    manifest = str(Path(__file__).parent.parent / "manifests" / "demo.yaml")
    done = run_child([sys.executable, "-c", SIGNALLED_AS_IT_EXITS.format(name=name,
                                                                         manifest=manifest)])
    assert done.returncode == 0, (done.returncode, done.stderr)  # was a KeyboardInterrupt
    assert done.stderr == ""  # traceback, "Exception ignored in atexit callback"


def test_the_cli_run_in_a_caller_s_process_leaves_its_signals_as_they_were(monkeypatch):
    # only the program (entry.main) ignores signals once done; a test runner or a caller
    # that runs the CLI in its own process keeps Ctrl-C and SIGHUP
    import signal

    from bulkpolyv.cli import main

    before = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGHUP)}
    monkeypatch.setattr(sys, "argv", ["bulkpolyv", "--help"])
    with pytest.raises(SystemExit):
        main()
    assert signal.getsignal(signal.SIGINT) == before[signal.SIGINT]
    assert signal.getsignal(signal.SIGHUP) is not signal.SIG_IGN

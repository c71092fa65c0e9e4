"""``bulkpolyv demo``: the whole job against the embedded simulator, no credentials needed.

Seeds a simulator from the manifest with deterministic drift (wrong callbacks, wrong
nicknames, passwords and switches), adds a little latency and a few 503s, then runs
``plan``, ``apply`` and ``plan`` again — which must show no changes.
"""

from __future__ import annotations

import contextlib
import io
import os
import random
import shlex
import shutil
import sys
import tempfile
from pathlib import Path

import click

from bulkpolyv import eventloop
from bulkpolyv.exitcodes import ExitCode
from bulkpolyv.journal import Journal
from bulkpolyv.manifest import Manifest, ManifestError, load_manifest
from bulkpolyv.plan import Plan
from bulkpolyv.progress import RunProgress
from bulkpolyv.render import render_text
from bulkpolyv.report import ApplyResult, ApplyStatus
from bulkpolyv.run import RunSettings, apply, open_runtime, read_plan
from bulkpolyv.sim import FaultConfig, PolyvSimulator, SimConfig, SimServer, SimState

DEFAULT_MANIFEST = Path("manifests/demo.yaml")
# The demo manifest's ${VAR}s; only demo values, used when the variables are not set.
DEMO_ENV = {
    "DEMO_EAST_APP_ID": "demo-east-app",
    "DEMO_EAST_SECRET": "demo-east-secret-0123456789",
    "DEMO_WEST_APP_ID": "demo-west-app",
    "DEMO_WEST_SECRET": "demo-west-secret-0123456789",
    "DEMO_ARCHIVE_APP_ID": "demo-archive-app",
    "DEMO_ARCHIVE_SECRET": "demo-archive-secret-012345",
    "DEMO_MONITOR_PASSWORD": "demo-pass-2026",
}


def drifted_state(manifest: Manifest, rng: random.Random) -> SimState:
    """POLYV as it might be before the manifest is applied: about a third of it wrong."""
    accounts = []
    for account in manifest.accounts:
        callback = account.callbacks.get("record")
        if rng.random() < 0.7:
            callback = "https://old-hooks.example.com/polyv/record"
        channels = []
        for channel in account.channels:
            monitors = []
            for m in channel.monitors:
                nickname = m.nickname or f"mon-{m.id}"
                password = m.password or "initial-pw"
                enable = m.enable or "Y"
                roll = rng.random()
                if roll < 0.15:
                    nickname = f"old-{m.id}"
                elif roll < 0.25:
                    password = "rotated-away"
                elif roll < 0.32 and enable == "Y":
                    enable = "N"
                monitors.append(
                    {"id": m.id, "nickname": nickname, "password": password, "enable": enable}
                )
            monitoring = channel.monitoring or "Y"
            if rng.random() < 0.2:
                monitoring = "N" if monitoring == "Y" else "Y"
            channels.append(
                {"channel_id": channel.channel_id, "monitoring": monitoring, "monitors": monitors}
            )
        accounts.append(
            {
                "user_id": account.user_id,
                "app_id": account.app_id,
                "app_secret": account.app_secret,
                "record_callback": callback,
                "channels": channels,
            }
        )
    return SimState.from_data({"accounts": accounts})


def env_lines() -> str:
    """``export NAME=value`` lines for the demo manifest's variables (demo values only)."""
    return "\n".join(f"export {name}={value}" for name, value in DEMO_ENV.items())


def run_demo(
    manifest_path: str | None,
    *,
    seed: int = 7,
    state_out: Path | None = None,
    quiet: bool = False,
) -> int:
    """Plan, apply and plan again; quiet: print nothing when it converges (what it printed
    comes out when it does not, to show why)."""
    for name, value in DEMO_ENV.items():
        os.environ.setdefault(name, value)
    path = DEFAULT_MANIFEST if manifest_path is None else Path(manifest_path)
    if manifest_path is None and _absent(path):  # run outside the checkout: say where it is
        click.echo(
            f"bulkpolyv demo: its manifest, {path}, is not in this directory.\n"
            "Run it from the bulkpolyv checkout (see the README's quick start), or name a "
            "manifest: bulkpolyv demo MANIFEST",
            err=True,
        )
        return ExitCode.ERROR
    try:
        manifest = load_manifest(path)
    except ManifestError as error:
        click.echo(str(error), err=True)
        return ExitCode.ERROR
    state = drifted_state(manifest, random.Random(seed))
    if state_out is not None:
        state.dump(state_out)  # before the demo changes it: `sim --state` starts from here
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed) if quiet else contextlib.nullcontext():
        code = eventloop.run(_demo(manifest, state, seed))
    if quiet:
        if code != ExitCode.OK:
            click.echo(printed.getvalue(), nl=False)
    elif code != ExitCode.INTERRUPTED:
        click.echo(next_steps(manifest.path, state_out, seed))
    return code


def _absent(path: Path) -> bool:
    """Nothing at all at ``path``: a broken link or an unreadable directory is there, and
    :func:`load_manifest` says what is wrong with it."""
    try:
        path.lstat()
    except FileNotFoundError:
        return True
    except OSError:
        return False
    return False


def shell_word(text: str) -> str:
    """``text`` as one word to paste into a shell: quoted, ``./`` before a leading ``-``
    (not an option), and control characters as ``$'\\r'`` escapes, which a terminal would
    otherwise act on (a carriage return can draw another command over the line)."""
    if text.startswith("-"):
        text = "./" + text
    if text.isprintable():
        return shlex.quote(text)
    escaped = "".join(
        char if char.isprintable() and char not in "\\'" else _escape(char) for char in text
    )
    return f"$'{escaped}'"


def _escape(char: str) -> str:
    code = ord(char)
    if char in "\\'":
        return "\\" + char
    if code < 0x80:
        return f"\\x{code:02x}"
    return f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}"


def next_steps(manifest: str, state_out: Path | None, seed: int) -> str:
    """Lines to paste into a shell, whole: the prose is comments, the paths quoted, the
    simulator stopped by its own pid (``%1`` may be another job)."""
    manifest, state = shell_word(manifest), shell_word(str(state_out or "demo-state.json"))
    dump = ""
    if not state_out:
        dump = f"bulkpolyv demo {manifest} --state-out {state}   # the demo, saving its state\n  "
    # Installed in a venv and run by its path (the README's quick start): not on PATH yet.
    activate = ""
    if shutil.which("bulkpolyv") is None:
        script = shell_word(str(Path(sys.prefix) / "bin" / "activate"))
        activate = f". {script}   # bulkpolyv on your PATH\n  "
    api = "--api-base http://127.0.0.1:8790"
    return (
        "\nWhat to try next:\n"
        "  # In a plan: ~ a value to change, - a callback or a channel's monitoring to switch\n"
        "  # off, ? a value written but not readable back (cannot be verified), ! an item that\n"
        "  # cannot be planned. The same against a simulator you start yourself:\n"
        f"  {activate}{dump}"
        f"bulkpolyv sim --state {state} --latency 0.005-0.04 --error-rate 0.03 --seed {seed} "
        "& SIM=$!\n"
        '  eval "$(bulkpolyv demo --env)"   # the demo manifest\'s ${VAR}s\n'
        f"  bulkpolyv plan {manifest} {api}\n"
        f"  bulkpolyv apply {manifest} {api} --yes   # without --yes it asks first\n"
        '  kill "$SIM"   # stop the simulator\n'
        "  # Against POLYV itself, run bulkpolyv probe MANIFEST first."
    )


async def _demo(manifest: Manifest, state: SimState, seed: int) -> int:
    simulator = PolyvSimulator(
        state,
        SimConfig(),
        FaultConfig(latency_min=0.005, latency_max=0.04, error_rate=0.03, seed=seed),
    )
    shown = shell_word(manifest.path)  # a path's control characters are not the terminal's
    async with SimServer(simulator) as server:
        settings = RunSettings(api_base=server.url, cooldown=5.0, backoff_base=0.05)
        click.secho(f"== Simulated POLYV on {server.url} (about 3% of answers are 503s)", bold=True)
        display = RunProgress()
        async with open_runtime(
            manifest, settings, events=display, rng=random.Random(seed)
        ) as runtime:
            click.secho(f"\n== bulkpolyv plan {shown}", bold=True)
            click.echo(render_text(await read_plan(runtime, manifest)))

        click.secho(f"\n== bulkpolyv apply {shown} --yes", bold=True)
        result = await _apply(manifest, settings, display, seed)
        stats = simulator.stats
        click.echo(
            f"simulator, since it started: {stats.requests} requests (the plan's reads too), "
            f"{stats.injected_errors} injected 503s retried, {stats.violations} rate-limit "
            "violations"
        )
        if result.status is ApplyStatus.INTERRUPTED:  # a Ctrl-C stops the demo, too
            click.echo("bulkpolyv: interrupted", err=True)
            return ExitCode.INTERRUPTED

        click.secho(f"\n== bulkpolyv plan {shown}  (again)", bold=True)
        async with open_runtime(manifest, settings, events=display) as runtime:
            after = await read_plan(runtime, manifest)
        click.echo(render_text(after))
    return _verdict(after)


async def _apply(
    manifest: Manifest, settings: RunSettings, display: RunProgress, seed: int
) -> ApplyResult:
    """The demo's apply, with its journal and report in a scratch directory."""
    with tempfile.TemporaryDirectory(prefix="bulkpolyv-demo-") as scratch:
        async with open_runtime(
            manifest,
            settings,
            events=display,
            journal=Journal(Path(scratch) / "journal.jsonl"),
            rng=random.Random(seed),
        ) as runtime:
            result = await apply(manifest, runtime, report_path=Path(scratch) / "report.json")
    click.echo(result.summary)
    return result


def _verdict(after: Plan) -> int:
    """Converged or not, by the second plan. Write-only fields (``?``: POLYV does not return
    them) are planned on every run; they do not count against convergence, and the demo
    says so rather than hiding them."""
    known = [op for op in after.operations if op.symbol != "?"]
    converged = not known and not after.problems
    click.secho(
        "\nConverged: POLYV now matches the manifest."
        if converged
        else "\nNot converged: see the plan above.",
        fg="green" if converged else "red",
    )
    if converged and after.operations:
        click.echo(
            f"({len(after.operations)} items marked ? are write-only: POLYV does not return "
            "them, so bulkpolyv writes them on every run and cannot verify them.)"
        )
    return ExitCode.OK if converged else ExitCode.PARTIAL

"""The ``bulkpolyv`` command: a table of commands; each parses its flags, calls the
library and maps the outcome to an exit code.

Exit codes are :class:`~bulkpolyv.options.ExitCode`: 0 done / nothing to do / valid; 1
an error (bad manifest, bad flags or usage, declined, the check failed); 2 ``plan`` found
changes (and only that); 3 some items failed or were skipped; 4 refused by the safety
check; 5 another run holds the lock; 130 interrupted. The command, not the library,
chooses what the terminal shows. ``validate`` and ``schema`` live here; the others in
:mod:`bulkpolyv.commands`, each imported only when it runs (:mod:`bulkpolyv.commands.lazy`).
"""

from __future__ import annotations

import json
import sys

import click

from bulkpolyv.commands.common import output, verbosity
from bulkpolyv.commands.lazy import LazyCommand, LazyGroup
from bulkpolyv.exitcodes import ExitCode

# Imported only when run (see commands.lazy); each summary is the first paragraph of the
# command's help, which --help shortens as click would.
COMMANDS = {
    "apply": LazyCommand(
        "bulkpolyv.commands.plan_apply:apply_command",
        "Apply the manifest: plan, confirm, change what differs (see exit codes in README).",
    ),
    "demo": LazyCommand(
        "bulkpolyv.commands.demo_cmd:demo",
        "Plan and apply a manifest (default manifests/demo.yaml) against the embedded "
        "simulator, seeded with drift.",
    ),
    "export": LazyCommand(
        "bulkpolyv.commands.export_cmd:export_command",
        "Write the live state of accounts as a manifest (secrets stay ${VAR} references).",
    ),
    "plan": LazyCommand(
        "bulkpolyv.commands.plan_apply:plan",
        "Read the live state and show what apply would change.",
    ),
    "probe": LazyCommand(
        "bulkpolyv.commands.probe_cmd:probe",
        "Check what POLYV answers for each account: signature, clock, readable fields, "
        "monitor permission — and what bulkpolyv will do differently because of it.",
    ),
    "report": LazyCommand(
        "bulkpolyv.commands.report_cmd:report",
        "Read the reports of past runs (`apply --report FILE`).",
    ),
    "sim": LazyCommand(
        "bulkpolyv.commands.sim_cmd:sim_command",
        "Run the embedded POLYV simulator until Ctrl-C.",
    ),
}


@click.group(
    cls=LazyGroup, lazy=COMMANDS, context_settings={"help_option_names": ["-h", "--help"]}
)
@verbosity
@click.version_option(package_name="bulkpolyv")
def cli() -> None:
    """Bring POLYV callbacks and monitor accounts to the state in a YAML manifest.

    -q, -v and --log-format work before the command or after it.
    """
    output()


@cli.command()
@click.argument("manifests", nargs=-1, required=True, type=click.Path())
@click.option("--no-env", is_flag=True, help="Check structure only; ${VAR}s need not be set.")
@verbosity
def validate(manifests: tuple[str, ...], no_env: bool) -> None:
    """Check manifests offline; exit 0 when valid, 1 when not."""
    from bulkpolyv.manifest import ManifestError, load_manifest

    bad = False
    for path in manifests:
        try:
            manifest = load_manifest(path, resolve_env=not no_env)
        except ManifestError as error:
            click.echo(str(error), err=True)
            if error.only_environment:  # the file itself may be fine
                click.echo(
                    "(only environment variables are missing: `validate --no-env` checks the "
                    "file without them)",
                    err=True,
                )
            bad = True
            continue
        if not output().quiet:
            click.echo(f"{path}: valid")
            for line in manifest.summary_lines():
                click.echo(f"  {line}")
    sys.exit(ExitCode.ERROR if bad else ExitCode.OK)


@cli.command()
def schema() -> None:
    """Print the manifest's JSON Schema (for editors)."""
    from bulkpolyv.manifest import ManifestSpec

    click.echo(json.dumps(ManifestSpec.model_json_schema(), indent=2))


def main() -> None:
    """``bulkpolyv.cli:main``, as older installs' scripts name it (and tests call it in
    their own process: it leaves the process's signal handling as it found it)."""
    import sys

    from bulkpolyv.entry import run

    sys.exit(run())

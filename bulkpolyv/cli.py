"""The ``bulkpolyv`` command: a table of commands; each parses its flags, calls the
library and maps the outcome to an exit code.

Exit codes are :class:`~bulkpolyv.options.ExitCode`: 0 done / nothing to do / valid; 1
an error (bad manifest, bad flags or usage, declined, the check failed); 2 ``plan`` found
changes (and only that); 3 some items failed or were skipped; 4 refused by the safety
check; 5 another run holds the lock; 130 interrupted. The command, not the library,
chooses what the terminal shows. ``validate``, ``schema`` and ``export`` live here; the
others in :mod:`bulkpolyv.commands`.
"""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path

import click

from bulkpolyv.commands.common import ExitCodeGroup, output, verbosity
from bulkpolyv.commands.demo_cmd import demo
from bulkpolyv.commands.plan_apply import apply_command, plan
from bulkpolyv.commands.probe_cmd import probe
from bulkpolyv.commands.report_cmd import report
from bulkpolyv.commands.sim_cmd import sim_command
from bulkpolyv.errors import BulkPolyvError
from bulkpolyv.manifest import ManifestError, ManifestSpec, load_manifest
from bulkpolyv.options import API_BASE, INSECURE, ExitCode, fail, load, warn_about_transport
from bulkpolyv.run import RunSettings, open_runtime


@click.group(cls=ExitCodeGroup, context_settings={"help_option_names": ["-h", "--help"]})
@verbosity
@click.version_option(package_name="bulkpolyv")
def cli() -> None:
    """Bring POLYV callbacks and monitor accounts to the state in a YAML manifest.

    -q, -v and --log-format work before the command or after it.
    """
    output()


for command in (plan, apply_command, probe, report, sim_command, demo):
    cli.add_command(command)


@cli.command()
@click.argument("manifests", nargs=-1, required=True, type=click.Path())
@click.option("--no-env", is_flag=True, help="Check structure only; ${VAR}s need not be set.")
@verbosity
def validate(manifests: tuple[str, ...], no_env: bool) -> None:
    """Check manifests offline; exit 0 when valid, 1 when not."""
    bad = False
    for path in manifests:
        try:
            manifest = load_manifest(path, resolve_env=not no_env)
        except ManifestError as error:
            click.echo(str(error), err=True)
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
    click.echo(json.dumps(ManifestSpec.model_json_schema(), indent=2))


def check_channel_list(value: str | None) -> str | None:
    """``--channels 2191532,2191533``: each part a whole number, said plainly if not."""
    for part in (value or "").replace(" ", "").split(","):
        if part and not part.isdigit():
            raise click.BadParameter(
                f"{part!r} is not a channel id: give whole numbers separated by commas, "
                "e.g. --channels 2191532,2191533",
                param_hint="--channels",
            )
    return value


@cli.command(name="export")
@click.argument("manifest_path", metavar="MANIFEST", type=click.Path())
@click.option(
    "--account",
    "accounts",
    multiple=True,
    help="Account name from MANIFEST; repeatable (default: all).",
)
@click.option(
    "--channels",
    callback=lambda _ctx, _param, value: check_channel_list(value),
    help="Comma-separated channel ids (default: the manifest's).",
)
@click.option(
    "--channels-file",
    type=click.Path(exists=True, dir_okay=False),
    help="A CSV with a channel_id column (and an account column for a list per account), "
    "or one channel id per line.",
)
@click.option(
    "--out", required=True, type=click.Path(dir_okay=False), help="The manifest to write."
)
@click.option(
    "--csv-over",
    type=click.IntRange(min=0),
    default=100,
    show_default=True,
    help="Put an account's monitors in a CSV file when it has more than this.",
)
@click.option("--force", is_flag=True, help="Overwrite files that already exist.")
@API_BASE
@INSECURE
@verbosity
def export_command(
    manifest_path: str,
    accounts: tuple[str, ...],
    channels: str | None,
    channels_file: str | None,
    out: str,
    csv_over: int,
    force: bool,
    api_base: str | None,
    insecure: bool,
) -> None:
    """Write the live state of accounts as a manifest (secrets stay ${VAR} references)."""
    from bulkpolyv.export import channel_ids, export

    manifest = load(manifest_path)
    try:
        ids = channel_ids(channels, channels_file)
    except BulkPolyvError as error:
        raise click.UsageError(str(error)) from None
    settings = RunSettings(api_base=api_base, insecure=insecure)
    warn_about_transport(settings.api_base or manifest.api_base, insecure)

    async def run() -> list[Path]:
        async with open_runtime(manifest, settings) as runtime:
            return await export(
                manifest,
                runtime,
                names=accounts,
                channel_ids=ids,
                out=Path(out),
                csv_over=csv_over,
                force=force,
            )

    try:
        written = asyncio.run(run())
    except BulkPolyvError as error:
        fail(str(error))
    for path in written if not output().quiet else ():
        click.echo(f"wrote {path} (mode 0600: callback URLs may carry tokens)")


def main() -> None:
    try:
        cli.main(prog_name="bulkpolyv")
    except KeyboardInterrupt:  # Ctrl-C before a run set up its own handling (imports, say)
        click.echo("bulkpolyv: interrupted", err=True)
        sys.exit(130)

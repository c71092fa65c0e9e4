"""``bulkpolyv export``: the live state of accounts, written as a manifest."""

from __future__ import annotations

from pathlib import Path

import click

from bulkpolyv import eventloop
from bulkpolyv.commands.common import output, verbosity
from bulkpolyv.errors import BulkPolyvError
from bulkpolyv.options import API_BASE, BUDGET, INSECURE, fail, load, warn_about_transport
from bulkpolyv.run import RunSettings, open_runtime


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


@click.command(name="export")
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
@BUDGET
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
    budget: str | None,
) -> None:
    """Write the live state of accounts as a manifest (secrets stay ${VAR} references)."""
    from bulkpolyv.export import channel_ids, export

    manifest = load(manifest_path)
    try:
        ids = channel_ids(channels, channels_file)
    except BulkPolyvError as error:
        raise click.UsageError(str(error)) from None
    settings = RunSettings(api_base=api_base, insecure=insecure, budget=budget)
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
        written = eventloop.run(run())
    except BulkPolyvError as error:
        fail(str(error))
    for path in written if not output().quiet else ():
        why = ": callback URLs may carry tokens" if path == Path(out) else ""  # the manifest
        click.echo(f"wrote {path} (mode 0600{why})")

"""``bulkpolyv probe MANIFEST``: ask the real API what it answers, before trusting it.

Read-only, a few requests per account, through the same runtime as a run (the same gate,
the same rate budget). Exit 0 when every account is usable, 1 otherwise.
"""

from __future__ import annotations

import dataclasses
import sys

import click

from bulkpolyv import eventloop
from bulkpolyv import probe as probing
from bulkpolyv.commands.common import format_option, output, verbosity
from bulkpolyv.options import (
    API_BASE,
    BUDGET,
    INSECURE,
    ExitCode,
    fail,
    load,
    warn_about_transport,
)
from bulkpolyv.run import RunSettings, open_runtime

RENDERERS = {"text": probing.render_text, "json": probing.render_json}


@click.command()
@click.argument("manifest_path", metavar="MANIFEST", type=click.Path())
@click.option(
    "--account",
    "accounts",
    multiple=True,
    help="Only this account of MANIFEST; repeatable (default: all).",
)
@format_option(RENDERERS, "text: a table per account; json: for programs.")
@API_BASE
@INSECURE
@BUDGET
@verbosity
def probe(
    manifest_path: str,
    accounts: tuple[str, ...],
    fmt: str,
    api_base: str | None,
    insecure: bool,
    budget: str | None,
) -> None:
    """Check what POLYV answers for each account: signature, clock, readable fields,
    monitor permission — and what bulkpolyv will do differently because of it.

    Run it before a first real run and before a migration. Writes nothing.
    """
    manifest = load(manifest_path)
    known = {a.name for a in manifest.accounts}
    unknown = [name for name in accounts if name not in known]
    if unknown:
        fail(
            f"--account {', '.join(unknown)}: not in {manifest.path}; "
            f"its accounts: {', '.join(sorted(known))}"
        )
    chosen = [a for a in manifest.accounts if not accounts or a.name in accounts]
    manifest = dataclasses.replace(manifest, accounts=tuple(chosen))
    settings = RunSettings(api_base=api_base, insecure=insecure, attempts=1, budget=budget)
    warn_about_transport(settings.api_base or manifest.api_base, insecure)

    async def run() -> list[probing.AccountProbe]:
        async with open_runtime(manifest, settings) as runtime:
            return await probing.probe_accounts(runtime.executor.client, manifest.accounts)

    results = eventloop.run(run())
    usable = all(p.usable for p in results)
    if not (usable and output().quiet):  # -q: nothing when all is well
        click.echo(RENDERERS[fmt](results))
    sys.exit(ExitCode.OK if usable else ExitCode.ERROR)

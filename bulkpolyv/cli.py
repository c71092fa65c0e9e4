"""The ``bulkpolyv`` command: parse flags, call the library, map outcomes to exit codes.

Exit codes are :class:`~bulkpolyv.options.ExitCode`: 0 done / nothing to do / valid; 1
error before any write (bad manifest, bad flags, declined); 2 ``plan`` found changes; 3 some
items failed or were skipped; 4 refused by the safety check; 5 another run holds the lock;
130 interrupted. The command, not the library, chooses what the terminal shows.
"""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import Callable
from pathlib import Path

import click

from bulkpolyv.errors import BulkPolyvError
from bulkpolyv.journal import journal_for
from bulkpolyv.manifest import ManifestError, ManifestSpec, load_manifest
from bulkpolyv.options import (
    API_BASE,
    INSECURE,
    ExitCode,
    fail,
    load,
    parse_rate,
    run_options,
    warn_about_transport,
)
from bulkpolyv.plan import ItemKey, Plan
from bulkpolyv.planfile import ReviewedPlan, ReviewedPlanError, write_plan_file
from bulkpolyv.progress import RunProgress, on_a_terminal
from bulkpolyv.render import render_json, render_markdown, render_text
from bulkpolyv.report import ApplyResult, ApplyStatus, Invocation, failed_items
from bulkpolyv.run import RunSettings, apply, open_runtime, read_plan, select
from bulkpolyv.runlock import LockBusy, lock_for
from bulkpolyv.urls import redact_url

RENDERERS = {"text": render_text, "json": render_json, "markdown": render_markdown}


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("-v", "--verbose", count=True, help="More log output (-vv for debug).")
@click.option("-q", "--quiet", is_flag=True, help="Only errors and the final line.")
@click.option(
    "--log-format", type=click.Choice(["text", "json"]), default="text", help="Log line format."
)
@click.version_option(package_name="bulkpolyv")
def cli(verbose: int, quiet: bool, log_format: str) -> None:
    """Bring POLYV record callbacks and monitor accounts to the state in a YAML manifest."""
    from bulkpolyv.logs import configure_logging

    configure_logging(verbose=verbose, quiet=quiet, json_format=log_format == "json")


@cli.command()
@click.argument("manifests", nargs=-1, required=True, type=click.Path())
@click.option("--no-env", is_flag=True, help="Check structure only; ${VAR}s need not be set.")
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
        click.echo(f"{path}: valid")
        for line in manifest.summary_lines():
            click.echo(f"  {line}")
    sys.exit(ExitCode.ERROR if bad else ExitCode.OK)


@cli.command()
def schema() -> None:
    """Print the manifest's JSON Schema (for editors)."""
    click.echo(json.dumps(ManifestSpec.model_json_schema(), indent=2))


@cli.command()
@click.argument("manifest_path", metavar="MANIFEST", type=click.Path())
@run_options
@click.option("--format", "fmt", type=click.Choice(list(RENDERERS)), default="text")
@click.option(
    "--out",
    type=click.Path(dir_okay=False),
    help="Also write the plan here, for review and `apply --plan`.",
)
def plan(
    manifest_path: str, settings: RunSettings, only: tuple[str, ...], fmt: str, out: str | None
) -> None:
    """Read the live state and show what apply would change (exit 2 when changes pending)."""
    manifest = select(load(manifest_path), only)
    warn_about_transport(settings.api_base or manifest.api_base, settings.insecure)

    async def run() -> Plan:
        async with open_runtime(manifest, settings, events=RunProgress()) as runtime:
            return await read_plan(runtime, manifest)

    result = asyncio.run(run())
    click.echo(RENDERERS[fmt](result))
    if out:
        write_plan_file(Path(out), result)
    if result.problems:
        sys.exit(ExitCode.ERROR)
    sys.exit(ExitCode.CHANGES if result.has_changes else ExitCode.OK)


@cli.command(name="apply")
@click.argument("manifest_path", metavar="MANIFEST", type=click.Path())
@run_options
@click.option("--yes", "-y", is_flag=True, help="Apply without asking (required off a terminal).")
@click.option("--dry-run", is_flag=True, help="Show the plan and stop.")
@click.option("--force", is_flag=True, help="Apply even when the safety check refuses.")
@click.option("--report", type=click.Path(dir_okay=False), help="Write a JSON report here.")
@click.option(
    "--journal",
    type=click.Path(dir_okay=False),
    help="JSONL journal (default: under ~/.local/state/bulkpolyv/journal).",
)
@click.option("--lock", type=click.Path(dir_okay=False), help="Lock file (default: per manifest).")
@click.option(
    "--retry-failed",
    type=click.Path(exists=True, dir_okay=False),
    help="Only the failed and skipped items of this earlier report.",
)
@click.option(
    "--plan",
    "plan_file",
    type=click.Path(exists=True, dir_okay=False),
    help="Apply exactly this reviewed plan (from `plan --out`); items whose live value "
    "moved since are skipped as conflicts.",
)
@click.option("--verify", is_flag=True, help="Read back every write; one that did not stick fails.")
def apply_command(
    manifest_path: str,
    settings: RunSettings,
    only: tuple[str, ...],
    yes: bool,
    dry_run: bool,
    force: bool,
    report: str | None,
    journal: str | None,
    lock: str | None,
    retry_failed: str | None,
    plan_file: str | None,
    verify: bool,
) -> None:
    """Apply the manifest: plan, confirm, change what differs (see exit codes in README)."""
    if plan_file and (retry_failed or only):
        fail(
            "--plan applies exactly the reviewed plan: it does not combine with --only or "
            "--retry-failed"
        )
    loaded = load(manifest_path)
    manifest = select(loaded, only, _retry_keys(retry_failed, loaded.digest))
    try:
        reviewed = ReviewedPlan(Path(plan_file), manifest) if plan_file else None
    except ReviewedPlanError as error:
        fail(str(error))
    warn_about_transport(settings.api_base or manifest.api_base, settings.insecure)
    if not (yes or dry_run or on_a_terminal()):
        fail(
            "not on a terminal: pass --yes to apply without confirmation "
            "(or --dry-run to only see the plan)"
        )

    async def run() -> ApplyResult:
        async with open_runtime(
            manifest,
            settings,
            events=RunProgress(),
            journal=journal_for(manifest_path, journal),
        ) as runtime:
            return await apply(
                manifest,
                runtime,
                confirm=_confirmation(yes=yes, dry_run=dry_run),
                force=force,
                report_path=Path(report) if report else None,
                reviewed=reviewed,
                verify=verify,
                invocation=_invocation(settings.api_base or manifest.api_base),
            )

    try:
        with lock_for(manifest_path, lock):
            result = asyncio.run(run())
    except LockBusy as busy:
        fail(str(busy), ExitCode.LOCKED)
    except BulkPolyvError as error:  # a file the run must write, found before any request
        fail(str(error))
    sys.exit(_report_apply(result, dry_run))


def _retry_keys(report: str | None, manifest_digest: str) -> set[ItemKey] | None:
    """``--retry-failed``: the items to run again, from a report of this manifest."""
    try:
        return failed_items(Path(report), manifest_digest) if report else None
    except BulkPolyvError as error:
        fail(str(error))


def _invocation(api_base: str) -> Invocation:
    """The command and its flags for the report (secrets never come through flags)."""
    context = click.get_current_context()
    flags = {k: v for k, v in context.params.items() if v not in (None, False, ())}
    if "api_base" in flags:
        flags["api_base"] = redact_url(flags["api_base"])
    return Invocation(f"bulkpolyv {context.info_name}", flags, redact_url(api_base) or "")


def _confirmation(*, yes: bool, dry_run: bool) -> Callable[[Plan], bool]:
    """Show the plan; then stop (``--dry-run``), go on (``--yes``) or ask."""

    def confirm(result: Plan) -> bool:
        click.echo(render_text(result))
        if dry_run:
            return False
        return yes or click.confirm("Apply these changes?", default=False)

    return confirm


def _report_apply(result: ApplyResult, dry_run: bool) -> ExitCode:
    """Print what the run did; its exit code."""
    if result.status is ApplyStatus.REFUSED:
        click.echo(render_text(result.plan))
        click.echo(
            "bulkpolyv: refused by the safety check: "
            + "; ".join(result.safety_reasons)
            + ". Check the manifest; pass --force if this is really intended.",
            err=True,
        )
        return ExitCode.REFUSED
    if result.status is ApplyStatus.DECLINED:
        return ExitCode.OK if dry_run else ExitCode.ERROR
    if result.status is ApplyStatus.NOTHING_TO_DO:
        click.echo(render_text(result.plan))
    click.echo(result.summary)
    if result.journal:
        click.echo(f"journal: {result.journal}", err=True)
    if result.status is ApplyStatus.ABORTED:
        click.echo(f"bulkpolyv: stopped: {result.reason}", err=True)
    return ExitCode(result.exit_code)


@cli.command(name="export")
@click.argument("manifest_path", metavar="MANIFEST", type=click.Path())
@click.option(
    "--account",
    "accounts",
    multiple=True,
    help="Account name from MANIFEST; repeatable (default: all).",
)
@click.option("--channels", help="Comma-separated channel ids (default: the manifest's).")
@click.option(
    "--channels-file",
    type=click.Path(exists=True, dir_okay=False),
    help="A CSV with a channel_id column, or one channel id per line.",
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
@API_BASE
@INSECURE
def export_command(
    manifest_path: str,
    accounts: tuple[str, ...],
    channels: str | None,
    channels_file: str | None,
    out: str,
    csv_over: int,
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
                manifest, runtime, names=accounts, channel_ids=ids, out=Path(out), csv_over=csv_over
            )

    try:
        written = asyncio.run(run())
    except BulkPolyvError as error:
        fail(str(error))
    for path in written:
        click.echo(f"wrote {path}")


@cli.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", type=int, default=8790, show_default=True, help="0 picks a free port.")
@click.option(
    "--state",
    "state_file",
    type=click.Path(exists=True, dir_okay=False),
    help="YAML/JSON state to start from.",
)
@click.option("--dump", type=click.Path(dir_okay=False), help="Write the state here on exit.")
@click.option("--rate", default="1500/10", show_default=True, help="POLYV's limit, N/S.")
@click.option(
    "--block",
    type=float,
    default=300.0,
    show_default=True,
    help="Seconds an address stays blocked after going over.",
)
@click.option("--latency", default="0", help="Seconds, or a range MIN-MAX.")
@click.option("--error-rate", type=float, default=0.0, help="Share of 500/502/503 answers.")
@click.option("--drop-rate", type=float, default=0.0, help="Share of dropped connections.")
@click.option("--seed", type=int, default=0)
@click.option("--omit-enable", is_flag=True, help="List monitors without `enable`.")
def sim(
    host: str,
    port: int,
    state_file: str | None,
    dump: str | None,
    rate: str,
    block: float,
    latency: str,
    error_rate: float,
    drop_rate: float,
    seed: int,
    omit_enable: bool,
) -> None:
    """Run the embedded POLYV simulator until Ctrl-C."""
    from bulkpolyv.sim import FaultConfig, PolyvSimulator, SimConfig, SimServer, SimState

    requests, per_seconds = parse_rate(rate)
    low, _, high = latency.partition("-")
    simulator = PolyvSimulator(
        SimState.load(state_file) if state_file else SimState(),
        SimConfig(
            rate_requests=requests or 1500,
            rate_seconds=per_seconds or 10.0,
            block_seconds=block,
            list_includes_enable=not omit_enable,
        ),
        FaultConfig(
            latency_min=float(low),
            latency_max=float(high or low),
            error_rate=error_rate,
            drop_rate=drop_rate,
            seed=seed,
        ),
    )

    async def serve() -> None:
        server = SimServer(simulator, host, port)
        url = await server.start()
        click.echo(f"bulkpolyv sim listening on {url}", err=False)
        sys.stdout.flush()
        try:
            await asyncio.Event().wait()
        finally:
            await server.stop()

    try:
        asyncio.run(serve())
    except KeyboardInterrupt:
        pass
    finally:
        if dump:
            simulator.state.dump(dump)


@cli.command()
@click.argument("manifest_path", metavar="MANIFEST", type=click.Path(), default="")
@click.option("--seed", type=int, default=7, show_default=True)
def demo(manifest_path: str, seed: int) -> None:
    """Plan and apply a manifest against the embedded simulator, seeded with drift."""
    from bulkpolyv.demo import run_demo

    sys.exit(run_demo(manifest_path or None, seed=seed))


def main() -> None:
    try:
        cli(standalone_mode=True)
    except BulkPolyvError as error:
        fail(str(error))
    except KeyboardInterrupt:  # outside apply's own handling: reads, prompts, export
        fail("interrupted", ExitCode.INTERRUPTED)

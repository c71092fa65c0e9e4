"""The ``bulkpolyv`` command: parse flags, call the library, map outcomes to exit codes.

Exit codes: 0 done / nothing to do / valid; 1 error before any write (bad manifest, bad
flags, declined); 2 ``plan`` found changes; 3 some items failed or were skipped; 4 refused
by the safety check; 5 another run holds the lock; 130 interrupted.
"""

from __future__ import annotations

import asyncio
import csv
import ipaddress
import json
import logging
import os
import sys
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import click

from bulkpolyv.errors import BulkPolyvError
from bulkpolyv.journal import LockBusy, RunLock, default_journal_path, default_lock_path
from bulkpolyv.manifest import Manifest, ManifestError, ManifestSpec, load_manifest
from bulkpolyv.manifest.model import POLYV_CEILING_REQUESTS, worst_case_per_polyv_window
from bulkpolyv.plan import Plan, render_json, render_markdown, render_text
from bulkpolyv.planfile import ReviewedPlan, ReviewedPlanError, write_plan_file
from bulkpolyv.run import (
    ApplyStatus,
    RunSettings,
    apply,
    failed_items,
    open_runtime,
    read_plan,
    select,
)

EXIT_OK, EXIT_ERROR, EXIT_CHANGES, EXIT_PARTIAL, EXIT_REFUSED, EXIT_LOCKED = 0, 1, 2, 3, 4, 5
EXIT_INTERRUPTED = 130
RENDERERS = {"text": render_text, "json": render_json, "markdown": render_markdown}

log = logging.getLogger("bulkpolyv")


def _fail(message: str, code: int = EXIT_ERROR) -> None:
    click.echo(f"bulkpolyv: {message}", err=True)
    sys.exit(code)


def _load(path: str, *, resolve_env: bool = True) -> Manifest:
    try:
        return load_manifest(path, resolve_env=resolve_env)
    except ManifestError as error:
        click.echo(str(error), err=True)
        sys.exit(EXIT_ERROR)


def _parse_rate(text: str | None) -> tuple[int | None, float | None]:
    if not text:
        return None, None
    try:
        count, seconds = text.split("/", 1)
        return int(count), float(seconds)
    except ValueError:
        raise click.BadParameter("use N/S, e.g. 1200/10", param_hint="--rate") from None


def _warn_about_transport(api_base: str, insecure: bool) -> None:
    parts = urlsplit(api_base)
    host = parts.hostname or ""
    try:
        loopback = host == "localhost" or ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = False
    if parts.scheme == "http" and not loopback:
        click.echo(
            f"bulkpolyv: WARNING: {parts.scheme}://{host} is plain HTTP: requests and "
            "monitor passwords cross the network unencrypted",
            err=True,
        )
    if insecure:
        click.echo(
            "bulkpolyv: WARNING: --insecure: TLS certificates are NOT checked. Use it "
            "only against a local simulator.",
            err=True,
        )


def run_options(func: Any) -> Any:
    options = [
        click.option(
            "--api-base",
            envvar="BULKPOLYV_API_BASE",
            help="Override the manifest's api_base (e.g. a local `bulkpolyv sim`).",
        ),
        click.option("--rate", help="Requests per window, N/S (default: the manifest's limits)."),
        click.option("--concurrency", type=click.IntRange(1, 1000), help="Requests in flight."),
        click.option("--timeout", type=click.FloatRange(min=0.1), help="Seconds per request."),
        click.option(
            "--only",
            multiple=True,
            help="Only these accounts (glob) or account/channel_id; repeatable.",
        ),
        click.option(
            "--cooldown",
            type=click.FloatRange(min=0),
            default=300.0,
            show_default=True,
            help="Seconds to pause everything after a rate limit.",
        ),
        click.option("--insecure", is_flag=True, help="Skip TLS checks (local simulator only)."),
    ]
    for option in reversed(options):
        func = option(func)
    return func


def _settings(
    api_base: str | None,
    rate: str | None,
    concurrency: int | None,
    timeout: float | None,
    cooldown: float,
    insecure: bool,
) -> RunSettings:
    requests, per_seconds = _parse_rate(rate)
    if (
        requests is not None
        and per_seconds is not None
        and worst_case_per_polyv_window(requests, per_seconds) > POLYV_CEILING_REQUESTS
    ):
        raise click.BadParameter(
            f"{rate} can exceed POLYV's 1500 requests per 10 s", param_hint="--rate"
        )
    return RunSettings(
        api_base=api_base,
        requests=requests,
        per_seconds=per_seconds,
        concurrency=concurrency,
        timeout=timeout,
        cooldown=cooldown,
        insecure=insecure,
    )


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("-v", "--verbose", count=True, help="More log output (-vv for debug).")
@click.option("-q", "--quiet", is_flag=True, help="Only errors and the final line.")
@click.option(
    "--log-format", type=click.Choice(["text", "json"]), default="text", help="Log line format."
)
@click.version_option(package_name="bulkpolyv")
@click.pass_context
def cli(ctx: click.Context, verbose: int, quiet: bool, log_format: str) -> None:
    """Bring POLYV record callbacks and monitor accounts to the state in a YAML manifest."""
    from bulkpolyv.logs import configure_logging

    configure_logging(verbose=verbose, quiet=quiet, json_format=log_format == "json")
    ctx.obj = {"quiet": quiet}


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
    sys.exit(EXIT_ERROR if bad else EXIT_OK)


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
    manifest_path: str,
    api_base: str | None,
    rate: str | None,
    concurrency: int | None,
    timeout: float | None,
    only: tuple[str, ...],
    cooldown: float,
    insecure: bool,
    fmt: str,
    out: str | None,
) -> None:
    """Read the live state and show what apply would change (exit 2 when changes pending)."""
    manifest = select(_load(manifest_path), only)
    settings = _settings(api_base, rate, concurrency, timeout, cooldown, insecure)
    _warn_about_transport(settings.api_base or manifest.api_base, insecure)

    async def run() -> Plan:
        async with open_runtime(manifest, settings) as runtime:
            result, _ = await read_plan(runtime, manifest)
            return result

    result = asyncio.run(run())
    click.echo(RENDERERS[fmt](result))
    if out:
        write_plan_file(Path(out), result, manifest)
    if result.problems:
        sys.exit(EXIT_ERROR)
    sys.exit(EXIT_CHANGES if result.has_changes else EXIT_OK)


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
    api_base: str | None,
    rate: str | None,
    concurrency: int | None,
    timeout: float | None,
    only: tuple[str, ...],
    cooldown: float,
    insecure: bool,
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
        _fail(
            "--plan applies exactly the reviewed plan: it does not combine with --only or "
            "--retry-failed"
        )
    keys = failed_items(Path(retry_failed)) if retry_failed else None
    manifest = select(_load(manifest_path), only, keys)
    try:
        reviewed = ReviewedPlan(Path(plan_file), manifest) if plan_file else None
    except ReviewedPlanError as error:
        _fail(str(error))
    settings = _settings(api_base, rate, concurrency, timeout, cooldown, insecure)
    _warn_about_transport(settings.api_base or manifest.api_base, insecure)
    interactive = sys.stdin.isatty() and sys.stdout.isatty()
    if not (yes or dry_run or interactive):
        _fail(
            "not on a terminal: pass --yes to apply without confirmation "
            "(or --dry-run to only see the plan)"
        )
    try:
        run_lock = RunLock(Path(lock) if lock else default_lock_path(manifest_path))
        run_lock.acquire()
    except LockBusy as busy:
        _fail(str(busy), EXIT_LOCKED)
    try:
        code = asyncio.run(
            _apply(
                manifest,
                settings,
                yes=yes,
                dry_run=dry_run,
                force=force,
                report=report,
                journal=journal,
                manifest_path=manifest_path,
                reviewed=reviewed,
                verify=verify,
            )
        )
    finally:
        run_lock.release()
    sys.exit(code)


async def _apply(
    manifest: Manifest,
    settings: RunSettings,
    *,
    yes: bool,
    dry_run: bool,
    force: bool,
    report: str | None,
    journal: str | None,
    manifest_path: str,
    reviewed: ReviewedPlan | None,
    verify: bool,
) -> int:
    def confirm(result: Plan) -> bool:
        click.echo(render_text(result))
        if dry_run:
            return False
        return yes or click.confirm("Apply these changes?", default=False)

    async with open_runtime(manifest, settings) as runtime:
        result = await apply(
            manifest,
            runtime,
            confirm=confirm,
            force=force,
            journal_path=Path(journal) if journal else default_journal_path(manifest_path),
            report_path=Path(report) if report else None,
            reviewed=reviewed,
            verify=verify,
        )
    if result.status is ApplyStatus.REFUSED:
        click.echo(render_text(result.plan))
        click.echo(
            "bulkpolyv: refused by the safety check: "
            + "; ".join(result.safety_reasons)
            + ". Check the manifest; pass --force if this is really intended.",
            err=True,
        )
        return EXIT_REFUSED
    if result.status is ApplyStatus.DECLINED:
        return EXIT_OK if dry_run else EXIT_ERROR
    if result.status is ApplyStatus.NOTHING_TO_DO:
        click.echo(render_text(result.plan))
    click.echo(result.summary)
    if result.journal:
        click.echo(f"journal: {result.journal}", err=True)
    if result.status is ApplyStatus.INTERRUPTED:
        return EXIT_INTERRUPTED
    counts = result.counts
    troubled = counts["failed"] or counts["skipped"] or counts["conflict"]
    return EXIT_PARTIAL if troubled else EXIT_OK


def _channel_ids(channels: str | None, channels_file: str | None) -> list[int] | None:
    if channels and channels_file:
        raise click.UsageError("give --channels or --channels-file, not both")
    try:
        if channels:
            return [int(part) for part in channels.replace(" ", "").split(",") if part]
        if channels_file:
            lines = Path(channels_file).read_text(encoding="utf-8-sig").splitlines()
            if lines and "channel_id" in lines[0]:
                rows = csv.DictReader(lines)
                return sorted({int(row["channel_id"]) for row in rows if row["channel_id"]})
            return [int(line) for line in lines if line.strip()]
    except ValueError as exc:
        raise click.BadParameter(f"channel ids must be whole numbers ({exc})") from None
    return None


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
@click.option("--api-base", envvar="BULKPOLYV_API_BASE", help="Override the manifest's api_base.")
@click.option("--insecure", is_flag=True, help="Skip TLS checks (local simulator only).")
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
    from bulkpolyv.export import export

    manifest = _load(manifest_path)
    ids = _channel_ids(channels, channels_file)
    settings = _settings(api_base, None, None, None, 300.0, insecure)
    _warn_about_transport(settings.api_base or manifest.api_base, insecure)

    async def run() -> list[Path]:
        async with open_runtime(manifest, settings) as runtime:
            return await export(
                manifest, runtime, names=accounts, channel_ids=ids, out=Path(out), csv_over=csv_over
            )

    try:
        written = asyncio.run(run())
    except BulkPolyvError as error:
        _fail(str(error))
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

    requests, per_seconds = _parse_rate(rate)
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
        _fail(str(error))
    except KeyboardInterrupt:  # outside apply's own handling: reads, prompts, export
        _fail("interrupted", EXIT_INTERRUPTED)


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    main()

"""``bulkpolyv plan`` and ``bulkpolyv apply``: parse, call the library, map to an exit code.

Quiet (``-q``) means a run that succeeds prints nothing; one that fails prints its causes
(one line per cause, :mod:`~bulkpolyv.commands.causes`) and the summary line.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

import click

from bulkpolyv import eventloop
from bulkpolyv.commands import causes
from bulkpolyv.commands.common import Output, format_option, output, plan_colour, verbosity
from bulkpolyv.commands.lines import METRICS_FILE, metrics_written, say
from bulkpolyv.errors import BulkPolyvError
from bulkpolyv.events import RunEvents, fan_out
from bulkpolyv.journal import journal_for
from bulkpolyv.logs import EventLog
from bulkpolyv.manifest import Manifest
from bulkpolyv.options import (
    ExitCode,
    fail,
    load,
    run_options,
    warn_about_transport,
    writable_or_fail,
)
from bulkpolyv.plan import ItemKey, Plan
from bulkpolyv.planfile import ReviewedPlan, ReviewedPlanError, write_plan_file
from bulkpolyv.privatefiles import PrivateFileError
from bulkpolyv.progress import RunProgress, on_a_terminal
from bulkpolyv.render import render_json, render_markdown, render_text
from bulkpolyv.report import ApplyResult, ApplyStatus, Invocation, failed_items
from bulkpolyv.run import RunSettings, apply, open_runtime, read_plan
from bulkpolyv.runlock import LockBusy, lock_for
from bulkpolyv.selection import select
from bulkpolyv.shard import Shard
from bulkpolyv.urls import redact_store_url, redact_url

RENDERERS = {"text": render_text, "json": render_json, "markdown": render_markdown}


def show_plan(plan: Plan, fmt: str = "text", *, colour: bool = False) -> None:
    """Print a plan; ``colour`` only for text on a terminal (see :func:`plan_colour`)."""
    text = render_text(plan, color=colour) if fmt == "text" else RENDERERS[fmt](plan)
    click.echo(text, color=colour if fmt == "text" else False)


def selected(manifest: Manifest, only: tuple[str, ...], keys=None, shard=None) -> Manifest:  # type: ignore[no-untyped-def]
    """``select``, but an ``--only`` pattern that matches nothing is an error naming it."""
    for pattern in only:
        if not select(manifest, (pattern,)).accounts:
            names = ", ".join(a.name for a in manifest.accounts) or "(none)"
            fail(f"--only {pattern!r} matches nothing in {manifest.path}; its accounts: {names}")
    return select(manifest, only, keys, shard)


def progress_for(out: Output) -> RunProgress | None:
    """The bar or the heartbeat lines; none under ``-q``, nor for JSON logs off a
    terminal (a log shipper wants JSON lines only: the log has the phases)."""
    if out.quiet or (out.json_logs and not out.console.is_terminal):
        return None
    return RunProgress(console=out.console)


def observers(display: RunProgress | None) -> RunEvents:
    """The progress display and the run's events as log lines."""
    log = EventLog(announce_cooldowns=display is None)
    return fan_out(display, log)


def print_causes(terminal: Output, troubles: list[causes.Trouble]) -> None:
    """One line per cause on stderr (a JSON object each with ``--log-format json``)."""
    for line in causes.cause_lines(troubles):
        if terminal.json_logs:
            say(terminal, line, event="cause", err=True, level="ERROR")
        else:
            click.echo(f"bulkpolyv: {line}", err=True)


@click.command()
@click.argument("manifest_path", metavar="MANIFEST", type=click.Path())
@run_options
@format_option(
    RENDERERS, "text for people, json for programs, markdown for a ticket or pull request."
)
@click.option(
    "--out",
    type=click.Path(dir_okay=False),
    help="Also write the plan here, for review and `apply --plan`.",
)
@click.option(
    "--check-channel-callbacks",
    is_flag=True,
    help="Also read each channel's callback setting and warn about channels that use "
    "their own callbacks instead of the account's (one request per channel).",
)
@METRICS_FILE
@verbosity
def plan(
    manifest_path: str,
    settings: RunSettings,
    only: tuple[str, ...],
    fmt: str,
    out: str | None,
    check_channel_callbacks: bool,
    metrics_file: str | None,
) -> None:
    """Read the live state and show what apply would change.

    Exit 0: no changes; 2: changes pending; 1: the check failed (an error wins over drift).
    """
    terminal = output()
    with metrics_written(metrics_file, "plan", manifest_path) as figures:
        manifest = selected(load(manifest_path), only, shard=settings.shard)
        warn_about_transport(settings.api_base or manifest.api_base, settings.insecure)
        if out:  # found now, not after every read
            writable_or_fail(Path(out))

        async def run() -> Plan | None:
            async with open_runtime(
                manifest, settings, events=observers(progress_for(terminal))
            ) as runtime:
                try:
                    with runtime.stop.on_signals():  # SIGINT/SIGTERM/SIGHUP: stop reading
                        read = await read_plan(
                            runtime, manifest, check_channel_callbacks=check_channel_callbacks
                        )
                    return None if runtime.stop.is_set() else read
                finally:
                    figures.requests = runtime.gate.sent
                    figures.cooldowns = runtime.gate.cooldown.trips

        result = eventloop.run(run())
        if result is None:  # a partial read is no plan: say so, show none
            fail("interrupted while reading the live state: no plan", ExitCode.INTERRUPTED)
        figures.items = dict(result.counts())
        if not terminal.quiet or result.has_drift or result.problems:
            show_plan(result, fmt, colour=plan_colour())
        if out:
            try:
                write_plan_file(Path(out), result)
            except PrivateFileError as error:  # a full disk, say
                fail(str(error))
        if result.problems:
            print_causes(terminal, causes.from_plan(result.problems))
            sys.exit(ExitCode.ERROR)
        sys.exit(ExitCode.CHANGES if result.has_drift else ExitCode.OK)


@click.command(name="apply")
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
@METRICS_FILE
@verbosity
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
    metrics_file: str | None,
) -> None:
    """Apply the manifest: plan, confirm, change what differs (see exit codes in README)."""
    terminal = output()
    with metrics_written(metrics_file, "apply", manifest_path) as figures:
        manifest, reviewed = what_to_apply(
            manifest_path, only, retry_failed, plan_file, settings.shard
        )
        warn_about_transport(settings.api_base or manifest.api_base, settings.insecure)
        if not (yes or dry_run or on_a_terminal()):
            fail(
                "not on a terminal: pass --yes to apply without confirmation "
                "(or --dry-run to only see the plan)"
            )
        display = progress_for(terminal)
        called = invocation(settings.api_base or manifest.api_base)

        async def run() -> ApplyResult:
            async with open_runtime(
                manifest,
                settings,
                events=observers(display),
                journal=journal_for(manifest_path, journal),
            ) as runtime:
                try:
                    return await apply(
                        manifest,
                        runtime,
                        confirm=confirmation(terminal, display, yes=yes, dry_run=dry_run),
                        force=force,
                        report_path=Path(report) if report else None,
                        reviewed=reviewed,
                        verify=verify,
                        invocation=called,
                    )
                finally:
                    figures.requests = runtime.gate.sent
                    figures.cooldowns = runtime.gate.cooldown.trips

        result = locked_run(manifest_path, lock, run)
        figures.items = result.counts
        sys.exit(report_apply(terminal, result, dry_run=dry_run))


def locked_run(
    manifest_path: str, lock: str | None, run: Callable[[], Coroutine[Any, Any, ApplyResult]]
) -> ApplyResult:
    """``run`` under the manifest's lock; a held lock or a file the run must write that
    cannot be written (found before any request) is one sentence."""
    try:
        with lock_for(manifest_path, lock):
            return eventloop.run(run())
    except LockBusy as busy:
        fail(str(busy), ExitCode.LOCKED)
    except BulkPolyvError as error:
        fail(str(error))


def what_to_apply(
    manifest_path: str,
    only: tuple[str, ...],
    retry_failed: str | None,
    plan_file: str | None,
    shard: Shard | None = None,
) -> tuple[Manifest, ReviewedPlan | None]:
    """The manifest narrowed by ``--only``/``--retry-failed``, and the reviewed plan."""
    if plan_file and (retry_failed or only):
        fail(
            "--plan applies exactly the reviewed plan: it does not combine with --only or "
            "--retry-failed"
        )
    loaded = load(manifest_path)
    manifest = selected(loaded, only, retry_keys(retry_failed, loaded.digest), shard)
    try:
        return manifest, ReviewedPlan(Path(plan_file), manifest) if plan_file else None
    except ReviewedPlanError as error:
        fail(str(error))


def retry_keys(report: str | None, manifest_digest: str) -> set[ItemKey] | None:
    """``--retry-failed``: the items to run again, from a report of this manifest."""
    try:
        return failed_items(Path(report), manifest_digest) if report else None
    except BulkPolyvError as error:
        fail(str(error))


def invocation(api_base: str) -> Invocation:
    """The command and its flags for the report (secrets never come through flags)."""
    context = click.get_current_context()
    flags = {k: v for k, v in context.params.items() if v not in (None, False, ())}
    settings = flags.pop("settings", None)
    if isinstance(settings, RunSettings):  # the run options given, not their defaults
        defaults = RunSettings()
        flags.update(
            (name, value)
            for name, value in vars(settings).items()
            if value != getattr(defaults, name)
        )
    if "api_base" in flags:
        flags["api_base"] = redact_url(flags["api_base"])
    if "shard" in flags:
        flags["shard"] = str(flags["shard"])
    if "budget" in flags:  # a Redis URL may carry a password, in its userinfo or query
        flags["budget"] = redact_store_url(flags["budget"])
    return Invocation(f"bulkpolyv {context.info_name}", flags, redact_url(api_base) or "")


def confirmation(
    terminal: Output, display: RunProgress | None, *, yes: bool, dry_run: bool
) -> Callable[[Plan], bool]:
    """Show the plan (not under ``-q --yes``); then stop (``--dry-run``), go on (``--yes``)
    or ask. Time spent at the prompt is not the run's: the display is told to leave it out."""

    def confirm(result: Plan) -> bool:
        if not (terminal.quiet and yes) or dry_run:
            show_plan(result, colour=plan_colour())
        if dry_run:
            return False
        if yes:
            return True
        asked = time.monotonic()
        try:
            return click.confirm("Apply these changes?", default=False)
        except click.Abort as abort:  # end of input (Ctrl-D): as good as "no", not an error
            if isinstance(abort.__context__, KeyboardInterrupt):
                raise  # a Ctrl-C stays an interrupt (exit 130)
            click.echo()
            return False
        finally:
            if display is not None:
                display.exclude(time.monotonic() - asked)

    return confirm


def report_apply(terminal: Output, result: ApplyResult, *, dry_run: bool) -> ExitCode:
    """Print what the run did; its exit code."""
    if result.status is ApplyStatus.REFUSED:
        show_plan(result.plan, colour=plan_colour())
        click.echo(
            "bulkpolyv: refused by the safety check: "
            + "; ".join(result.safety_reasons)
            + ". Check the manifest; pass --force if this is really intended.",
            err=True,
        )
        return ExitCode.REFUSED
    if result.status is ApplyStatus.DECLINED:
        click.echo("Dry run: nothing was applied." if dry_run else "Apply cancelled.", err=True)
        return ExitCode.OK if dry_run else ExitCode.ERROR
    if result.status is ApplyStatus.NOTHING_TO_DO and not terminal.quiet:
        show_plan(result.plan, colour=plan_colour())
    counts = result.counts
    troubled = bool(counts["failed"] or counts["skipped"] or counts["conflict"])
    interrupted = result.status in (ApplyStatus.INTERRUPTED, ApplyStatus.ABORTED)
    problems = {p.key for p in result.plan.problems}
    troubles = causes.from_plan(result.plan.problems) + causes.from_outcomes(
        o for o in result.outcomes if o.key not in problems
    )
    # An aborted run's untouched items are said once, with the reason, on the last line.
    untouched = f"not attempted: {result.reason}"
    not_attempted = sum(1 for t in troubles if t.message == untouched)
    if result.report_error:
        journal = f"; the journal has the record: {result.journal}" if result.journal else ""
        click.echo(f"bulkpolyv: {result.report_error}{journal}", err=True)
    if result.status is ApplyStatus.ABORTED:
        troubles = [t for t in troubles if t.message != untouched]
    if troubled or interrupted:
        print_causes(terminal, troubles)
    if not terminal.quiet or troubled or interrupted:
        say(terminal, result.summary, event="summary", status=result.status.value, **counts)
    if result.journal and not terminal.quiet:
        say(terminal, f"journal: {result.journal}", event="journal", err=True, path=result.journal)
    if result.status is ApplyStatus.ABORTED:
        also = f" ({_items_count(not_attempted)} not attempted)" if not_attempted else ""
        click.echo(f"bulkpolyv: stopped: {result.reason}{also}", err=True)
    return ExitCode(result.exit_code)


def _items_count(count: int) -> str:
    return f"{count:,} item{'s' if count != 1 else ''}"

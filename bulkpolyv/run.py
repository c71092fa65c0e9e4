"""Orchestration: read the live state, plan, and apply — the library behind the commands.

Builds the per-run objects (one aiohttp session, one gate for the whole process, one
client, one executor) inside the running loop and closes what it opened. Side effects are
keyword arguments with real defaults (``session=``, ``sleep=``, ``rng=``), so tests and the
simulator plug in without test branches here.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import fnmatch
import json
import random
import signal
import time
from collections.abc import AsyncIterator, Callable, Iterable, Iterator
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

import aiohttp

from bulkpolyv.client import PolyvClient, new_session
from bulkpolyv.executor import Executor, ItemOutcome, RetryPolicy, Sleep, Status, reads_for
from bulkpolyv.journal import Journal, now_iso, write_report
from bulkpolyv.manifest.model import Manifest
from bulkpolyv.plan import ItemKey, LiveState, Plan, check_safety, make_plan
from bulkpolyv.planfile import ReviewedPlan
from bulkpolyv.progress import RunProgress
from bulkpolyv.ratelimit import CoolDown, PacedWindowLimiter, RequestGate

REPORT_FORMAT_VERSION = 1


@dataclass
class RunSettings:
    """Command-line overrides of the manifest's ``api_base`` and ``limits``."""

    api_base: str | None = None
    requests: int | None = None
    per_seconds: float | None = None
    concurrency: int | None = None
    timeout: float | None = None
    attempts: int | None = None
    cooldown: float = 300.0
    insecure: bool = False
    connection_failure_burst: int = 50
    backoff_base: float = 0.5
    backoff_cap: float = 30.0


@dataclass
class Runtime:
    """The per-run objects, made inside the loop by :func:`open_runtime`."""

    client: PolyvClient
    gate: RequestGate
    executor: Executor
    api_base: str


@contextlib.asynccontextmanager
async def open_runtime(
    manifest: Manifest,
    settings: RunSettings,
    *,
    session: aiohttp.ClientSession | None = None,
    sleep: Sleep = asyncio.sleep,
    rng: random.Random | None = None,
    clock: Callable[[], float] = time.monotonic,
) -> AsyncIterator[Runtime]:
    limits = manifest.limits
    concurrency = settings.concurrency or limits.concurrency
    limiter = PacedWindowLimiter(
        settings.requests or limits.requests,
        settings.per_seconds or limits.per_seconds,
        clock=clock,
        sleep=sleep,
    )
    gate = RequestGate(
        limiter,
        CoolDown(settings.cooldown, clock=clock, sleep=sleep),
        concurrency,
        connection_failure_burst=settings.connection_failure_burst,
    )
    api_base = settings.api_base or manifest.api_base
    async with contextlib.AsyncExitStack() as stack:
        if session is None:
            session = await stack.enter_async_context(new_session(connections=concurrency))
        client = PolyvClient(
            session,
            api_base=api_base,
            timeout=settings.timeout or limits.timeout,
            gate=gate,
            ssl=not settings.insecure,
        )
        policy = RetryPolicy(
            attempts=settings.attempts or limits.attempts,
            backoff_base=settings.backoff_base,
            backoff_cap=settings.backoff_cap,
            rng=rng or random.Random(),
            sleep=sleep,
        )
        executor = Executor(client, concurrency=concurrency, policy=policy, clock=clock)
        yield Runtime(client, gate, executor, api_base)


async def read_plan(
    runtime: Runtime,
    manifest: Manifest,
    *,
    progress_stream: Any = None,
    interactive: bool | None = None,
) -> tuple[Plan, LiveState]:
    """Read the live state (with a progress bar or heartbeat on stderr) and plan."""
    total = sum(1 for _ in reads_for(manifest))
    with RunProgress(
        total,
        label="read",
        stream=progress_stream,
        interactive=interactive,
        requests=lambda: runtime.gate.sent,
    ) as progress:
        runtime.gate.on_cooldown = progress.cooling
        live = await runtime.executor.refresh(manifest, on_read=progress.tick)
    return make_plan(manifest, live), live


# --- choosing what to run on --------------------------------------------------------------


def select(
    manifest: Manifest, only: Iterable[str] = (), keys: set[ItemKey] | None = None
) -> Manifest:
    """The manifest narrowed to ``--only`` patterns (``glob`` or ``glob/channel_id``) and,
    for ``--retry-failed``, to the given items."""
    # Each pattern is (account glob, channel id or None for the whole account).
    patterns = [(p.split("/", 1)[0], p.split("/", 1)[1] if "/" in p else None) for p in only]

    def wanted(name: str, channel_id: int | None) -> bool:
        """Whole-account patterns take everything; channel patterns only their channel
        (and not the account's callback)."""
        return not patterns or any(
            fnmatch.fnmatchcase(name, glob) and (channel is None or channel == str(channel_id))
            for glob, channel in patterns
            if channel_id is not None or channel is None
        )

    accounts = []
    for account in manifest.accounts:
        manages = account.manages_callback and wanted(account.name, None)
        if keys is not None:
            manages = manages and ItemKey(account.name) in keys
        channels = []
        for channel in account.channels:
            if not wanted(account.name, channel.channel_id):
                continue
            monitors = (
                channel.monitors
                if keys is None
                else tuple(
                    m
                    for m in channel.monitors
                    if ItemKey(account.name, channel.channel_id, m.id) in keys
                )
            )
            if monitors:
                channels.append(dataclasses.replace(channel, monitors=monitors))
        if manages or channels:
            accounts.append(
                dataclasses.replace(account, manages_callback=manages, channels=tuple(channels))
            )
    return dataclasses.replace(manifest, accounts=tuple(accounts))


def failed_items(report_path: Path) -> set[ItemKey]:
    """The failed and skipped items of an earlier run's report."""
    report = json.loads(report_path.read_text(encoding="utf-8"))
    return {
        ItemKey(item["account"], item.get("channel_id") or 0, item.get("monitor_id") or 0)
        for item in report.get("items", [])
        if item.get("status") in (Status.FAILED.value, Status.SKIPPED.value)
    }


# --- apply --------------------------------------------------------------------------------


class ApplyStatus(StrEnum):
    NOTHING_TO_DO = "nothing_to_do"
    REFUSED = "refused_by_safety"
    DECLINED = "declined"
    COMPLETED = "completed"
    INTERRUPTED = "interrupted"


@dataclass
class ApplyResult:
    status: ApplyStatus
    plan: Plan
    outcomes: list[ItemOutcome] = field(default_factory=list)
    requests: int = 0
    summary: str = ""
    safety_reasons: tuple[str, ...] = ()
    journal: Path | None = None

    @property
    def counts(self) -> dict[str, int]:
        counts = {s.value: 0 for s in Status}
        for outcome in self.outcomes:
            counts[outcome.status.value] += 1
        return counts


async def apply(
    manifest: Manifest,
    runtime: Runtime,
    *,
    confirm: Callable[[Plan], bool] = lambda plan: True,
    force: bool = False,
    journal_path: Path | None = None,
    report_path: Path | None = None,
    progress_stream: Any = None,
    interactive: bool | None = None,
    handle_signals: bool = True,
    reviewed: ReviewedPlan | None = None,
    verify: bool = False,
) -> ApplyResult:
    """Read, plan, check safety, confirm, then apply, journal and report."""
    started_wall, started = now_iso(), time.monotonic()
    executor = runtime.executor
    if reviewed is not None:
        plan = reviewed.plan  # exactly what was reviewed; each item is re-read before writing
    else:
        with _stop_on_signals(executor, handle_signals):
            plan, _ = await read_plan(
                runtime, manifest, progress_stream=progress_stream, interactive=interactive
            )
    result = ApplyResult(ApplyStatus.COMPLETED, plan)
    if executor.stopping.is_set():  # interrupted while reading: a partial plan, never applied
        result.status = ApplyStatus.INTERRUPTED
        result.requests = runtime.gate.sent
        result.summary = (
            f"interrupted while reading the live state; nothing was written "
            f"(requests={result.requests})"
        )
        return result
    verdict = check_safety(plan)
    if verdict.refused and not force:
        result.status, result.safety_reasons = ApplyStatus.REFUSED, verdict.reasons
        return result
    if plan.has_changes and not confirm(plan):
        result.status = ApplyStatus.DECLINED
        return result
    if not plan.has_changes and not plan.problems:
        result.status = ApplyStatus.NOTHING_TO_DO

    journal = Journal(journal_path) if journal_path else None
    result.journal = journal_path
    progress = RunProgress(
        len(plan.operations) + len(plan.problems) + len(plan.unchanged),
        stream=progress_stream,
        interactive=interactive,
        requests=lambda: runtime.gate.sent,
        started=started,  # the final line's time covers the reads too
    )
    runtime.gate.on_cooldown = progress.cooling

    def on_outcome(outcome: ItemOutcome) -> None:
        progress.outcome(outcome)
        if journal is not None:
            journal.write({"event": "done", **outcome.to_dict()})

    def before_write(op: Any) -> None:
        if journal is not None:
            journal.write(
                {
                    "event": "sending",
                    "account": op.key.account,
                    "channel_id": op.key.channel_id or None,
                    "monitor_id": op.key.monitor_id or None,
                    "operation": op.kind.value,
                }
            )

    executor.on_outcome, executor.before_write = on_outcome, before_write
    with _stop_on_signals(executor, handle_signals):
        try:
            if journal is not None:
                journal.start()
                journal.write(
                    {
                        "event": "start",
                        "manifest": manifest.path,
                        "manifest_digest": manifest.digest,
                        "plan_checksum": plan.checksum(),
                        "operations": len(plan.operations),
                    }
                )
            with progress:
                result.outcomes = await executor.apply(
                    plan,
                    manifest,
                    conflicts=reviewed.conflict if reviewed is not None else None,
                    verify=verify,
                )
            if executor.stopping.is_set():
                result.status = ApplyStatus.INTERRUPTED
            result.requests = runtime.gate.sent
            result.summary = progress.summary()
            if journal is not None:
                journal.write(
                    {
                        "event": "end",
                        "status": result.status.value,
                        **result.counts,
                        "requests": result.requests,
                    }
                )
        finally:
            if journal is not None:
                await journal.close()
            if report_path is not None:
                write_report(
                    report_path,
                    build_report(
                        manifest,
                        result,
                        started_wall,
                        time.monotonic() - started,
                        runtime.gate.cooldown.trips,
                    ),
                )
    return result


@contextlib.contextmanager
def _stop_on_signals(executor: Executor, enabled: bool) -> Iterator[None]:
    """SIGINT/SIGTERM ask the executor to stop dispatching (requests in flight finish).
    Not held around the confirmation prompt: there, Ctrl-C must end the program at once."""
    loop = asyncio.get_running_loop()
    installed = []
    if enabled:
        for signum in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.add_signal_handler(signum, executor.stop)
                installed.append(signum)
    try:
        yield
    finally:
        for signum in installed:
            loop.remove_signal_handler(signum)


def build_report(
    manifest: Manifest, result: ApplyResult, started: str, duration: float, cooldowns: int
) -> dict[str, Any]:
    return {
        "format_version": REPORT_FORMAT_VERSION,
        "manifest": manifest.path,
        "manifest_digest": manifest.digest,
        "status": result.status.value,
        "started": started,
        "finished": now_iso(),
        "duration": round(duration, 3),
        "totals": {**result.counts, "requests": result.requests, "cooldowns": cooldowns},
        "items": sorted(
            (o.to_dict() for o in result.outcomes),
            key=lambda d: (d["account"], d["channel_id"] or 0, d["monitor_id"] or 0),
        ),
    }

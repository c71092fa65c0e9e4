"""Orchestration: read the live state, plan, and apply — the library behind the commands.

Builds the per-run objects (one aiohttp session, one gate for the whole process, one
client, one executor) inside the running loop and closes what it opened. Side effects are
keyword arguments with real defaults (``session=``, ``sleep=``, ``rng=``), and observers
(a progress display, the journal, a test's recorder) are handed to :func:`open_runtime`,
so tests and the simulator plug in without test branches here.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import fnmatch
import random
import signal
import time
from collections.abc import AsyncIterator, Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import aiohttp

from bulkpolyv.client import PolyvClient, new_session
from bulkpolyv.events import FanOut, RunEvents
from bulkpolyv.executor import Executor
from bulkpolyv.journal import Journal
from bulkpolyv.manifest.model import Manifest
from bulkpolyv.operations import reads_for
from bulkpolyv.plan import ItemKey, Plan, check_safety, make_plan
from bulkpolyv.planfile import ReviewedPlan
from bulkpolyv.ratelimit import CoolDown, PacedWindowLimiter, RequestGate
from bulkpolyv.report import ApplyResult, ApplyStatus, build_report, now_iso, write_report
from bulkpolyv.retry import RetryPolicy, Sleep


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

    gate: RequestGate
    executor: Executor
    events: RunEvents
    journal: Journal | None


@contextlib.asynccontextmanager
async def open_runtime(
    manifest: Manifest,
    settings: RunSettings,
    *,
    events: RunEvents | None = None,
    journal: Journal | None = None,
    session: aiohttp.ClientSession | None = None,
    sleep: Sleep = asyncio.sleep,
    rng: random.Random | None = None,
    clock: Callable[[], float] = time.monotonic,
) -> AsyncIterator[Runtime]:
    """The gate, client and executor for ``manifest``; ``events`` (and the ``journal``,
    which :func:`apply` opens once the plan is confirmed) observe everything they do."""
    limits = manifest.limits
    concurrency = settings.concurrency or limits.concurrency
    observers = FanOut(*(o for o in (events, journal) if o is not None))
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
        events=observers,
    )
    policy = RetryPolicy(
        attempts=settings.attempts or limits.attempts,
        backoff_base=settings.backoff_base,
        backoff_cap=settings.backoff_cap,
        rng=rng or random.Random(),
        sleep=sleep,
    )
    async with contextlib.AsyncExitStack() as stack:
        if session is None:
            session = await stack.enter_async_context(new_session(connections=concurrency))
        client = PolyvClient(
            session,
            api_base=settings.api_base or manifest.api_base,
            timeout=settings.timeout or limits.timeout,
            gate=gate,
            ssl=not settings.insecure,
        )
        executor = Executor(
            client, concurrency=concurrency, policy=policy, clock=clock, events=observers
        )
        yield Runtime(gate, executor, observers, journal)


async def read_plan(
    runtime: Runtime, manifest: Manifest, *, check_channel_callbacks: bool = False
) -> Plan:
    """Read the live state (a ``read`` phase for the observers) and plan; with
    ``check_channel_callbacks``, also each channel's callback setting, for the warning
    about channels that ignore their account's callbacks."""
    reads = list(reads_for(manifest, check_channel_callbacks=check_channel_callbacks))
    runtime.events.phase("read", len(reads), lambda: runtime.gate.sent)
    try:
        live = await runtime.executor.refresh(manifest, reads)
    finally:
        runtime.events.phase_done()
    return make_plan(manifest, live)


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
        callbacks = {
            kind: url
            for kind, url in account.callbacks.items()
            if wanted(account.name, None)
            and (keys is None or ItemKey.callback(account.name, kind) in keys)
        }
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
            monitoring = channel.monitoring
            if (
                keys is not None
                and ItemKey.monitoring(account.name, channel.channel_id) not in keys
            ):
                monitoring = None
            if monitors or monitoring is not None:
                channels.append(
                    dataclasses.replace(channel, monitors=monitors, monitoring=monitoring)
                )
        if callbacks or channels:
            accounts.append(
                dataclasses.replace(account, callbacks=callbacks, channels=tuple(channels))
            )
    return dataclasses.replace(manifest, accounts=tuple(accounts))


# --- apply --------------------------------------------------------------------------------


async def apply(
    manifest: Manifest,
    runtime: Runtime,
    *,
    confirm: Callable[[Plan], bool] = lambda plan: True,
    force: bool = False,
    report_path: Path | None = None,
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
            plan = await read_plan(runtime, manifest)
    prompted = 0.0  # seconds at the confirmation prompt: not part of the run's duration

    def timed_confirm(plan: Plan) -> bool:
        nonlocal prompted
        asked = time.monotonic()
        try:
            return confirm(plan)
        finally:
            prompted = time.monotonic() - asked

    result = check_before_writing(
        plan, interrupted=executor.stopping.is_set(), confirm=timed_confirm, force=force
    )
    result.verify = verify
    if result.status is ApplyStatus.INTERRUPTED:  # while reading: a partial plan, never applied
        result.requests = runtime.gate.sent
    if result.status not in (ApplyStatus.COMPLETED, ApplyStatus.NOTHING_TO_DO):
        return result
    with _stop_on_signals(executor, handle_signals):
        try:
            await _write_plan(result, runtime, manifest, reviewed, verify)
        finally:
            result.duration = time.monotonic() - started - prompted  # reads included
            if report_path is not None:
                report = build_report(
                    result,
                    manifest_digest=manifest.digest,
                    started=started_wall,
                    cooldowns=runtime.gate.cooldown.trips,
                )
                write_report(report_path, report)
    return result


def check_before_writing(
    plan: Plan, *, interrupted: bool, confirm: Callable[[Plan], bool], force: bool
) -> ApplyResult:
    """Whether ``plan`` may be applied: a result whose status says why not, or
    COMPLETED / NOTHING_TO_DO when it may."""
    result = ApplyResult(ApplyStatus.COMPLETED, plan)
    if interrupted:
        result.status = ApplyStatus.INTERRUPTED
        return result
    verdict = check_safety(plan)
    if verdict.refused and not force:
        result.status, result.safety_reasons = ApplyStatus.REFUSED, verdict.reasons
    elif plan.has_changes and not confirm(plan):
        result.status = ApplyStatus.DECLINED
    elif not plan.has_changes and not plan.problems:
        result.status = ApplyStatus.NOTHING_TO_DO
    return result


async def _write_plan(
    result: ApplyResult,
    runtime: Runtime,
    manifest: Manifest,
    reviewed: ReviewedPlan | None,
    verify: bool,
) -> None:
    """The writes, between the journal's ``start`` and ``end`` lines; fills ``result``."""
    plan, journal, executor = result.plan, runtime.journal, runtime.executor
    try:
        if journal is not None:
            result.journal = journal.path
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
        total = len(plan.operations) + len(plan.problems) + len(plan.unchanged)
        runtime.events.phase("apply", total, lambda: runtime.gate.sent)
        try:
            conflicts = reviewed.conflict if reviewed is not None else None
            result.outcomes = await executor.apply(plan, conflicts=conflicts, verify=verify)
        finally:
            runtime.events.phase_done()
        if executor.stopping.is_set():
            result.status = ApplyStatus.INTERRUPTED
        result.requests = runtime.gate.sent
        if journal is not None:
            end = {"event": "end", "status": result.status.value, **result.counts}
            journal.write({**end, "requests": result.requests})
    finally:
        if journal is not None:
            await journal.close()


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

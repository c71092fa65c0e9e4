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
import os
import random
import time
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import aiohttp

from bulkpolyv.budget import WindowStore, make_store, opened
from bulkpolyv.client import PolyvClient, new_session
from bulkpolyv.concurrency import AutoConcurrency
from bulkpolyv.errors import BulkPolyvError
from bulkpolyv.events import RunEvents, fan_out
from bulkpolyv.executor import Executor
from bulkpolyv.gate import RequestGate
from bulkpolyv.heap import long_lived
from bulkpolyv.journal import Journal, prune_journals, retention_days
from bulkpolyv.manifest.model import Limits, Manifest
from bulkpolyv.operations import reads_for
from bulkpolyv.plan import Plan, make_plan
from bulkpolyv.planfile import ReviewedPlan
from bulkpolyv.privatefiles import PrivateFileError, check_writable
from bulkpolyv.ratelimit import ArrivalWindowLimiter, CoolDown
from bulkpolyv.report import (
    ApplyResult,
    ApplyStatus,
    Invocation,
    build_report,
    now_iso,
    skipped_items,
    write_report,
)
from bulkpolyv.retry import RetryPolicy, Sleep
from bulkpolyv.safety import check_safety
from bulkpolyv.selection import managed_items
from bulkpolyv.shard import Shard
from bulkpolyv.stopping import Stop, StopKind


@dataclass
class RunSettings:
    """Command-line overrides of the manifest's ``api_base`` and ``limits``."""

    api_base: str | None = None
    requests: int | None = None
    per_seconds: float | None = None
    concurrency: int | Literal["auto"] | None = None
    timeout: float | None = None
    attempts: int | None = None
    cooldown: float = 300.0
    insecure: bool = False
    connection_failure_burst: int = 50
    backoff_base: float = 0.5
    backoff_cap: float = 30.0
    budget: str | None = None  # a budget store (bulkpolyv.budget.make_store); None: see below
    shard: Shard | None = None  # only the accounts this shard owns (see run.select)


# How long past its timeout a request may still be between its grant and its answer
# (scheduling, the loop being busy): its place must not be freed before it is answered.
REQUEST_TIME_MARGIN = 10.0


@dataclass
class Runtime:
    """The per-run objects, made inside the loop by :func:`open_runtime`."""

    gate: RequestGate
    executor: Executor
    events: RunEvents
    journal: Journal | None
    stop: Stop  # the run's one stop: signals, an unreachable host, a journal that fails


def budget_spec(
    settings: RunSettings, limits: Limits, environ: Mapping[str, str] = os.environ
) -> str | None:
    """Which budget store to use: ``--budget``, else ``BULKPOLYV_BUDGET``, else the
    manifest's ``limits.budget``; None is the default (the host-wide local store)."""
    return settings.budget or environ.get("BULKPOLYV_BUDGET") or limits.budget


def concurrency_for(
    settings: RunSettings, limits: Limits, clock: Callable[[], float] = time.monotonic
) -> AutoConcurrency:
    """Requests in flight follow rate x latency; a number (the flag's first, then the
    manifest's) caps them, and so sizes the worker and connection pools."""
    chosen = settings.concurrency or limits.concurrency
    return AutoConcurrency(
        settings.requests or limits.requests,
        settings.per_seconds or limits.per_seconds,
        cap=None if chosen == "auto" else int(chosen),
        clock=clock,
    )


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
    store: WindowStore | None = None,
) -> AsyncIterator[Runtime]:
    """The gate, client and executor for ``manifest``; ``events`` (and the ``journal``,
    which :func:`apply` opens once the plan is confirmed) observe everything they do.

    Every request goes through one gate whose window lives in the shared budget store
    (``store``, else :func:`budget_spec`'s); a store that cannot be opened raises
    :class:`~bulkpolyv.budget.BudgetUnavailable` before anything is sent."""
    limits = manifest.limits
    api_base = settings.api_base or manifest.api_base
    timeout = settings.timeout or limits.timeout
    stop = Stop()
    observers = fan_out(events, journal)
    async with contextlib.AsyncExitStack() as stack:
        if store is None:
            store = make_store(budget_spec(settings, limits), api_base, clock=clock)
            await stack.enter_async_context(opened(store))
        gate = _gate(settings, limits, store, observers, stop, clock=clock, sleep=sleep)
        policy = RetryPolicy(
            attempts=settings.attempts or limits.attempts,
            backoff_base=settings.backoff_base,
            backoff_cap=settings.backoff_cap,
            rng=rng or random.Random(),
            sleep=sleep,
        )
        if session is None:
            session = await stack.enter_async_context(new_session(connections=gate.ceiling))
        client = PolyvClient(
            session, api_base=api_base, timeout=timeout, gate=gate, ssl=not settings.insecure
        )
        # As many workers as the gate could ever let go: they wait at the gate, not here.
        executor = Executor(
            client,
            concurrency=gate.ceiling,
            policy=policy,
            clock=clock,
            events=observers,
            stop=stop,
        )
        yield Runtime(gate, executor, observers, journal, stop)


def _gate(
    settings: RunSettings,
    limits: Limits,
    store: WindowStore,
    observers: RunEvents,
    stop: Stop,
    *,
    clock: Callable[[], float],
    sleep: Sleep,
) -> RequestGate:
    """The one gate every request of the run passes: the arrival-safe window in the
    shared ``store``, the cool-down, the concurrency that follows latency."""
    timeout = settings.timeout or limits.timeout
    limiter = ArrivalWindowLimiter(
        settings.requests or limits.requests,
        settings.per_seconds or limits.per_seconds,
        store=store,
        max_request_seconds=timeout + REQUEST_TIME_MARGIN,
        clock=clock,
        sleep=sleep,
    )
    return RequestGate(
        limiter,
        CoolDown(settings.cooldown, clock=clock, sleep=sleep),
        concurrency_for(settings, limits, clock),
        connection_failure_burst=settings.connection_failure_burst,
        events=observers,
        stop=stop,
    )


class RunStopped(BulkPolyvError):
    """The read phase stopped because the run cannot go on (the host is unreachable):
    the one sentence ``plan`` prints, exit 1."""


async def read_plan(
    runtime: Runtime, manifest: Manifest, *, check_channel_callbacks: bool = False
) -> Plan:
    """Read the live state (a ``read`` phase for the observers) and plan; with
    ``check_channel_callbacks``, also each channel's callback setting, for the warning
    about channels that ignore their account's callbacks. Raises :class:`RunStopped` when
    the host turned out unreachable (no plan can be trusted)."""
    reads = list(reads_for(manifest, check_channel_callbacks=check_channel_callbacks))
    runtime.events.phase("read", len(reads), lambda: runtime.gate.sent)
    try:
        live = await runtime.executor.refresh(manifest, reads)
    finally:
        runtime.events.phase_done()
    stop = runtime.stop
    if stop.is_set() and stop.kind is not StopKind.INTERRUPTED:
        raise RunStopped(stop.reason or "stopped")  # unreachable, or the budget failed
    with long_lived():  # the manifest and the live state: a full collection walked them all
        return make_plan(manifest, live)


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
    invocation: Invocation | None = None,
    journal_days: float | None = None,
) -> ApplyResult:
    """Preflight, read, plan, check safety, confirm, then apply, journal and report.

    Every file the run writes is opened before its first request (:func:`preflight`). From
    then on, whatever ends the run — done, a signal, an unreachable host, a full disk, a
    bug — the report is written and says so; only a refusal or a declined prompt writes none.
    """
    started_wall, started = now_iso(), time.monotonic()
    preflight(report_path, runtime.journal, journal_days)
    result = ApplyResult(ApplyStatus.COMPLETED, _empty_plan(manifest))
    prompt = TimedConfirm(confirm)  # time at the prompt is not part of the run's duration
    try:
        with runtime.stop.on_signals(handle_signals):
            plan = reviewed.plan if reviewed is not None else await _read(runtime, manifest)
        if runtime.stop.is_set():  # while reading: nothing was written
            _stopped_while_reading(result, runtime, manifest)
        else:
            result = check_before_writing(plan, interrupted=False, confirm=prompt, force=force)
            result.verify = verify
            if result.status not in (ApplyStatus.COMPLETED, ApplyStatus.NOTHING_TO_DO):
                return result
            with runtime.stop.on_signals(handle_signals):
                await _write_plan(result, runtime, manifest, reviewed, verify)
    except Exception as error:  # a true record instead of a traceback
        runtime.executor.abort("unexpected error", error)
        _stopped_while_reading(result, runtime, manifest)
    finally:
        # A second Ctrl-C (or kill) as the run wraps up must not cut its record short.
        with runtime.stop.on_signals(handle_signals):
            if runtime.journal is not None:
                await runtime.journal.close()
    result.requests = runtime.gate.sent
    result.duration = time.monotonic() - started - prompt.seconds  # the reads included
    if report_path is not None:
        with runtime.stop.on_signals(handle_signals):
            _write_report(result, runtime, manifest, report_path, started_wall, invocation)
    return result


def _write_report(
    result: ApplyResult,
    runtime: Runtime,
    manifest: Manifest,
    report_path: Path,
    started: str,
    invocation: Invocation | None,
) -> None:
    report = build_report(
        result,
        manifest_digest=manifest.digest,
        started=started,
        cooldowns=runtime.gate.cooldown.trips,
        manifest_path=manifest.path,
        invocation=invocation,
    )
    try:
        write_report(report_path, report)
    except PrivateFileError as error:  # a full disk, say: the run still says what it did
        result.report_error = str(error)


class TimedConfirm:
    """The confirmation prompt, timing how long the operator took to answer."""

    def __init__(self, confirm: Callable[[Plan], bool]) -> None:
        self._confirm = confirm
        self.seconds = 0.0

    def __call__(self, plan: Plan) -> bool:
        asked = time.monotonic()
        try:
            return self._confirm(plan)
        finally:
            self.seconds += time.monotonic() - asked


def preflight(report_path: Path | None, journal: Journal | None, days: float | None) -> None:
    """Open or create every file the run writes before anything is sent; a file that
    cannot be written raises PrivateFileError (a sentence with the path and the reason).
    Old journals beside this one are pruned here too."""
    if report_path is not None:
        check_writable(report_path)
    if journal is not None:
        journal.open()
        keep = retention_days() if days is None else days
        prune_journals(journal.path.parent, keep, keep=journal.path)


async def _read(runtime: Runtime, manifest: Manifest) -> Plan:
    try:
        return await read_plan(runtime, manifest)
    except RunStopped:  # the stop says why; the report lists every item as skipped
        return _empty_plan(manifest)


def _empty_plan(manifest: Manifest) -> Plan:
    return Plan(manifest.path, manifest.digest, (), (), (), 0, 0)


def _stopped_while_reading(result: ApplyResult, runtime: Runtime, manifest: Manifest) -> None:
    """A run stopped before (or while) writing: what is known so far, and every other
    managed item skipped with the stop's reason, so ``--retry-failed`` can finish it."""
    stop = runtime.stop
    result.status = (
        ApplyStatus.INTERRUPTED if stop.kind is StopKind.INTERRUPTED else ApplyStatus.ABORTED
    )
    result.reason = stop.reason or ""
    done = {outcome.key for outcome in result.outcomes}
    rest = (key for key in managed_items(manifest) if key not in done)
    result.outcomes += skipped_items(rest, f"not attempted: {result.reason}")


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
    if journal is not None:
        result.journal = journal.path
        journal.start()
        with long_lived():  # the checksum's rows set off collections that walked the plan
            checksum = plan.checksum()
        _journal_line(runtime, {
            "event": "start",
            "manifest": manifest.path,
            "manifest_digest": manifest.digest,
            "plan_checksum": checksum,
            "operations": len(plan.operations),
        })  # fmt: skip
    total = len(plan.operations) + len(plan.problems) + len(plan.unchanged)
    runtime.events.phase("apply", total, lambda: runtime.gate.sent)
    try:
        conflicts = reviewed.conflict if reviewed is not None else None
        result.outcomes = await executor.apply(plan, conflicts=conflicts, verify=verify)
    finally:
        runtime.events.phase_done()
    stop = runtime.stop
    if stop.is_set():
        kind = stop.kind
        result.status = (
            ApplyStatus.INTERRUPTED if kind is StopKind.INTERRUPTED else ApplyStatus.ABORTED
        )
        result.reason = stop.reason or ""
    else:
        result.settle()
    result.requests = runtime.gate.sent
    end = {"event": "end", "status": result.status.value, "reason": result.reason}
    _journal_line(runtime, {**end, **result.counts, "requests": result.requests})


def _journal_line(runtime: Runtime, record: dict[str, object]) -> None:
    """A start or end line; a journal that fails stops the run (before the first write,
    nothing is sent at all)."""
    if runtime.journal is None:
        return
    try:
        runtime.journal.write(record)
    except BulkPolyvError as error:
        runtime.executor.stop(str(error), StopKind.ABORTED)

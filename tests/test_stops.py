"""Stops and bounds, piece by piece: the cool-down's cap, a stop ending every wait, the
reachability escalation, in-flight requests after a stop, a write that cannot be journaled,
and an unexpected error becoming an aborted run."""

from __future__ import annotations

import asyncio
import time

import aiohttp
import pytest
from aioresponses import aioresponses

from bulkpolyv import executor as executor_module
from bulkpolyv.client import PolyvClient
from bulkpolyv.events import RunEvents
from bulkpolyv.executor import IN_FLIGHT, Executor
from bulkpolyv.ratelimit import CoolDown
from bulkpolyv.reachability import Reachability
from bulkpolyv.report import ApplyStatus, Status
from bulkpolyv.retry import RetryPolicy
from bulkpolyv.run import RunSettings, apply, open_runtime
from bulkpolyv.stopping import Stop, StopKind
from tests.apimock import url_re
from tests.models import account
from tests.models import manifest_of as manifest_with
from tests.test_executor import OK, Sleeps, op, plan_of


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_a_cooldown_never_exceeds_its_configured_seconds():
    clock = Clock()
    cooldown = CoolDown(5.0, clock=clock)
    assert cooldown.trip(0, 100000.0)  # Retry-After: 100000
    assert cooldown.remaining() == 5.0
    assert cooldown.trip(1, 2.0)
    assert cooldown.remaining() == 2.0


async def test_a_stop_ends_a_cooldown_wait_at_once():
    cooldown = CoolDown(300.0)
    cooldown.trip(0)
    stop = Stop()
    asyncio.get_running_loop().call_later(0.05, stop.set, "interrupted by SIGTERM")
    began = time.monotonic()
    assert await cooldown.wait(stop) is False
    assert time.monotonic() - began < 1.0


def test_a_wall_gets_one_cooldown_then_stops_as_unreachable():
    reach = Reachability(burst=5)
    assert [reach.failed(0) for _ in range(5)] == [None, None, None, None, "cooldown"]
    assert reach.failed(0) is None  # answers to requests sent before the pause: no verdict
    assert [reach.failed(1) for _ in range(3)] == [None, None, "unreachable"]
    reach.answered()  # a normal answer forgives everything
    assert [reach.failed(2) for _ in range(5)][-1] == "cooldown"


async def test_pages_before_polyv_ever_answered_stop_the_run_and_after_it_cool_down():
    # Pages that are not POLYV answers from the very start (a wrong --api-base path: 404s,
    # a CDN's 403s) are a wrong address: no cool-down mends that. Once POLYV has answered,
    # the same pages may be a block (unconfirmed how one looks): one cool-down, as before.
    from bulkpolyv.errors import ErrorKind, PolyvError
    from bulkpolyv.gate import RequestGate
    from bulkpolyv.ratelimit import ArrivalWindowLimiter, CoolDown

    def gate_and_stop():
        stop = Stop()
        limiter = ArrivalWindowLimiter(1000, 10.0)
        return RequestGate(limiter, CoolDown(60), 4, connection_failure_burst=3, stop=stop), stop

    async def page(gate, status):
        error = PolyvError(ErrorKind.PERMANENT, "got a page", "GET /x", status, foreign=True)
        with pytest.raises(PolyvError):
            async with gate.slot():
                raise error

    gate, stop = gate_and_stop()
    for status in (404, 403, 404):
        await page(gate, status)
    assert stop.kind is StopKind.UNREACHABLE
    assert "has not answered like POLYV's API (check --api-base" in stop.reason
    assert not gate.cooldown.active

    gate, stop = gate_and_stop()
    async with gate.slot():
        pass  # POLYV answered
    for status in (404, 403, 404):
        await page(gate, status)
    assert gate.cooldown.active and not stop.is_set()


async def test_a_huge_retry_after_on_a_503_waits_the_backoff_cap():
    with aioresponses() as mocked:
        update = url_re("/live/v4/seminar/monitor/update")
        mocked.post(update, status=503, body="busy", headers={"Retry-After": "100000"})
        mocked.post(update, payload=OK)
        sleeps = Sleeps()
        async with aiohttp.ClientSession() as session:
            policy = RetryPolicy(attempts=3, backoff_cap=30.0, sleep=sleeps)
            executor = Executor(PolyvClient(session), concurrency=1, policy=policy)
            (outcome,) = await executor.apply(plan_of(op("east", 1)))
    assert sleeps.waits == [30.0]
    assert outcome.status is Status.CHANGED


class Hanging:
    """A client whose writes never get an answer (or fail, or count calls)."""

    def __init__(self, error: Exception | None = None) -> None:
        self.calls = 0
        self.error = error

    async def update_monitor(self, credentials, channel_id, update):  # type: ignore[no-untyped-def]
        self.calls += 1
        if self.error is not None:
            raise self.error
        await asyncio.Event().wait()


async def test_a_request_in_flight_gets_a_grace_then_is_failed_as_maybe_applied(monkeypatch):
    monkeypatch.setattr(executor_module, "IN_FLIGHT_GRACE", 0.1)
    client = Hanging()
    executor = Executor(client, concurrency=1)  # type: ignore[arg-type]
    asyncio.get_running_loop().call_later(0.05, executor.stop, "interrupted by SIGINT")
    began = time.monotonic()
    first, second = await executor.apply(plan_of(op("east", 1), op("east", 2)))
    assert time.monotonic() - began < 1.0
    assert (first.status, first.message, first.attempts) == (Status.FAILED, IN_FLIGHT, 1)
    assert (second.status, second.message) == (
        Status.SKIPPED,
        "not attempted: interrupted by SIGINT",
    )
    assert client.calls == 1


async def test_a_stop_during_a_backoff_sends_no_retry():
    with aioresponses() as mocked:
        update = url_re("/live/v4/seminar/monitor/update")
        mocked.post(update, status=503, body="busy", headers={"Retry-After": "20"})
        mocked.post(update, payload=OK)
        async with aiohttp.ClientSession() as session:
            policy = RetryPolicy(attempts=3, sleep=asyncio.sleep)  # a real 20 s wait
            executor = Executor(PolyvClient(session), concurrency=1, policy=policy)
            asyncio.get_running_loop().call_later(0.05, executor.stop, "interrupted by SIGHUP")
            began = time.monotonic()
            (outcome,) = await executor.apply(plan_of(op("east", 1)))
            sent = sum(len(calls) for calls in mocked.requests.values())
    assert time.monotonic() - began < 1.0
    assert sent == 1
    assert (outcome.status, outcome.attempts) == (Status.SKIPPED, 1)
    assert outcome.message == "not attempted again: interrupted by SIGHUP"


class FullJournal(RunEvents):
    def sending(self, op):  # type: ignore[no-untyped-def]
        raise OSError(28, "No space left on device")


async def test_a_write_that_cannot_be_journaled_is_not_sent_and_the_run_aborts():
    client = Hanging()
    executor = Executor(client, concurrency=1, events=FullJournal())  # type: ignore[arg-type]
    first, second = await executor.apply(plan_of(op("east", 1), op("east", 2)))
    assert client.calls == 0
    assert executor.stopping.kind is StopKind.ABORTED
    reason = "the run's record cannot be written: OSError: [Errno 28] No space left on device"
    assert executor.stopping.reason == reason
    assert (first.status, first.message) == (Status.SKIPPED, f"not sent: {reason}")
    assert (second.status, second.message) == (Status.SKIPPED, f"not attempted: {reason}")


async def test_an_unexpected_error_aborts_the_run_with_a_reason():
    client = Hanging(error=RuntimeError("surprise"))
    executor = Executor(client, concurrency=1)  # type: ignore[arg-type]
    first, second = await executor.apply(plan_of(op("east", 1), op("east", 2)))
    assert executor.stopping.kind is StopKind.ABORTED
    assert (
        executor.stopping.reason == "unexpected error on east/10 monitor 1: RuntimeError: surprise"
    )
    assert first.status is Status.FAILED and second.status is Status.SKIPPED


class BrokenDisplay(RunEvents):
    def phase(self, name, total, requests):  # type: ignore[no-untyped-def]
        if name == "apply":
            raise ValueError("the display broke")


async def test_an_error_outside_the_executor_still_writes_an_aborted_report(tmp_path, sim_server):
    import json

    manifest = manifest_with(
        account("east", callback="https://new.example.com/cb", app_id="app-east",
                secret="SECRET-EAST-0001"),
    )  # fmt: skip
    report = tmp_path / "report.json"
    settings = RunSettings(api_base=sim_server.url)
    async with open_runtime(manifest, settings, events=BrokenDisplay()) as runtime:
        result = await apply(manifest, runtime, report_path=report, handle_signals=False)
    assert result.status is ApplyStatus.ABORTED and result.exit_code == 3
    written = json.loads(report.read_text())
    assert written["status"] == "aborted" and written["exit_code"] == 3
    assert written["reason"] == "unexpected error: ValueError: the display broke"
    assert [item["status"] for item in written["items"]] == ["skipped"]


@pytest.mark.parametrize("kind", [StopKind.INTERRUPTED, StopKind.UNREACHABLE])
async def test_the_first_stop_reason_and_kind_win(kind):
    stop = Stop()
    stop.set("first", kind=kind)
    stop.set("second", kind=StopKind.ABORTED)
    assert (stop.reason, stop.kind) == ("first", kind)

"""The gate with auto concurrency and a failing budget store, in virtual time."""

import asyncio

import pytest

from bulkpolyv.budget import BudgetUnavailable, MemoryStore
from bulkpolyv.concurrency import AutoConcurrency
from bulkpolyv.gate import RequestGate
from bulkpolyv.ratelimit import ArrivalWindowLimiter, CoolDown
from bulkpolyv.stopping import StopKind, Stopped
from tests.virtualtime import virtual_time


async def run_at_latency(concurrency, *, latency: float, count: int) -> list[float]:
    """``count`` requests answered after ``latency`` s through a 200/10 s gate with as
    many workers as the gate's ceiling; the grant times."""
    granted: list[float] = []
    with virtual_time() as time:
        store = MemoryStore(clock=time.clock)
        limiter = ArrivalWindowLimiter(200, 10.0, store=store, clock=time.clock)
        gate = RequestGate(limiter, CoolDown(60, clock=time.clock), concurrency)
        remaining = iter(range(count))

        async def worker() -> None:
            for _ in remaining:
                async with gate.slot():
                    granted.append(time.now)
                    await asyncio.sleep(latency)

        await asyncio.gather(*(worker() for _ in range(gate.ceiling)))
    return granted


def steady_rate(granted: list[float], first: int, last: int) -> float:
    """Grants per second from grant ``first`` to grant ``last`` (whole cycles of 200: the
    first window's 200 go on the pacing schedule, later ones as places free)."""
    ordered = sorted(granted)
    return (last - first) / (ordered[last] - ordered[first])


async def test_auto_concurrency_reaches_the_rate_at_two_seconds_of_latency():
    """200/10 s with 2 s answers: each place is held 12 s (rule 1), so 200/12 = 16.7/s is
    the most any limiter of this kind can reach. A fixed 8 in flight caps it at 8/2 = 4/s;
    auto grows to ceil(1.25 x 20/s x 2 s) = 50 in flight and reaches the bound."""
    fixed = steady_rate(await run_at_latency(8, latency=2.0, count=300), 100, 299)
    auto = AutoConcurrency(200, 10.0, clock=lambda: asyncio.get_running_loop().time())
    granted = await run_at_latency(auto, latency=2.0, count=1000)
    assert fixed == pytest.approx(4.0, rel=0.01)
    assert steady_rate(granted, 200, 999) == pytest.approx(200 / 12, rel=0.01)
    assert auto.target == 50


async def test_a_request_never_overtakes_one_already_waiting_for_a_place():
    """Another process holds both places of a window of 2; c waits and asks the store once
    a second. The other process gives one place back at 3.6, between two of c's polls. d,
    arriving at 3.8, finds it free, but c was first: d queues behind c instead of taking
    it on the gate's path without awaits."""
    granted: list[tuple[str, float]] = []
    with virtual_time() as time:
        store = MemoryStore(clock=time.clock)
        limiter = ArrivalWindowLimiter(2, 10.0, store=store, clock=time.clock, max_poll=1.0)
        gate = RequestGate(limiter, CoolDown(60, clock=time.clock), 4)
        for other in ("other-1", "other-2"):
            assert await store.reserve(other, 2, 100.0) == 0.0

        async def request(name: str, start: float) -> None:
            await asyncio.sleep(start)
            async with gate.slot():
                granted.append((name, time.now))

        async def other_process_gives_one_back() -> None:
            await asyncio.sleep(3.6)
            await store.cancel("other-1")

        await asyncio.gather(request("c", 0.5), request("d", 3.8), other_process_gives_one_back())
    assert granted == [("c", pytest.approx(4.5)), ("d", pytest.approx(14.5))]


class CountingStore(MemoryStore):
    """A memory store that counts its calls: ``reserve`` (either path) and ``complete``."""

    def __init__(self, clock) -> None:
        super().__init__(clock=clock)
        self.calls = {"reserve": 0, "complete": 0}

    def _count(self, name: str) -> None:
        self.calls[name] += 1

    async def reserve(self, reservation_id: str, limit: int, lease: float) -> float:
        self._count("reserve")
        return await super().reserve(reservation_id, limit, lease)

    def try_reserve(self, reservation_id: str, limit: int, lease: float) -> float | None:
        self._count("reserve")  # the gate's path when nothing has to wait
        return super().try_reserve(reservation_id, limit, lease)

    def try_complete(self, reservation_id: str, hold: float) -> bool:
        self._count("complete")  # MemoryStore.complete comes here too
        return super().try_complete(reservation_id, hold)


async def test_a_full_window_is_asked_once_per_poll_not_again_at_once():
    # Each ask of a shared SQLite window is a write transaction every process on the host
    # waits for: the path without awaits finding it full must not be followed at once by
    # the awaited path asking the same question.
    with virtual_time() as time:
        store = CountingStore(time.clock)
        limiter = ArrivalWindowLimiter(1, 10.0, store=store, clock=time.clock, max_poll=1.0)
        gate = RequestGate(limiter, CoolDown(60, clock=time.clock), 4)
        assert await store.reserve("other", 1, 100.0) == 0.0
        store.calls["reserve"] = 0

        async def other_process_gives_it_back() -> None:
            await asyncio.sleep(3.5)
            await store.cancel("other")

        async def request() -> float:
            async with gate.slot():
                return time.now

        granted, _ = await asyncio.gather(request(), other_process_gives_it_back())
    assert granted == pytest.approx(4.0)
    assert store.calls["reserve"] == 5  # at 0 (full), 1, 2, 3 (full) and 4 (granted)


FAILED = "the Redis budget at redis://budget:6379/0 cannot be reached (ConnectionError)."


class FailingStore(CountingStore):
    """A counting store whose ``reserve`` (or ``complete``) fails from the ``after``-th call."""

    def __init__(self, clock, *, fail: str, after: int) -> None:
        super().__init__(clock)
        self.fail, self.after = fail, after

    def _count(self, name: str) -> None:
        super()._count(name)
        if name == self.fail and self.calls[name] > self.after:
            raise BudgetUnavailable(FAILED)


def gate_on(store: MemoryStore, clock) -> RequestGate:
    limiter = ArrivalWindowLimiter(100, 10.0, store=store, clock=clock)
    return RequestGate(limiter, CoolDown(60, clock=clock), 4)


async def test_a_store_that_fails_to_reserve_stops_the_run():
    with virtual_time() as time:
        store = FailingStore(time.clock, fail="reserve", after=1)
        gate = gate_on(store, time.clock)
        async with gate.slot():
            pass
        for _ in range(2):
            with pytest.raises(Stopped, match="redis://budget:6379/0"):
                async with gate.slot():
                    raise AssertionError("sent without a place")
    assert (gate.stop.kind, gate.stop.reason) == (StopKind.ABORTED, FAILED)
    assert store.calls["reserve"] == 2  # the second slot never asked the store again
    assert gate.sent == 1


async def test_a_store_that_fails_to_complete_keeps_the_answer_and_stops_the_next_send():
    """The answer is in: the request's outcome stands (no exception out of its slot), its
    place stays counted until its lease runs out, and nothing more is sent."""
    with virtual_time() as time:
        store = FailingStore(time.clock, fail="complete", after=0)
        gate = gate_on(store, time.clock)
        async with gate.slot():
            answered = "ok"
        assert answered == "ok"
        assert store.held() == 1
        with pytest.raises(Stopped):
            async with gate.slot():
                raise AssertionError("sent after the budget failed")
    assert (gate.stop.kind, gate.stop.reason) == (StopKind.ABORTED, FAILED)
    assert gate.sent == 1


async def run_with_failing_budget(tmp_path, *, fail: str, after: int):
    """apply() of a 20-channel manifest against the simulator, on a budget store that
    fails from its ``after``-th reserve/complete; the result and the simulator."""
    from bulkpolyv import RunSettings, apply, load_manifest, open_runtime
    from bulkpolyv.sim import PolyvSimulator, SimConfig, SimServer
    from tests.simthread import ENV, seeded_state, write_manifest

    path = write_manifest(tmp_path, channels=20)
    manifest = load_manifest(path, env=ENV)
    simulator = PolyvSimulator(seeded_state(path, {}), SimConfig())
    store = FailingStore(lambda: asyncio.get_running_loop().time(), fail=fail, after=after)
    async with SimServer(simulator) as server:
        settings = RunSettings(api_base=server.url, concurrency=4)
        async with open_runtime(manifest, settings, store=store) as runtime:
            result = await apply(manifest, runtime, handle_signals=False)
    return result, simulator


async def test_a_budget_failing_during_the_reads_stops_before_any_write(tmp_path):
    result, simulator = await run_with_failing_budget(tmp_path, fail="reserve", after=10)
    assert (result.status.value, result.reason) == ("aborted", FAILED)
    assert (simulator.stats.requests, simulator.stats.writes) == (10, 0)
    assert {o.status.value for o in result.outcomes} == {"skipped"}


async def test_a_budget_failing_during_the_writes_interrupts_the_run_with_every_item_reported(
    tmp_path,
):
    """The reads take 42 places; the budget fails at the 60th: the writes answered before
    stand, nothing more is sent, and every other item is reported as not attempted."""
    result, simulator = await run_with_failing_budget(tmp_path, fail="reserve", after=59)
    assert result.status.value == "aborted"
    assert simulator.stats.requests == 59
    assert result.counts["changed"] == simulator.stats.writes == 59 - 42
    reported = result.counts["changed"] + result.counts["skipped"] + result.counts["unchanged"]
    assert reported == len(result.plan.operations) + len(result.plan.unchanged)


async def test_a_request_waiting_for_a_place_in_flight_is_not_sent_and_says_so_at_once():
    """With every place in flight taken by a request that never answers, a stop must
    release the waiters at once as "never sent" (Stopped), not after the grace."""
    from bulkpolyv.stopping import Stop

    stop = Stop()
    gate = RequestGate(ArrivalWindowLimiter(100, 10.0), CoolDown(60), concurrency=1, stop=stop)
    hang = asyncio.Event()
    sent = []

    async def hanging() -> None:
        async with gate.slot():
            sent.append("first")
            await hang.wait()

    async def waiting() -> None:
        async with gate.slot():
            sent.append("second")

    first = asyncio.ensure_future(hanging())
    await asyncio.sleep(0.05)
    second = asyncio.ensure_future(waiting())
    await asyncio.sleep(0.05)
    stop.set("test stop")
    with pytest.raises(Stopped):
        await asyncio.wait_for(second, 1.0)
    assert sent == ["first"]
    hang.set()
    await first

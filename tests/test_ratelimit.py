"""The arrival-safe limiter, the cool-down and the gate, in virtual time: no test sleeps."""

import asyncio
import gc
import random

import pytest

from bulkpolyv.budget import MemoryStore
from bulkpolyv.errors import ErrorKind, PolyvError
from bulkpolyv.events import RunEvents
from bulkpolyv.gate import RequestGate
from bulkpolyv.ratelimit import MIN_POLL, ArrivalWindowLimiter, CoolDown
from tests.virtualtime import virtual_time


def max_in_any_window(times: list[float], window: float) -> int:
    """Most of ``times`` inside any half-open interval [t, t + window)."""
    times = sorted(times)
    best, start = 0, 0
    for end, t in enumerate(times):
        while times[start] <= t - window + 1e-9:  # exactly one window apart is allowed
            start += 1
        best = max(best, end - start + 1)
    return best


def max_overlap(intervals: list[tuple[float, float]]) -> int:
    """Most intervals [start, end] holding at one instant (ends before starts on ties:
    a place that runs out at t is free for a request reserved at t)."""
    events = sorted([(s, 1) for s, _ in intervals] + [(e, -1) for _, e in intervals])
    held = best = 0
    for _, delta in events:
        held += delta
        best = max(best, held)
    return best


def limiter(requests: int, per_seconds: float, clock, **kwargs) -> ArrivalWindowLimiter:
    store = kwargs.pop("store", None) or MemoryStore(clock=clock)
    return ArrivalWindowLimiter(requests, per_seconds, store=store, clock=clock, **kwargs)


async def test_arrivals_never_exceed_the_limit_whatever_the_latency():
    """Each request arrives at a random moment between its send and its answer, with
    latencies from 0 to 3 s (a quarter of them stalled 2-3 s): no 10 s window ever sees more
    than 100 arrivals, and no instant more than 100 places held."""
    rng = random.Random(11)
    arrivals: list[float] = []
    with virtual_time() as time:
        store = MemoryStore(clock=time.clock)
        window = limiter(100, 10.0, time.clock, store=store, max_request_seconds=5.0)
        held: list[tuple[float, float]] = []

        async def worker() -> None:
            for _ in range(40):
                permit = await window.acquire()
                sent = time.now
                latency = rng.uniform(2.0, 3.0) if rng.random() < 0.25 else rng.uniform(0, 0.5)
                arrivals.append(sent + rng.uniform(0, latency))
                await asyncio.sleep(latency)
                await permit.complete()
                held.append((permit.granted_at, time.now + 10.0))

        await asyncio.gather(*(worker() for _ in range(30)))  # 1,200 requests
    assert len(arrivals) == 1200
    assert max_in_any_window(arrivals, 10.0) == 100
    assert max_overlap(held) == 100


async def test_an_answer_keeps_the_place_a_full_window_longer():
    """A send-time window would free both places at t=10; here they last until 10 s after
    their answers (t=5 and t=7)."""
    with virtual_time() as time:
        window = limiter(2, 10.0, time.clock, parts=1)
        first, second = await window.acquire(), await window.acquire()
        await asyncio.sleep(5)
        await first.complete()
        await asyncio.sleep(2)
        await second.complete()
        third = await window.acquire()
        assert third.granted_at == pytest.approx(15.0)
        fourth = await window.acquire()
        assert fourth.granted_at == pytest.approx(17.0)


async def test_a_place_never_completed_runs_out_with_its_lease():
    with virtual_time() as time:
        window = limiter(1, 10.0, time.clock, max_request_seconds=20.0)
        assert window.lease == 30.0
        await window.acquire()  # the process that took it "died": never completed
        later = await window.acquire()
        assert later.granted_at == pytest.approx(30.0)


async def test_a_token_bucket_burst_pattern_is_not_allowed():
    """A bucket of 100 refilled at 10/s lets 100 go at t=0 and ~100 more by t=9.9; here
    the 101st waits until 10 s after the first answers."""
    with virtual_time() as time:
        window = limiter(100, 10.0, time.clock, parts=1)
        permits = [await window.acquire() for _ in range(100)]
        for permit in permits:
            await permit.complete()
        await asyncio.sleep(9.9)
        granted = await window.acquire()
        assert granted.granted_at == pytest.approx(10.0)


async def test_a_cancelled_wait_leaves_no_place_behind():
    with virtual_time() as time:
        store = MemoryStore(clock=time.clock)
        window = limiter(1, 10.0, time.clock, store=store)
        await window.acquire()
        waiter = asyncio.create_task(window.acquire())
        await asyncio.sleep(1.0)  # it polls the full window a few times
        waiter.cancel()
        with pytest.raises(asyncio.CancelledError):
            await waiter
        assert store.held() == 1


class SlowReserve(MemoryStore):
    """Takes the place, then is slow to answer: a cancel lands after the place was taken."""

    async def reserve(self, reservation_id: str, limit: int, lease: float) -> float:
        wait = await super().reserve(reservation_id, limit, lease)
        await asyncio.sleep(1.0)
        return wait

    def try_reserve(self, reservation_id: str, limit: int, lease: float) -> float | None:
        return None  # it has to wait, like a locked file or Redis


async def test_a_cancel_during_the_reservation_gives_the_place_back():
    with virtual_time() as time:
        store = SlowReserve(clock=time.clock)
        window = limiter(5, 10.0, time.clock, store=store)
        task = asyncio.create_task(window.acquire())
        await asyncio.sleep(0.5)
        assert store.held() == 1  # taken on the store, not yet granted
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert store.held() == 0


async def test_a_stop_ends_the_wait_with_no_place_held():
    with virtual_time() as time:
        store = MemoryStore(clock=time.clock)
        window = limiter(1, 10.0, time.clock, store=store)
        await window.acquire()
        stop = asyncio.Event()
        asyncio.get_running_loop().call_later(2.0, stop.set)
        assert await window.acquire_until(stop) is None
        assert time.now == pytest.approx(2.0)
        assert store.held() == 1


async def test_waits_poll_no_longer_than_the_cap():
    """A completion can free a place before the earliest lease runs out: the waiter looks
    again within ``max_poll`` rather than sleeping until the lease's end."""
    with virtual_time() as time:
        window = limiter(1, 1.0, time.clock, max_request_seconds=60.0, max_poll=0.25)
        first = await window.acquire()
        loop = asyncio.get_running_loop()
        loop.call_later(0.3, lambda: asyncio.ensure_future(first.complete()))
        second = await window.acquire()
        # freed at 1.3 by the answer, seen then — not at the lease's end (61 s)
        assert second.granted_at == pytest.approx(1.3)


async def test_each_process_honours_its_own_limit_against_the_shared_count():
    with virtual_time() as time:
        shared = MemoryStore(clock=time.clock)
        big = limiter(5, 10.0, time.clock, store=shared, parts=1)
        small = limiter(3, 10.0, time.clock, store=shared, parts=1)
        for _ in range(3):
            await big.acquire()
        task = asyncio.create_task(small.acquire())  # the shared count is 3: not under 3
        await asyncio.sleep(5.0)
        assert not task.done()
        await big.acquire()
        await big.acquire()
        assert shared.held() == 5
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task


async def test_pacing_sends_a_small_burst_then_at_the_full_average_rate():
    sent = []
    with virtual_time() as time:
        window = limiter(100, 10.0, time.clock)

        async def worker() -> None:
            for _ in range(50):
                permit = await window.acquire()
                sent.append(permit.granted_at)
                await permit.complete()

        await asyncio.gather(*(worker() for _ in range(20)))
    assert max_in_any_window(sent, 10.0) == 100
    # a burst of 10 (N/parts), then one every 0.1 s: never a whole window at once
    assert sorted(sent)[:12] == pytest.approx([0.0] * 10 + [0.1, 0.2])
    assert max_in_any_window(sent, 1.0) == 19
    # answers are instant, so each window's 100 go in 9 s: 1,000 sends take 99 s, plus one
    # shortest poll (1 ms): at t=10 the first place is still 1e-15 s from running out
    assert max(sent) == pytest.approx(99.0 + MIN_POLL)


async def test_a_late_grant_does_not_push_the_pacing_schedule_back():
    """The loop was busy from t=1 to t=1.35: the grants due meanwhile (at 1.1, 1.2, 1.3)
    go at once when it is free again, so the average rate is not lost."""
    sent = []
    with virtual_time() as time:
        window = limiter(100, 10.0, time.clock)
        for _ in range(20):
            sent.append((await window.acquire()).granted_at)
        await asyncio.sleep(0.35)
        for _ in range(10):
            sent.append((await window.acquire()).granted_at)
    assert sent[10:20] == pytest.approx([0.1 * k for k in range(1, 11)])
    assert sent[20:] == pytest.approx([1.35] * 3 + [1.4, 1.5, 1.6, 1.7, 1.8, 1.9, 2.0])


async def test_cooldown_trips_once_per_block_for_requests_sent_before_it():
    with virtual_time() as time:
        cooldown = CoolDown(300, clock=time.clock)
        generation = cooldown.generation
        assert cooldown.trip(generation) is True
        # nine more in-flight requests, sent before the pause, come back 429 too
        assert [cooldown.trip(generation) for _ in range(9)] == [False] * 9
        assert cooldown.trips == 1 and cooldown.remaining() == 300
        await cooldown.wait()
        assert time.now == pytest.approx(300)


async def test_gate_sends_nothing_while_cooling_down():
    with virtual_time() as time:
        cooldown = CoolDown(60, clock=time.clock)
        gate = RequestGate(limiter(1000, 10, time.clock), cooldown, concurrency=4)
        send_times = []
        with pytest.raises(PolyvError):
            async with gate.slot():
                raise PolyvError(ErrorKind.RATE_LIMITED, "qps exceeds number of calls")
        tripped_at = time.now

        async def one() -> None:
            async with gate.slot():
                send_times.append(time.now)

        await asyncio.gather(*(one() for _ in range(5)))
    assert cooldown.trips == 1
    assert send_times == [tripped_at + 60] * 5  # all of them, the moment the pause ends


async def test_gate_holds_each_place_until_a_window_after_the_answer():
    with virtual_time() as time:
        store = MemoryStore(clock=time.clock)
        gate = RequestGate(
            limiter(10, 10.0, time.clock, store=store), CoolDown(60, clock=time.clock), 4
        )
        with pytest.raises(PolyvError):
            async with gate.slot():
                await asyncio.sleep(3.0)
                raise PolyvError(ErrorKind.TRANSIENT, "timed out")
        await asyncio.sleep(9.9)  # the failure came at t=3, after the send at t=0
        assert store.held() == 1
        await asyncio.sleep(0.2)
        assert store.held() == 0


async def test_retry_after_sets_the_pause_length_and_observers_hear_of_it():
    heard = []

    class Observer(RunEvents):
        def cooldown(self, seconds: float) -> None:
            heard.append(seconds)

    with virtual_time() as time:
        cooldown = CoolDown(300, clock=time.clock)
        gate = RequestGate(
            limiter(10, 1, time.clock), cooldown, concurrency=1, events=Observer()
        )
        with pytest.raises(PolyvError):
            async with gate.slot():
                raise PolyvError(ErrorKind.RATE_LIMITED, "slow down", retry_after=7)
        assert cooldown.remaining() == 7
    assert heard == [7]


async def test_a_burst_of_connection_failures_counts_as_rate_limited():
    with virtual_time() as time:
        cooldown = CoolDown(30, clock=time.clock)
        gate = RequestGate(
            limiter(100, 1, time.clock), cooldown, concurrency=1, connection_failure_burst=3
        )
        for _ in range(3):
            with pytest.raises(PolyvError):
                async with gate.slot():
                    raise PolyvError(ErrorKind.TRANSIENT, "connection failed")
        assert cooldown.trips == 1


async def test_a_place_granted_during_a_pause_is_given_back_unsent():
    with virtual_time() as time:
        store = MemoryStore(clock=time.clock)
        cooldown = CoolDown(60, clock=time.clock)
        gate = RequestGate(limiter(1, 10.0, time.clock, store=store), cooldown, concurrency=2)
        sent = []

        async def blocked_then_429() -> None:
            async with gate.slot():
                sent.append(time.now)
                await asyncio.sleep(1.0)
                raise PolyvError(ErrorKind.RATE_LIMITED, "qps exceeds number of calls")

        async def waiting() -> None:
            async with gate.slot():  # its place frees at t=11, mid-pause: given back
                sent.append(time.now)

        first = asyncio.create_task(blocked_then_429())
        second = asyncio.create_task(waiting())
        with pytest.raises(PolyvError):
            await first
        await second
    assert sent == [0.0, pytest.approx(61.0)]
    assert gate.sent == 2 and cooldown.trips == 1


async def test_a_completion_that_fails_after_its_caller_was_cancelled_is_not_printed():
    from bulkpolyv.budget import BudgetUnavailable, MemoryStore
    from bulkpolyv.ratelimit import Permit

    class LostStore(MemoryStore):
        def try_complete(self, reservation_id, hold):
            return False  # it has to wait, like a locked file or Redis

        async def complete(self, reservation_id, hold):
            await asyncio.sleep(0.02)
            raise BudgetUnavailable("the Redis budget at redis://r:6379/0 cannot be reached")

    loop = asyncio.get_running_loop()
    unhandled = []
    loop.set_exception_handler(lambda _loop, context: unhandled.append(context))
    completing = asyncio.ensure_future(Permit(LostStore(), "a", 1.0, 0.0).complete())
    await asyncio.sleep(0.005)
    completing.cancel()  # the worker is cancelled (a stop) while its completion waits
    await asyncio.sleep(0.05)
    del completing
    gc.collect()
    assert unhandled == []

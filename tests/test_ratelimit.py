"""The limiter, the cool-down and the gate, with an injected clock: no test sleeps."""

import asyncio

import pytest

from bulkpolyv.errors import ErrorKind, PolyvError
from bulkpolyv.events import RunEvents
from bulkpolyv.ratelimit import CoolDown, RequestGate, SlidingWindowLimiter


class FakeTime:
    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds
        await asyncio.sleep(0)


def max_in_any_window(times: list[float], window: float) -> int:
    best, start = 0, 0
    for end, t in enumerate(times):
        while times[start] <= t - window + 1e-9:  # exactly one window apart is allowed
            start += 1
        best = max(best, end - start + 1)
    return best


async def test_no_window_ever_holds_more_than_the_limit():
    fake = FakeTime()
    limiter = SlidingWindowLimiter(100, 10.0, slack=0.0, clock=fake.clock, sleep=fake.sleep)
    sent = []

    async def worker() -> None:
        for _ in range(50):
            sent.append(await limiter.acquire())
            fake.now += 0.001  # each send takes a little time

    await asyncio.gather(*(worker() for _ in range(20)))  # 1,000 sends
    sent.sort()
    assert len(sent) == 1000
    assert max_in_any_window(sent, 10.0) == 100
    # and it does not dawdle: 1,000 sends need just over 9 full windows
    assert sent[-1] < 10 * 9 + 1


async def test_a_token_bucket_burst_pattern_is_not_allowed():
    """A bucket of 100 refilled at 10/s lets 100 go at t=0 and ~100 more by t=9.9;
    the sliding window must hold the 101st until t=10."""
    fake = FakeTime()
    limiter = SlidingWindowLimiter(100, 10.0, slack=0.0, clock=fake.clock, sleep=fake.sleep)
    for _ in range(100):
        await limiter.acquire()
    fake.now = 9.9
    granted = await limiter.acquire()
    assert granted == pytest.approx(10.0)


async def test_slack_widens_the_window_for_network_jitter():
    limiter = SlidingWindowLimiter(1200, 10.0)
    assert limiter.window == pytest.approx(10.1)


async def test_cooldown_trips_once_per_block_for_requests_sent_before_it():
    fake = FakeTime()
    cooldown = CoolDown(300, clock=fake.clock, sleep=fake.sleep)
    generation = cooldown.generation
    assert cooldown.trip(generation) is True
    # nine more in-flight requests, sent before the pause, come back 429 too
    assert [cooldown.trip(generation) for _ in range(9)] == [False] * 9
    assert cooldown.trips == 1 and cooldown.remaining() == 300
    await cooldown.wait()
    assert fake.sleeps == [300]


async def test_gate_sends_nothing_while_cooling_down():
    fake = FakeTime()
    cooldown = CoolDown(60, clock=fake.clock, sleep=fake.sleep)
    gate = RequestGate(
        SlidingWindowLimiter(1000, 10, clock=fake.clock, sleep=fake.sleep), cooldown, concurrency=4
    )
    send_times = []
    with pytest.raises(PolyvError):
        async with gate.slot():
            raise PolyvError(ErrorKind.RATE_LIMITED, "qps exceeds number of calls")
    tripped_at = fake.now

    async def one() -> None:
        async with gate.slot():
            send_times.append(fake.now)

    await asyncio.gather(*(one() for _ in range(5)))
    assert cooldown.trips == 1
    assert send_times == [tripped_at + 60] * 5  # all of them, the moment the pause ends


async def test_retry_after_sets_the_pause_length_and_observers_hear_of_it():
    fake = FakeTime()
    cooldown = CoolDown(300, clock=fake.clock, sleep=fake.sleep)
    heard = []

    class Observer(RunEvents):
        def cooldown(self, seconds: float) -> None:
            heard.append(seconds)

    gate = RequestGate(
        SlidingWindowLimiter(10, 1, clock=fake.clock, sleep=fake.sleep),
        cooldown,
        concurrency=1,
        events=Observer(),
    )
    with pytest.raises(PolyvError):
        async with gate.slot():
            raise PolyvError(ErrorKind.RATE_LIMITED, "slow down", retry_after=7)
    assert cooldown.remaining() == 7
    assert heard == [7]


async def test_a_burst_of_connection_failures_counts_as_rate_limited():
    fake = FakeTime()
    cooldown = CoolDown(30, clock=fake.clock, sleep=fake.sleep)
    gate = RequestGate(
        SlidingWindowLimiter(100, 1, clock=fake.clock, sleep=fake.sleep),
        cooldown,
        concurrency=1,
        connection_failure_burst=3,
    )
    for _ in range(3):
        with pytest.raises(PolyvError):
            async with gate.slot():
                raise PolyvError(ErrorKind.TRANSIENT, "connection failed")
    assert cooldown.trips == 1


async def test_paced_limiter_sends_in_small_steps_at_the_full_average_rate():
    from bulkpolyv.ratelimit import PacedWindowLimiter

    fake = FakeTime()
    limiter = PacedWindowLimiter(100, 10.0, slack=0.0, clock=fake.clock, sleep=fake.sleep)
    sent = []

    async def worker() -> None:
        for _ in range(50):
            sent.append(await limiter.acquire())

    await asyncio.gather(*(worker() for _ in range(20)))
    sent.sort()
    assert max_in_any_window(sent, 10.0) == 100
    assert max_in_any_window(sent, 1.0) == 10  # never a whole window at once
    assert sent[-1] == pytest.approx(99.0)  # 1,000 sends: 10 every second, no time lost

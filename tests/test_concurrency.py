"""auto concurrency follows latency; the resizable semaphore applies it."""

import asyncio

import pytest

from bulkpolyv.concurrency import AutoConcurrency, ResizableSemaphore


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def settle(auto: AutoConcurrency, latency: float, clock: Clock, samples: int = 200) -> int:
    for _ in range(samples):
        clock.now += 0.1
        auto.observe(latency)
    return auto.target


def test_target_is_rate_times_latency_with_margin():
    clock = Clock()
    auto = AutoConcurrency(1200, 10, clock=clock)  # 120/s
    assert auto.target == 30  # ceil(1.25 * 120 * 0.2) before any answer
    assert settle(auto, 0.6, clock) == 90
    assert settle(auto, 1.0, clock) == 150


def test_target_is_clamped_to_floor_and_ceiling_and_a_users_cap():
    clock = Clock()
    assert settle(AutoConcurrency(1500, 10, clock=clock), 0.001, clock) == 4
    assert settle(AutoConcurrency(1500, 10, clock=clock), 3.0, clock) == 256
    assert settle(AutoConcurrency(1500, 10, cap=64, clock=clock), 3.0, clock) == 64
    assert AutoConcurrency(1500, 10, cap=2, clock=clock).target == 2  # cap below the floor


def test_it_grows_at_once_and_shrinks_only_after_latency_stayed_low():
    clock = Clock()
    auto = AutoConcurrency(1200, 10, smoothing=1.0, shrink_after=5.0, clock=clock)
    assert auto.observe(1.0) == 150  # grows with the first slow answer
    assert auto.observe(0.1) == 150  # one fast answer changes nothing yet
    clock.now += 4.9
    assert auto.observe(0.1) == 150
    clock.now += 0.1
    assert auto.observe(0.1) == 15  # low for 5 s: shrink
    assert auto.observe(0.1) == 15


def test_a_slow_answer_restarts_the_wait_before_shrinking():
    clock = Clock()
    auto = AutoConcurrency(1200, 10, smoothing=1.0, shrink_after=5.0, clock=clock)
    auto.observe(1.0)
    auto.observe(0.5)  # lower: the 5 s start now
    clock.now += 3
    auto.observe(1.0)  # back up: start again
    clock.now += 3
    assert auto.observe(0.5) == 150


async def test_semaphore_grows_and_wakes_waiters_first_come_first_served():
    semaphore = ResizableSemaphore(1)
    order = []
    await semaphore.acquire()

    async def wait(name: str) -> None:
        await semaphore.acquire()
        order.append(name)

    tasks = [asyncio.create_task(wait(name)) for name in "abc"]
    await asyncio.sleep(0)
    assert order == []
    semaphore.resize(3)
    await asyncio.sleep(0)
    assert order == ["a", "b"] and semaphore.in_use == 3
    semaphore.release()
    await asyncio.gather(*tasks)
    assert order == ["a", "b", "c"]


async def test_semaphore_shrinks_without_taking_places_away():
    semaphore = ResizableSemaphore(3)
    for _ in range(3):
        await semaphore.acquire()
    semaphore.resize(1)
    waiter = asyncio.create_task(semaphore.acquire())
    semaphore.release()
    semaphore.release()
    await asyncio.sleep(0)
    assert not waiter.done() and semaphore.in_use == 1  # still one holder: at capacity
    semaphore.release()
    await waiter
    assert semaphore.in_use == 1


async def test_a_cancelled_waiter_leaves_nothing_behind():
    semaphore = ResizableSemaphore(1)
    await semaphore.acquire()
    waiter = asyncio.create_task(semaphore.acquire())
    await asyncio.sleep(0)
    waiter.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiter
    semaphore.release()
    assert semaphore.in_use == 0
    async with semaphore:
        assert semaphore.in_use == 1


async def test_a_waiter_cancelled_as_it_is_granted_hands_its_place_on():
    semaphore = ResizableSemaphore(1)
    await semaphore.acquire()
    first = asyncio.create_task(semaphore.acquire())
    second = asyncio.create_task(semaphore.acquire())
    await asyncio.sleep(0)
    semaphore.release()  # grants ``first`` ...
    first.cancel()  # ... which is cancelled before it runs
    with pytest.raises(asyncio.CancelledError):
        await first
    await second
    assert semaphore.in_use == 1


async def test_a_waiter_cancelled_just_before_a_release_ends_cancelled_holding_nothing():
    semaphore = ResizableSemaphore(1)
    await semaphore.acquire()
    waiter = asyncio.ensure_future(semaphore.acquire())
    await asyncio.sleep(0)  # parked on its future
    waiter.cancel()  # its future is cancelled at once...
    semaphore.release()  # ...and the release drops it before the waiter runs again
    (ended,) = await asyncio.gather(waiter, return_exceptions=True)
    assert isinstance(ended, asyncio.CancelledError)  # was ValueError: not in deque
    assert (semaphore.in_use, len(semaphore._waiters)) == (0, 0)

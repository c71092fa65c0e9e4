"""The stop signal ends every wait at once."""

import asyncio
import os
import signal
import time

from bulkpolyv.stopping import Stop, Stopped


async def test_a_stop_ends_a_long_sleep_at_once():
    stop = Stop()
    asyncio.get_running_loop().call_later(0.05, stop.set, "test")
    started = time.monotonic()
    assert await stop.sleep(300) is False
    assert time.monotonic() - started < 1
    assert stop.reason == "test"


async def test_a_sleep_without_a_stop_completes():
    stop = Stop()
    assert await stop.sleep(0.01) is True
    assert await stop.sleep(0) is True


async def test_check_raises_once_stopped_and_the_first_reason_stays():
    stop = Stop()
    stop.check()
    stop.set("first")
    stop.set("second")
    try:
        stop.check()
    except Stopped as stopped:
        assert str(stopped) == "first"
    else:
        raise AssertionError("check did not raise")


async def test_sighup_sets_the_stop_with_its_name():
    stop = Stop()
    with stop.on_signals():
        os.kill(os.getpid(), signal.SIGHUP)
        await asyncio.wait_for(stop.wait(), 2)
    assert (stop.reason, stop.signal) == ("interrupted by SIGHUP", signal.SIGHUP)


async def test_leaving_the_run_s_signal_handling_puts_back_the_handler_before_it():
    """asyncio's remove_signal_handler leaves SIG_DFL: a SIGTERM while the plan is printed
    killed the process with no word (exit 143)."""

    def before(signum, frame):  # pragma: no cover - never delivered here
        raise AssertionError

    saved = signal.signal(signal.SIGTERM, before)
    try:
        with Stop().on_signals():
            assert signal.getsignal(signal.SIGTERM) is not before
        assert signal.getsignal(signal.SIGTERM) is before
    finally:
        signal.signal(signal.SIGTERM, saved)

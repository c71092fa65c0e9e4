"""The progress display off a terminal, with a fake clock and a fake sleep."""

import asyncio
import io

from bulkpolyv.events import FanOut, RunEvents, fan_out
from bulkpolyv.plan import ItemKey
from bulkpolyv.progress import RunProgress
from bulkpolyv.report import ItemOutcome, Status


class FakeTime:
    def __init__(self) -> None:
        self.now = 100.0
        self.beats = 0

    def clock(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.now += seconds
        self.beats += 1
        await asyncio.sleep(0)


async def beat(fake: FakeTime, count: int) -> None:
    target = fake.beats + count
    while fake.beats < target:
        await asyncio.sleep(0)


async def test_off_a_terminal_a_heartbeat_line_every_ten_seconds_with_rate_and_counts():
    stream, fake = io.StringIO(), FakeTime()
    progress = RunProgress(stream=stream, interactive=False, clock=fake.clock, sleep=fake.sleep)
    progress.phase("apply", 4, lambda: 300)
    progress.outcome(ItemOutcome(ItemKey("a"), Status.CHANGED))
    progress.outcome(ItemOutcome(ItemKey("b"), Status.FAILED))
    await beat(fake, 2)  # the first heartbeat is written after the first 10 s
    progress.phase_done()
    assert stream.getvalue().splitlines()[0] == (
        "bulkpolyv: apply 2/4, changed=1 failed=1 30 req/s"  # 300 requests in 10 s
    )


async def test_a_cooldown_is_announced_and_shown_until_it_ends():
    stream, fake = io.StringIO(), FakeTime()
    progress = RunProgress(stream=stream, interactive=False, clock=fake.clock, sleep=fake.sleep)
    progress.phase("read", 10, lambda: 50)
    progress.read_done()
    progress.cooldown(300)
    assert stream.getvalue() == "bulkpolyv: POLYV rate limit hit: every request paused for 300 s\n"
    fake.now += 10
    assert progress.detail() == "5 req/s cooling down (290 s left)"
    fake.now += 300
    assert progress.detail() == "0 req/s"
    progress.phase_done()


async def test_an_apply_phase_keeps_the_read_phase_clock():
    fake = FakeTime()
    progress = RunProgress(stream=io.StringIO(), interactive=False, clock=fake.clock)
    progress.phase("read", 1, lambda: 0)
    progress.phase_done()
    fake.now += 4
    progress.phase("apply", 1, lambda: 40)
    assert progress.detail() == "changed=0 failed=0 10 req/s"  # 40 requests over 4 s
    progress.phase_done()


async def test_time_at_the_confirmation_prompt_is_left_out_of_the_rate():
    fake = FakeTime()
    progress = RunProgress(stream=io.StringIO(), interactive=False, clock=fake.clock)
    progress.phase("read", 1, lambda: 0)
    progress.phase_done()
    fake.now += 2
    progress.exclude(60.0)  # a minute at "Apply these changes?"
    fake.now += 60
    progress.phase("apply", 1, lambda: 40)
    assert progress.detail() == "changed=0 failed=0 20 req/s"  # 40 requests over 2 s
    progress.phase_done()


def test_fan_out_hands_every_event_to_each_observer_in_order():
    calls = []

    class Recorder(RunEvents):
        def __init__(self, name):
            self.name = name

        def cooldown(self, seconds):
            calls.append((self.name, "cooldown", seconds))

        def read_done(self):
            calls.append((self.name, "read_done"))

    fan = FanOut(Recorder("display"), Recorder("journal"), RunEvents())
    fan.cooldown(7.0)
    fan.read_done()
    fan.outcome(ItemOutcome(ItemKey("a"), Status.CHANGED))  # a no-op default for both
    assert calls == [
        ("display", "cooldown", 7.0),
        ("journal", "cooldown", 7.0),
        ("display", "read_done"),
        ("journal", "read_done"),
    ]


def test_fan_out_is_one_flat_fan_and_only_where_there_are_several_observers():
    display, log, journal = RunEvents(), RunEvents(), RunEvents()
    assert fan_out(journal) is journal
    assert fan_out(None, journal, None) is journal
    assert type(fan_out()) is RunEvents and type(fan_out(None)) is RunEvents
    fan = fan_out(fan_out(display, log), journal)  # the command's observers, then the journal
    assert isinstance(fan, FanOut) and fan.observers == (display, log, journal)

    class Quiet(FanOut):  # a caller's fan-out that filters: kept whole, its filter works
        def retry(self, account, attempt, wait, reason):
            pass

    quiet = Quiet(display, log)
    assert fan_out(quiet, journal).observers == (quiet, journal)

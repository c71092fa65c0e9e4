"""The journal with an injected fsync: what it writes, when it syncs, what it leaves."""

import asyncio
import datetime as dt
import json
import time

import pytest

from bulkpolyv.errors import BulkPolyvError
from bulkpolyv.fastjson import dumps_orjson, dumps_stdlib
from bulkpolyv.journal import (
    Journal,
    JournalError,
    UtcStamp,
    journal_for,
    prune_journals,
    retention_days,
)
from bulkpolyv.plan import FieldChange, ItemKey, Operation, OpKind
from bulkpolyv.report import ItemOutcome, Status
from tests.models import HERE

OP = Operation(
    OpKind.UPDATE_MONITOR, ItemKey("east", 10, 2), (FieldChange("nickname", "a", "b"),), HERE
)


class FakeFsync:
    def __init__(self) -> None:
        self.calls: list[int] = []

    def __call__(self, fd: int) -> None:
        self.calls.append(fd)


def lines(path):
    return [json.loads(line) for line in path.read_text().splitlines()]


async def test_sending_and_done_lines_are_journaled_and_synced_by_group_commit(tmp_path):
    fsync = FakeFsync()
    journal = Journal(tmp_path / "j.jsonl", fsync=fsync)
    journal.start()
    journal.write({"event": "start"})
    journal.sending(OP)
    journal.outcome(ItemOutcome.of_operation(OP, Status.CHANGED, attempts=1))
    for _ in range(200):  # let the background sync run (it is a thread: real time)
        if fsync.calls:
            break
        await asyncio.sleep(0.005)
    assert len(fsync.calls) == 1  # three lines written back to back: one group commit
    await journal.close()
    records = lines(tmp_path / "j.jsonl")
    assert [r["event"] for r in records] == ["start", "sending", "done"]
    assert {k: records[1][k] for k in ("account", "channel_id", "monitor_id", "operation")} == {
        "account": "east",
        "channel_id": 10,
        "monitor_id": 2,
        "operation": "update_monitor",
    }
    assert (records[2]["status"], records[2]["attempts"]) == ("changed", 1)
    assert all("ts" in r for r in records)
    assert len(fsync.calls) == 2 and len(set(fsync.calls)) == 1  # and the final one on close
    assert (tmp_path / "j.jsonl").stat().st_mode & 0o777 == 0o600


async def test_lines_written_without_pause_are_synced_at_the_group_commits_pace(tmp_path):
    fsync = FakeFsync()
    journal = Journal(tmp_path / "j.jsonl", fsync=fsync, sync_interval=0.1)
    journal.start()
    started = time.monotonic()
    for _ in range(60):  # 0.3 s or more of lines, one every 5 ms
        journal.sending(OP)
        await asyncio.sleep(0.005)
    elapsed = time.monotonic() - started
    # One per 0.1 s (a thread: real time), not one per line; a slow host only spreads them.
    assert 1 <= len(fsync.calls) <= elapsed / 0.1 + 1
    await journal.close()
    assert len(lines(tmp_path / "j.jsonl")) == 60


async def test_each_line_is_in_the_file_before_any_sync(tmp_path):
    """A kill -9 loses nothing already journaled: lines go to the kernel at once."""
    fsync = FakeFsync()
    journal = Journal(tmp_path / "j.jsonl", fsync=fsync)
    journal.start()
    journal.sending(OP)
    assert lines(tmp_path / "j.jsonl")[0]["event"] == "sending"
    assert fsync.calls == []
    await journal.close()


async def test_no_file_until_the_journal_is_started(tmp_path):
    journal = Journal(tmp_path / "j.jsonl", fsync=FakeFsync())
    with pytest.raises(RuntimeError, match="before it was started"):
        journal.sending(OP)
    await journal.close()
    assert not (tmp_path / "j.jsonl").exists()


def test_the_default_journal_lives_under_the_state_directory(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path))
    path = journal_for("/srv/accounts.yaml", None).path
    assert path.parent == tmp_path / "bulkpolyv" / "journal"
    assert path.name.startswith("accounts-") and path.suffix == ".jsonl"
    assert journal_for("m.yaml", tmp_path / "mine.jsonl").path == tmp_path / "mine.jsonl"


class FullDisk:
    """``os.write`` of a disk that takes ``room`` more bytes, a few at a time."""

    def __init__(self, room: int, chunk: int = 7) -> None:
        self.room, self.chunk = room, chunk

    def __call__(self, fd: int, data: bytes) -> int:
        import errno
        import os

        if self.room <= 0:
            raise OSError(errno.ENOSPC, "No space left on device")
        written = os.write(fd, data[: min(self.chunk, self.room)])
        self.room -= written
        return written


async def test_short_writes_are_continued_and_a_full_disk_leaves_no_half_line(tmp_path):
    path = tmp_path / "j.jsonl"
    disk = FullDisk(room=300)
    journal = Journal(path, fsync=FakeFsync(), write=disk)
    journal.start()
    journal.write({"event": "start"})  # in 7-byte pieces
    whole = 1
    with pytest.raises(JournalError) as raised:
        for _ in range(5):
            journal.sending(OP)
            whole += 1
    await journal.close()
    assert str(raised.value) == f"cannot write the journal {path}: No space left on device"
    assert disk.room == 0  # the failing line did get partly written...
    assert path.stat().st_size < 300  # ...and was cut off again
    records = lines(path)  # json.loads fails on a cut line
    assert [r["event"] for r in records] == ["start"] + ["sending"] * (whole - 1)
    assert whole == 2  # the start line and one sending line fit in 300 bytes, not two
    assert path.read_text().endswith("\n")


async def test_a_journal_opened_by_preflight_and_never_written_is_removed(tmp_path):
    path = tmp_path / "j.jsonl"
    journal = Journal(path, fsync=FakeFsync())
    journal.open()
    assert path.exists()
    await journal.close()
    assert not path.exists()


def test_old_journals_are_pruned_and_nothing_else(tmp_path):
    import os

    now = 1_800_000_000.0
    old = tmp_path / "m-20260101T000000Z-11.jsonl"
    young = tmp_path / "m-20260301T000000Z-12.jsonl"
    other = tmp_path / "notes.jsonl"
    for path, age_days in ((old, 31), (young, 29), (other, 400)):
        path.write_text("{}\n")
        os.utime(path, (now - age_days * 86400, now - age_days * 86400))
    assert prune_journals(tmp_path, 30, now=now) == [old]
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([young.name, other.name])
    assert prune_journals(tmp_path, 0, now=now + 1e9) == []  # 0 keeps them forever


def test_retention_comes_from_the_environment():
    assert retention_days({}) == 30
    assert retention_days({"BULKPOLYV_JOURNAL_DAYS": "90"}) == 90
    assert retention_days({"BULKPOLYV_JOURNAL_DAYS": "0"}) == 0
    with pytest.raises(BulkPolyvError, match="BULKPOLYV_JOURNAL_DAYS='soon'"):
        retention_days({"BULKPOLYV_JOURNAL_DAYS": "soon"})


@pytest.mark.parametrize(
    "seconds", [1_700_000_000.0, 1_700_000_000.1234, 1_700_000_000.9995, 1_777_777_777.123]
)
def test_line_stamps_read_as_the_report_writes_times(seconds):
    expected = dt.datetime.fromtimestamp(seconds, dt.UTC).isoformat(timespec="milliseconds")
    assert UtcStamp(clock=lambda: seconds)() == expected


def test_a_stamp_follows_the_clock_across_seconds():
    times = iter([1_700_000_000.5, 1_700_000_000.75, 1_700_000_001.25])
    stamp = UtcStamp(clock=lambda: next(times))
    assert [stamp()[17:23] for _ in range(3)] == ["20.500", "20.750", "21.250"]


def test_both_encoders_write_the_same_line():
    outcome = ItemOutcome.of_operation(OP, Status.FAILED, polyv_code=400, message="签名错误")
    record = {"ts": "2026-05-01T12:00:00.123+00:00", "event": "done", **outcome.to_dict()}
    line = dumps_orjson(record, newline=True)
    assert dumps_stdlib(record, newline=True) == line
    assert line.endswith(b"\n") and line.count(b"\n") == 1
    assert json.loads(line) == record
    assert "签名错误".encode() in line  # UTF-8 as it is, not \\u escapes


def test_a_lone_surrogate_is_a_json_escape_in_json_and_refused_elsewhere(tmp_path):
    # a report or plan file (JSON) reads back the same text; a CSV would hold another value
    from bulkpolyv.privatefiles import PrivateFileError, write_private

    report, listing = tmp_path / "r.json", tmp_path / "m.csv"
    write_private(report, json.dumps({"nickname": "a\ud800b"}, ensure_ascii=False), json_text=True)
    assert json.loads(report.read_text()) == {"nickname": "a\ud800b"}
    with pytest.raises(PrivateFileError, match="not valid Unicode"):
        write_private(listing, "1,2,a\ud800b\n")
    assert list(tmp_path.iterdir()) == [report]  # no CSV, no temp file left

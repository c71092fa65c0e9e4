"""Efficiency figures for issue 16: client CPU per request, memory at scale, start-up time.

    python bench/efficiency.py                     # CPU, 100k rows, start-up; 5 runs each
    python bench/efficiency.py --rows 1000000      # also the 1M-row point (takes minutes)
    python bench/efficiency.py --checkout DIR      # measure another checkout's code
    python bench/efficiency.py --loop uvloop       # bulkpolyv and the bare loop on uvloop
    python bench/efficiency.py --budget default    # with the host-wide SQLite budget store
    python bench/efficiency.py --instructions      # client figures counted by cachegrind
    python bench/efficiency.py --control 54        # also the control (plain Python)

Every figure is measured in a child process (``wait4`` gives its CPU time and peak RSS), so
the same script measures any checkout of bulkpolyv, old or new, against the same simulator.

*Client CPU per request* is a slope: the child's CPU for a large apply minus its CPU for a
small one, divided by the difference in requests the simulator counted. That cancels the
start-up cost (imports, loading the manifest), which is measured on its own. The bare loop
is the same requests (reads, then writes) from a minimal aiohttp + semaphore client, in a
child of its own, measured the same way. The *floor* is that bare loop plus only what
issue 16 keeps: a timestamped JSON line handed to the kernel before each write and one
after it, and a sliding-window count per request. It shows how much of the 1.3x goal the
journal's guarantee alone takes. Each figure is the median of ``--runs`` runs; the worst is
printed beside it. Each run starts with the next client in turn, and a ratio to the bare
loop is printed per run (its median) and *pooled* (all runs' costs summed, then divided),
which a slow moment of the host sways far less. On a shared host the CPU figures move by
10-15 % from run to run, and the host's own speed by tens of per cent over minutes;
``--instructions`` counts user-space instructions instead (valgrind's cachegrind), which
repeat exactly but do not see the kernel's share (the journal's writes, the sockets),
with the first-level cache misses and branch mispredictions cachegrind's model of the CPU
counts for them: CPU seconds follow those too, not instructions alone. The *control*
(``--control K``) is the bare loop plus K small functions of plain Python per request:
with as many instructions per request as bulkpolyv, it shows what that many instructions
cost when they are simple ones.

Start-up is measured as a user meets it: the checkout installed (``pip install --target``,
which compiles its bytecode) for a scratch interpreter that sees the benchmark's own
packages, not the checkout on PYTHONPATH (compiled at every start when
PYTHONDONTWRITEBYTECODE is set) nor an editable install (whose finder costs 50 M
instructions at every start).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from children import APPLY_CHILD, BARE_CHILD, CONTROL_CHILD, FLOOR_CHILD
from common import SECRET_ENV, SimProcess, make_world

HERE = Path(__file__).resolve().parent.parent
ENV = SECRET_ENV
PER_CHANNEL = 10


@dataclass
class Child:
    wall: float
    cpu: float
    peak_mb: float
    output: str


def child_place(args: list[str], checkout: Path, on_path: bool) -> tuple[dict[str, str], Path]:
    """A child's environment and working directory: with ``on_path`` the checkout's tree
    is first on its PYTHONPATH and its working directory; without, it runs beside its
    interpreter, where no bulkpolyv shadows the one installed."""
    env = {**os.environ, **ENV}
    if on_path:
        env["PYTHONPATH"] = str(checkout)
        return env, checkout
    return env, Path(args[0]).parent


def run_child_rusage(
    args: list[str], checkout: Path, *, check: bool = True, on_path: bool = True
) -> Child:
    """Run a child, reaped with wait4 to read its own CPU time and peak RSS; ``on_path``
    as for :func:`child_place`."""
    env, cwd = child_place(args, checkout, on_path)
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        started = time.perf_counter()
        process = subprocess.Popen(args, cwd=cwd, env=env, stdout=out, stderr=err, text=True)
        try:
            _, status, usage = os.wait4(process.pid, 0)
        except BaseException:  # the bench is interrupted: no child outlives it
            process.kill()
            process.wait()
            raise
        wall = time.perf_counter() - started
        process.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        if check and process.returncode != 0:
            raise RuntimeError(f"{args[:4]} failed ({process.returncode}): {err.read()[-2000:]}")
        return Child(wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024, out.read())


# --- the figures ----------------------------------------------------------------------------


# What each client figure runs: bulkpolyv's apply, the bare loop, and the floor.
CLIENTS = ("bulkpolyv", "bare loop", "floor")


def client_args(client: str, manifest: Path, sim: SimProcess, scratch: Path) -> list[str]:
    journal = str(scratch / f"journal-{time.monotonic_ns()}.jsonl")
    env = json.dumps(ENV)
    if client == "bulkpolyv":
        return [sys.executable, "-c", APPLY_CHILD, str(manifest), sim.url, journal, env]
    code = {"bare loop": BARE_CHILD, "floor": FLOOR_CHILD, "control": CONTROL_CHILD}[client]
    return [sys.executable, "-c", code, str(manifest), sim.url, env, journal]


def per_request(
    sim: SimProcess,
    worlds: list[tuple[Path, dict]],
    client: str,
    scratch: Path,
    measure: Callable[[list[str]], dict[str, float]],
) -> dict[str, float]:
    """``measure``'s figures per request: the slope between the small and the large world,
    which cancels the start-up cost (imports, loading the manifest)."""
    points = []
    for manifest, state in worlds:
        sim.prepare(state)
        costs = measure(client_args(client, manifest, sim, scratch))
        points.append((sim.stats()["requests"], costs))
    (small_requests, small_costs), (large_requests, large_costs) = points
    return {
        name: (large_costs[name] - small_costs[name]) / (large_requests - small_requests)
        for name in large_costs
    }


def cpu_seconds(checkout: Path) -> Callable[[list[str]], dict[str, float]]:
    return lambda args: {"CPU s / 1,000 requests": 1000 * run_child_rusage(args, checkout).cpu}


# What valgrind's cachegrind counts (events as its output names them), by the name printed.
SIMULATED = {
    "instructions / request": ("Ir",),
    "I1 misses / request": ("I1mr",),
    "D1 misses / request": ("D1mr", "D1mw"),
    "branch mispredictions / request": ("Bcm", "Bim"),
}


def simulated(checkout: Path, *, on_path: bool = True) -> Callable[[list[str]], dict[str, float]]:
    """The child's user-space instructions, and the first-level cache misses and branch
    mispredictions that cachegrind's model of this CPU counts for them: the same counts on
    every run whatever else the host does. Blind to the kernel's share (the journal's
    os.write, the sockets). ``on_path`` as for :func:`child_place`."""

    def count(args: list[str]) -> dict[str, float]:
        env, cwd = child_place(args, checkout, on_path)
        with tempfile.NamedTemporaryFile(prefix="cachegrind-") as out:
            done = subprocess.run(
                ["valgrind", "--tool=cachegrind", "--cache-sim=yes", "--branch-sim=yes",
                 f"--cachegrind-out-file={out.name}", *args],
                cwd=cwd, env={**env, "PYTHONHASHSEED": "0"}, capture_output=True, text=True,
            )  # fmt: skip
            text = out.read().decode()
        lines = [re.search(rf"^{part}: (.+)$", text, re.M) for part in ("events", "summary")]
        if done.returncode != 0 or lines[0] is None or lines[1] is None:
            raise RuntimeError(f"{args[:3]} under cachegrind failed: {done.stderr[-2000:]}")
        names, summary = lines[0].group(1).split(), lines[1].group(1).split()
        counts = dict(zip(names, map(int, summary), strict=True))
        return {name: float(sum(counts[e] for e in events)) for name, events in SIMULATED.items()}

    return count


def validate_point(manifest: Path, checkout: Path) -> Child:
    """``validate``, from the checkout's tree."""
    return run_child_rusage(
        [sys.executable, "-m", "bulkpolyv", "validate", str(manifest)], checkout
    )


def apply_point(
    sim: SimProcess, manifest: Path, state: dict, checkout: Path, scratch: Path
) -> Child:
    sim.prepare(state)
    return run_child_rusage(client_args("bulkpolyv", manifest, sim, scratch), checkout)


def installed(checkout: Path, scratch: Path) -> str:
    """A python that has the checkout installed as pip installs it (compiled, no editable
    finder) and sees this interpreter's packages (aiohttp, pydantic...): its path. pip
    builds from a copy: a build in place would write into the checkout, and a stale
    ``build/`` there would be installed with it."""
    source, target, venv = scratch / "source", scratch / "installed", scratch / "venv"
    junk = shutil.ignore_patterns(".*", "build", "dist", "*.egg-info", "__pycache__")
    shutil.copytree(checkout, source, ignore=junk)
    pip = [sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target", str(target)]
    done = subprocess.run([*pip, str(source)], capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"cannot install {checkout} to time its start-up:\n{done.stderr[-2000:]}")
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = str(venv / "bin" / "python")
    purelib = subprocess.run(
        [python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        check=True, capture_output=True, text=True,
    ).stdout.strip()  # fmt: skip
    # Plain directories in a .pth file: on the path, without their own .pth files.
    paths = [str(target), *(p for p in sys.path if p.endswith("site-packages"))]
    (Path(purelib) / "bench-packages.pth").write_text("\n".join(paths) + "\n")
    return python


def startup_figures(args: argparse.Namespace, checkout: Path, scratch: Path) -> dict:
    """``--help`` and a small ``validate`` by an installed copy: wall and CPU seconds (on a
    busy host the wall time is mostly waiting), and with ``--instructions`` their counts,
    which the host's speed does not move."""
    small, _ = make_world(scratch / "w10", 10, PER_CHANNEL)
    python = installed(checkout, scratch)
    commands = {"bulkpolyv --help": ["--help"], "validate (10 rows)": ["validate", str(small)]}
    figures: dict[str, list[float]] = {}
    for _ in range(args.runs):
        for name, command in commands.items():
            child = run_child_rusage([python, "-m", "bulkpolyv", *command], checkout, on_path=False)
            figures.setdefault(f"{name} wall s", []).append(child.wall)
            figures.setdefault(f"{name} CPU s", []).append(child.cpu)
    if args.instructions:
        count = simulated(checkout, on_path=False)
        for name, command in commands.items():
            label = name.removeprefix("bulkpolyv ")  # "--help instructions", as before
            counted = count([python, "-m", "bulkpolyv", *command])["instructions / request"]
            figures[f"{label} instructions"] = [counted]
    return figures


def median_worst(values: list[float], higher_is_worse: bool = True) -> str:
    worst = max(values) if higher_is_worse else min(values)
    shown = ",.0f" if min(values) >= 1000 else ".3f"  # instruction counts, or seconds and MB
    return f"{statistics.median(values):{shown}} (worst {worst:{shown}}, n={len(values)})"


class _HelpFormat(argparse.ArgumentDefaultsHelpFormatter, argparse.RawDescriptionHelpFormatter):
    """The module's text as written, and each option's default."""


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__,
        formatter_class=_HelpFormat,
    )
    parser.add_argument(
        "--checkout", type=Path, default=HERE, help="the bulkpolyv source tree to measure"
    )
    parser.add_argument("--runs", type=int, default=5, help="runs of each figure (median, worst)")
    parser.add_argument("--rows", type=int, default=100_000, help="the memory point's rows")
    parser.add_argument(
        "--skip",
        nargs="*",
        default=[],
        choices=["cpu", "rows", "apply", "startup"],
        help="leave out figures (apply: the rows' plan+apply, keeping their validate)",
    )
    parser.add_argument(
        "--instructions",
        action="store_true",
        help="the client figures in user-space instructions, cache misses and branch "
        "mispredictions per request (valgrind's cachegrind, small worlds, one run: the counts "
        "repeat), instead of CPU seconds, and the start-up's instructions beside its times; "
        "about 10 minutes with --skip rows",
    )
    parser.add_argument(
        "--control",
        type=int,
        default=0,
        metavar="K",
        help="also measure the control: the bare loop plus K distinct small functions of "
        "plain Python per request (children.py); pick K so that its instructions per "
        "request match bulkpolyv's (--instructions), to see what they cost in CPU seconds",
    )
    parser.add_argument(
        "--loop",
        choices=["asyncio", "uvloop"],
        default="asyncio",
        help="the event loop of bulkpolyv and of the bare loop (BULKPOLYV_LOOP)",
    )
    parser.add_argument(
        "--budget",
        default="memory",
        help="bulkpolyv's budget store: memory (default here: the loop's own cost), default "
        "(the host-wide SQLite store a run uses), or a spec such as sqlite:///path",
    )
    return parser.parse_args()


def client_figures(args: argparse.Namespace, sim: SimProcess, scratch: Path) -> dict:
    """Per request, for each client: CPU seconds per 1,000, or what cachegrind counts."""
    checkout = args.checkout.resolve()
    if args.instructions:
        sizes, measure, runs = (200, 1_000), simulated(checkout), 1
    else:
        sizes, measure, runs = (2_000, 20_000), cpu_seconds(checkout), args.runs
    worlds = [make_world(scratch / f"w{n}", n, PER_CHANNEL) for n in sizes]
    figures: dict[str, list[float]] = {}
    order = clients(args)
    for run in range(runs):
        # Each run starts with the next client: the host's speed drifts by tens of per
        # cent over seconds here, and a fixed order would hand one client the same
        # share of that drift in every run.
        for client in order[run % len(order) :] + order[: run % len(order)]:
            for unit, cost in per_request(sim, worlds, client, scratch, measure).items():
                figures.setdefault(f"client {unit}: {client}", []).append(cost)
    return figures


def clients(args: argparse.Namespace) -> tuple[str, ...]:
    return (*CLIENTS, "control") if args.control else CLIENTS


def print_ratios(figures: dict[str, list[float]], width: int) -> None:
    """The goal is a ratio: each run's own, then their median; for each unit measured."""
    lines = []
    for name in figures:
        if not (name.startswith("client ") and name.endswith(": bare loop")):
            continue
        unit = name.removeprefix("client ").removesuffix(": bare loop")
        for client in ("bulkpolyv", "floor", "control"):
            if (values := figures.get(f"client {unit}: {client}")) is None:
                continue
            ratios = [a / b for a, b in zip(values, figures[name], strict=True)]
            goal = client == "bulkpolyv" and unit.startswith(("CPU", "instructions"))
            label = f"{client} / bare loop, {unit.split(' / ')[0]}"
            lines.append((f"{label}, per run", f"{median_worst(ratios)}{'  (goal <= 1.3)' * goal}"))
            if len(values) > 1:
                # All runs' costs summed, then divided: a run on a slow moment weighs as
                # much for both clients, where a ratio per run carries its drift whole.
                pooled = sum(values) / sum(figures[name])
                lines.append((f"{label}, pooled", f"{pooled:.3f} (sum of {len(values)} runs each)"))
    width = max([width, *(len(label) for label, _ in lines)])
    for label, shown in lines:
        print(f"{label.ljust(width)}  {shown}")


def main() -> int:
    args = parse_args()
    os.environ["BULKPOLYV_LOOP"] = args.loop
    os.environ["EFFICIENCY_BUDGET"] = args.budget
    os.environ["EFFICIENCY_CONTROL_STEPS"] = str(args.control)
    checkout = args.checkout.resolve()
    if not (checkout / "bulkpolyv").is_dir():
        raise SystemExit(f"--checkout {args.checkout}: not a bulkpolyv source tree")
    if args.loop == "uvloop" and importlib.util.find_spec("uvloop") is None:
        raise SystemExit("--loop uvloop: uvloop is not installed (pip install 'bulkpolyv[fast]')")
    for signum in (signal.SIGTERM, signal.SIGHUP):  # clean up as after Ctrl-C
        signal.signal(signum, lambda signum, _frame: sys.exit(128 + signum))
    sim: SimProcess | None = None
    figures: dict[str, list[float]] = {}
    with tempfile.TemporaryDirectory(prefix="bulkpolyv-eff-") as tmp:
        scratch = Path(tmp)
        try:
            sim = SimProcess()
            if "cpu" not in args.skip:
                figures.update(client_figures(args, sim, scratch))
            if "startup" not in args.skip:
                figures.update(startup_figures(args, checkout, scratch))
            if "rows" not in args.skip:
                figures.update(row_figures(args, sim, scratch))
        finally:
            if sim is not None:
                sim.close()
    print(f"checkout: {checkout}  loop: {args.loop}  budget: {args.budget}")
    width = max(len(name) for name in figures)
    for name, values in figures.items():
        print(f"{name.ljust(width)}  {median_worst(values)}")
    print_ratios(figures, width)
    return 0


def row_figures(args: argparse.Namespace, sim: SimProcess, scratch: Path) -> dict:
    """validate and plan+apply of ``--rows`` monitor rows: wall time and peak RSS."""
    checkout = args.checkout.resolve()
    manifest, state = make_world(scratch / f"w{args.rows}", args.rows, PER_CHANNEL)
    figures: dict[str, list[float]] = {}
    for _ in range(args.runs):
        v = validate_point(manifest, checkout)
        figures.setdefault(f"validate {args.rows:,} rows: wall s", []).append(v.wall)
        figures.setdefault(f"validate {args.rows:,} rows: peak RSS MB", []).append(v.peak_mb)
        if "apply" in args.skip:  # the rows' validate point only
            continue
        a = apply_point(sim, manifest, state, checkout, scratch)
        figures.setdefault(f"plan+apply {args.rows:,} rows: wall s", []).append(a.wall)
        figures.setdefault(f"plan+apply {args.rows:,} rows: peak RSS MB", []).append(a.peak_mb)
    return figures


if __name__ == "__main__":
    sys.exit(main())

"""``log_metric``'s hot path, before and after a change to the op records (issue 15).

Why a script of its own: case 1 of ``case_kernel.py`` times the call inside a real kernel,
which on a loaded machine is too noisy to see a tenth of a microsecond. Here each round runs
two fresh processes, one per source tree (``--before`` and ``--after``, each a folder holding
the ``nbtrace`` package), the order flipping every round; each process opens a throwaway
SQLite store through a real :class:`~nbtrace.tracker.Tracker`, starts a run and times

- ``log``: ``log_metric("loss", v, step=i)`` in a loop, per call;
- ``durable``: the same loop plus the flush that writes it (what a cell pays until its
  metrics are on disk), per call.

Usage (the "before" tree from git, the "after" tree this worktree's ``src``)::

    git archive main src | tar -x -C /tmp/before
    python benchmarks/ops_hot_path.py --before /tmp/before/src --after src

Each process reports its best loop; the medians of those over the rounds are printed. On a
loaded machine two processes differ by more than the change measured: ``--same-process``
loads both trees into one process instead (each tracker with its own store) and alternates
their loops; ``--build`` also
times, alternately in one process, building and writing 10,000 metric ops each way (a plain
tuple, the record through ``tuple.__new__``, through its NamedTuple constructor, through
``ops.metric``), then binding their ``op[1:]`` into SQLite as the store does. Nothing is
asserted.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile

from harness import median

CHILD = r"""
import json, os, sys, tempfile, time
from nbtrace.tracker import Tracker
n = int(sys.argv[1])
out = {"log": [], "durable": []}
with tempfile.TemporaryDirectory() as d:
    os.environ["JUPYTER_DATA_DIR"] = d
    t = Tracker(os.path.join(d, "s.db"), warn=lambda m: None, fresh=False)
    t.start_run("bench")
    log = t.log_metric
    for rep in range(int(sys.argv[2])):
        t0 = time.perf_counter()
        for i in range(n):
            log("loss", 0.25, step=i)
        t1 = time.perf_counter()
        t.writer.flush()
        t2 = time.perf_counter()
        out["log"].append((t1 - t0) / n * 1e6)
        out["durable"].append((t2 - t0) / n * 1e6)
    t.close()
print(json.dumps(out))
"""


def run_one(src: str, n: int, loops: int) -> dict[str, float]:
    """One process on the tree ``src``: the best of its loops, per call in µs (the least
    disturbed by the machine's other work: a loaded machine only ever adds time)."""
    env = {**os.environ, "PYTHONPATH": src, "NBTRACE_SEED_RNG": "0"}
    env.pop("NBTRACE_DB", None)
    with tempfile.TemporaryDirectory() as cwd:
        out = subprocess.run(
            [sys.executable, "-c", CHILD, str(n), str(loops)],
            env=env, cwd=cwd, capture_output=True, text=True, check=True, timeout=300,
        )
    res = json.loads(out.stdout.strip().splitlines()[-1])
    return {k: min(v) for k, v in res.items()}


def _load_tracker(src: str) -> type:
    """The ``Tracker`` class of the tree ``src``, imported beside any loaded already (the
    ``nbtrace`` modules of a previous tree are dropped from ``sys.modules``, not unloaded:
    their functions keep their own module globals)."""
    for name in [m for m in sys.modules if m == "nbtrace" or m.startswith("nbtrace.")]:
        del sys.modules[name]
    sys.path.insert(0, src)
    try:
        from nbtrace.tracker import Tracker
    finally:
        sys.path.remove(src)
    return Tracker


def same_process(sides: dict[str, str], rounds: int, n: int) -> None:
    """Both trees' trackers in this one process, their loops alternating: the machine's load
    then falls on both alike (the least noisy comparison on a shared machine)."""
    import time

    folder = tempfile.mkdtemp()
    os.environ["JUPYTER_DATA_DIR"] = folder
    trackers = {}
    for side, src in sides.items():
        t = _load_tracker(src)(os.path.join(folder, side + ".db"), warn=lambda m: None,
                               fresh=False)
        t.start_run("bench")
        trackers[side] = t
    got: dict[str, dict[str, list[float]]] = {s: {"log": [], "durable": []} for s in sides}
    for r in range(rounds):
        order = list(sides) if r % 2 == 0 else list(sides)[::-1]
        for side in order:
            t = trackers[side]
            log = t.log_metric
            t0 = time.perf_counter()
            for i in range(n):
                log("loss", 0.25, step=i)
            t1 = time.perf_counter()
            t.writer.flush()
            t2 = time.perf_counter()
            got[side]["log"].append((t1 - t0) / n * 1e6)
            got[side]["durable"].append((t2 - t0) / n * 1e6)
    for side, res in got.items():
        print(
            f"{side:6}  same process: log_metric median {median(res['log']):.3f}"
            f" (best {min(res['log']):.3f}) µs/call, durable median"
            f" {median(res['durable']):.3f} (best {min(res['durable']):.3f}) µs/call"
            f"  ({rounds} loops of {n:,} calls each)"
        )
    for t in trackers.values():
        t.close()


def build_costs(src: str, rounds: int, n: int = 10_000) -> None:
    """Per op, in one process, alternating: build (and queue) only; build, bind, free."""
    import sqlite3
    import time
    from collections import deque

    sys.path.insert(0, src)
    from nbtrace.store import ops

    new = tuple.__new__
    metric_cls = ops.Metric
    make = ops.metric
    ways = {
        "plain tuple": lambda i, t: ("metric", "r", "loss", i, i, t, 0.25),
        "tuple.__new__(Metric, ...)": lambda i, t: new(metric_cls, ("metric", "r", "loss", i, i,
                                                                    t, 0.25)),
        "Metric('metric', ...)": lambda i, t: metric_cls("metric", "r", "loss", i, i, t, 0.25),
        "ops.metric(...)": lambda i, t: make("r", "loss", i, i, t, 0.25),
    }
    db = sqlite3.connect(":memory:")
    db.execute("CREATE TABLE m (r, k, s, st, ts, v, PRIMARY KEY (r, k, s))")
    got: dict[str, list[tuple[float, float]]] = {w: [] for w in ways}
    for r in range(rounds):
        order = list(ways) if r % 2 == 0 else list(ways)[::-1]
        for way in order:
            fn, q = ways[way], deque()
            t0 = time.perf_counter()
            for i in range(n):
                q.append(fn(i, t0))
            t1 = time.perf_counter()
            rows = [op[1:] for op in q]
            q.clear()
            db.execute("DELETE FROM m")
            db.executemany("INSERT INTO m VALUES (?,?,?,?,?,?)", rows)
            del rows
            got[way].append(((t1 - t0) / n * 1e6, (time.perf_counter() - t0) / n * 1e6))
    for way, v in got.items():
        print(f"{way:28} build {median([x[0] for x in v]):.3f} µs/op,"
              f" build+bind+free {median([x[1] for x in v]):.3f} µs/op")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--before", required=True, help="folder holding the old nbtrace package")
    ap.add_argument("--after", required=True, help="folder holding the new nbtrace package")
    ap.add_argument("--rounds", type=int, default=11)
    ap.add_argument("-n", type=int, default=10_000, help="log_metric calls per loop")
    ap.add_argument("--loops", type=int, default=7, help="loops per process (the best counts)")
    ap.add_argument("--same-process", action="store_true",
                    help="compare the two trees in one process instead (alternating loops)")
    ap.add_argument("--build", action="store_true",
                    help="also time building the op each way, in one process (--after's tree)")
    args = ap.parse_args()
    sides = {"before": os.path.abspath(args.before), "after": os.path.abspath(args.after)}
    if args.same_process:
        same_process(sides, 4 * args.rounds, args.n)
        if args.build:
            build_costs(sides["after"], 31)
        return
    got: dict[str, dict[str, list[float]]] = {s: {"log": [], "durable": []} for s in sides}
    for r in range(args.rounds + 1):
        order = list(sides) if r % 2 == 0 else list(sides)[::-1]
        for side in order:
            res = run_one(sides[side], args.n, args.loops)
            if r == 0:
                continue  # warm-up round (page cache, .pyc files)
            for k, v in res.items():
                got[side][k].append(v)
    for side, res in got.items():
        print(
            f"{side:6}  log_metric {median(res['log']):.2f} µs/call,"
            f" durable (with its flush) {median(res['durable']):.2f} µs/call"
            f"  (medians over {args.rounds} rounds of each process's best of {args.loops}"
            f" loops of {args.n:,} calls)"
        )
    if args.build:
        build_costs(sides["after"], 31)


if __name__ == "__main__":
    main()

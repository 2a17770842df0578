#!/usr/bin/env python3
"""Issue 10's costs: the end-of-run dependency capture, and that the hot paths did not slow.

    .venv/bin/python benchmarks/case_capture.py [--base COMMIT] [--rounds N]

1. **End-of-run capture** in a real kernel with a typical notebook loaded (numpy, pandas,
   scikit-learn, matplotlib, a local ``helper.py``, a CSV read): the user's thread's part of a
   run's end (``RunEndCapture.run_ended``) when nothing changed since the previous run and when
   a module was imported meanwhile (a new snapshot), and the capture worker's part (classify
   modules and reads, hash, build blobs) cold and warm.
2. **A/B against a base commit** (default ``main``; its ``src`` exported with ``git archive``
   and put first on the kernel's ``PYTHONPATH``): ``log_metric`` per call in a 10,000-step
   loop, and the 330-run ElasticNet notebook's wall time (untracked / base / this tree),
   alternating, the median of ``--rounds`` rounds.

Prints figures; asserts nothing (timings are not tests).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT / "benchmarks"))

CAPTURE_CELL = r"""
import time, statistics, sys, json, nbtrace
t = nbtrace.api.tracker()
rc = t.runend
def timed(fn, n):
    out = []
    for _ in range(n):
        s = time.perf_counter(); fn(); out.append(time.perf_counter() - s)
    return statistics.median(out) * 1e3
with nbtrace.start_run('warm'):
    pass
rc.join()
unchanged = timed(lambda: rc.run_ended('x', t.seq, rc.current.key[3]), 2000)
import importlib
def new_snapshot():
    sys.modules.pop('json.tool', None); importlib.import_module('json.tool')
    rc.run_ended('x', t.seq, rc.current.key[3])
changed = timed(new_snapshot, 200)
rc.join()
from nbtrace.capture.runend import DepsCapture
from nbtrace.capture import deps
deps._hash_cache.clear(); rc._excluder = None
cap = DepsCapture(rc, ('k',), '')
s = time.perf_counter(); rc.compute(cap); cold = (time.perf_counter() - s) * 1e3
warm = timed(lambda: rc.compute(DepsCapture(rc, ('k',), '')), 50)
mods = len([1 for m in sys.modules.values() if getattr(m, '__file__', None)])
print(json.dumps({"unchanged_ms": unchanged, "new_snapshot_ms": changed, "worker_cold_ms": cold,
                  "worker_warm_ms": warm, "modules_loaded": mods,
                  "reads": deps.read_count()}))
"""

METRIC_CELL = r"""
import time, json, nbtrace
with nbtrace.start_run('loop'):
    s = time.perf_counter()
    for i in range(10_000):
        nbtrace.log_metric('loss', i * 0.5, step=i)
    per = (time.perf_counter() - s) / 10_000 * 1e6
print(json.dumps({"log_metric_us": per}))
"""


def _last_json(nb: object) -> dict:
    for cell in reversed(nb.cells):  # type: ignore[attr-defined]
        for out in cell.get("outputs", []):
            text = out.get("text", "")
            if text.strip().startswith("{"):
                return json.loads(text.strip().splitlines()[-1])
    raise RuntimeError("no figures printed")


def capture_cost(work: Path) -> dict:
    from kernels import run_notebook

    (work / "helper.py").write_text("def f(x):\n    return x\n")
    (work / "data.csv").write_text("a,b\n" + "\n".join(f"{i},{i * 2}" for i in range(1000)))
    cells = ["%load_ext nbtrace",
             "import numpy as np, pandas as pd, sklearn.linear_model, matplotlib.pyplot as plt\n"
             "import helper\ndf = pd.read_csv('data.csv')", CAPTURE_CELL]
    return _last_json(run_notebook(cells, str(work / "c.db"), work, timeout=300))


def export_base(commit: str, dest: Path) -> Path:
    data = subprocess.run(["git", "archive", commit, "src"], cwd=ROOT, check=True,
                          capture_output=True).stdout
    tar = dest / "base.tar"
    tar.write_bytes(data)
    with tarfile.open(tar) as t:
        t.extractall(dest, filter="data")
    return dest / "src"


def ab(base_src: Path, work: Path, rounds: int) -> dict:
    import case_notebook

    from kernels import run_notebook

    nbs = case_notebook.variants("sqlite:///unused.db")
    times: dict[str, list[float]] = {"untracked": [], "base": [], "this": []}
    metric: dict[str, list[float]] = {"base": [], "this": []}
    for r in range(rounds):
        order = ["base", "this"] if r % 2 == 0 else ["this", "base"]
        for who in ["untracked", *order]:
            env = {"PYTHONPATH": str(base_src)} if who == "base" else {}
            folder = work / f"{who}{r}"
            folder.mkdir()
            nb = nbs["untracked" if who == "untracked" else "nbtrace"]
            env = {**os.environ, **env, "NBTRACE_DB": str(folder / "runs.db")}
            times[who].append(case_notebook.execute(nb, folder, env)["loop"])
            if who != "untracked":
                out = run_notebook(["%load_ext nbtrace", METRIC_CELL], str(folder / "m.db"),
                                   folder, env=env)
                metric[who].append(_last_json(out)["log_metric_us"])
    med = {k: statistics.median(v) for k, v in times.items()}
    return {
        "loop_cell_s": med,
        "overhead_pct": {k: (med[k] / med["untracked"] - 1) * 100 for k in ("base", "this")},
        "log_metric_us": {k: statistics.median(v) for k, v in metric.items()},
    }


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--base", default="main")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--skip-ab", action="store_true")
    args = p.parse_args()
    with tempfile.TemporaryDirectory(prefix="nbtrace-bench-") as tmp:
        work = Path(tmp)
        (work / "cap").mkdir()
        print("end-of-run capture:", json.dumps(capture_cost(work / "cap"), indent=1))
        if not args.skip_ab:
            base = export_base(args.base, work)
            print(f"A/B against {args.base} ({args.rounds} rounds, load "
                  f"{os.getloadavg()[0]:.1f}):", json.dumps(ab(base, work, args.rounds), indent=1))
            print(f"load at the end {os.getloadavg()[0]:.1f}; {time.strftime('%H:%M:%S')}")


if __name__ == "__main__":
    main()

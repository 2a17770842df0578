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


LOOP = r"""
import time, json
w, c = time.perf_counter(), time.process_time()
for l1_ratio in np.linspace(0.0, 1.0, 11):
    for alpha in np.logspace(-4, 0, 30):
        with nbtrace.start_run("Elastic_net", experiment="diabetes"):
            alpha = nbtrace.log_param("alpha", float(alpha))
            l1_ratio = nbtrace.log_param("l1_ratio", float(l1_ratio))
            model = ElasticNet(alpha=alpha, l1_ratio=l1_ratio, random_state=42, max_iter=10_000)
            model.fit(X_train, y_train)
            pred = model.predict(X_test)
            nbtrace.log_metrics({"MSE": mean_squared_error(y_test, pred),
                                 "R2": r2_score(y_test, pred)})
print(json.dumps({"wall_s": time.perf_counter() - w, "cpu_s": time.process_time() - c}))
"""
SETUP = """import numpy as np
from sklearn import datasets
from sklearn.linear_model import ElasticNet
from sklearn.metrics import mean_squared_error, r2_score
from sklearn.model_selection import train_test_split
X, y = datasets.load_diabetes(return_X_y=True)
X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.25, random_state=42)
"""
NOOP = """import contextlib
class _NoOp:
    def start_run(self, *a, **k): return contextlib.nullcontext()
    def log_param(self, k, v): return v
    def log_metrics(self, *a, **k): pass
nbtrace = _NoOp()
"""


def ab(base_src: Path, work: Path, rounds: int) -> dict:
    """The ElasticNet grid's cell (as in the notebook) and a log_metric loop, in real kernels:
    untracked / base / this tree, alternating; wall and CPU time of the kernel process (CPU
    time is less disturbed by other users of a shared machine)."""
    from kernels import run_notebook

    res: dict[str, dict[str, list[float]]] = {
        w: {"wall_s": [], "cpu_s": [], "log_metric_us": []} for w in ("untracked", "base", "this")
    }
    for r in range(rounds):
        order = ["untracked", "base", "this"] if r % 2 == 0 else ["this", "base", "untracked"]
        for who in order:
            folder = work / f"{who}{r}"
            folder.mkdir()
            env = {"PYTHONPATH": str(base_src)} if who == "base" else {}
            cells = ([NOOP + SETUP, LOOP] if who == "untracked" else
                     ["%load_ext nbtrace", "import nbtrace\n" + SETUP, LOOP, METRIC_CELL])
            nb = run_notebook(cells, str(folder / "runs.db"), folder, env=env, timeout=900)
            loop = json.loads(nb.cells[1 if who == "untracked" else 2].outputs[0]["text"])
            res[who]["wall_s"].append(loop["wall_s"])
            res[who]["cpu_s"].append(loop["cpu_s"])
            if who != "untracked":
                res[who]["log_metric_us"].append(_last_json(nb)["log_metric_us"])
    med = {w: {k: statistics.median(v) for k, v in d.items() if v} for w, d in res.items()}
    for w in ("base", "this"):
        for k in ("wall_s", "cpu_s"):
            med[w][k.replace("_s", "_overhead_pct")] = (med[w][k] / med["untracked"][k] - 1) * 100
    return med


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

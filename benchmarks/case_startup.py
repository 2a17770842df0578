"""Case 9: first start and scale of the store (issue 16, items 4 and 5).

- ``import nbtrace`` and ``import mlflow`` in a fresh interpreter (bytecode compiled), timed
  inside the process around the import alone;
- the ``nbtrace runs`` CLI against ``mlflow runs list``: wall time of the whole command (the
  interpreter's start included) on a store of 1,000 runs;
- opening a 100,000-run store in a fresh process: ``open_store`` alone, and with the first page
  of 100 runs; MLflow's ``MlflowClient`` on its SQLite store of 10,000 runs with its first
  ``search_runs`` page, for scale.

Each repetition is a new process; the two systems alternate.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from harness import Row, alternate, log, tempdir

IMPORT = "import time\nt = time.perf_counter()\nimport {mod}\nprint(time.perf_counter() - t)"
OPEN_N = """
import sys, time
t = time.perf_counter()
from nbtrace.store import open_store
s = open_store(sys.argv[1])
t1 = time.perf_counter()
runs, total = s.list_runs(limit=100)
t2 = time.perf_counter()
assert len(runs) == 100
print(t1 - t, t2 - t)
"""
OPEN_M = """
import sys, time
t = time.perf_counter()
from mlflow.tracking import MlflowClient
c = MlflowClient(sys.argv[1])
e = c.get_experiment_by_name("bench")
t1 = time.perf_counter()
runs = c.search_runs([e.experiment_id], max_results=100)
t2 = time.perf_counter()
assert len(runs) == 100
print(t1 - t, t2 - t)
"""


def _py(code: str, *args: str, env: dict[str, str] | None = None) -> list[float]:
    out = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True,
                         check=True, env=env)
    return [float(x) for x in out.stdout.split()]


def _wall(cmd: list[str], env: dict[str, str]) -> float:
    t = time.perf_counter()
    subprocess.run(cmd, capture_output=True, check=True, env=env)
    return time.perf_counter() - t


def run(cfg: Any) -> tuple[list[Row], str]:
    from case_listing import fill_mlflow, fill_nbtrace, mlflow_store

    from nbtrace.store.sqlite import SQLiteStore

    reps = 5 if cfg.quick else 15
    big = 20_000 if cfg.quick else 100_000
    bindir = Path(sys.executable).parent
    with tempdir("startup-") as tmp:
        env = dict(os.environ, MLFLOW_TRACKING_URI="", JUPYTER_DATA_DIR=str(tmp / "jd"))
        log(f"case 9: import, CLI start ({reps} processes each)")
        imp = alternate(reps, 2, {"nbtrace": lambda: _py(IMPORT.format(mod="nbtrace"))[0],
                                  "mlflow": lambda: _py(IMPORT.format(mod="mlflow"))[0]})
        small = str(tmp / "small.db")
        s = SQLiteStore(small)
        fill_nbtrace(s, 0, 1000)
        s.close()
        muri = f"sqlite:///{tmp / 'mlflow.db'}"
        mstore, eid = mlflow_store(muri, tmp / "mlartifacts")
        fill_mlflow(mstore, eid, 0, 1000)
        cli = alternate(reps, 2, {
            "nbtrace": lambda: _wall([str(bindir / "nbtrace"), "runs", "--db", small,
                                      "--limit", "20"], env),
            "mlflow": lambda: _wall([str(bindir / "mlflow"), "runs", "list", "--experiment-id",
                                     str(eid)], dict(env, MLFLOW_TRACKING_URI=muri)),
        })
        log(f"case 9: filling {big:,} nbtrace runs and 10,000 MLflow runs")
        db = str(tmp / "big.db")
        s = SQLiteStore(db)
        fill_nbtrace(s, 0, big)
        s.close()
        fill_mlflow(mstore, eid, 1000, 9000)
        size = os.path.getsize(db)
        opened = alternate(reps, 2, {"nbtrace": lambda: _py(OPEN_N, db),
                                     "mlflow": lambda: _py(OPEN_M, muri)})
    n, m = opened["nbtrace"], opened["mlflow"]
    rows = [
        Row("9 startup", "import nbtrace vs import mlflow (fresh interpreter)",
            nbtrace=imp["nbtrace"], mlflow=imp["mlflow"], target="≤ 30 ms", target_value=0.030),
        Row("9 startup", "`nbtrace runs --limit 20` vs `mlflow runs list` (whole command,"
            " 1,000 runs)", nbtrace=cli["nbtrace"], mlflow=cli["mlflow"],
            target="≤ 150 ms", target_value=0.150),
        Row("9 startup", f"open a {big:,}-run store in a new process (nbtrace) vs"
            " MlflowClient + get_experiment (10,000 runs)",
            nbtrace=[r[0] for r in n], mlflow=[r[0] for r in m],
            target="≤ 50 ms", target_value=0.050,
            note="from the first import of the store module to an open store"),
        Row("9 startup", f"… and its first page of 100 runs ({big:,} vs 10,000 runs)",
            nbtrace=[r[1] for r in n], mlflow=[r[1] for r in m]),
    ]
    text = f"The {big:,}-run store (5 params, 3 metrics a run) takes {size / 1e6:.0f} MB."
    return rows, text

"""MLflow's own client against ``nbtrace:`` and against MLflow's SQLite backend, side by side.

    python benchmarks/mlflow_client.py [--rounds 5] [--calls 200]

One process, one MLflow client: each round times ``mlflow.log_metric`` (with a step),
``mlflow.log_param``, a run's start and end, and ``mlflow.search_runs`` against both tracking
URIs, alternating which goes first. Then ``%load_ext nbtrace`` in a fresh IPython shell (a
subprocess) with and without MLflow installed-and-imported, and whether loading nbtrace imported
MLflow. Prints medians and the ratio MLflow-SQLite / nbtrace; asserts nothing (figures, not
tests). Needs ``pip install -e ".[mlflow]"``.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from statistics import median


def _time_calls(fn, n: int) -> float:
    """Seconds per call of ``fn(i)`` over ``n`` calls."""
    t0 = time.perf_counter()
    for i in range(n):
        fn(i)
    return (time.perf_counter() - t0) / n


def round_for(mlflow, uri: str, calls: int) -> dict[str, float]:
    """One round of every measured call against tracking URI ``uri``."""
    mlflow.set_tracking_uri(uri)
    mlflow.set_experiment("bench")
    out: dict[str, float] = {}
    with mlflow.start_run(run_name="metrics"):
        out["log_metric"] = _time_calls(
            lambda i: mlflow.log_metric("loss", 1.0 / (i + 1), step=i), calls
        )
        out["log_param"] = _time_calls(lambda i: mlflow.log_param(f"p{i}", i), max(10, calls // 10))
    t0 = time.perf_counter()
    n = 10
    for i in range(n):
        with mlflow.start_run(run_name=f"r{i}"):
            pass
    out["start+end run"] = (time.perf_counter() - t0) / n
    t0 = time.perf_counter()
    mlflow.search_runs(experiment_names=["bench"])
    out["search_runs"] = time.perf_counter() - t0
    return out


LOAD_EXT = """
import sys, time
{pre}
from IPython.core.interactiveshell import InteractiveShell
sh = InteractiveShell.instance()
t0 = time.perf_counter()
sh.run_line_magic("load_ext", "nbtrace")
dt = time.perf_counter() - t0
print(dt, "nbtrace.mlflow_bridge.store" in sys.modules or ("mlflow" in sys.modules and {check}))
"""


def load_ext_ms(db: str, with_mlflow: bool) -> tuple[float, bool]:
    """``%load_ext nbtrace`` in a fresh shell; (milliseconds, whether it imported MLflow)."""
    pre = "import mlflow" if with_mlflow else ""
    code = LOAD_EXT.format(pre=pre, check="False" if with_mlflow else "True")
    env = dict(os.environ, NBTRACE_DB=db)
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
    ).stdout.split()
    return float(out[0]) * 1000, out[1] == "True"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--calls", type=int, default=200)
    args = ap.parse_args()
    import mlflow

    tmp = Path(tempfile.mkdtemp(prefix="nbt-mlflow-bench-"))
    uris = {
        "mlflow sqlite": f"sqlite:///{tmp / 'mlflow.db'}",
        "nbtrace:": f"nbtrace://{tmp / 'runs.db'}",
    }
    results: dict[str, dict[str, list[float]]] = {k: {} for k in uris}
    round_for(mlflow, uris["mlflow sqlite"], 5)  # warm-up: schema creation, imports
    round_for(mlflow, uris["nbtrace:"], 5)
    for r in range(args.rounds):
        order = list(uris) if r % 2 == 0 else list(reversed(uris))
        for side in order:
            for k, v in round_for(mlflow, uris[side], args.calls).items():
                results[side].setdefault(k, []).append(v)
    print(
        f"MLflow {mlflow.__version__}, {args.rounds} rounds, {args.calls} log_metric calls"
        " a round; medians"
    )
    print(f"{'call':<16}{'MLflow sqlite':>16}{'nbtrace:':>14}{'ratio':>10}")
    for k in results["nbtrace:"]:
        m = median(results["mlflow sqlite"][k])
        n = median(results["nbtrace:"][k])
        print(f"{k:<16}{m * 1e6:>13.0f} µs{n * 1e6:>11.0f} µs{m / n:>9.1f}x")
    db = str(tmp / "loadext.db")
    load_ext_ms(db, False)  # creates the store
    for with_mlflow in (False, True):
        times = [load_ext_ms(db, with_mlflow) for _ in range(3)]
        ms = median(t for t, _ in times)
        imported = any(i for _, i in times)
        label = "after import mlflow" if with_mlflow else "without MLflow imported"
        print(
            f"%load_ext nbtrace {label}: {ms:.0f} ms; loading nbtrace imported MLflow or"
            f" the bridge's store: {imported}"
        )


if __name__ == "__main__":
    main()

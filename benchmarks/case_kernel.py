"""Cases 1, 2, 3 and 6: the kernel-side calls, timed inside real ipykernel cells.

- 1. ``log_metric(key, value, step=i)`` per call, and the flush at the cell's end that makes
  those calls durable; a 10,000-step loop logging two metrics: total time and overhead over the
  same loop untracked;
- 2. ``log_param`` and ``log_params`` of 10 per call;
- 3. a run's start and end, in a new cell each time as a user does: the first run of a kernel
  and later runs. nbtrace captures everything (cells, notebook, environment, packages,
  imported modules, git state of a dirty work tree, resources); MLflow's run is empty;
- 6. ``%load_ext nbtrace`` in a fresh kernel on an existing store, against ``import mlflow``.

Time inside a cell is measured with ``time.perf_counter`` by the cell itself; the work nbtrace
does after the cell (``post_run_cell``: the flush that makes the cell durable) is
measured by wrapping the tracker's ``cell_finished``. Both systems run in kernels of the same
interpreter, with the same libraries imported, alternately.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from harness import (
    Kernel,
    Row,
    alternate,
    kernel_env,
    log,
    make_worktree,
    median,
    tempdir,
)

# The libraries a typical experiment notebook has imported when it starts runs (the imported
# modules are part of what nbtrace captures, so an empty kernel would flatter it).
IMPORTS = "import math, time, json\nimport numpy as np\nimport sklearn.linear_model\n"

NBTRACE_SETUP = (
    IMPORTS
    + """import nbtrace
_pc = time.perf_counter
_B = {"end": [], "durable": []}
def _wrap_cell_end():
    # "end": what nbtrace's post_run_cell costs the user; "durable": from the same moment
    # until nothing the cell logged is left unwritten (the background thread may be the one
    # writing, when the cell end found it busy).
    tr = nbtrace.api.tracker()
    orig = tr.cell_finished
    w = tr.writer
    def timed(error, _orig=orig):
        t = _pc()
        _orig(error)
        t1 = _pc()
        while w.has_pending() or w._flush_lock.locked():
            time.sleep(0.0001)
        _B["end"].append(t1 - t)
        _B["durable"].append(_pc() - t)
    tr.cell_finished = timed
_wrap_cell_end()
"""
)


def mlflow_setup(uri: str) -> str:
    return (
        IMPORTS
        + f"""import mlflow
_pc = time.perf_counter
_B = {{"end": []}}
mlflow.set_tracking_uri({uri!r})
mlflow.set_experiment("bench")
"""
    )


class Side:
    """One system's kernel and the cells that time its calls.

    Every timing method runs the measured cell, then reads in one more cell a dict with
    ``dt`` (the in-cell time), ``end`` (nbtrace's cell-end work, what the user waits for) and
    ``durable`` (from the cell's end until what it logged was written); MLflow writes every
    call before returning, so its ``end`` and ``durable`` are 0.
    """

    def __init__(self, name: str, k: Kernel, api: str) -> None:
        self.name = name
        self.k = k
        self.api = api  # "nbtrace" or "mlflow": the module the cells call
        self.step = 0
        self.keys = 0

    def _read(self, extra: str = "") -> dict[str, Any]:
        if self.api == "nbtrace":
            expr = "{'end': _B['end'][-1], 'durable': _B['durable'][-1]" + extra + "}"
        else:
            expr = "{'end': 0.0, 'durable': 0.0" + extra + "}"
        return self.k.value(expr)

    def per_call_metric(self, batches: int, size: int) -> dict[str, Any]:
        code = f"""_res = []
_s = {self.step}
for _b in range({batches}):
    _t0 = _pc()
    for _i in range(_s, _s + {size}):
        {self.api}.log_metric("loss", 0.25, step=_i)
    _res.append((_pc() - _t0) / {size})
    _s += {size}
"""
        self.step += batches * size
        self.k.run(code)
        return self._read(", 'res': _res")

    def per_call_param(self, batches: int, size: int, many: int) -> list[float]:
        """Per-call time of ``log_param`` (many=1) or ``log_params`` of ``many`` (many=10)."""
        first = self.keys
        self.keys += batches * size
        if many == 1:
            prep = f"_keys = [f'p{{k}}' for k in range({first}, {first + batches * size})]"
            call = f"{self.api}.log_param(_keys[_i], 0.5)"
        else:
            prep = (
                f"_keys = [{{f'q{{k}}_{{j}}': 0.5 for j in range({many})}}"
                f" for k in range({first}, {first + batches * size})]"
            )
            call = f"{self.api}.log_params(_keys[_i])"
        code = f"""{prep}
_res = []
for _b in range({batches}):
    _t0 = _pc()
    for _i in range(_b * {size}, (_b + 1) * {size}):
        {call}
    _res.append((_pc() - _t0) / {size})
"""
        self.k.run(code)
        return self.k.value("_res")

    def start_call(self, name: str) -> str:
        if self.api == "mlflow":  # its first positional argument is a run id to resume
            return f"mlflow.start_run(run_name={name!r})"
        return f"nbtrace.start_run({name!r})"

    def start_end(self, name: str) -> dict[str, Any]:
        """One run started and ended in a cell of its own."""
        self.k.run(
            f"_t0 = _pc()\n{self.start_call(name)}\n{self.api}.end_run()\n"
            "_dt = _pc() - _t0"
        )
        return self._read(", 'dt': _dt")

    def start(self, name: str) -> None:
        self.k.run(self.start_call(name))

    def end(self) -> None:
        self.k.run(f"{self.api}.end_run()")

    def loop(self, steps: int, tracked: bool) -> dict[str, Any]:
        """A training-like loop of ``steps`` steps, logging two metrics per step when
        ``tracked``."""
        logcall = (
            f"    {self.api}.log_metrics({{'loss': _loss, 'acc': _acc}}, step=_i)\n"
            if tracked
            else ""
        )
        self.k.run(
            f"_t0 = _pc()\nfor _i in range({steps}):\n    _loss = 1.0 / (1.0 + _i)\n"
            f"    _acc = 1.0 - _loss * 0.5\n{logcall}_dt = _pc() - _t0"
        )
        return self._read(", 'dt': _dt")


def open_side(
    system: str,
    tmp: Path,
    folder: Path,
    nb: Path,
    nbtrace_db: str | None = None,
    mlflow_uri: str | None = None,
) -> Side:
    """A kernel for ``system`` ("nbtrace" or "mlflow"), set up and ready to time calls."""
    if system == "nbtrace":
        db = nbtrace_db or str(tmp / "nbtrace.db")
        env = kernel_env(tmp, NBTRACE_DB=db, NBTRACE_NOTEBOOK=str(nb))
        k = Kernel(env, folder)
        k.run("%load_ext nbtrace")
        k.run(NBTRACE_SETUP)
        return Side(system, k, "nbtrace")
    env = kernel_env(tmp)
    k = Kernel(env, folder)
    k.run(mlflow_setup(mlflow_uri or f"sqlite:///{tmp / 'mlflow.db'}"))
    return Side(system, k, "mlflow")


def run_warm(cfg: Any) -> list[Row]:
    """Cases 1, 2 and 3 (later runs): one long-lived kernel per system."""
    rows: list[Row] = []
    with tempdir("kernel-") as tmp:
        folder, nb = make_worktree(tmp)
        log("case 1-3: starting one kernel per system")
        sides = {s: open_side(s, tmp, folder, nb) for s in ("nbtrace", "mlflow")}
        try:
            rows += _metric_cases(cfg, sides)
            rows += _param_cases(cfg, sides)
            rows += _later_runs(cfg, sides)
            rows += _loop_case(cfg, sides)
        finally:
            for s in sides.values():
                s.k.close()
    return rows


def _metric_cases(cfg: Any, sides: dict[str, Side]) -> list[Row]:
    nbt, mlf = sides["nbtrace"], sides["mlflow"]
    nbt.start("metric-bench")
    mlf.start("metric-bench")
    batches_n, size_n = (20, 100) if cfg.quick else (100, 100)  # 10,000 calls per cell
    batches_m, size_m = (5, 5) if cfg.quick else (20, 10)
    log(f"case 1: log_metric per call ({batches_n * size_n} nbtrace / {batches_m * size_m}"
        " MLflow calls per cell)")
    res = alternate(
        cfg.reps,
        cfg.warmup,
        {
            "nbtrace": lambda: nbt.per_call_metric(batches_n, size_n),
            "mlflow": lambda: mlf.per_call_metric(batches_m, size_m),
        },
    )
    n_calls = batches_n * size_n
    n, m = res["nbtrace"], res["mlflow"]
    nbt.end()
    mlf.end()
    mlf_calls = [x for r in m for x in r["res"]]
    return [
        Row(
            "1 log_metric",
            "log_metric(key, value, step=i), per call (in the cell)",
            nbtrace=[x for r in n for x in r["res"]],
            mlflow=mlf_calls,
            target="≤ 10 µs",
            target_value=10e-6,
            note=f"per call: mean of a batch of {size_n} (nbtrace) / {size_m} (MLflow) calls",
        ),
        Row(
            "1 log_metric",
            f"cell-end flush of the cell's {n_calls:,} metrics (what the user waits for)",
            nbtrace=[r["end"] for r in n],
        ),
        Row(
            "1 log_metric",
            f"from the cell's end until its {n_calls:,} metrics are durable",
            nbtrace=[r["durable"] for r in n],
            note="equal to the cell-end flush unless the background writer was already"
            " writing when the cell ended: the cell then does not wait for it",
        ),
        Row(
            "1 log_metric",
            "per call, durable (in-cell + share of the time until durable)",
            nbtrace=[sum(r["res"]) / len(r["res"]) + r["durable"] / n_calls for r in n],
            mlflow=mlf_calls,
            target="≤ 3 µs and ≥ 300x faster than MLflow",
            target_value=3e-6,
        ),
    ]


def _param_cases(cfg: Any, sides: dict[str, Side]) -> list[Row]:
    nbt, mlf = sides["nbtrace"], sides["mlflow"]
    nbt.start("param-bench")
    mlf.start("param-bench")
    log("case 2: log_param / log_params(10) per call")
    one = alternate(
        cfg.reps,
        cfg.warmup,
        {
            "nbtrace": lambda: nbt.per_call_param(10, 100, 1),
            "mlflow": lambda: mlf.per_call_param(4 if cfg.quick else 10, 5, 1),
        },
    )
    ten = alternate(
        cfg.reps,
        cfg.warmup,
        {
            "nbtrace": lambda: nbt.per_call_param(10, 20, 10),
            "mlflow": lambda: mlf.per_call_param(4 if cfg.quick else 10, 2, 10),
        },
    )
    nbt.end()
    mlf.end()
    flat = lambda xs: [x for r in xs for x in r]  # noqa: E731
    return [
        Row("2 params", "log_param(key, value), per call", nbtrace=flat(one["nbtrace"]),
            mlflow=flat(one["mlflow"])),
        Row("2 params", "log_params(10 params), per call", nbtrace=flat(ten["nbtrace"]),
            mlflow=flat(ten["mlflow"]), target="≤ 15 µs", target_value=15e-6),
    ]


def _later_runs(cfg: Any, sides: dict[str, Side]) -> list[Row]:
    nbt, mlf = sides["nbtrace"], sides["mlflow"]
    reps = 5 if cfg.quick else 20
    log(f"case 3: run start + end, later runs ({reps} cells each)")
    res = alternate(
        reps,
        2,
        {"nbtrace": lambda: nbt.start_end("later"), "mlflow": lambda: mlf.start_end("later")},
    )
    n, m = res["nbtrace"], res["mlflow"]
    return [
        Row("3 run start+end", "later run: start + end in the cell",
            nbtrace=[r["dt"] for r in n], mlflow=[r["dt"] for r in m]),
        Row("3 run start+end", "later run: nbtrace's work at the cell's end",
            nbtrace=[r["end"] for r in n]),
        Row(
            "3 run start+end",
            "later run: total the user waits, full capture vs MLflow's empty run",
            nbtrace=[r["dt"] + r["end"] for r in n],
            mlflow=[r["dt"] for r in m],
            target="≤ 5 ms",
            target_value=5e-3,
        ),
        Row("3 run start+end", "later run: from start until durable",
            nbtrace=[r["dt"] + r["durable"] for r in n], mlflow=[r["dt"] for r in m],
            note="nbtrace's git state is captured off the user's thread and written when"
            " ready (typically 10-20 ms later); not counted here"),
    ]


def _loop_case(cfg: Any, sides: dict[str, Side]) -> list[Row]:
    nbt, mlf = sides["nbtrace"], sides["mlflow"]
    steps = 1_000 if cfg.quick else 10_000
    mlflow_steps = 100 if cfg.quick else 1_000
    log(f"case 1: {steps:,}-step loop logging two metrics (MLflow: {mlflow_steps:,} steps, once)")
    bare = alternate(
        cfg.reps,
        cfg.warmup,
        {"nbtrace": lambda: nbt.loop(steps, False), "mlflow": lambda: mlf.loop(steps, False)},
    )

    def nbt_tracked() -> dict[str, Any]:
        nbt.start("loop")
        r = nbt.loop(steps, True)
        nbt.end()
        return r

    tracked_n = alternate(cfg.reps, cfg.warmup, {"nbtrace": nbt_tracked})["nbtrace"]
    mlf.start("loop")
    t0 = time.perf_counter()
    tracked_m = [mlf.loop(mlflow_steps, True)]
    log(f"  MLflow loop ({mlflow_steps:,} steps) took {time.perf_counter() - t0:.1f} s")
    mlf.end()
    scale = steps / mlflow_steps
    bare_n = median([r["dt"] for r in bare["nbtrace"]])
    bare_m = median([r["dt"] for r in bare["mlflow"]])
    note = (
        ""
        if scale == 1
        else f"MLflow measured on {mlflow_steps:,} steps (one repetition) and scaled x{scale:g}:"
        f" {steps:,} steps would take minutes"
    )
    total_n = [r["dt"] + r["durable"] for r in tracked_n]
    total_m = [r["dt"] * scale for r in tracked_m]
    return [
        Row("1 log_metric", f"{steps:,}-step loop, untracked",
            nbtrace=[r["dt"] for r in bare["nbtrace"]], mlflow=[r["dt"] for r in bare["mlflow"]]),
        Row("1 log_metric",
            f"{steps:,}-step loop logging 2 metrics per step: total until durable",
            nbtrace=total_n, mlflow=total_m, note=note),
        Row("1 log_metric", f"{steps:,}-step loop: of which the cell-end flush",
            nbtrace=[r["end"] for r in tracked_n]),
        Row("1 log_metric", f"{steps:,}-step loop: overhead over the untracked loop",
            nbtrace=[t - bare_n for t in total_n],
            mlflow=[t - bare_m * scale for t in total_m], note=note),
        Row("1 log_metric", f"{steps:,}-step loop: overhead per step (2 metrics)",
            nbtrace=[(t - bare_n) / steps for t in total_n],
            mlflow=[(t - bare_m * scale) / steps for t in total_m]),
    ]


# ------------------------------------------------------------------------------ fresh kernels


def run_fresh(cfg: Any) -> list[Row]:
    """Cases 6 and 3 (first run): a fresh kernel per repetition and system."""
    reps = 3 if cfg.quick else 5
    with tempdir("fresh-") as tmp:
        folder, nb = make_worktree(tmp)
        nbt_env = kernel_env(tmp, NBTRACE_DB=str(tmp / "nbtrace.db"), NBTRACE_NOTEBOOK=str(nb))
        mlf_env = kernel_env(tmp)

        fresh = iter(range(10_000))

        def nbtrace_kernel(new: bool = False) -> dict[str, float]:
            env = dict(nbt_env)
            if new:  # a store that does not exist yet: the schema is created by %load_ext
                env["NBTRACE_DB"] = str(tmp / f"new-{next(fresh)}.db")
            k = Kernel(env, folder)
            try:
                k.run(IMPORTS)
                k.run(
                    "_t0 = time.perf_counter()\n"
                    "get_ipython().run_line_magic('load_ext', 'nbtrace')\n"
                    "_dt_load = time.perf_counter() - _t0\n" + NBTRACE_SETUP
                )
                load = float(k.value("_dt_load"))
                load_end = float(k.value("_B['end'][-1]"))
                first = Side("nbtrace", k, "nbtrace").start_end("first")
                return {"load": load, "load_end": load_end, "first": first["dt"],
                        "first_end": first["end"], "first_durable": first["durable"]}
            finally:
                k.close()

        def mlflow_kernel() -> dict[str, float]:
            uri = f"sqlite:///{tmp / f'mlflow-{next(fresh)}.db'}"  # a new store, as nbtrace's
            k = Kernel(mlf_env, folder)
            try:
                k.run(IMPORTS)
                k.run(
                    "_t0 = time.perf_counter()\nimport mlflow\n_dt_imp = time.perf_counter() - _t0"
                )
                k.run(
                    f"_t0 = time.perf_counter()\nmlflow.set_tracking_uri({uri!r})\n"
                    "mlflow.set_experiment('bench')\n_dt_conn = time.perf_counter() - _t0\n"
                    "_pc = time.perf_counter\n_B = {'end': []}"
                )
                imp = float(k.value("_dt_imp"))
                conn = float(k.value("_dt_conn"))
                first = Side("mlflow", k, "mlflow").start_end("first")
                return {"import": imp, "connect": conn, "first": first["dt"]}
            finally:
                k.close()

        log(f"case 3 (first run) and 6 (%load_ext): {reps} fresh kernels per system")
        res = alternate(reps, 1, {"nbtrace": nbtrace_kernel, "mlflow": mlflow_kernel,
                                  "new": lambda: nbtrace_kernel(new=True)})
    n, m, new = res["nbtrace"], res["mlflow"], res["new"]
    return [
        Row(
            "3 run start+end",
            "first run of a kernel: start + end in the cell",
            nbtrace=[r["first"] for r in n],
            mlflow=[r["first"] for r in m],
        ),
        Row(
            "3 run start+end",
            "first run of a kernel: nbtrace's work at the cell's end",
            nbtrace=[r["first_end"] for r in n],
        ),
        Row(
            "3 run start+end",
            "first run of a kernel: total the user waits, full capture vs MLflow's empty run",
            nbtrace=[r["first"] + r["first_end"] for r in n],
            mlflow=[r["first"] for r in m],
            target="≤ 150 ms",
            target_value=0.150,
        ),
        Row(
            "3 run start+end",
            "first run of a kernel: from start until durable",
            nbtrace=[r["first"] + r["first_durable"] for r in n],
            mlflow=[r["first"] for r in m],
        ),
        Row(
            "6 load",
            "%load_ext nbtrace (existing store) vs import mlflow",
            nbtrace=[r["load"] for r in n],
            mlflow=[r["import"] for r in m],
        ),
        Row(
            "6 load",
            "%load_ext nbtrace incl. its cell-end flush vs import mlflow",
            nbtrace=[r["load"] + r["load_end"] for r in n],
            mlflow=[r["import"] for r in m],
        ),
        Row(
            "6 load",
            "%load_ext nbtrace on a new store (schema created) incl. its cell-end flush"
            " vs import mlflow",
            nbtrace=[r["load"] + r["load_end"] for r in new],
            mlflow=[r["import"] for r in m],
            target="≤ 100 ms",
            target_value=0.100,
        ),
        Row(
            "6 load",
            "… vs import mlflow + set_tracking_uri + set_experiment (new store each)",
            nbtrace=[r["load"] + r["load_end"] for r in new],
            mlflow=[r["import"] + r["connect"] for r in m],
        ),
    ]

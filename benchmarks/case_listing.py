"""Case 4: listing and filtering 1,000 and 10,000 runs (5 params, 3 metrics each).

nbtrace: its REST API (``jupyter server`` with the nbtrace extension, token auth, ``GET
/nbtrace/api/runs?filter=...&limit=100``) and ``nbtrace.runs()``. MLflow: its REST API
(``mlflow server``, ``POST /api/2.0/mlflow/runs/search``) and ``mlflow.search_runs``, with the
same filter string. The stores are filled fast, outside the timed part: nbtrace with the
kernel's own ``store.apply`` ops, MLflow with a bulk insert through its own SQLAlchemy models
(its per-run client calls would take minutes for 10,000 runs). 1,000 runs are measured, then
9,000 more are added to the same stores and everything is measured again.
"""

from __future__ import annotations

import http.client
import json
import os
import random
import subprocess
import sys
import time
import urllib.parse
from pathlib import Path
from typing import Any

from harness import Row, alternate, free_port, log, tempdir

FILTER = "metrics.mse < 3000 and params.model = 'enet'"
#: The sorted listing of issue 16: the best runs first (the sidebar's click on a metric column).
SORT_N, SORT_M = "-metrics.mse", "metrics.mse DESC"
#: nbtrace's store grows to this many runs for the last stage; MLflow's stays at 10,000.
SCALE = 100_000
MODELS = ("enet", "ridge", "lasso")


def _run_values(i: int, rng: random.Random) -> dict[str, Any]:
    return {
        "params": {
            "model": MODELS[rng.randrange(3)],
            "alpha": round(10 ** rng.uniform(-4, 0), 6),
            "l1_ratio": round(rng.random(), 3),
            "max_iter": rng.choice((1000, 5000, 10000)),
            "seed": i % 100,
        },
        "metrics": {
            "mse": rng.uniform(2000, 4000),
            "r2": rng.uniform(0.2, 0.6),
            "mae": rng.uniform(30, 60),
        },
    }


def fill_nbtrace(store: Any, start: int, n: int, seed: int = 1) -> None:
    """Runs ``start .. start+n`` written with the same ops a kernel writes."""
    from nbtrace.jsonutil import param_number, param_to_json

    rng = random.Random(seed + start)
    base = 1_700_000_000.0
    ops: list[tuple] = []
    for i in range(start, start + n):
        v = _run_values(i, rng)
        rid = f"{i:012x}"
        t0 = base + i * 10
        ops.append(
            (
                "run_start",
                {
                    "id": rid, "name": "Elastic_net", "experiment": "bench", "status": "finished",
                    "started_at": t0, "ended_at": t0 + 5, "heartbeat_at": t0 + 5,
                    "user_name": "bench", "host": "bench-host", "pid": 1, "kernel_id": "k" * 16,
                    "kernel_name": "python3", "start_seq": 3, "cell_index": i, "last_seq": 3,
                    "notebook_path": "/home/bench/analysis.ipynb", "notebook_hash": None,
                    "env_hash": None, "packages_hash": None, "imported": "{}", "env_vars": "{}",
                    "resources": json.dumps({"wall_s": 5.0, "cpu_s": 4.0}), "extra": "{}",
                },
            )
        )
        for k, val in v["params"].items():
            text = val if isinstance(val, str) else param_to_json(val)
            ops.append(("param", rid, k, param_to_json(val), param_number(val), text))
        for seq, (k, val) in enumerate(v["metrics"].items(), 1):
            ops.append(("metric", rid, k, seq, None, t0 + 4, val))
        if len(ops) > 20_000:
            store.apply(ops)
            ops = []
    if ops:
        store.apply(ops)


def mlflow_store(uri: str, artifacts: Path) -> tuple[Any, str]:
    """MLflow's SQLAlchemy store (schema created) and the id of experiment ``bench``."""
    from mlflow.store.tracking.sqlalchemy_store import SqlAlchemyStore

    store = SqlAlchemyStore(uri, str(artifacts))
    exp = store.get_experiment_by_name("bench")
    eid = exp.experiment_id if exp else store.create_experiment("bench", str(artifacts))
    return store, eid


def fill_mlflow(store: Any, eid: str, start: int, n: int, seed: int = 1) -> None:
    """The same runs in MLflow's tables, shaped as its client writes them (run row, params
    as strings, metrics and latest metrics, the run-name/user/source tags)."""
    from mlflow.store.tracking.dbmodels import models as m
    from sqlalchemy import insert

    rng = random.Random(seed + start)
    base_ms = 1_700_000_000_000
    runs, params, metrics, tags = [], [], [], []
    for i in range(start, start + n):
        v = _run_values(i, rng)
        rid = f"{i:032x}"
        t0 = base_ms + i * 10_000
        runs.append(
            {
                "run_uuid": rid, "name": "Elastic_net", "source_type": "LOCAL",
                "source_name": "", "entry_point_name": "", "user_id": "bench",
                "status": "FINISHED", "start_time": t0, "end_time": t0 + 5000,
                "deleted_time": None, "source_version": "", "lifecycle_stage": "active",
                "artifact_uri": f"{store.artifact_root_uri}/{eid}/{rid}/artifacts",
                "experiment_id": int(eid),
            }
        )
        for k, val in v["params"].items():
            params.append({"key": k, "value": str(val), "run_uuid": rid})
        for k, val in v["metrics"].items():
            metrics.append(
                {"key": k, "value": val, "timestamp": t0 + 4000, "step": 0, "is_nan": False,
                 "run_uuid": rid}
            )
        for k, val in (
            ("mlflow.runName", "Elastic_net"), ("mlflow.user", "bench"),
            ("mlflow.source.name", "ipykernel_launcher.py"), ("mlflow.source.type", "LOCAL"),
        ):
            tags.append({"key": k, "value": val, "run_uuid": rid})
    with store.ManagedSessionMaker() as session:
        session.execute(insert(m.SqlRun.__table__), runs)
        session.execute(insert(m.SqlParam.__table__), params)
        session.execute(insert(m.SqlMetric.__table__), metrics)
        session.execute(insert(m.SqlLatestMetric.__table__), metrics)
        session.execute(insert(m.SqlTag.__table__), tags)


# ------------------------------------------------------------------------------ servers


class Http:
    """A keep-alive HTTP client (what a browser tab does)."""

    def __init__(self, port: int, headers: dict[str, str]) -> None:
        self.port = port
        self.headers = headers
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)

    def request(self, method: str, path: str, body: Any = None) -> Any:
        data = None if body is None else json.dumps(body).encode()
        headers = dict(self.headers)
        if data is not None:
            headers["Content-Type"] = "application/json"
        for attempt in (0, 1):
            try:
                self.conn.request(method, path, body=data, headers=headers)
                resp = self.conn.getresponse()
                raw = resp.read()
                break
            except (http.client.HTTPException, ConnectionError):
                self.conn.close()
                self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=120)
                if attempt:
                    raise
        if resp.status != 200:
            raise RuntimeError(f"{method} {path}: HTTP {resp.status}: {raw[:300]!r}")
        return json.loads(raw)

    def close(self) -> None:
        self.conn.close()


def _wait_http(port: int, path: str, headers: dict[str, str], proc: subprocess.Popen,
               timeout: float = 120) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}")
        try:
            c = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            c.request("GET", path, headers=headers)
            r = c.getresponse()
            r.read()
            c.close()
            if r.status < 500:
                return
        except OSError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"server on port {port} did not answer {path} in {timeout} s")


def start_jupyter(db: str, root: Path, log_path: Path) -> tuple[subprocess.Popen, int, str]:
    """``jupyter server`` with the nbtrace extension on a free loopback port, token auth."""
    port = free_port()
    token = os.urandom(12).hex()
    env = dict(os.environ, NBTRACE_DB=db, JUPYTER_DATA_DIR=str(root / "jupyter-data"))
    cmd = [
        sys.executable, "-m", "jupyter_server", "--no-browser", "--allow-root",
        "--ip=127.0.0.1", f"--port={port}", f"--ServerApp.token={token}",
        f"--ServerApp.root_dir={root}", "--ServerApp.port_retries=0",
    ]
    out = open(log_path, "wb")  # noqa: SIM115 - lives as long as the server
    proc = subprocess.Popen(cmd, env=env, stdout=out, stderr=subprocess.STDOUT, cwd=root)
    headers = {"Authorization": f"token {token}"}
    _wait_http(port, "/api/status", headers, proc)
    return proc, port, token


def start_mlflow_server(uri: str, artifacts: Path, log_path: Path) -> tuple[subprocess.Popen, int]:
    port = free_port()
    cmd = [
        sys.executable, "-m", "mlflow", "server", "--backend-store-uri", uri,
        "--default-artifact-root", str(artifacts), "--host", "127.0.0.1", "--port", str(port),
        "--workers", "1",
    ]
    out = open(log_path, "wb")  # noqa: SIM115 - lives as long as the server
    env = dict(os.environ, MLFLOW_TRACKING_URI="")
    proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env=env)
    _wait_http(port, "/health", {}, proc, timeout=180)
    return proc, port


def stop(proc: subprocess.Popen) -> None:
    proc.terminate()
    try:
        proc.wait(15)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


# ------------------------------------------------------------------------------ the case


def run(cfg: Any) -> tuple[list[Row], str]:
    import mlflow

    import nbtrace
    from nbtrace.store.sqlite import SQLiteStore

    rows: list[Row] = []
    sizes = (1_000, 10_000)
    with tempdir("listing-") as tmp:
        db = str(tmp / "nbtrace.db")
        uri = f"sqlite:///{tmp / 'mlflow.db'}"
        artifacts = tmp / "mlartifacts"
        nstore = SQLiteStore(db)
        mstore, eid = mlflow_store(uri, artifacts)
        log("case 4: starting jupyter server (nbtrace extension) and mlflow server")
        jproc, jport, token = start_jupyter(db, tmp, tmp / "jupyter.log")
        mproc = None
        try:
            mproc, mport = start_mlflow_server(uri, artifacts, tmp / "mlflow-server.log")
            jh = Http(jport, {"Authorization": f"token {token}"})
            mh = Http(mport, {})
            nbtrace.configure(db)
            mlflow.set_tracking_uri(uri)
            have = 0
            for n in sizes:
                t0 = time.perf_counter()
                fill_nbtrace(nstore, have, n - have)
                t1 = time.perf_counter()
                fill_mlflow(mstore, eid, have, n - have)
                t2 = time.perf_counter()
                log(f"  filled {n:,} runs: nbtrace {t1 - t0:.1f} s, MLflow {t2 - t1:.1f} s")
                have = n
                rows += _measure(cfg, n, jh, mh, eid)
            scale = 20_000 if cfg.quick else SCALE
            t0 = time.perf_counter()
            fill_nbtrace(nstore, have, scale - have)
            log(f"  filled nbtrace to {scale:,} runs in {time.perf_counter() - t0:.1f} s"
                " (MLflow stays at 10,000)")
            rows += _measure_scale(cfg, scale, have, jh, mh, eid)
            jh.close()
            mh.close()
        finally:
            stop(jproc)
            if mproc is not None:
                stop(mproc)
            nstore.close()
            nbtrace.api.tracker().close()
    return rows, ""


def _measure(cfg: Any, n: int, jh: Http, mh: Http, eid: str) -> list[Row]:
    import mlflow

    import nbtrace

    q = urllib.parse.quote(FILTER)
    # How many match, counted once outside the timed part (REST's total is bounded past 1,000).
    expected = {"n": len(nbtrace.runs(filter=FILTER))}

    def n_rest_page() -> float:
        t = time.perf_counter()
        body = jh.request("GET", "/nbtrace/api/runs?limit=100")
        dt = time.perf_counter() - t
        assert len(body["runs"]) == 100 and body["total"] == n, body.get("total")
        return dt

    def m_rest_page() -> float:
        t = time.perf_counter()
        body = mh.request("POST", "/api/2.0/mlflow/runs/search",
                          {"experiment_ids": [eid], "max_results": 100})
        dt = time.perf_counter() - t
        assert len(body["runs"]) == 100
        return dt

    def n_rest_filter() -> float:
        t = time.perf_counter()
        body = jh.request("GET", f"/nbtrace/api/runs?filter={q}&limit=100")
        dt = time.perf_counter() - t
        assert len(body["runs"]) == min(100, expected["n"])
        return dt

    def m_rest_filter() -> float:
        t = time.perf_counter()
        body = mh.request("POST", "/api/2.0/mlflow/runs/search",
                          {"experiment_ids": [eid], "filter": FILTER, "max_results": 100})
        dt = time.perf_counter() - t
        assert len(body["runs"]) == min(100, expected.get("n", 100))
        return dt

    def n_py_page() -> float:
        t = time.perf_counter()
        df = nbtrace.runs(filter=FILTER, limit=100)
        dt = time.perf_counter() - t
        assert len(df) == min(100, expected["n"])
        return dt

    def m_py_page() -> float:
        t = time.perf_counter()
        df = mlflow.search_runs([eid], filter_string=FILTER, max_results=100)
        dt = time.perf_counter() - t
        assert len(df) == min(100, expected["n"])
        return dt

    def n_py_all() -> float:
        t = time.perf_counter()
        df = nbtrace.runs(filter=FILTER)
        dt = time.perf_counter() - t
        assert len(df) == expected["n"], (len(df), expected["n"])
        return dt

    def m_py_all() -> float:
        t = time.perf_counter()
        df = mlflow.search_runs([eid], filter_string=FILTER)
        dt = time.perf_counter() - t
        assert len(df) == expected["n"], (len(df), expected["n"])
        return dt

    reps = 10 if cfg.quick else 30
    few = 3 if cfg.quick else 8
    log(f"case 4: measuring with {n:,} runs")
    page = alternate(reps, 3, {"nbtrace": n_rest_page, "mlflow": m_rest_page})
    flt = alternate(reps, 3, {"nbtrace": n_rest_filter, "mlflow": m_rest_filter})
    pypage = alternate(reps, 2, {"nbtrace": n_py_page, "mlflow": m_py_page})
    pyall = alternate(few, 1, {"nbtrace": n_py_all, "mlflow": m_py_all})
    matched = expected["n"]
    target = dict(target="≤ 50 ms", target_value=0.050) if n >= 10_000 else {}
    return [
        Row("4 listing", f"{n:,} runs: REST, first page of 100 (newest first)",
            nbtrace=page["nbtrace"], mlflow=page["mlflow"]),
        Row("4 listing", f"{n:,} runs: REST, filtered, page of 100 (of {matched:,} matching)",
            nbtrace=flt["nbtrace"], mlflow=flt["mlflow"], **target),
        Row("4 listing", f"{n:,} runs: nbtrace.runs(filter, limit=100) vs"
            " mlflow.search_runs(filter, max_results=100)",
            nbtrace=pypage["nbtrace"], mlflow=pypage["mlflow"]),
        Row("4 listing", f"{n:,} runs: all {matched:,} matching as a DataFrame",
            nbtrace=pyall["nbtrace"], mlflow=pyall["mlflow"]),
    ]


def _measure_scale(cfg: Any, n: int, m: int, jh: Http, mh: Http, eid: str) -> list[Row]:
    """nbtrace over ``n`` runs against MLflow over ``m`` (10x fewer): the filtered page sorted
    by a metric, and newest first, through REST and the Python API."""
    import mlflow

    import nbtrace

    q = urllib.parse.quote(FILTER)
    s = urllib.parse.quote(SORT_N)

    def n_rest(sort: str) -> Any:
        def go() -> float:
            t = time.perf_counter()
            body = jh.request("GET", f"/nbtrace/api/runs?filter={q}{sort}&limit=100")
            dt = time.perf_counter() - t
            assert len(body["runs"]) == 100
            return dt

        return go

    def m_rest(order: list[str]) -> Any:
        def go() -> float:
            t = time.perf_counter()
            body = mh.request("POST", "/api/2.0/mlflow/runs/search",
                              {"experiment_ids": [eid], "filter": FILTER, "max_results": 100,
                               "order_by": order})
            dt = time.perf_counter() - t
            assert len(body["runs"]) == 100
            return dt

        return go

    def n_py() -> float:
        t = time.perf_counter()
        df = nbtrace.runs(filter=FILTER, sort=SORT_N, limit=100)
        dt = time.perf_counter() - t
        assert len(df) == 100
        return dt

    def m_py() -> float:
        t = time.perf_counter()
        df = mlflow.search_runs([eid], filter_string=FILTER, order_by=[SORT_M], max_results=100)
        dt = time.perf_counter() - t
        assert len(df) == 100
        return dt

    def n_exact() -> float:
        t = time.perf_counter()
        body = jh.request("GET", f"/nbtrace/api/runs?filter={q}&sort={s}&limit=100&count=exact")
        dt = time.perf_counter() - t
        assert body["total_exact"] is True
        return dt

    reps = 10 if cfg.quick else 30
    log(f"case 4: measuring nbtrace with {n:,} runs against MLflow with {m:,}")
    srt = alternate(reps, 3, {"nbtrace": n_rest(f"&sort={s}"), "mlflow": m_rest([SORT_M])})
    new = alternate(reps, 3, {"nbtrace": n_rest(""), "mlflow": m_rest([])})
    py = alternate(reps, 2, {"nbtrace": n_py, "mlflow": m_py})
    exact = alternate(max(5, reps // 3), 1, {"nbtrace": n_exact})
    label = f"nbtrace {n:,} runs vs MLflow {m:,}"
    target = dict(target="≤ 30 ms and ≥ 10x faster than MLflow over 10,000",
                  target_value=0.030, min_ratio=10.0) if n >= SCALE else {}
    return [
        Row("4 listing", f"{label}: REST, filtered, sorted by -metrics.mse, page of 100",
            nbtrace=srt["nbtrace"], mlflow=srt["mlflow"], **target,
            note="`total` bounded (`total_exact` false, 'more than N')"),
        Row("4 listing", f"{label}: REST, filtered, newest first, page of 100",
            nbtrace=new["nbtrace"], mlflow=new["mlflow"]),
        Row("4 listing", f"{label}: nbtrace.runs(filter, sort, limit=100) vs"
            " mlflow.search_runs(filter, order_by, max_results=100)",
            nbtrace=py["nbtrace"], mlflow=py["mlflow"]),
        Row("4 listing", f"nbtrace {n:,} runs: REST, the same sorted page with count=exact",
            nbtrace=exact["nbtrace"]),
    ]

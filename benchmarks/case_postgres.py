"""PostgreSQL (the team store): nbtrace and MLflow side by side on one throwaway cluster.

The cluster is started with ``tests/pgcluster.py``'s helpers (``initdb``/``pg_ctl`` run as the
``postgres`` user when we are root), then restarted with a team server's durability settings
(``fsync``, ``synchronous_commit`` and ``full_page_writes`` on; the test fixture turns them off
for speed). Each system gets its own database. Measured:

- ``log_metric`` per call inside a kernel cell, and nbtrace's flush at the cell's end;
- a run's start and end (later runs, a cell each), full capture vs MLflow's empty run;
- filtered listing of 10,000 runs: REST (``jupyter server`` + nbtrace extension vs ``mlflow
  server``) and ``nbtrace.runs()`` vs ``mlflow.search_runs``.

Skipped (with the reason in RESULTS.md) when PostgreSQL binaries are missing or the cluster
cannot start.
"""

from __future__ import annotations

import shutil
import sys
import time
from typing import Any

import case_kernel
import case_listing
from harness import ROOT, Row, log, make_worktree, tempdir

DURABLE_OPTS = (
    "-c listen_addresses=127.0.0.1 -c fsync=on -c synchronous_commit=on"
    " -c full_page_writes=on -c max_connections=100 -c shared_buffers=128MB"
)


def start_cluster() -> Any:
    sys.path.insert(0, str(ROOT / "tests"))
    import pgcluster

    if pgcluster.find_pg_bin() is None:
        raise RuntimeError("PostgreSQL binaries (initdb, pg_ctl) not found")
    cluster = pgcluster._start_cluster()
    # Restart with a real server's durability (the test fixture trades it for speed).
    cluster.stop("fast")
    cluster.run(
        "pg_ctl", "-D", str(cluster.datadir), "-l", str(cluster.logfile), "-w", "-t", "60",
        "-o", f"-p {cluster.port} -k {cluster.root} {DURABLE_OPTS}", "start",
    )
    return cluster


def run(cfg: Any) -> tuple[list[Row], str]:
    try:
        cluster = start_cluster()
    except BaseException as exc:  # noqa: BLE001 - pytest.skip raises a BaseException
        return [], f"_PostgreSQL cases not run: the cluster could not start ({exc})._\n"
    rows: list[Row] = []
    try:
        version = cluster.admin("SHOW server_version")[0][0]

        def db(prefix: str, mlflow: bool = False) -> str:
            url = cluster.url(cluster.create_database(prefix))
            return url.replace("postgresql://", "postgresql+psycopg://", 1) if mlflow else url

        log(f"PostgreSQL {version} on port {cluster.port}")
        rows += _kernel_cases(cfg, db("nbtk"), db("mlfk", True))
        rows += _listing(cfg, db("nbtl"), db("mlfl", True))
    finally:
        cluster.stop("immediate")
        shutil.rmtree(cluster.root, ignore_errors=True)
    for r in rows:
        r.case = "pg"
        if "sorted by -metrics.mse" in r.label and r.target_value is not None:
            r.target, r.target_value = "≤ 60 ms and ≥ 10x faster than MLflow over 10,000", 0.060
        else:
            r.target, r.target_value, r.min_ratio = "", None, None
    return rows, (
        f"PostgreSQL {version}, local throwaway cluster on the same machine (TCP over loopback,"
        " scram-sha-256), fsync and synchronous_commit on. MLflow uses SQLAlchemy with"
        " psycopg 3 (`postgresql+psycopg://`).\n"
    )


def _kernel_cases(cfg: Any, ndb: str, mdb: str) -> list[Row]:
    with tempdir("pg-kernel-") as tmp:
        folder, nb = make_worktree(tmp)
        log("pg: one kernel per system")
        sides = {
            "nbtrace": case_kernel.open_side("nbtrace", tmp, folder, nb, nbtrace_db=ndb),
            "mlflow": case_kernel.open_side("mlflow", tmp, folder, nb, mlflow_uri=mdb),
        }
        try:
            rows = case_kernel._metric_cases(cfg, sides)
            rows += case_kernel._later_runs(cfg, sides)
        finally:
            for s in sides.values():
                s.k.close()
    return rows


def _listing(cfg: Any, ndb: str, mdb: str) -> list[Row]:
    import mlflow

    import nbtrace
    from nbtrace.store import open_store

    n = 2_000 if cfg.quick else 10_000
    rows: list[Row] = []
    with tempdir("pg-listing-") as tmp:
        artifacts = tmp / "mlartifacts"
        nstore = open_store(ndb)
        mstore, eid = case_listing.mlflow_store(mdb, artifacts)
        t0 = time.perf_counter()
        case_listing.fill_nbtrace(nstore, 0, n)
        t1 = time.perf_counter()
        case_listing.fill_mlflow(mstore, eid, 0, n)
        log(f"pg: filled {n:,} runs: nbtrace {t1 - t0:.1f} s, MLflow"
            f" {time.perf_counter() - t1:.1f} s")
        # A server in use has planner statistics and is vacuumed (autovacuum analyzes a table
        # after its first 10% of changes, and vacuums it); a bulk fill is neither until then,
        # and autovacuum would then run in the middle of the measurements: do both now.
        _analyze(ndb)
        _analyze(mdb.replace("postgresql+psycopg://", "postgresql://", 1))
        jproc, jport, token = case_listing.start_jupyter(ndb, tmp, tmp / "jupyter.log")
        mproc = None
        try:
            mproc, mport = case_listing.start_mlflow_server(mdb, artifacts, tmp / "mlflow.log")
            jh = case_listing.Http(jport, {"Authorization": f"token {token}"})
            mh = case_listing.Http(mport, {})
            nbtrace.configure(ndb)
            mlflow.set_tracking_uri(mdb)
            measured = case_listing._measure(cfg, n, jh, mh, eid)
            scale = 20_000 if cfg.quick else case_listing.SCALE
            t0 = time.perf_counter()
            case_listing.fill_nbtrace(nstore, n, scale - n)
            _analyze(ndb)
            log(f"pg: filled nbtrace to {scale:,} runs in {time.perf_counter() - t0:.1f} s")
            big = case_listing._measure_scale(cfg, scale, n, jh, mh, eid)
            jh.close()
            mh.close()
        finally:
            case_listing.stop(jproc)
            if mproc is not None:
                case_listing.stop(mproc)
            nstore.close()
            nbtrace.api.tracker().close()
    # The filtered REST page and the Python API page are the ones asked for.
    rows += [r for r in measured if "filtered" in r.label or "limit=100" in r.label]
    return rows + big


def _analyze(url: str) -> None:
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("VACUUM ANALYZE")

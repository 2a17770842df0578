"""Real kernels on the PostgreSQL team store: concurrency, the CLI, outages, spool, heartbeats.

Given the throwaway cluster of :mod:`pgcluster` and a fresh database per test, when real
ipykernels (nbclient or jupyter_client) log runs into it, then nothing is lost or duplicated:
with kernels writing at once, across a server restart in the middle of a loop, and when a
kernel exits while the server is down (its spool file is uploaded by ``nbtrace sync``).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from jupyter_client.manager import start_new_kernel

from kernels import in_parallel, make_notebook, run_notebook
from nbtrace.store import open_store
from pgcluster import PgCluster

pytestmark = [pytest.mark.postgres, pytest.mark.slow]

NBTRACE = str(Path(sys.executable).parent / "nbtrace")

LOOP = (
    "import nbtrace\n"
    "for i in range({runs}):\n"
    "    with nbtrace.start_run('k{k}-' + str(i), tags={{'kernel': '{k}'}}):\n"
    "        nbtrace.log_params({{'i': i, 'k': {k}}})\n"
    "        for step in range({steps}):\n"
    "            nbtrace.log_metric('loss', 1.0 / (step + 1), step=step)\n"
    "        nbtrace.log_metric('final', i * 10 + {k})"
)


def cli(*args: str, env: dict[str, str] | None = None, check: bool = True) -> Any:
    out = subprocess.run(
        [NBTRACE, *args],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, **(env or {})},
    )
    if check:
        assert out.returncode == 0, out.stderr
    return out


def run_kernels(url: str, tmp_path: Path, kernels: int, runs: int, steps: int) -> None:

    def work(k: int) -> None:
        d = tmp_path / f"k{k}"
        d.mkdir()
        cells = [
            "%load_ext nbtrace",
            LOOP.format(runs=runs, steps=steps, k=k),
            f"%track_run magic-{k} --tag kernel={k}\n%log_param lr=0.01\n"
            "%log_metric acc=0.5 --step 1",
            "%end_run",
        ]
        run_notebook(make_notebook(cells), url, d, timeout=300)

    in_parallel(work, kernels, 600)


def check_everything_arrived(url: str, kernels: int, runs: int, steps: int) -> None:
    store = open_store(url)
    try:
        all_runs, total = store.list_runs(limit=None)
        assert total == kernels * (runs + 1)
        assert all(r["status"] == "finished" for r in all_runs)
        for k in range(kernels):
            mine = [r for r in all_runs if r["tags"].get("kernel") == str(k)]
            assert len(mine) == runs + 1
            loops = [r for r in mine if not r["name"].startswith("magic")]
            assert sorted(r["metrics"]["final"] for r in loops) == [
                float(i * 10 + k) for i in range(runs)
            ]
            assert sorted(r["params"]["i"] for r in loops) == list(range(runs))
        for r in all_runs:
            run = store.get_run(r["id"], series=True)
            if r["name"].startswith("magic"):
                assert run["params"] == {"lr": 0.01} and run["series"]["acc"][0]["step"] == 1
            else:
                assert [p["step"] for p in run["series"]["loss"]] == list(range(steps))
            assert run["cells"] and run["environment"]["packages"]
        b = store.backend  # type: ignore[attr-defined]
        with b.cursor(False) as cur:
            cur.execute(
                "SELECT count(*), count(DISTINCT (run_id, seq)) FROM metrics WHERE key = 'loss'"
            )
            n, distinct = cur.fetchone()
            cur.execute("SELECT count(DISTINCT set_hash) FROM package_versions")
            (sets,) = cur.fetchone()
        assert n == distinct == kernels * runs * steps
        assert sets == 1  # one environment, stored once for every kernel
    finally:
        store.close()


def test_two_kernels_log_concurrently(pg_store_url: str, tmp_path: Path) -> None:
    run_kernels(pg_store_url, tmp_path, kernels=2, runs=15, steps=40)
    check_everything_arrived(pg_store_url, kernels=2, runs=15, steps=40)


def test_eight_kernels_at_once_and_the_cli(pg_store_url: str, tmp_path: Path) -> None:
    kernels, runs, steps = 8, 4, 25
    run_kernels(pg_store_url, tmp_path, kernels, runs, steps)
    check_everything_arrived(pg_store_url, kernels, runs, steps)

    out = json.loads(cli("runs", "--db", pg_store_url, "--json", "--limit", "0").stdout)
    assert out["total"] == len(out["runs"]) == kernels * (runs + 1)
    assert all(r["status"] == "finished" and r["metrics"] for r in out["runs"])
    out = json.loads(
        cli(
            "runs",
            "--db",
            pg_store_url,
            "--json",
            "--filter",
            "tags.kernel = 3 and metrics.final >= 13",
            "--sort",
            "-metrics.final",
        ).stdout
    )
    assert [r["metrics"]["final"] for r in out["runs"]] == [33.0, 23.0, 13.0]
    shown = json.loads(
        cli("show", out["runs"][0]["id"], "--db", pg_store_url, "--json", "--series").stdout
    )
    assert [p["step"] for p in shown["series"]["loss"]] == list(range(steps))
    assert shown["params"] == {"i": 3, "k": 3}
    # the password is not printed by the CLI either
    pw = pg_store_url.split(":")[2].split("@")[0]
    both = (
        cli("runs", "--db", pg_store_url).stdout
        + cli("show", "k3", "--db", pg_store_url, check=False).stderr
    )
    assert pw not in both


# --------------------------------------------------------------------------- outages
class Kernel:
    """A real kernel driven statement by statement (jupyter_client)."""

    def __init__(self, env: dict[str, str], cwd: Path) -> None:
        self.km, self.kc = start_new_kernel(kernel_name="python3", env=env, cwd=str(cwd))
        self.outputs: list[str] = []

    def run(self, code: str, timeout: float = 60) -> dict[str, Any]:
        outputs: list[str] = []

        def hook(msg: dict[str, Any]) -> None:
            if msg["msg_type"] == "stream":
                outputs.append(msg["content"]["text"])

        reply = self.kc.execute_interactive(code, timeout=timeout, output_hook=hook)
        assert reply["content"]["status"] == "ok", reply["content"]
        self.outputs.extend(outputs)
        return reply

    def shutdown(self) -> None:
        if self.km.is_alive():
            self.kc.stop_channels()
            self.km.shutdown_kernel(now=False)


def _kernel_env(url: str, tmp_path: Path) -> dict[str, str]:
    return {
        **os.environ,
        "NBTRACE_DB": url,
        "JUPYTER_DATA_DIR": str(tmp_path / "jupyter-data"),
        "NBTRACE_FLUSH_INTERVAL": "0.2",
    }


def _wait_for(predicate: Any, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("timed out waiting")
        time.sleep(0.2)


def _metric_points(url: str) -> int:
    store = open_store(url)
    try:
        b = store.backend  # type: ignore[attr-defined]
        with b.cursor(False) as cur:
            cur.execute("SELECT count(*) FROM metrics")
            return int(cur.fetchone()[0])
    finally:
        store.close()


def test_server_restart_while_a_kernel_logs(
    pg_store_url: str, pg_cluster: PgCluster, tmp_path: Path
) -> None:
    n = 80
    kernel = Kernel(_kernel_env(pg_store_url, tmp_path), tmp_path)
    try:
        kernel.run("%load_ext nbtrace")
        kernel.run("%track_run through-restart")
        kernel.kc.execute(
            "import nbtrace, time\n"
            f"for s in range({n}):\n"
            "    nbtrace.log_metric('x', s * 1.5, step=s)\n"
            "    time.sleep(0.08)"
        )
        time.sleep(1.5)
        pg_cluster.stop("fast")
        try:
            time.sleep(2.0)  # the kernel keeps logging; its writer keeps the batches
        finally:
            pg_cluster.start()
        kernel.run("pass", timeout=120)  # the loop cell is done
        kernel.run("%end_run")
    finally:
        kernel.shutdown()
    store = open_store(pg_store_url)
    try:

        def arrived() -> bool:
            runs = store.list_runs()[0]
            return bool(runs) and runs[0]["status"] == "finished"

        _wait_for(arrived)
        run = store.get_run(store.list_runs()[0][0]["id"], series=True)
        assert [p["step"] for p in run["series"]["x"]] == list(range(n))
        assert [p["value"] for p in run["series"]["x"]] == [s * 1.5 for s in range(n)]
    finally:
        store.close()


def test_kernel_exiting_while_server_is_down_spools_and_sync_uploads(
    pg_store_url: str, pg_cluster: PgCluster, tmp_path: Path
) -> None:
    env = _kernel_env(pg_store_url, tmp_path)
    spool = tmp_path / "jupyter-data" / "nbtrace" / "spool"
    kernel = Kernel(env, tmp_path)
    try:
        kernel.run("%load_ext nbtrace")
        kernel.run("%track_run spooled\n%log_param alpha=0.25")
        kernel.run("import nbtrace\nfor s in range(10):\n    nbtrace.log_metric('m', s, step=s)")
        assert not kernel.outputs, kernel.outputs  # no warning
        _wait_for(lambda: _metric_points(pg_store_url) == 10)  # the writer made them durable
        pg_cluster.stop("fast")
        try:
            kernel.run("for s in range(10, 25):\n    nbtrace.log_metric('m', s, step=s)")
            kernel.run("%end_run")
            kernel.shutdown()  # exits with the last writes unflushable: they go to the spool
            files = list(spool.glob("*.jsonl"))
            assert len(files) == 1, list(spool.iterdir()) if spool.exists() else "no spool dir"
            text = files[0].read_text()
            assert pg_store_url.split(":")[2].split("@")[0] not in text  # no password there
        finally:
            pg_cluster.start()
    finally:
        kernel.shutdown()
    store = open_store(pg_store_url)
    try:
        run = store.get_run(store.list_runs()[0][0]["id"], series=True)
        assert run["status"] == "crashed"  # its kernel is gone; its end is in the spool
        assert len(run["series"]["m"]) == 10
    finally:
        store.close()
    denv = {"JUPYTER_DATA_DIR": env["JUPYTER_DATA_DIR"]}
    out = json.loads(cli("sync", "--db", pg_store_url, "--json", env=denv).stdout)
    assert out["files"] == 1 and out["writes"] > 15
    assert not list(spool.glob("*.jsonl"))
    assert json.loads(cli("sync", "--db", pg_store_url, "--json", env=denv).stdout)["files"] == 0
    store = open_store(pg_store_url)
    try:
        run = store.get_run(store.list_runs()[0][0]["id"], series=True)
        assert run["status"] == "finished" and run["params"] == {"alpha": 0.25}
        assert [p["step"] for p in run["series"]["m"]] == list(range(25))
    finally:
        store.close()


def test_heartbeat_decides_crashes_across_hosts(pg_store_url: str) -> None:
    now = time.time()
    store = open_store(pg_store_url)
    try:

        def start(run_id: str, host: str, heartbeat: float) -> tuple:
            return (
                "run_start",
                {
                    "id": run_id,
                    "name": run_id,
                    "status": "running",
                    "started_at": now - 3600,
                    "heartbeat_at": heartbeat,
                    "host": host,
                    "pid": os.getpid(),
                    "user_name": "bob",
                },
            )

        store.apply(
            [start("silent", "gpu-node-7", now - 600), start("beating", "gpu-node-8", now - 2)]
        )
    finally:
        store.close()
    env = {"NBTRACE_HEARTBEAT_TIMEOUT": "60"}
    out = json.loads(cli("runs", "--db", pg_store_url, "--json", env=env).stdout)
    status = {r["id"]: r["status"] for r in out["runs"]}
    assert status == {"silent": "crashed", "beating": "running"}
    store = open_store(pg_store_url)
    try:  # the silent kernel was only cut off: its next heartbeat brings the run back
        store.apply([("heartbeat", "silent", time.time())])
    finally:
        store.close()
    shown = json.loads(cli("show", "silent", "--db", pg_store_url, "--json", env=env).stdout)
    assert shown["status"] == "running" and shown["ended_at"] is None

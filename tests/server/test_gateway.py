"""Re-executions and sweeps on a real Jupyter Kernel Gateway, through a real Jupyter server.

A ``jupyter kernelgateway`` (token, loopback) and a ``jupyter server --gateway-url`` run as
subprocesses for the whole module; the store is an SQLite file on this machine, which both the
server and the gateway's kernels reach. A second gateway, started in a mount namespace of its
own where the store's folder is an empty tmpfs, stands for a gateway on another machine: the
replay must be refused there, not produce a run that never appears.
"""

from __future__ import annotations

import json
import os
import socket
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from gateways import (
    Sampler,
    Service,
    descends_from,
    kernel_processes,
    start_gateway,
    start_server,
    wait_for,
)
from nbtrace.store import open_store

from .conftest import run_notebook

CELLS = [
    "%load_ext nbtrace",
    "import time\nimport nbtrace",
    "%track_run det\n%log_param alpha=0.5 l1_ratio=0.1\n"
    "%log_metric score=alpha * 10 + l1_ratio\n%end_run",
    "%%track_run slow\n%log_param naps=0\nfor _ in range(naps):\n    time.sleep(0.1)\n"
    "nbtrace.log_metric('slept', naps)",
    "%%track_run grid\n%log_param a=1 b=10 nap=0.0\ntime.sleep(nap)\n"
    "nbtrace.log_metric('m', a * b)",
]


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The recorded runs, a gateway and a server using it (stopped at the end)."""
    base = tmp_path_factory.mktemp("gw")
    root, storedir = base / "root", base / "store"
    nbdir = root / "nbs"
    nbdir.mkdir(parents=True)
    storedir.mkdir()
    db = str(storedir / "runs.db")
    run_notebook(CELLS, db, nbdir, name="study.ipynb")
    store = open_store(db)
    runs, _ = store.list_runs(limit=None)
    store.close()
    gateway = start_gateway(base)
    try:
        server = start_server(base, root, db, gateway, {"max_parallel_reruns": 4})
    except Exception:
        gateway.stop()
        raise
    yield {
        "base": base,
        "root": root,
        "db": db,
        "storedir": storedir,
        "ids": {r["name"]: r["id"] for r in runs},
        "gateway": gateway,
        "server": server,
    }
    server.stop()
    gateway.stop()


def api(server: Service, method: str, path: str, body: Any = None) -> tuple[int, Any]:
    return server.request(method, "/nbtrace/api/" + path, body)


def wait_job(server: Service, job_id: str, timeout: float = 180.0) -> dict[str, Any]:
    def over() -> Any:
        code, job = api(server, "GET", f"jobs/{job_id}")
        assert code == 200, job
        return job if job["state"] not in ("queued", "running") else None

    return wait_for(over, timeout, f"job {job_id}")


def test_rerun_runs_on_the_gateway_and_reproduces(site: dict[str, Any]) -> None:
    server, gateway = site["server"], site["gateway"]
    with Sampler(gateway, interval=0.02) as seen:
        code, data = api(server, "POST", f"runs/{site['ids']['det']}/rerun", {})
        assert code == 202, data
        job = wait_job(server, data["job"])
    assert job["state"] == "done", job
    assert job["verdict"]["status"] == "reproduced", job["verdict"]
    store = open_store(site["db"])
    try:
        new = store.get_run(job["run"])
    finally:
        store.close()
    with sqlite3.connect(site["db"]) as con:
        (kernel_pid,) = con.execute("SELECT pid FROM runs WHERE id = ?", (job["run"],)).fetchone()
    assert new["parent"] == site["ids"]["det"] and new["params"] == {"alpha": 0.5, "l1_ratio": 0.1}
    assert new["notebook"]["path"] == str(site["root"] / "nbs" / "study.ipynb")
    # The replay kernel was a child of the gateway, never of the Jupyter server.
    assert seen.kernel_pids, "no kernel process was seen"
    gw_kernels = {p for p, pp in seen.kernel_pids.items() if pp == gateway.proc.pid}
    assert gw_kernels, f"no kernel under the gateway ({seen.kernel_pids})"
    assert not [p for p, pp in seen.kernel_pids.items() if pp == server.proc.pid]
    assert kernel_pid in gw_kernels, (kernel_pid, seen.kernel_pids)


def test_drift_answers_for_a_gateway_kernel(site: dict[str, Any]) -> None:
    """The gateway's kernel specs are awaited (not a 500); the kernel's interpreter is remote."""
    code, data = api(site["server"], "GET", f"runs/{site['ids']['det']}/drift")
    assert code == 200, data
    assert data["kernel_name"] == "python3" and data["remote"].startswith("gateway")
    code, data = api(site["server"], "GET", f"runs/{site['ids']['det']}/drift?kernel_name=nope")
    assert code == 400 and "no kernel named 'nope'" in data["message"], data


def test_rerun_on_the_gateway_with_the_team_store(
    site: dict[str, Any], pg_store_url: str, tmp_path: Path
) -> None:
    nbdir = site["root"] / "pg"
    nbdir.mkdir(exist_ok=True)
    run_notebook(CELLS[:3], pg_store_url, nbdir, name="team.ipynb")
    store = open_store(pg_store_url)
    try:
        (run,), _ = store.list_runs(limit=None)
    finally:
        store.close()
    server = start_server(tmp_path, site["root"], pg_store_url, site["gateway"])
    try:
        code, data = api(server, "POST", f"runs/{run['id']}/rerun", {})
        assert code == 202, data
        job = wait_job(server, data["job"])
    finally:
        server.stop()
    assert job["state"] == "done" and job["verdict"]["status"] == "reproduced", job
    store = open_store(pg_store_url)
    try:
        new = store.get_run(job["run"])
    finally:
        store.close()
    assert new["parent"] == run["id"] and new["params"] == {"alpha": 0.5, "l1_ratio": 0.1}


def test_cancel_interrupts_the_remote_kernel(site: dict[str, Any]) -> None:
    server, gateway = site["server"], site["gateway"]
    code, data = api(
        server, "POST", f"runs/{site['ids']['slow']}/rerun", {"overrides": {"naps": 3000}}
    )
    assert code == 202, data
    job_id = data["job"]

    def slow_cell_running() -> Any:
        code, job = api(server, "GET", f"jobs/{job_id}")
        return job["progress"]["done"] >= 3 and job["state"] == "running"

    wait_for(slow_cell_running, 120, "the slow cell to start")
    kernels = [p for p, pp in kernel_processes().items() if pp == gateway.proc.pid]
    assert kernels, "the replay kernel is not a child of the gateway"
    assert not [p for p in kernel_processes() if descends_from(p, server.proc.pid)]
    code, view = api(server, "DELETE", f"jobs/{job_id}")
    assert code in (200, 202), view
    job = wait_job(server, job_id, timeout=120)
    assert job["state"] == "cancelled", job
    # Interrupted (KeyboardInterrupt in the cell), not killed: the kept notebook says so.
    code, parent = api(server, "GET", f"runs/{site['ids']['slow']}")
    runs = [api(server, "GET", f"runs/{c['id']}")[1] for c in parent["children"]]
    (run,) = [r for r in runs if r["extra"].get("job") == job_id]
    assert run["status"] == "failed", run
    req_path = f"/nbtrace/api/runs/{run['id']}/artifacts/executed.ipynb"
    import urllib.request

    req = urllib.request.Request(server.url + req_path)
    req.add_header("Authorization", f"token {server.token}")
    with urllib.request.urlopen(req, timeout=30) as resp:
        executed = json.loads(resp.read())
    outputs = executed["cells"][3]["outputs"]
    assert any(o.get("ename") == "KeyboardInterrupt" for o in outputs), outputs
    wait_for(
        lambda: gateway.request("GET", "/api/kernels")[1] == [],
        60,
        "the gateway to shut the kernel down",
    )


def test_sweep_of_six_sets_two_at_a_time(site: dict[str, Any]) -> None:
    server, gateway = site["server"], site["gateway"]
    grid = {"a": [1, 2, 3], "b": [10, 20], "nap": [0.5]}
    with Sampler(gateway) as seen:
        code, data = api(
            server, "POST", f"runs/{site['ids']['grid']}/sweep", {"grid": grid, "parallel": 2}
        )
        assert code == 202, data
        assert len(data["jobs"]) == 6 and data["sweep"]

        def over() -> Any:
            code, sweep = api(server, "GET", f"sweeps/{data['sweep']}")
            assert code == 200, sweep
            return sweep if sweep["state"] not in ("queued", "running") else None

        sweep = wait_for(over, 400, "the sweep")
    assert sweep["state"] == "done", sweep
    assert sweep["progress"]["done"] == 6 and len(sweep["runs"]) == 6
    assert seen.samples > 0 and 1 <= seen.max_kernels <= 2, seen.max_kernels
    flt = f"tags.sweep = '{data['sweep']}'"
    import urllib.parse

    code, listed = api(server, "GET", "runs?limit=100&filter=" + urllib.parse.quote(flt))
    assert code == 200 and listed["total"] == 6, listed
    got = sorted((r["params"]["a"], r["params"]["b"]) for r in listed["runs"])
    assert got == [(1, 10), (1, 20), (2, 10), (2, 20), (3, 10), (3, 20)]
    assert all(r["metrics"]["m"] == r["params"]["a"] * r["params"]["b"] for r in listed["runs"])
    code, parent = api(server, "GET", f"runs/{site['ids']['grid']}")
    assert set(sweep["runs"]) <= {c["id"] for c in parent["children"]}


def test_cli_rerun_on_the_gateway(site: dict[str, Any]) -> None:
    gateway = site["gateway"]
    env = {k: v for k, v in os.environ.items() if not k.startswith("NBTRACE_")}
    with Sampler(gateway, interval=0.02) as seen:
        proc = subprocess.run(  # noqa: S603
            [
                sys.executable,
                "-m",
                "nbtrace.cli",
                "rerun",
                site["ids"]["det"],
                "--db",
                site["db"],
                "--gateway-url",
                gateway.url,
                "--gateway-token",
                gateway.token,
                "--set",
                "alpha=0.5",
                "--json",
            ],
            capture_output=True,
            text=True,
            timeout=300,
            env=env,
            cwd=str(site["root"]),
        )
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert out["verdict"]["status"] == "reproduced", out
    assert [p for p, pp in seen.kernel_pids.items() if pp == gateway.proc.pid]
    bad = subprocess.run(  # noqa: S603
        [
            sys.executable,
            "-m",
            "nbtrace.cli",
            "rerun",
            site["ids"]["det"],
            "--db",
            site["db"],
            "--gateway-url",
            gateway.url,
            "--gateway-token",
            "wrong",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )
    assert bad.returncode == 1 and "Traceback" not in bad.stderr
    assert bad.stderr.startswith("nbtrace: error:") and "gateway" in bad.stderr, bad.stderr


def test_cli_sweep_on_the_gateway(site: dict[str, Any]) -> None:
    gateway = site["gateway"]
    env = {k: v for k, v in os.environ.items() if not k.startswith("NBTRACE_")}
    with Sampler(gateway) as seen:
        proc = subprocess.run(  # noqa: S603
            [sys.executable, "-m", "nbtrace.cli", "sweep", site["ids"]["grid"],
             "--db", site["db"], "--grid", "a=4,5", "--grid", "nap=0.5", "--parallel", "2",
             "--gateway-url", gateway.url, "--gateway-token", gateway.token, "--json"],
            capture_output=True, text=True, timeout=300, env=env,
        )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert out["parallel"] == 2 and len(out["runs"]) == 2, out
    assert sorted(r["overrides"]["a"] for r in out["results"]) == [4, 5]
    assert seen.samples > 0 and 1 <= seen.max_kernels <= 2, seen.max_kernels
    assert [p for p, pp in seen.kernel_pids.items() if pp == gateway.proc.pid]
    store = open_store(site["db"])
    try:
        runs, total = store.list_runs(filter=f"tags.sweep = '{out['sweep']}'", limit=None)
    finally:
        store.close()
    assert total == 2 and sorted(r["metrics"]["m"] for r in runs) == [40, 50]


def _private_mounts_work() -> bool:
    probe = subprocess.run(  # noqa: S603,S607
        [
            "unshare",
            "-m",
            "--propagation",
            "private",
            "sh",
            "-c",
            "mount -t tmpfs none /mnt && umount /mnt",
        ],
        capture_output=True,
        timeout=30,
    )
    return probe.returncode == 0


def test_sqlite_store_out_of_the_kernels_reach_is_refused(site: dict[str, Any]) -> None:
    if not _private_mounts_work():
        pytest.skip("needs unshare -m (a mount namespace) to hide the store from the gateway")
    storedir = str(site["storedir"])
    wrap = [
        "unshare",
        "-m",
        "--propagation",
        "private",
        "sh",
        "-c",
        f'mount -t tmpfs none "{storedir}" && exec "$0" "$@"',
    ]
    far = start_gateway(site["base"], wrap=wrap)
    try:
        server = start_server(site["base"], site["root"], site["db"], far)
        try:
            before = _children(site["db"], site["ids"]["det"])
            code, data = api(server, "POST", f"runs/{site['ids']['det']}/rerun", {})
            assert code == 202, data
            job = wait_job(server, data["job"])
        finally:
            server.stop()
    finally:
        far.stop()
    assert job["state"] == "error", job
    assert "cannot reach the SQLite store" in job["error"], job["error"]
    assert "postgresql://" in job["error"]
    assert _children(site["db"], site["ids"]["det"]) == before


def _children(db: str, run_id: str) -> list[str]:
    store = open_store(db)
    try:
        return sorted(c["id"] for c in store.children(run_id))
    finally:
        store.close()


PROBE = r'''
import asyncio, json, sys
from nbtrace.server.gateway import gateway_host

host, stop = gateway_host(sys.argv[1], sys.argv[2])


async def probe():
    kid = await host.kernel_manager.start_kernel(kernel_name="python3")
    kc = host.client_for(host.kernel_manager.get_kernel(kid))
    await kc.start_channels()
    try:
        await kc.wait_for_ready(timeout=120)
        msg_id = kc.execute("print('x')")
        while True:  # waited for without a timeout loop of ours: the queue wakes the caller
            reply = await kc.shell_channel.get_msg(timeout=60)
            if reply["parent_header"].get("msg_id") == msg_id:
                break
        while True:
            msg = await kc.iopub_channel.get_msg(timeout=60)
            if (msg["parent_header"].get("msg_id") == msg_id
                    and msg["msg_type"] == "status"
                    and msg["content"]["execution_state"] == "idle"):
                break
        return {
            "date": type(reply["header"]["date"]).__name__,
            "idle_date": type(msg["header"]["date"]).__name__,
        }
    finally:
        kc.stop_channels()
        await host.kernel_manager.shutdown_kernel(kid)

try:
    print(json.dumps(host.call(probe, timeout=300)))
finally:
    stop()
'''


def test_gateway_client_gives_the_kernels_times(site: dict[str, Any]) -> None:
    """Messages from the gateway carry the kernel's times as datetimes: nbclient's cell
    timings are then the kernel's, as over ZMQ, not the times messages crossed the gateway."""
    gateway = site["gateway"]
    env = {k: v for k, v in os.environ.items() if not k.startswith("NBTRACE_")}
    proc = subprocess.run(  # noqa: S603
        [sys.executable, "-c", PROBE, gateway.url, gateway.token],
        capture_output=True, text=True, timeout=300, env=env,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out["date"] == out["idle_date"] == "datetime", out


@pytest.mark.skipif(not hasattr(socket, "TCP_QUICKACK"), reason="Linux only")
def test_gateway_socket_acknowledges_every_message_at_once() -> None:
    """The gateway's websocket sends with Nagle's algorithm (tornado without ``set_nodelay``):
    each message after the first of a burst waits for the previous one's ACK, which Linux
    delays by up to 40 ms. The client turns on ``TCP_QUICKACK`` again after every message it
    reads (Linux turns it off by itself). Measured effect: the replay's finish cell on the
    gateway took 48 ms before, 7 ms after (``benchmarks/case_sweep.py``)."""
    from nbtrace.server.gateway import _ack_at_once

    calls: list[tuple[int, int, int]] = []

    class Recording(socket.socket):
        def setsockopt(self, *args: Any) -> None:  # type: ignore[override]
            calls.append(args)
            super().setsockopt(*args)

    server = socket.create_server(("127.0.0.1", 0))
    try:
        raw = Recording(socket.AF_INET, socket.SOCK_STREAM)
        raw.connect(server.getsockname())
        peer, _ = server.accept()

        class WS:  # the two members of websocket-client's WebSocket the function uses
            sock = raw

            def recv(self) -> bytes:
                return raw.recv(64)

        ws = WS()
        _ack_at_once(ws)
        for k in range(3):
            peer.sendall(b"m%d" % k)
            assert ws.recv() == b"m%d" % k
        quick = (socket.IPPROTO_TCP, socket.TCP_QUICKACK, 1)
        assert calls == [quick] * 4, calls  # once at the start, then after each message
        peer.close()
        raw.close()
    finally:
        server.close()

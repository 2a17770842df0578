"""Sweeps: wall time against sequential replays, and the overhead per job beyond cell time.

Run with the dev venv (it needs ``jupyter_kernel_gateway``, a test extra)::

    .venv/bin/python benchmarks/case_sweep.py [--jobs 6] [--nap 1.0] [--write]

For a local Jupyter server and for one started with ``--gateway-url`` (a real
``jupyter kernelgateway`` on loopback), it records a run whose cell sleeps ``--nap`` seconds,
then measures through the REST API:

- ``sequential``: ``--jobs`` re-executions one after the other (each waited for);
- ``sweep p=1`` and ``sweep p=2``: one ``POST runs/{id}/sweep`` of ``--jobs`` parameter sets;
- ``cell time``: the replayed notebook's own cell time (from the executed notebooks' nbclient
  timings), so that ``overhead per job = sweep p=1 wall / jobs - cell time``;
- ``kernel start``: one kernel started, ready and shut down through the same manager (local:
  jupyter_client; gateway: jupyter_server's gateway managers as nbtrace uses them).

Nothing asserts a timing. MLflow has no counterpart (it does not re-execute notebook runs), so
there is no side-by-side figure here. ``--write`` saves the table to ``SWEEP.md``.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from gateways import Service, start_gateway, start_server, wait_for  # noqa: E402
from kernels import run_notebook  # noqa: E402

CELLS = [
    "%load_ext nbtrace",
    "import time\nimport nbtrace",
    "%%track_run work\n%log_param k=0 nap=1.0\ntime.sleep(nap)\nnbtrace.log_metric('m', k)",
]


def api(server: Service, method: str, path: str, body: Any = None) -> Any:
    code, data = server.request(method, "/nbtrace/api/" + path, body)
    if code >= 400:
        raise RuntimeError(f"{method} {path}: {code} {data}")
    return data


def wait_state(server: Service, path: str) -> dict[str, Any]:
    def over() -> Any:
        data = api(server, "GET", path)
        return data if data["state"] not in ("queued", "running") else None

    return wait_for(over, 1800, path, interval=0.25)


def cell_seconds(server: Service, run_id: str) -> float:
    """The executed notebook's cell time (execute_input → execute_reply, summed)."""
    import json
    import urllib.request

    req = urllib.request.Request(f"{server.url}/nbtrace/api/runs/{run_id}/artifacts/executed.ipynb")
    req.add_header("Authorization", f"token {server.token}")
    with urllib.request.urlopen(req, timeout=60) as resp:
        nb = json.loads(resp.read())
    total = 0.0
    for cell in nb["cells"]:
        ex = cell.get("metadata", {}).get("execution", {})
        a, b = ex.get("iopub.execute_input"), ex.get("shell.execute_reply")
        if a and b:
            total += (
                dt.datetime.fromisoformat(b.rstrip("Z")) - dt.datetime.fromisoformat(a.rstrip("Z"))
            ).total_seconds()
    return total


def measure(server: Service, run_id: str, jobs: int, nap: float) -> dict[str, float]:
    out: dict[str, float] = {}
    t0 = time.perf_counter()
    for k in range(jobs):
        job = api(server, "POST", f"runs/{run_id}/rerun", {"overrides": {"k": k, "nap": nap}})[
            "job"
        ]
        done = wait_state(server, f"jobs/{job}")
        assert done["state"] == "done", done
    out["sequential"] = time.perf_counter() - t0
    cells = []
    for parallel in (1, 2):
        t0 = time.perf_counter()
        sweep = api(
            server,
            "POST",
            f"runs/{run_id}/sweep",
            {"grid": {"k": list(range(jobs)), "nap": [nap]}, "parallel": parallel},
        )
        view = wait_state(server, f"sweeps/{sweep['sweep']}")
        out[f"sweep p={parallel}"] = time.perf_counter() - t0
        assert view["state"] == "done" and len(view["runs"]) == jobs, view
        if parallel == 1:
            cells = [cell_seconds(server, r) for r in view["runs"]]
    out["cell time"] = statistics.median(cells)
    out["overhead per job"] = out["sweep p=1"] / jobs - out["cell time"]
    return out


async def _kernel_cycle_local() -> tuple[float, float]:
    """(start to ready, start to shut down) of one bare kernel."""
    from jupyter_client.manager import AsyncKernelManager

    t0 = time.perf_counter()
    km = AsyncKernelManager(kernel_name="python3")
    await km.start_kernel()
    kc = km.client()
    kc.start_channels()
    await kc.wait_for_ready(timeout=120)
    ready = time.perf_counter() - t0
    kc.stop_channels()
    await km.shutdown_kernel()
    return ready, time.perf_counter() - t0


def _medians(cycles: list[tuple[float, float]]) -> dict[str, float]:
    return {
        "kernel start": statistics.median(c[0] for c in cycles),
        "kernel cycle": statistics.median(c[1] for c in cycles),
    }


def kernel_cycle_gateway(gateway: Service) -> dict[str, float]:
    from nbtrace.server.gateway import gateway_host

    host, stop = gateway_host(gateway.url, gateway.token)

    async def cycle() -> tuple[float, float]:
        t0 = time.perf_counter()
        kid = await host.kernel_manager.start_kernel(kernel_name="python3")
        kc = host.client_for(host.kernel_manager.get_kernel(kid))
        await kc.start_channels()
        await kc.wait_for_ready(timeout=120)
        ready = time.perf_counter() - t0
        kc.stop_channels()
        await host.kernel_manager.shutdown_kernel(kid)
        return ready, time.perf_counter() - t0

    try:
        return _medians([host.call(cycle) for _ in range(3)])
    finally:
        stop()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--jobs", type=int, default=6)
    ap.add_argument("--nap", type=float, default=1.0)
    ap.add_argument("--rounds", type=int, default=3, help="repetitions (medians reported)")
    ap.add_argument("--write", action="store_true")
    args = ap.parse_args()
    base = Path(tempfile.mkdtemp(prefix="nbtrace-sweep-bench-"))
    root, db = base / "root", str(base / "runs.db")
    root.mkdir()
    run_notebook(CELLS, db, root, name="work.ipynb")
    from nbtrace.store import open_store

    store = open_store(db)
    run_id = store.list_runs(limit=1)[0][0]["id"]
    store.close()
    rounds: dict[str, list[dict[str, float]]] = {"local server": [], "gateway": []}
    loads = [os.getloadavg()[0]]
    for _ in range(args.rounds):
        local = start_server(base, root, db, None, {"max_parallel_reruns": 2})
        try:
            r = measure(local, run_id, args.jobs, args.nap)
        finally:
            local.stop()
        r.update(_medians([asyncio.run(_kernel_cycle_local()) for _ in range(3)]))
        rounds["local server"].append(r)
        gateway = start_gateway(base)
        try:
            server = start_server(base, root, db, gateway, {"max_parallel_reruns": 2})
            try:
                r = measure(server, run_id, args.jobs, args.nap)
            finally:
                server.stop()
            r.update(kernel_cycle_gateway(gateway))
        finally:
            gateway.stop()
        rounds["gateway"].append(r)
        loads.append(os.getloadavg()[0])
    results = {
        where: {k: statistics.median(r[k] for r in rs) for k in rs[0]}
        for where, rs in rounds.items()
    }
    lines = [
        f"# Sweeps ({args.jobs} jobs, a {args.nap:g} s cell; medians of {args.rounds} rounds;"
        f" {os.cpu_count()} cores, load {min(loads):.1f}-{max(loads):.1f};"
        f" {dt.datetime.now(dt.timezone.utc):%Y-%m-%d %H:%M} UTC)",
        "",
        "Command: `.venv/bin/python benchmarks/case_sweep.py"
        f" --jobs {args.jobs} --nap {args.nap:g} --rounds {args.rounds} --write`",
        "",
        "| where | sequential replays | sweep p=1 | sweep p=2 | p=2 vs sequential |"
        " cell time / job | overhead / job | one kernel start (to ready) |"
        " one kernel cycle (start, ready, shut down) | overhead / cycle |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for where, r in results.items():
        lines.append(
            f"| {where} | {r['sequential']:.1f} s | {r['sweep p=1']:.1f} s |"
            f" {r['sweep p=2']:.1f} s | {r['sequential'] / r['sweep p=2']:.2f}× faster |"
            f" {r['cell time']:.2f} s | {r['overhead per job']:.2f} s |"
            f" {r['kernel start']:.2f} s | {r['kernel cycle']:.2f} s |"
            f" {r['overhead per job'] / r['kernel cycle']:.2f} |"
        )
    lines += [
        "",
        "Overhead per job = sweep p=1 wall / jobs − the replay's own cell time; it"
        " includes the replay kernel's start and its graceful shutdown (a kernel cycle), the"
        " hidden setup and finish cells, reading the new run and writing the verdict. Cell"
        " time is the kernel's own (its message times, execute_input to execute_reply; over"
        " the gateway too since 319b239, before which it was the times messages arrived)."
        " One kernel cycle is a bare kernel started, made ready and shut down through the"
        " same manager.",
    ]
    text = "\n".join(lines) + "\n"
    print(text)
    if args.write:
        (ROOT / "benchmarks" / "SWEEP.md").write_text(text)


if __name__ == "__main__":
    main()

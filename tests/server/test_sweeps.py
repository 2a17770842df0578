"""Sweeps on a local server (in process) and from the CLI: bad input, cancel, tagging."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from nbtrace.store import open_store

from .conftest import check_openapi, fetch_json, post_json, run_notebook, synthetic_run

CELLS = [
    "%load_ext nbtrace",
    "import time\nimport nbtrace",
    "%%track_run nap\n%log_param naps=0 k=0\nfor _ in range(naps):\n    time.sleep(0.1)\n"
    "nbtrace.log_metric('k2', k * k)",
]


@pytest.fixture(scope="module")
def recorded(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    root = tmp_path_factory.mktemp("sweeps") / "root"
    nbdir = root / "nbs"
    nbdir.mkdir(parents=True)
    db = str(root.parent / "runs.db")
    run_notebook(CELLS, db, nbdir, name="naps.ipynb")
    store = open_store(db)
    (run,), _ = store.list_runs(limit=None)
    synthetic_run(store, "b4d000000001", params={"p": 1}, cwd=str(root))
    store.close()
    return {"db": db, "root": root, "nap": run["id"]}


@pytest.fixture
def jp_root_dir(recorded: dict[str, Any]) -> Path:
    return recorded["root"]


@pytest.fixture
def server_db(recorded: dict[str, Any]) -> str:
    return recorded["db"]


@pytest.mark.parametrize(
    ("body", "status", "words"),
    [
        ({}, 400, "either a grid"),
        ({"grid": {}}, 400, "non-empty object"),
        ({"grid": {"p": 1}}, 400, "non-empty list"),
        ({"grid": {"p": []}}, 400, "non-empty list"),
        ({"grid": {"p": [1]}, "sets": [{"p": 1}]}, 400, "either a grid"),
        ({"sets": []}, 400, "non-empty list"),
        ({"grid": {"p": list(range(17)), "q": list(range(16))}}, 400, "more than 256"),
        ({"grid": {"nope": [1, 2]}}, 400, "unknown parameter"),
        ({"grid": {"p": [1, 2]}, "parallel": 0}, 400, "positive integer"),
        ({"grid": {"p": [1, 2]}, "parallel": True}, 400, "positive integer"),
        ({"grid": {"p": [{"a": 1}]}}, 400, "JSON scalar or list"),
        ({"grid": {"p": [1]}, "trust": "yes"}, 400, "true or false"),
        ({"grid": {"p": [1]}, "colour": 1}, 400, "unknown field"),
    ],
)
async def test_bad_sweeps_are_refused(jp_fetch: Any, body: Any, status: int, words: str) -> None:
    code, data, resp = await fetch_json(
        jp_fetch, "runs", "b4d000000001", "sweep", **post_json(body)
    )
    assert code == status and words in data["message"], data
    check_openapi(resp, "POST", "/runs/b4d000000001/sweep", body=body)


async def test_sweeping_someone_elses_run_needs_trust(jp_fetch: Any) -> None:
    """The synthetic run was recorded by "tester" on host "elsewhere": 409 without trust, and
    nothing queued; with ``"trust": true`` the sweep starts."""
    code, data, resp = await fetch_json(
        jp_fetch, "runs", "b4d000000001", "sweep", **post_json({"grid": {"p": [1, 2]}})
    )
    assert code == 409 and "recorded by tester@elsewhere" in data["message"], data
    assert '"trust": true' in data["message"]
    code, listed, _ = await fetch_json(jp_fetch, "jobs")
    assert not [j for j in listed["jobs"] if j["source_run"] == "b4d000000001"]
    body = {"grid": {"p": [1, 2]}, "trust": True}
    code, data, resp = await fetch_json(
        jp_fetch, "runs", "b4d000000001", "sweep", **post_json(body)
    )
    assert code == 202 and len(data["jobs"]) == 2, data
    check_openapi(resp, "POST", "/runs/b4d000000001/sweep", body=body)
    sweep_id = data["sweep"]
    deadline = time.monotonic() + 120
    while data["state"] in ("queued", "running"):
        assert time.monotonic() < deadline, data
        await asyncio.sleep(0.2)
        code, data, _ = await fetch_json(jp_fetch, "sweeps", sweep_id)


async def test_unknown_run_and_sweep_are_404(jp_fetch: Any) -> None:
    code, data, _ = await fetch_json(
        jp_fetch, "runs", "ffffffffffff", "sweep", **post_json({"grid": {"p": [1]}})
    )
    assert code == 404, data
    code, data, _ = await fetch_json(jp_fetch, "sweeps", "0123456789ab")
    assert code == 404 and "no sweep" in data["message"], data
    code, data, _ = await fetch_json(jp_fetch, "sweeps", "../etc")
    assert code == 404, data


async def test_cancel_a_sweep_cancels_its_jobs(jp_fetch: Any, recorded: dict[str, Any]) -> None:
    body = {"grid": {"naps": [600], "k": [1, 2, 3]}, "parallel": 1}
    code, data, _ = await fetch_json(jp_fetch, "runs", recorded["nap"], "sweep", **post_json(body))
    assert code == 202, data
    sweep_id = data["sweep"]
    deadline = time.monotonic() + 120
    while True:  # the first job's slow cell is running
        code, sweep, _ = await fetch_json(jp_fetch, "sweeps", sweep_id)
        first = sweep["jobs"][0]
        if first["state"] == "running" and first["progress"]["done"] >= 2:
            break
        assert time.monotonic() < deadline, sweep
        await asyncio.sleep(0.2)
    assert [j["state"] for j in sweep["jobs"][1:]] == ["queued", "queued"]
    code, view, resp = await fetch_json(jp_fetch, "sweeps", sweep_id, method="DELETE")
    assert code in (200, 202), view
    check_openapi(resp, "DELETE", f"/sweeps/{sweep_id}")
    deadline = time.monotonic() + 120
    while view["state"] in ("queued", "running"):
        assert time.monotonic() < deadline, view
        await asyncio.sleep(0.2)
        code, view, _ = await fetch_json(jp_fetch, "sweeps", sweep_id)
    assert view["state"] == "cancelled", view
    assert [j["state"] for j in view["jobs"]] == ["cancelled"] * 3
    assert view["progress"] == {"done": 3, "total": 3, "running": 0, "failed": 0}


def test_cli_sweep(recorded: dict[str, Any], tmp_path: Path) -> None:
    proc = subprocess.run(  # noqa: S603
        [
            sys.executable,
            "-m",
            "nbtrace.cli",
            "sweep",
            recorded["nap"],
            "--db",
            recorded["db"],
            "--grid",
            "k=2,3",
            "--grid",
            "naps=0",
            "--parallel",
            "2",
            "--json",
        ],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=str(tmp_path),
    )
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert out["parallel"] == 2 and len(out["runs"]) == 2
    assert sorted(r["overrides"]["k"] for r in out["results"]) == [2, 3]
    store = open_store(recorded["db"])
    try:
        runs, total = store.list_runs(filter=f"tags.sweep = '{out['sweep']}'", limit=None)
        assert total == 2
        assert sorted((r["params"]["k"], r["metrics"]["k2"]) for r in runs) == [(2, 4), (3, 9)]
        assert all(store.get_run(r["id"])["parent"] == recorded["nap"] for r in runs)
    finally:
        store.close()
    bad = subprocess.run(  # noqa: S603
        [
            sys.executable,
            "-m",
            "nbtrace.cli",
            "sweep",
            recorded["nap"],
            "--db",
            recorded["db"],
            "--grid",
            "k",
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert bad.returncode == 1 and bad.stderr.startswith("nbtrace: error: --grid takes")


async def test_a_cli_sweep_is_a_sweep_of_the_server(
    jp_fetch: Any, recorded: dict[str, Any], tmp_path: Path,
) -> None:
    """``nbtrace sweep`` records the sweep and its jobs as the server does: ``GET sweeps/{id}``
    and ``GET jobs/{id}`` of a server on the same store show it (owned by the OS user, which
    is who a local token user is)."""
    import getpass

    proc = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "nbtrace.cli", "sweep", recorded["nap"], "--db", recorded["db"],
         "--grid", "k=4,5", "--parallel", "1", "--json"],
        capture_output=True, text=True, timeout=300, cwd=str(tmp_path),
    )
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    code, sweep, resp = await fetch_json(jp_fetch, "sweeps", out["sweep"])
    assert code == 200, sweep
    check_openapi(resp, "GET", f"/sweeps/{out['sweep']}")
    assert sweep["state"] == "done" and sweep["source_run"] == recorded["nap"]
    assert sweep["owner"] == getpass.getuser() and sweep["parallel"] == 1
    assert sweep["grid"] == {"k": [4, 5]} and sweep["sets"] == [{"k": 4}, {"k": 5}]
    assert sweep["progress"] == {"done": 2, "total": 2, "running": 0, "failed": 0}
    assert sorted(sweep["runs"]) == sorted(out["runs"])
    for job in sweep["jobs"]:
        code, alone, _ = await fetch_json(jp_fetch, "jobs", job["id"])
        assert code == 200 and alone["sweep"] == out["sweep"] and alone["state"] == "done"
        assert alone["verdict"]["status"] == "diverged"  # k changed, so did k2
        assert alone["progress"]["done"] == alone["progress"]["total"] == len(CELLS)
        code, run, _ = await fetch_json(jp_fetch, "runs", alone["run"])
        assert run["extra"]["job"] == job["id"] and run["tags"]["sweep"] == out["sweep"]


async def test_replay_kernel_is_one_of_the_servers_kernels(
    jp_fetch: Any, recorded: dict[str, Any], jp_serverapp: Any
) -> None:
    """A local server's replay kernel is started by its MappingKernelManager: it is listed in
    /api/kernels (so culling and limits see it) and interrupted through it on cancel."""
    code, data, _ = await fetch_json(
        jp_fetch, "runs", recorded["nap"], "rerun", **post_json({"overrides": {"naps": 600}})
    )
    assert code == 202, data
    deadline = time.monotonic() + 120
    while True:
        resp = await jp_fetch("api", "kernels")
        kernels = json.loads(resp.body)
        code, job, _ = await fetch_json(jp_fetch, "jobs", data["job"])
        if kernels and job["progress"]["done"] >= 2:
            break
        assert time.monotonic() < deadline, (kernels, job)
        await asyncio.sleep(0.2)
    assert [k["name"] for k in kernels] == ["python3"]
    assert kernels[0]["execution_state"] in ("busy", "idle", "starting")
    assert list(jp_serverapp.kernel_manager.list_kernel_ids()) == [kernels[0]["id"]]
    await fetch_json(jp_fetch, "jobs", data["job"], method="DELETE")
    deadline = time.monotonic() + 120
    while job["state"] in ("queued", "running"):
        assert time.monotonic() < deadline, job
        await asyncio.sleep(0.2)
        code, job, _ = await fetch_json(jp_fetch, "jobs", data["job"])
    assert job["state"] == "cancelled"
    deadline = time.monotonic() + 60
    while jp_serverapp.kernel_manager.list_kernel_ids():
        assert time.monotonic() < deadline
        await asyncio.sleep(0.2)

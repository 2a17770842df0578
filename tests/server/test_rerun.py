"""Re-execution through the REST API (and the CLI), with real kernels.

One notebook, run once for the whole module, records every kind of run a replay must handle: a
deterministic one (with a NaN metric), one drawing unseeded random numbers, ten runs from one
loop, a slow one (to cancel) and one that reads a data file (to make fail). Each test re-executes
one of them and checks the verdict, the new run and the job's life cycle.
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

from nbtrace.store import open_store

from .conftest import (
    check_openapi,
    fetch_json,
    post_json,
    run_notebook,
    synthetic_run,
    wait_job,
)

CELLS = [
    "%load_ext nbtrace",
    "import random\nimport nbtrace",
    "%track_run det\n%log_param alpha=0.5 l1_ratio=0.1\n"
    "%log_metric score=alpha * 10 + l1_ratio\n%log_metric nanm=float('nan')\n%end_run",
    "%%track_run rand\nimport numpy as np\nx = random.random()\ny = float(np.random.rand())\n"
    "nbtrace.log_metrics({'x': x, 'y': y})",
    "for i in range(10):\n    with nbtrace.start_run(f'r{i}'):\n"
    "        nbtrace.log_param('i', i)\n        nbtrace.log_metric('sq', i * i + random.random())",
    "%%track_run slow\nimport os, time\n"
    "if os.environ.get('NBT_STARTED'):\n    open(os.environ['NBT_STARTED'], 'w').close()\n"
    "for _ in range(int(float(os.environ.get('NBT_SLEEP', '0')) * 10)):\n    time.sleep(0.1)\n"
    "nbtrace.log_metric('slept', 1.0)",
    "%%track_run reads\nwith open('data.txt') as f:\n    v = float(f.read())\n"
    "nbtrace.log_metric('v', v)",
]
SLOW_CELL = 6  # 1-based position of the slow run's cell


@pytest.fixture(scope="module")
def module_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("rerun") / "root"


@pytest.fixture(scope="module")
def recorded(module_root: Path) -> dict[str, Any]:
    """The module's store: every run of the notebook above, recorded by a real kernel."""
    nbdir = module_root / "nbs"
    nbdir.mkdir(parents=True)
    (nbdir / "data.txt").write_text("42")
    db = str(module_root.parent / "runs.db")
    run_notebook(CELLS, db, nbdir, name="experiment.ipynb")
    store = open_store(db)
    runs, _ = store.list_runs(limit=None)
    store.close()
    return {"db": db, "ids": {r["name"]: r["id"] for r in runs}, "nbdir": nbdir}


@pytest.fixture
def jp_root_dir(module_root: Path) -> Path:
    """The server's root is the module's folder (the notebook lives below it)."""
    return module_root


@pytest.fixture
def server_db(recorded: dict[str, Any]) -> str:
    """Every test's server reads the module's store (re-executions add runs to it)."""
    return recorded["db"]


async def start_rerun(jp_fetch: Any, run_id: str, body: dict[str, Any] | None = None) -> str:
    body = {} if body is None else body
    code, data, resp = await fetch_json(jp_fetch, "runs", run_id, "rerun", **post_json(body))
    assert code == 202, data
    check_openapi(resp, "POST", f"/runs/{run_id}/rerun", body=body)
    assert resp.headers["Location"].endswith(f"/nbtrace/api/jobs/{data['job']}")
    assert data["state"] in ("queued", "running") and data["source_run"] == run_id
    return data["job"]


async def finished_job(jp_fetch: Any, job_id: str) -> dict[str, Any]:
    job = await wait_job(jp_fetch, job_id)
    code, again, resp = await fetch_json(jp_fetch, "jobs", job_id)
    check_openapi(resp, "GET", f"/jobs/{job_id}")
    return job


# ----------------------------------------------------------------------------- verdicts
async def test_deterministic_run_is_reproduced(jp_fetch: Any, recorded: dict[str, Any]) -> None:
    det = recorded["ids"]["det"]
    job_id = await start_rerun(jp_fetch, det)
    job = await finished_job(jp_fetch, job_id)
    assert job["state"] == "done", job
    assert job["progress"] == {"done": 3, "total": 3}
    v = job["verdict"]
    assert v["status"] == "reproduced", json.dumps(v)
    assert v["code_matches"] is True and v["error"] is None
    assert v["metrics"]["score"] == {"original": 5.1, "new": 5.1, "delta": 0.0,
                                     "status": "reproduced", "series": "reproduced"}
    assert v["metrics"]["nanm"]["original"] == "NaN" and v["metrics"]["nanm"]["new"] == "NaN"
    assert v["environment_diff"]["differs"] is False

    code, new, resp = await fetch_json(jp_fetch, "runs", job["run"])
    check_openapi(resp, "GET", f"/runs/{job['run']}")
    assert new["parent"] == det and new["name"] == "det"
    assert job["owner"] and new["user"] == job["owner"]  # the Jupyter identity, not the OS user
    assert new["extra"]["job"] == job_id
    assert new["params"] == {"alpha": 0.5, "l1_ratio": 0.1}
    assert new["verdict"]["status"] == "reproduced"
    assert new["notebook"]["path"] == str(recorded["nbdir"] / "experiment.ipynb")
    assert [a["name"] for a in new["artifacts"]] == ["executed.ipynb"]
    resp = await jp_fetch("nbtrace", "api", "runs", job["run"], "artifacts", "executed.ipynb")
    executed = json.loads(resp.body)
    assert executed["cells"][2]["outputs"] == [] and executed["nbformat"] == 4
    assert resp.headers["Content-Disposition"].startswith("attachment")
    code, listed, resp = await fetch_json(jp_fetch, "jobs")
    assert job_id in [j["id"] for j in listed["jobs"]]
    check_openapi(resp, "GET", "/jobs")
    code, parent, _ = await fetch_json(jp_fetch, "runs", det)
    assert job["run"] in [c["id"] for c in parent["children"]]


@pytest.mark.parametrize("nbtrace_config", [{"tolerance": 0.5}])
async def test_override_is_applied_and_diverges(jp_fetch: Any, recorded: dict[str, Any]) -> None:
    det = recorded["ids"]["det"]
    job = await finished_job(jp_fetch, await start_rerun(
        jp_fetch, det, {"overrides": {"alpha": 1.5}, "kernel_name": "python3"}))
    v = job["verdict"]
    assert job["state"] == "done" and v["status"] == "diverged", v
    assert v["overrides"] == {"alpha": 1.5}
    assert v["tolerance"] == 0.5  # c.NBTrace.tolerance (the change is 66 %: still diverged)
    score = v["metrics"]["score"]
    assert score["original"] == 5.1 and score["new"] == pytest.approx(15.1)
    assert score["delta"] == pytest.approx(10.0) and score["status"] == "diverged"
    assert v["metrics"]["nanm"]["status"] == "reproduced"
    code, new, _ = await fetch_json(jp_fetch, "runs", job["run"])
    assert new["params"] == {"alpha": 1.5, "l1_ratio": 0.1}
    # re-executing the edited re-execution keeps its edit: it reproduces, not reverts
    again = await finished_job(jp_fetch, await start_rerun(jp_fetch, job["run"]))
    assert again["verdict"]["status"] == "reproduced", again["verdict"]
    assert again["verdict"]["overrides"] == {"alpha": 1.5}
    code, third, _ = await fetch_json(jp_fetch, "runs", again["run"])
    assert third["params"] == {"alpha": 1.5, "l1_ratio": 0.1} and third["parent"] == new["id"]


async def test_unseeded_random_run_is_reproduced(jp_fetch: Any,
                                                 recorded: dict[str, Any]) -> None:
    job = await finished_job(jp_fetch, await start_rerun(jp_fetch, recorded["ids"]["rand"]))
    v = job["verdict"]
    assert v["status"] == "reproduced", json.dumps(v)
    assert v["metrics"]["x"]["delta"] == 0.0 and v["metrics"]["y"]["delta"] == 0.0
    assert 0 < v["metrics"]["y"]["new"] < 1


async def test_one_run_of_a_loop_makes_exactly_one_run(jp_fetch: Any,
                                                       recorded: dict[str, Any]) -> None:
    r3 = recorded["ids"]["r3"]
    store = open_store(recorded["db"])
    before = store.list_runs(limit=None)[1]
    original = store.get_run(r3)
    job = await finished_job(jp_fetch, await start_rerun(jp_fetch, r3))
    assert job["verdict"]["status"] == "reproduced", job["verdict"]
    assert store.list_runs(limit=None)[1] == before + 1
    new = store.get_run(job["run"])
    assert [c["id"] for c in store.children(r3)] == [new["id"]]
    assert new["name"] == "r3" and new["params"] == {"i": 3}
    assert new["metrics"]["sq"] == original["metrics"]["sq"]
    assert new["position"]["cell_index"] == original["position"]["cell_index"] == 3
    assert new["position"]["start_seq"] == original["position"]["start_seq"]
    store.close()


async def test_code_that_now_fails_gives_failed_with_the_cell(
    jp_fetch: Any, recorded: dict[str, Any],
) -> None:
    data = recorded["nbdir"] / "data.txt"
    data.unlink()
    try:
        job = await finished_job(jp_fetch, await start_rerun(jp_fetch, recorded["ids"]["reads"]))
    finally:
        data.write_text("42")
    v = job["verdict"]
    assert job["state"] == "done" and v["status"] == "failed", job
    assert v["failed_cell"]["seq"] == len(CELLS)
    assert v["error"].startswith(f"cell seq {len(CELLS)}: FileNotFoundError:")
    assert "data.txt" in v["error"] and "\n" not in v["error"]
    code, new, _ = await fetch_json(jp_fetch, "runs", job["run"])
    assert new["status"] == "failed" and new["verdict"]["status"] == "failed"


async def start_slow_cell(jp_fetch: Any, recorded: dict[str, Any], tmp_path: Path,
                          monkeypatch: pytest.MonkeyPatch) -> str:
    """Re-execute the slow run and return its job id once the replay is inside the slow cell
    (the cell touches a file: the event waited on)."""
    started = tmp_path / "slow-cell-started"
    monkeypatch.setenv("NBT_SLEEP", "120")  # the replay kernel inherits it: a 2-minute cell
    monkeypatch.setenv("NBT_STARTED", str(started))
    job_id = await start_rerun(jp_fetch, recorded["ids"]["slow"])
    deadline = time.monotonic() + 90
    while not started.exists():
        code, job, _ = await fetch_json(jp_fetch, "jobs", job_id)
        assert job["state"] in ("queued", "running"), job
        assert time.monotonic() < deadline, job
        await _sleep(0.2)
    return job_id


async def test_cancel_a_running_job(jp_fetch: Any, recorded: dict[str, Any], tmp_path: Path,
                                    monkeypatch: pytest.MonkeyPatch) -> None:
    job_id = await start_slow_cell(jp_fetch, recorded, tmp_path, monkeypatch)
    code, job, resp = await fetch_json(jp_fetch, "jobs", job_id, method="DELETE")
    assert code == 202, job
    check_openapi(resp, "DELETE", f"/jobs/{job_id}")
    job = await wait_job(jp_fetch, job_id, timeout=60)
    assert job["state"] == "cancelled", job
    code, again, resp = await fetch_json(jp_fetch, "jobs", job_id, method="DELETE")
    assert code == 200 and again["state"] == "cancelled"
    store = open_store(recorded["db"])
    kids = store.children(recorded["ids"]["slow"])
    assert len(kids) == 1 and kids[0]["status"] == "failed"
    store.close()


@pytest.mark.parametrize("nbtrace_config", [{"cell_timeout": 1}])
async def test_cell_timeout_fails_the_replay(jp_fetch: Any, recorded: dict[str, Any],
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NBT_SLEEP", "60")
    job = await finished_job(jp_fetch, await start_rerun(jp_fetch, recorded["ids"]["slow"]))
    v = job["verdict"]
    assert job["state"] == "done" and v["status"] == "failed", job
    assert v["failed_cell"]["seq"] == SLOW_CELL and "TimeoutError" in v["error"]


def _open_files(path: str) -> list[str]:
    """The files under ``path`` (the store, its -wal and -shm) this process holds open."""
    held = []
    for fd in os.listdir("/proc/self/fd"):
        try:
            target = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:  # closed meanwhile
            continue
        if target.startswith(path):
            held.append(target)
    return held


@pytest.mark.skipif(not os.path.isdir("/proc/self/fd"), reason="needs /proc")
async def test_server_shutdown_cancels_the_running_job_and_closes_the_store(
    jp_serverapp: Any, jp_fetch: Any, recorded: dict[str, Any], tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The server's own shutdown step (``cleanup_extensions``) runs the extension's unload: the
    running replay is cancelled (its kernel shut down, its job saved ``cancelled``) and the
    store closed; until then the store was open."""
    job_id = await start_slow_cell(jp_fetch, recorded, tmp_path, monkeypatch)
    state = jp_serverapp.web_app.settings["nbtrace"]
    kernels_before = set(jp_serverapp.kernel_manager.list_kernel_ids())
    assert kernels_before and _open_files(recorded["db"])
    await jp_serverapp.cleanup_extensions()
    assert state.stopped and state.jobs.live(job_id) is None
    assert all(w.done() for w in state.jobs._workers)
    assert not set(jp_serverapp.kernel_manager.list_kernel_ids()) & kernels_before
    assert _open_files(recorded["db"]) == []
    store = open_store(recorded["db"])
    job = store.get_job(job_id)
    assert job["state"] == "cancelled" and job["error"] == "cancelled while running", job
    replays = [store.get_run(k["id"]) for k in store.children(recorded["ids"]["slow"])]
    mine = [r for r in replays if r["extra"].get("job") == job_id]
    assert len(mine) == 1 and mine[0]["status"] == "failed", mine
    store.close()


async def _sleep(s: float) -> None:
    import asyncio

    await asyncio.sleep(s)


# ----------------------------------------------------------------------------- drift
async def test_drift(jp_fetch: Any, recorded: dict[str, Any]) -> None:
    det = recorded["ids"]["det"]
    code, d, resp = await fetch_json(jp_fetch, "runs", det, "drift")
    assert code == 200, d
    check_openapi(resp, "GET", f"/runs/{det}/drift")
    assert d["kernel_name"] == "python3" and d["python"] is None
    assert set(d["packages"]) == {"changed", "added", "removed"}
    assert d["nbtrace_installed"] is True
    code, d, _ = await fetch_json(jp_fetch, "runs", det, "drift",
                                  params={"kernel_name": "no-such-kernel"})
    assert code == 400 and "no kernel named 'no-such-kernel'" in d["message"]


# ----------------------------------------------------------------------------- containment
@pytest.fixture
def elsewhere(module_root: Path) -> dict[str, Path]:
    """Folders a re-execution must not run in, each holding a notebook file."""
    outside = module_root.parent / "outside"
    sibling = module_root.parent / (module_root.name + "-other")  # shares the root's prefix
    link = module_root / "escape"
    for d in (outside, sibling):
        d.mkdir(exist_ok=True)
        (d / "nb.ipynb").write_text("{}")
    if not link.is_symlink():
        link.symlink_to(outside, target_is_directory=True)
    return {"outside": outside, "sibling": sibling, "link": link}


async def test_rerun_folder_must_be_inside_the_root(
    jp_fetch: Any, recorded: dict[str, Any], module_root: Path, elsewhere: dict[str, Path],
) -> None:
    store = open_store(recorded["db"])
    cases = {
        "absolute elsewhere": {"notebook_path": str(elsewhere["outside"] / "nb.ipynb")},
        "sibling sharing the prefix": {"notebook_path": str(elsewhere["sibling"] / "nb.ipynb")},
        "dot-dot": {"notebook_path": str(module_root / "nbs" / ".." / ".." / "outside"
                                         / "nb.ipynb")},
        "symlink escape": {"notebook_path": str(elsewhere["link"] / "nb.ipynb")},
        "relative dot-dot": {"notebook_path": "../outside/nb.ipynb"},
        "working directory elsewhere": {"cwd": str(elsewhere["outside"])},
    }
    jobs_before = len(store.list_jobs())
    for i, (label, where) in enumerate(cases.items()):
        rid = synthetic_run(store, f"c0ffee{i:06d}", name=label, params={"alpha": 1}, **where)
        code, data, resp = await fetch_json(jp_fetch, "runs", rid, "rerun", **post_json({}))
        assert code == 403, (label, data)
        assert "outside the server's root" in data["message"]
        check_openapi(resp, "POST", f"/runs/{rid}/rerun")
    assert len(store.list_jobs()) == jobs_before  # nothing queued, no kernel started
    store.close()


async def test_unknown_kernel_and_parameter_are_refused(jp_fetch: Any,
                                                        recorded: dict[str, Any]) -> None:
    det = recorded["ids"]["det"]
    code, data, _ = await fetch_json(jp_fetch, "runs", det, "rerun",
                                     **post_json({"kernel_name": "no-such-kernel"}))
    assert code == 400 and "no kernel named 'no-such-kernel'" in data["message"]
    code, data, _ = await fetch_json(jp_fetch, "runs", det, "rerun",
                                     **post_json({"overrides": {"beta": 2}}))
    assert code == 400
    assert data["message"] == "unknown parameter 'beta' (the run has: alpha, l1_ratio)"


# ----------------------------------------------------------------------------- CLI
def test_cli_rerun_json(recorded: dict[str, Any]) -> None:
    det = recorded["ids"]["det"]
    env = dict(os.environ)
    env.pop("NBTRACE_DB", None)
    proc = subprocess.run(
        [str(Path(sys.executable).parent / "nbtrace"), "rerun", det[:8], "--set", "alpha=0.3",
         "--json", "--db", recorded["db"]],
        capture_output=True, text=True, timeout=120, env=env, check=False,
    )
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert set(out) == {"run", "verdict"}
    assert out["verdict"]["status"] == "diverged"
    assert out["verdict"]["metrics"]["score"]["delta"] == pytest.approx(-2.0)
    store = open_store(recorded["db"])
    assert store.get_run(out["run"])["params"]["alpha"] == 0.3
    store.close()


# ----------------------------------------------------------------------------- team store
@pytest.mark.postgres
def test_rerun_on_the_team_store(pg_store_url: str, tmp_path: Path) -> None:
    """The replay kernel writes to the same PostgreSQL store (the URL, password included,
    reaches the kernel's environment and nothing else)."""
    from urllib.parse import urlsplit

    from nbtrace.rerun import rerun_run

    run_notebook(CELLS[:3], pg_store_url, tmp_path)
    store = open_store(pg_store_url)
    det = store.list_runs(filter="name = 'det'")[0][0]["id"]
    result = rerun_run(store, det, overrides={"l1_ratio": 0.2})
    assert result["verdict"]["status"] == "diverged"
    assert result["verdict"]["metrics"]["score"]["delta"] == pytest.approx(0.1)
    new = store.get_run(result["run"])
    assert new["parent"] == det and new["params"]["l1_ratio"] == 0.2
    password = urlsplit(pg_store_url).password
    assert password and password not in json.dumps(result, default=str)
    assert password not in json.dumps(new, default=str)
    store.close()

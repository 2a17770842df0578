"""The verdict's REST side (issue 10): drift names changed files and modules and which params
can be overridden; a rerun asking for an override the code cannot use is refused at once (400,
naming the cell); ``repeat`` and ``recorded_modules`` are checked; the job's verdict carries the
new keys (validated against openapi.yaml)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from nbtrace.store import open_store

from .conftest import check_openapi, fetch_json, post_json, run_notebook, wait_job

CELLS = [
    "%load_ext nbtrace",
    "import nbtrace, helper",
    "for a in [1.0, 2.0]:\n    with nbtrace.start_run('late'):\n"
    "        nbtrace.log_metric('m', helper.f(a))\n        nbtrace.log_params({'a': a})",
    "%%track_run good\n%log_param b=2\nprint('b is', b)\nnbtrace.log_metric('m', helper.f(b))",
]


@pytest.fixture
def recorded(tmp_path: Path) -> dict[str, Any]:
    nbdir = tmp_path / "root" / "nbs"
    nbdir.mkdir(parents=True)
    (nbdir / "helper.py").write_text("def f(x):\n    return x + 1\n")
    db = str(tmp_path / "runs.db")
    run_notebook(CELLS, db, nbdir, name="v.ipynb")
    store = open_store(db)
    runs, _ = store.list_runs(limit=None)
    store.close()
    (nbdir / "helper.py").write_text("def f(x):\n    return x + 2\n")
    return {"db": db, "ids": {r["name"]: r["id"] for r in runs}, "nbdir": nbdir}


@pytest.fixture
def jp_root_dir(recorded: dict[str, Any]) -> Path:
    return recorded["nbdir"].parent


@pytest.fixture
def server_db(recorded: dict[str, Any]) -> str:
    return recorded["db"]


async def test_drift_rerun_refusal_and_verdict_keys(jp_fetch: Any,
                                                    recorded: dict[str, Any]) -> None:
    good = recorded["ids"]["good"]
    code, drift, resp = await fetch_json(jp_fetch, "runs", good, "drift")
    assert code == 200
    check_openapi(resp, "GET", f"/runs/{good}/drift")
    assert [m["path"] for m in drift["modules"]] == [str(recorded["nbdir"] / "helper.py")]
    assert drift["parameters"]["b"]["overridable"] is True

    late = next(i for n, i in recorded["ids"].items() if n == "late")
    code, data, _ = await fetch_json(jp_fetch, "runs", late, "rerun",
                                     **post_json({"overrides": {"a": 5.0}}))
    assert code == 400 and "'a' cannot be overridden: cell 3" in data["message"]
    for bad in ({"repeat": 0}, {"repeat": "2"}, {"recorded_modules": "yes"}):
        code, data, _ = await fetch_json(jp_fetch, "runs", good, "rerun", **post_json(bad))
        assert code == 400, bad

    body = {"overrides": {"b": 3}, "recorded_modules": True, "repeat": 2}
    code, data, resp = await fetch_json(jp_fetch, "runs", good, "rerun", **post_json(body))
    assert code == 202, data
    check_openapi(resp, "POST", f"/runs/{good}/rerun", body=body)
    job = await wait_job(jp_fetch, data["job"])
    code, again, resp = await fetch_json(jp_fetch, "jobs", data["job"])
    check_openapi(resp, "GET", f"/jobs/{data['job']}")
    v = job["verdict"]
    assert v["status"] == "diverged" and v["repeats"] == 2 and set(v["noise"]) == {"m"}
    assert v["metrics"]["m"]["new"] == 4.0  # the recorded helper (x + 1), b = 3
    assert v["code_matches"] is True
    assert v["first_divergence"]["new"] == "b is 3"
    assert [c["kind"] for c in v["causes"]] == ["override"]
    code, run, resp = await fetch_json(jp_fetch, "runs", job["run"])
    check_openapi(resp, "GET", f"/runs/{job['run']}")
    assert {"modules", "outputs", "determinism"} <= set(run)

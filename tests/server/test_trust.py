"""Trust on re-execution (issue 12, item 3), through the real server and the CLI, real kernels.

Given runs recorded by a real kernel, when one is re-executed that another user or host
recorded, or that came from ``nbtrace import``, then ``POST runs/{id}/rerun`` answers 409
naming who recorded it unless the body says ``"trust": true`` (the CLI needs ``--trust``); a
run whose stored source no longer hashes to the recorded cell is never replayed, and a verdict
whose replayed code differs from the recording is never ``reproduced``.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from nbtrace.rerun.verdict import make_verdict
from nbtrace.store import open_store

from .conftest import check_openapi, copy_db, fetch_json, post_json, run_notebook, wait_job

CELLS = [
    "%load_ext nbtrace",
    "%track_run det\n%log_param alpha=0.5\n%log_metric score=alpha * 10\n%end_run",
]


@pytest.fixture(scope="module")
def recorded(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    root = tmp_path_factory.mktemp("trust")
    nbdir = root / "nbs"
    nbdir.mkdir()
    db = str(root / "runs.db")
    run_notebook(CELLS, db, nbdir, name="t.ipynb")
    store = open_store(db)
    runs, _ = store.list_runs(limit=None)
    store.close()
    return {"db": db, "root": root, "det": runs[0]["id"]}


@pytest.fixture
def jp_root_dir(recorded: dict[str, Any]) -> Path:
    return recorded["root"]


@pytest.fixture
def server_db(recorded: dict[str, Any], tmp_path: Path) -> str:
    return copy_db(recorded["db"], str(tmp_path / "copy.db"))


async def _post(jp_fetch: Any, rid: str, body: dict[str, Any]) -> tuple[int, Any]:
    code, data, resp = await fetch_json(jp_fetch, "runs", rid, "rerun", **post_json(body))
    check_openapi(resp, "POST", f"/runs/{rid}/rerun", body=body)
    return code, data


async def test_own_run_needs_no_trust(jp_fetch: Any, recorded: dict[str, Any]) -> None:
    code, data = await _post(jp_fetch, recorded["det"], {})
    assert code == 202, data
    job = await wait_job(jp_fetch, data["job"])
    assert job["verdict"]["status"] == "reproduced", job


async def test_another_users_run_needs_trust(
    jp_fetch: Any, recorded: dict[str, Any], server_db: str
) -> None:
    store = open_store(server_db)
    store.apply([("run_update", recorded["det"], {"user_name": "mallory"})])
    jobs_before = len(store.list_jobs())
    code, data = await _post(jp_fetch, recorded["det"], {})
    assert code == 409, data
    assert f"mallory@{socket.gethostname()}" in data["message"]
    assert '"trust": true' in data["message"] and "\n" not in data["message"]
    assert len(store.list_jobs()) == jobs_before  # nothing queued, no kernel started
    code, data = await _post(jp_fetch, recorded["det"], {"trust": "yes"})
    assert code == 400 and "trust must be true or false" in data["message"]
    code, data = await _post(jp_fetch, recorded["det"], {"trust": True})
    assert code == 202, data
    job = await wait_job(jp_fetch, data["job"])
    assert job["state"] == "done", job
    store.close()


async def test_another_hosts_run_needs_trust(
    jp_fetch: Any, recorded: dict[str, Any], server_db: str
) -> None:
    store = open_store(server_db)
    store.apply([("run_update", recorded["det"], {"host": "laptop-of-bob"})])
    store.close()
    code, data = await _post(jp_fetch, recorded["det"], {"overrides": {"alpha": 2}})
    assert code == 409 and "laptop-of-bob" in data["message"], data


async def test_an_imported_run_needs_trust(
    jp_fetch: Any, recorded: dict[str, Any], server_db: str
) -> None:
    """Even when the file claims this very user and host: a file can claim anything."""
    store = open_store(server_db)
    doc = json.loads(json.dumps(next(iter(store.export_runs()))))
    store.delete_run(recorded["det"])
    assert store.import_run(doc) is True
    store.close()
    code, data = await _post(jp_fetch, recorded["det"], {})
    assert code == 409 and "was imported on" in data["message"], data
    code, data = await _post(jp_fetch, recorded["det"], {"trust": True})
    assert code == 202, data
    await wait_job(jp_fetch, data["job"])


async def test_a_source_changed_after_recording_is_never_replayed(
    jp_fetch: Any, recorded: dict[str, Any], server_db: str
) -> None:
    import sqlite3

    with sqlite3.connect(server_db) as db:
        db.execute(
            "UPDATE sources SET source = ? WHERE source LIKE '%track_run det%'",
            ("import os\n%track_run det\n%log_param alpha=0.5\n%log_metric score=5.0\n%end_run",),
        )
    code, data = await _post(jp_fetch, recorded["det"], {"trust": True})
    assert code == 409 and "does not match its recorded sha256" in data["message"], data


def test_a_verdict_with_other_code_is_never_reproduced() -> None:
    original = {"id": "a", "metrics": {"score": 5.0}, "environment": {}}
    new = {
        "id": "b",
        "metrics": {"score": 5.0},
        "environment": {},
        "position": {"last_seq": 2},
        "cells": [{"seq": 1, "sha256": "1" * 64}, {"seq": 2, "sha256": "3" * 64}],
    }
    v = make_verdict(original, new, ["1" * 64, "2" * 64])
    assert v["code_matches"] is False and v["status"] == "diverged", v
    same = make_verdict(original, new, ["1" * 64, "3" * 64])
    assert same["code_matches"] is True and same["status"] == "reproduced"


def test_cli_rerun_needs_trust(recorded: dict[str, Any], tmp_path: Path) -> None:
    db = copy_db(recorded["db"], str(tmp_path / "cli.db"))
    store = open_store(db)
    store.apply([("run_update", recorded["det"], {"user_name": "mallory"})])
    store.close()
    exe = str(Path(sys.executable).parent / "nbtrace")
    env = {k: v for k, v in os.environ.items() if k != "NBTRACE_DB"}
    proc = subprocess.run(
        [exe, "rerun", recorded["det"], "--db", db, "--json"],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert proc.returncode == 1 and proc.stdout == ""
    err = proc.stderr.strip()
    assert err.startswith("nbtrace: error:") and "mallory@" in err and "--trust" in err, err
    assert "\n" not in err
    proc = subprocess.run(
        [exe, "rerun", recorded["det"], "--db", db, "--json", "--trust"],
        capture_output=True,
        text=True,
        env=env,
        timeout=180,
    )
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["verdict"]["status"] == "reproduced"

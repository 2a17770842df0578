"""The kernel side in a real ipykernel: magics, Python API, and what every run captures.

One notebook runs once per module (kernels cost seconds); each test checks one aspect of it.
"""

from __future__ import annotations

import hashlib
import importlib.metadata as md
import json
import re
import subprocess
from pathlib import Path
from typing import Any

import nbformat
import pytest

from kernels import make_notebook, run_notebook
from nbtrace.store import open_store

SECRET_TOKEN = "tok-SECRET-9f8e7d"
SECRET_PW = "s3cretpw-1234"

CELLS = [
    # numpy imported before the run (nbtrace itself no longer imports it through sqlite-utils)
    "import numpy\nx0 = 1  # before nbtrace",
    "%load_ext nbtrace",
    "%log_param alpha=0.5 l1_ratio = 1.0 label='enet'",
    "%track_run first --experiment exp1 --tag model=enet --tag owner=ana",
    "import numpy as np\nerr = float(np.sqrt(alpha))\n%log_metric mse=err --step 3",
    "%log_metric r2=0.9 mse=err*2 --step 4",
    "%end_run",
    "%%track_run second\nv = 1 / 0",
    "%%track_run third\nresult = 42\nresult",
    "import nbtrace\nfor i in range(3):\n    with nbtrace.start_run(f'loop{i}', tags={'i': i}):\n"
    "        nbtrace.log_param('i', i)\n        nbtrace.log_metric('v', i * 1.5)",
    "open('data.csv', 'w').write('a,b\\n1,2\\n')\nopen('plot.svg', 'w').write('<svg/>')\n"
    "with nbtrace.start_run('files'):\n    nbtrace.log_input('data.csv')\n"
    "    nbtrace.log_artifact('plot.svg')\n    nbtrace.set_tag('kind', 'files')",
]


def _git(cwd: Path, *args: str) -> str:
    return subprocess.run(
        ["git", "-c", "user.email=t@example.com", "-c", "user.name=T", *args],
        cwd=cwd,
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()


@pytest.fixture(scope="module")
def recorded(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    work = tmp_path_factory.mktemp("kernel")
    _git(work, "init", "-q", "-b", "main")
    (work / "tracked.txt").write_text("v1\n")
    _git(work, "add", "tracked.txt")
    _git(work, "commit", "-qm", "first")
    _git(work, "remote", "add", "origin", f"https://ana:{SECRET_PW}@example.com/team/repo.git")
    (work / "tracked.txt").write_text("v2\n")  # dirty
    db = str(work / "runs.db")
    nb = make_notebook(CELLS)
    nb.cells[7].metadata["tags"] = ["raises-exception"]
    env = {
        "NBTRACE_ENV_ALLOWLIST": "MY_SETTING,MY_API_TOKEN,MY_URL",
        "MY_SETTING": "visible-value",
        "MY_API_TOKEN": SECRET_TOKEN,
        "MY_URL": f"postgresql://ana:{SECRET_PW}@db.example/x",
    }
    executed = run_notebook(nb, db, work, env=env)
    store = open_store(db)
    runs, total = store.list_runs(limit=None, sort="started_at")
    by_name = {r["name"]: store.get_run(r["id"], series=True) for r in runs}
    store.close()
    return {
        "work": work,
        "db": db,
        "nb": executed,
        "runs": by_name,
        "total": total,
        "path": work / "nb.ipynb",
    }


def test_runs_and_statuses(recorded: dict[str, Any]) -> None:
    runs = recorded["runs"]
    assert recorded["total"] == 7
    assert {n: r["status"] for n, r in runs.items()} == {
        "first": "finished",
        "second": "failed",
        "third": "finished",
        "loop0": "finished",
        "loop1": "finished",
        "loop2": "finished",
        "files": "finished",
    }
    # the failing %%track_run cell still re-raised for the user
    err = [o for o in recorded["nb"].cells[7].outputs if o.output_type == "error"]
    assert err and err[0].ename == "ZeroDivisionError"
    # the cell magic returns the body's last expression
    out = [o for o in recorded["nb"].cells[8].outputs if o.output_type == "execute_result"]
    assert out and out[0].data["text/plain"] == "42"


def test_params_metrics_tags(recorded: dict[str, Any]) -> None:
    first = recorded["runs"]["first"]
    assert first["params"] == {"alpha": 0.5, "l1_ratio": 1.0, "label": "enet"}
    assert first["experiment"] == "exp1"
    assert first["tags"] == {"model": "enet", "owner": "ana"}
    mse = 0.5**0.5
    assert first["metrics"] == {"mse": pytest.approx(mse * 2), "r2": 0.9}
    assert [(p["step"], p["value"]) for p in first["series"]["mse"]] == [
        (3, pytest.approx(mse)),
        (4, pytest.approx(mse * 2)),
    ]
    loops = [recorded["runs"][f"loop{i}"] for i in range(3)]
    assert [r["params"]["i"] for r in loops] == [0, 1, 2]
    assert [r["metrics"]["v"] for r in loops] == [0.0, 1.5, 3.0]
    assert [r["position"]["cell_index"] for r in loops] == [0, 1, 2]
    assert len({r["position"]["start_seq"] for r in loops}) == 1


def test_cells_captured_in_order_with_hashes(recorded: dict[str, Any]) -> None:
    first = recorded["runs"]["first"]
    cells = first["cells"]
    # every cell executed up to the run's end, in order, the pre-load one included
    assert [c["source"] for c in cells] == CELLS[:7]
    assert [c["seq"] for c in cells] == list(range(1, 8))
    for c in cells:
        assert c["sha256"] == hashlib.sha256(c["source"].encode()).hexdigest()
    assert [c["execution_count"] for c in cells] == list(range(1, 8))
    assert [c["in_run"] for c in cells] == [False, False, False, True, True, True, True]
    nb_ids = [c.id for c in recorded["nb"].cells]
    assert [c["cell_id"] for c in cells[2:]] == nb_ids[2:7]
    second = recorded["runs"]["second"]
    assert second["cells"][-1]["error"] is True
    assert not any(c["error"] for c in cells)


def test_notebook_and_git(recorded: dict[str, Any]) -> None:
    first = recorded["runs"]["first"]
    path = recorded["path"]
    assert first["notebook"]["path"] == str(path)
    saved = nbformat.read(path, as_version=4)
    expect = [
        hashlib.sha256(c.source.encode()).hexdigest() for c in saved.cells if c.cell_type == "code"
    ]
    assert first["notebook"]["cells"] == expect
    git = first["git"]
    assert git["commit"] == _git(recorded["work"], "rev-parse", "HEAD")
    assert git["branch"] == "main"
    assert git["dirty"] is True
    assert "+v2" in git["diff"]
    assert git["remote"] == "https://example.com/team/repo.git"


def test_environment(recorded: dict[str, Any]) -> None:
    env = recorded["runs"]["first"]["environment"]
    expected: dict[str, str] = {}
    for d in md.distributions():
        name = re.sub(r"[-_.]+", "-", d.metadata["Name"]).lower()
        expected.setdefault(name, d.version)
    assert env["packages"] == expected
    import numpy

    assert env["imported"]["numpy"] == numpy.__version__
    for key in (
        "python",
        "executable",
        "platform",
        "hostname",
        "cpu",
        "cpu_count",
        "memory_bytes",
        "gpus",
    ):
        assert key in env
    from nbtrace.capture.environment import gpu_info

    assert env["gpus"] == gpu_info()  # the same machine, probed the same way
    assert env["env_vars"]["MY_SETTING"] == "visible-value"
    assert "MY_API_TOKEN" not in env["env_vars"]
    assert SECRET_PW not in json.dumps(env)
    res = recorded["runs"]["first"]["resources"]
    assert res["wall_s"] > 0 and res["cpu_s"] >= 0 and res["peak_rss_bytes"] > 10_000_000


def test_packages_stored_once(recorded: dict[str, Any]) -> None:
    import sqlite3

    conn = sqlite3.connect(recorded["db"])
    sets = conn.execute("SELECT count(DISTINCT set_hash) FROM package_versions").fetchone()[0]
    envs = conn.execute("SELECT count(*) FROM blobs WHERE kind = 'environment'").fetchone()[0]
    sources = conn.execute("SELECT count(*) FROM sources").fetchone()[0]
    conn.close()
    assert sets == 1 and envs == 1
    assert sources == len(CELLS)


def test_secrets_absent_from_database_bytes(recorded: dict[str, Any]) -> None:
    blob = b""
    for p in Path(recorded["db"]).parent.glob("runs.db*"):
        blob += p.read_bytes()
    assert SECRET_TOKEN.encode() not in blob
    assert SECRET_PW.encode() not in blob
    assert b"visible-value" in blob  # the allowlisted harmless one is there


def test_artifacts_and_inputs(recorded: dict[str, Any]) -> None:
    files = recorded["runs"]["files"]
    data = b"a,b\n1,2\n"
    assert files["inputs"] == [
        {
            "path": str(recorded["work"] / "data.csv"),
            "sha256": hashlib.sha256(data).hexdigest(),
            "size": len(data),
            "mtime": files["inputs"][0]["mtime"],  # the read it declared was seen too
            "declared": True,
            "partial": False,
        }
    ]  # the artifact it logged is not an input
    assert files["artifacts"] == [
        {"name": "plot.svg", "sha256": hashlib.sha256(b"<svg/>").hexdigest(), "size": 6}
    ]
    store = open_store(recorded["db"])
    content, meta = store.artifact(files["id"], "plot.svg")
    assert content == b"<svg/>"
    assert files["tags"] == {"kind": "files"}

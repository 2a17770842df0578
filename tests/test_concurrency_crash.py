"""Several real kernels writing one SQLite file at once; a kernel killed mid-run."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import pytest
from jupyter_client.manager import start_new_kernel

from kernels import in_parallel, make_notebook, run_notebook
from nbtrace.store import open_store

LOOP = (
    "import nbtrace\n"
    "for i in range({runs}):\n"
    "    with nbtrace.start_run('{prefix}{k}-' + str(i), tags={{'kernel': '{k}'}}):\n"
    "        nbtrace.log_params({{'i': i, 'k': {k}}})\n"
    "        for step in range({steps}):\n"
    "            nbtrace.log_metric('loss', 1.0 / (step + 1), step=step)\n"
    "        nbtrace.log_metric('final', i * 10 + {k})"
)


@pytest.mark.slow
def test_kernels_write_one_file_concurrently(tmp_path: Path) -> None:
    db = str(tmp_path / "shared.db")
    kernels, runs, steps = 3, 40, 50

    def work(k: int) -> None:
        d = tmp_path / f"k{k}"
        d.mkdir()
        cells = ["%load_ext nbtrace"] + [
            LOOP.format(runs=runs // 2, steps=steps, k=k, prefix="a"),
            f"%track_run magic-{k}\n%log_metric m=1",
            "%end_run",
            LOOP.format(runs=runs // 2, steps=steps, k=k, prefix="b"),
        ]
        run_notebook(make_notebook(cells), db, d)

    in_parallel(work, kernels, 300)
    store = open_store(db)
    all_runs, total = store.list_runs(limit=None)
    assert total == kernels * (runs + 1)
    assert all(r["status"] == "finished" for r in all_runs)
    for k in range(kernels):
        mine = [r for r in all_runs if r["tags"].get("kernel") == str(k)]
        assert len(mine) == runs
        assert sorted(r["metrics"]["final"] for r in mine) == sorted(
            float(i * 10 + k) for i in list(range(runs // 2)) * 2
        )
    one = store.get_run(all_runs[0]["id"], series=True)
    if "loss" in one["series"]:
        assert [p["step"] for p in one["series"]["loss"]] == list(range(steps))
    # every metric point of every run arrived exactly once
    import sqlite3

    conn = sqlite3.connect(db)
    n = conn.execute("SELECT count(*) FROM metrics WHERE key = 'loss'").fetchone()[0]
    conn.close()
    assert n == kernels * runs * steps


def test_killed_kernel_leaves_crashed_run_with_data(tmp_path: Path) -> None:
    db = str(tmp_path / "crash.db")
    env = dict(os.environ, NBTRACE_DB=db)
    km, kc = start_new_kernel(kernel_name="python3", env=env, cwd=str(tmp_path))
    try:
        for code in (
            "%load_ext nbtrace",
            "%track_run doomed",
            "%log_param a=1",
            "%log_metric m=0.5 --step 0",
            "import nbtrace\nfor s in range(1, 4):\n    nbtrace.log_metric('m', s / 10, step=s)",
        ):
            reply = kc.execute_interactive(code, timeout=60)
            assert reply["content"]["status"] == "ok", reply["content"]
        kc.execute("import time\ntime.sleep(120)")
        _wait_for_cell(db, "import time")
        pid = km.provisioner.process.pid
        os.kill(pid, signal.SIGKILL)
        km.provisioner.process.wait(timeout=10)
    finally:
        kc.stop_channels()
        km.cleanup_resources()
    store = open_store(db)
    runs, total = store.list_runs()
    assert total == 1
    run = store.get_run(runs[0]["id"], series=True)
    assert run["status"] == "crashed"
    assert run["ended_at"] is not None
    assert run["params"] == {"a": 1}
    assert [p["value"] for p in run["series"]["m"]] == [0.5, 0.1, 0.2, 0.3]
    # the cells up to the kill are there, the interrupted one included
    assert run["cells"][-1]["source"].startswith("import time")


def _wait_for_cell(db: str, start: str, timeout: float = 60.0) -> None:
    """Wait until the running cell that starts with ``start`` is recorded in the store (the
    kernel writes it at the cell's start), so the kill lands inside that cell."""
    store = open_store(db)
    try:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            runs, _ = store.list_runs()
            cells = store.get_run(runs[0]["id"])["cells"] if runs else []
            if any(c["source"].startswith(start) for c in cells):
                return
            time.sleep(0.05)
        raise AssertionError(f"the cell {start!r} was never recorded")
    finally:
        store.close()

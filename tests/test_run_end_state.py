"""How a run ends when nobody ends it (issue 12, items 16, 17, 18), with real kernels.

Given a notebook that stops at an error inside an active run, when its kernel shuts down, then
the run is ``failed``. Given a kernel process killed mid-run (and left a zombie), when the store
is read, then the run is ``crashed`` with its last sign of life as end time. Given a run started
in the last cells of a notebook while git is slow, when the kernel shuts down, then the run
still has its git state.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from kernels import run_notebook
from nbtrace.store import open_store


def _runs(db: str) -> dict[str, dict]:
    store = open_store(db)
    try:
        return {r["name"]: store.get_run(r["id"]) for r in store.list_runs(limit=None)[0]}
    finally:
        store.close()


def test_a_run_whose_last_cell_raised_is_failed(tmp_path: Path) -> None:
    db = str(tmp_path / "runs.db")
    run_notebook(
        ["%load_ext nbtrace", "%track_run stopped\n%log_metric a=1", "raise ValueError('x')"],
        db,
        tmp_path,
        allow_errors=True,
    )
    run_notebook(
        ["%load_ext nbtrace", "%track_run recovered", "1/0", "%log_metric a=2"],
        db,
        tmp_path,
        name="other.ipynb",
        allow_errors=True,
    )
    runs = _runs(db)
    assert runs["stopped"]["status"] == "failed"
    assert runs["recovered"]["status"] == "finished"  # the error was not where it stopped
    store = open_store(db)
    assert [r["name"] for r in store.list_runs("status = 'failed'")[0]] == ["stopped"]
    store.close()


SCRIPT = textwrap.dedent("""
    import sys, time
    import nbtrace
    nbtrace.configure(sys.argv[1])
    nbtrace.start_run("killed")
    time.sleep(0.3)
    nbtrace.log_metric("m", 1.0)
    nbtrace.flush()
    print("ready", flush=True)
    time.sleep(600)
""")


def test_a_killed_zombie_kernel_reads_crashed_at_its_last_sign_of_life(tmp_path: Path) -> None:
    db = str(tmp_path / "runs.db")
    proc = subprocess.Popen([sys.executable, "-c", SCRIPT, db], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
        os.kill(proc.pid, signal.SIGKILL)
        # Not waited for: the process stays a zombie, which kill(pid, 0) still finds.
        deadline_reads = 0
        with open(f"/proc/{proc.pid}/stat") as f:
            while f.read().split(") ")[1][0] != "Z":
                deadline_reads += 1
                assert deadline_reads < 10_000_000
                f.seek(0)
        store = open_store(db)
        assert store.reap() == 1
        run = store.get_run(store.list_runs()[0][0]["id"], series=True)
        store.close()
    finally:
        proc.wait()
    assert run["status"] == "crashed"
    logged = run["series"]["m"][0]["timestamp"]
    assert run["ended_at"] >= logged > run["started_at"]  # not its start: its last metric


@pytest.mark.skipif(shutil.which("git") is None, reason="git is not installed")
def test_git_state_of_a_run_in_the_last_cells_is_written(tmp_path: Path) -> None:
    work = tmp_path / "repo"
    work.mkdir()
    git = shutil.which("git")
    ident = ["-c", "user.name=t", "-c", "user.email=t@t"]
    subprocess.run([git, "init", "-q", "-b", "main"], cwd=work, check=True)
    subprocess.run([git, *ident, "commit", "-q", "--allow-empty", "-m", "c"], cwd=work, check=True)
    slow = tmp_path / "slowbin"
    slow.mkdir()
    (slow / "git").write_text(f'#!/bin/sh\nsleep 1.5\nexec "{git}" "$@"\n')
    (slow / "git").chmod(0o755)
    db = str(tmp_path / "runs.db")
    env = {"PATH": f"{slow}{os.pathsep}{os.environ['PATH']}"}
    run_notebook(["%load_ext nbtrace", "%track_run late", "x = 1"], db, work, env=env)
    run = _runs(db)["late"]
    assert run["git"] is not None and run["git"]["branch"] == "main", run["git"]


def test_a_pid_reused_by_a_later_process_does_not_keep_a_run_running(tmp_path: Path) -> None:
    """The kernel died long ago and its pid now belongs to a process started after the run."""
    import socket
    import time

    store = open_store(str(tmp_path / "runs.db"))
    other = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
    try:
        then = time.time() - 3600
        store.apply(
            [
                (
                    "run_start",
                    {
                        "id": "5eed5eed5eed",
                        "name": "old",
                        "status": "running",
                        "started_at": then,
                        "heartbeat_at": then,
                        "user_name": "u",
                        "host": socket.gethostname(),
                        "pid": other.pid,
                    },
                )
            ]
        )
        assert store.reap() == 1
        assert store.get_run("5eed5eed5eed")["status"] == "crashed"
        store.delete_run("5eed5eed5eed")  # and it can be deleted
    finally:
        other.kill()
        other.wait()
        store.close()

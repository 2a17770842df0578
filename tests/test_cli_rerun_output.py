"""``nbtrace rerun`` output (issue 12, item 15), with a real kernel and a real terminal (pty).

Given a recorded run, when it is re-executed from the CLI with stderr in a log (a pipe), then
progress is one line per cell; on a terminal, a bar redrawn in place; and never the replay
kernel's own log lines.
"""

from __future__ import annotations

import os
import pty
import select
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from kernels import run_notebook
from nbtrace.store import open_store

CELLS = ["%load_ext nbtrace", "x = 2", "%track_run out\n%log_metric y=x * 3\n%end_run"]
EXE = str(Path(sys.executable).parent / "nbtrace")


@pytest.fixture(scope="module")
def recorded(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    work = tmp_path_factory.mktemp("cliout")
    db = str(work / "runs.db")
    run_notebook(CELLS, db, work)
    store = open_store(db)
    rid = store.list_runs()[0][0]["id"]
    store.close()
    return {"db": db, "id": rid}


def _env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k not in ("NBTRACE_DB", "JPY_SESSION_NAME")}


def test_progress_in_a_log_is_one_line_per_cell(recorded: dict[str, Any]) -> None:
    proc = subprocess.run(
        [EXE, "rerun", recorded["id"], "--db", recorded["db"]],
        capture_output=True,
        text=True,
        env=_env(),
        timeout=180,
    )
    assert proc.returncode == 0, proc.stderr
    assert "reproduced" in proc.stdout
    lines = proc.stderr.splitlines()
    assert lines == [f"cell {i} of {len(CELLS)}" for i in range(1, len(CELLS) + 1)], lines
    assert "IPKernelApp" not in proc.stderr + proc.stdout


def test_progress_on_a_terminal_is_a_bar(recorded: dict[str, Any]) -> None:
    leader, follower = pty.openpty()
    proc = subprocess.Popen(
        [EXE, "rerun", recorded["id"], "--db", recorded["db"]],
        stdin=subprocess.DEVNULL,
        stdout=follower,
        stderr=follower,
        env=_env(),
    )
    os.close(follower)
    out = b""
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        ready, _, _ = select.select([leader], [], [], 1.0)
        if ready:
            try:
                chunk = os.read(leader, 65536)
            except OSError:  # the child closed the terminal
                break
            if not chunk:
                break
            out += chunk
        elif proc.poll() is not None:
            break
    os.close(leader)
    assert proc.wait(timeout=30) == 0, out
    text = out.decode("utf-8", "replace")
    assert f"\r[{'#' * 30}] cell {len(CELLS)} of {len(CELLS)}" in text, text
    assert "\r[" in text.split(f"cell {len(CELLS)} of")[0]  # redrawn in place, not new lines
    assert "IPKernelApp" not in text and "reproduced" in text

"""The notebook path of runs from papermill, nbconvert and nbclient (issue 12, item 13).

Given a folder of notebooks and a kernel started without ``JPY_SESSION_NAME`` (the real
``papermill``, ``jupyter nbconvert --execute`` and nbclient), when a run is recorded, then its
notebook path is the notebook that was executed, found by matching the executed cells against
the folder's ``.ipynb`` files; for papermill, the input notebook it names.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import nbformat

from kernels import make_notebook, run_notebook
from nbtrace.store import open_store

BIN = Path(sys.executable).parent


def _env(db: str) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("JPY_SESSION_NAME", "NBTRACE_NOTEBOOK", "NBTRACE_DB")
    }
    env["NBTRACE_DB"] = db
    return env


def _paths(db: str) -> dict[str, str | None]:
    store = open_store(db)
    try:
        return {
            r["name"]: store.get_run(r["id"])["notebook"]["path"]
            for r in store.list_runs(limit=None)[0]
        }
    finally:
        store.close()


def _write(path: Path, cells: list[str], parameters: int | None = None) -> None:
    nb = make_notebook(cells)
    if parameters is not None:
        nb.cells[parameters].metadata["tags"] = ["parameters"]
    nbformat.write(nb, path)


def test_nbconvert_execute(tmp_path: Path) -> None:
    db = str(tmp_path / "runs.db")
    _write(
        tmp_path / "train.ipynb",
        ["%load_ext nbtrace", "alpha = 0.5", "%track_run conv\n%log_param alpha\n%end_run"],
    )
    _write(tmp_path / "other.ipynb", ["%load_ext nbtrace", "print('other')"])
    subprocess.run(
        [
            str(BIN / "jupyter"),
            "nbconvert",
            "--to",
            "notebook",
            "--execute",
            "train.ipynb",
            "--output",
            "train.out.ipynb",
        ],
        cwd=tmp_path,
        env=_env(db),
        check=True,
        capture_output=True,
        timeout=180,
    )
    assert _paths(db) == {"conv": str(tmp_path / "train.ipynb")}


def test_papermill_takes_its_input_path(tmp_path: Path) -> None:
    src, work = tmp_path / "src", tmp_path / "work"
    src.mkdir()
    work.mkdir()
    db = str(tmp_path / "runs.db")
    _write(
        src / "sweep.ipynb",
        ["%load_ext nbtrace", "alpha = 0.5", "%track_run pm\n%log_param alpha\n%end_run"],
        parameters=1,
    )
    subprocess.run(
        [
            str(BIN / "papermill"),
            str(src / "sweep.ipynb"),
            str(work / "out.ipynb"),
            "-p",
            "alpha",
            "0.3",
            "--cwd",
            str(work),
            "-k",
            "python3",
        ],
        env=_env(db),
        check=True,
        capture_output=True,
        timeout=180,
    )
    assert _paths(db) == {"pm": str(src / "sweep.ipynb")}


def test_nbclient(tmp_path: Path) -> None:
    db = str(tmp_path / "runs.db")
    _write(tmp_path / "decoy.ipynb", ["%load_ext nbtrace", "x = 1"])
    run_notebook(
        ["%load_ext nbtrace", "y = 2", "%track_run nbc\n%end_run"],
        db,
        tmp_path,
        name="real.ipynb",
        env={"NBTRACE_NOTEBOOK": ""},
    )
    assert _paths(db) == {"nbc": str(tmp_path / "real.ipynb")}

"""Shared fixtures: a fresh SQLite store per test and a real-kernel notebook runner."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

import nbformat
import pytest

from nbtrace.kernelclient import CellIdNotebookClient
from pgcluster import *  # noqa: F401,F403  (PostgreSQL fixtures)

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def db_path(tmp_path: Path) -> str:
    """A path for a fresh SQLite store."""
    return str(tmp_path / "runs.db")


def make_notebook(cells: list[str]) -> Any:
    """A notebook of code cells (``nbformat`` v4 with cell ids)."""
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(src) for src in cells]
    nb.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
    return nb


def run_notebook(
    cells: list[str] | Any,
    db: str,
    workdir: Path,
    name: str = "nb.ipynb",
    allow_errors: bool = False,
    env: dict[str, str] | None = None,
    timeout: int = 120,
) -> Any:
    """Save a notebook in ``workdir`` and execute it in a real ipykernel with ``NBTRACE_DB=db``."""
    nb = make_notebook(cells) if isinstance(cells, list) else cells
    path = Path(workdir) / name
    nbformat.write(nb, path)
    kenv = dict(os.environ)
    kenv.update({"NBTRACE_DB": db, "NBTRACE_NOTEBOOK": str(path)})
    kenv.update(env or {})
    client = CellIdNotebookClient(
        nb,
        timeout=timeout,
        kernel_name="python3",
        allow_errors=allow_errors,
        resources={"metadata": {"path": str(workdir)}},
    )
    client.km = client.create_kernel_manager()
    client.km.kernel_spec  # noqa: B018 - resolve now so a missing spec fails clearly
    client.execute(env=kenv)
    return nb


@pytest.fixture(scope="session", autouse=True)
def _python3_kernel_is_this_venv() -> None:
    """Kernels must run the interpreter under test (the venv with nbtrace installed)."""
    from jupyter_client.kernelspec import KernelSpecManager

    spec = KernelSpecManager().get_kernel_spec("python3")
    exe = spec.argv[0]
    if (
        exe not in (sys.executable, "python", "python3")
        and Path(exe).resolve() != Path(sys.executable).resolve()
    ):
        pytest.exit(f"the python3 kernel runs {exe}, not {sys.executable}", returncode=3)

"""Helpers to run notebooks in real kernels (imported by test modules as ``kernels``).

Why not in ``conftest.py``: several folders have a ``conftest.py``, and a bare
``from conftest import ...`` gets whichever pytest imported last.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import nbformat

from nbtrace.rerun.kernelclient import CellIdNotebookClient

ROOT = Path(__file__).resolve().parent.parent


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


def in_parallel(work: Callable[[int], object], n: int, timeout: float) -> None:
    """Run ``work(0)`` … ``work(n - 1)`` at once, one thread each, and fail on any exception or
    on a thread still running after ``timeout`` seconds (the concurrency tests' shared scaffold)."""
    errors: list[BaseException] = []

    def run(k: int) -> None:
        try:
            work(k)
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(k,)) for k in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout)
    assert not errors, errors
    assert not any(t.is_alive() for t in threads), f"still running after {timeout} s"

"""The 330-run notebook on two nbtrace trees, alternating: did a change slow the user's loop?

Why apart from ``case_notebook.py``: that case compares nbtrace with MLflow and untracked code
in the benchmark venv; this one answers "before vs after" for one change, in the dev venv,
with both trees' ``src`` put first on the kernel's ``PYTHONPATH`` (an editable install's path
entry comes after it), one execution of each in turn so that the machine's load falls on both.

    git worktree add /tmp/before <rev>
    .venv/bin/python benchmarks/notebook_ab.py --before /tmp/before/src --rounds 6

Prints the 330-run cell's time per execution and the medians; asserts nothing.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import tempfile
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOK = ROOT / "notebooks" / "elasticnet.ipynb"


def execute(src: str) -> tuple[float, float]:
    """One execution in a fresh kernel on a fresh store: (whole, slowest cell) in seconds."""
    folder = tempfile.mkdtemp(prefix="nbtrace-ab-")
    try:
        nb = nbformat.read(NOTEBOOK, as_version=4)
        env = dict(os.environ, PYTHONPATH=src, NBTRACE_DB=os.path.join(folder, "runs.db"))
        client = NotebookClient(nb, timeout=600, kernel_name="python3",
                                resources={"metadata": {"path": folder}})
        client.km = client.create_kernel_manager()
        cells = []
        t0 = time.perf_counter()
        with client.setup_kernel(env=env):
            for i, cell in enumerate(nb.cells):
                if cell.cell_type == "code":
                    t = time.perf_counter()
                    client.execute_cell(cell, i)
                    cells.append(time.perf_counter() - t)
        return time.perf_counter() - t0, max(cells)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--before", required=True, help="the old tree's src folder")
    ap.add_argument("--after", default=str(ROOT / "src"), help="the new tree's src folder")
    ap.add_argument("--rounds", type=int, default=6)
    args = ap.parse_args()
    sides = [("before", args.before), ("after", args.after)]
    results: dict[str, list[tuple[float, float]]] = {"before": [], "after": []}
    for r in range(args.rounds):
        for name, src in sides if r % 2 == 0 else sides[::-1]:
            results[name].append(execute(src))
    print(f"load average {os.getloadavg()[0]:.1f}")
    for name, runs in results.items():
        loop = [round(x[1] * 1000) for x in runs]
        print(f"{name}: 330-run cell {loop} ms, median {statistics.median(loop)} ms;"
              f" whole execution median {statistics.median(x[0] for x in runs):.2f} s")


if __name__ == "__main__":
    main()

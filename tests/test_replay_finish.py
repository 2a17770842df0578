"""The hidden finish cell of a hosted replay, in a real kernel: when it returns, the replayed run
is all in the store (ended, its local modules and the files it read captured), before the kernel
is shut down. A gateway may stop a kernel without waiting for its exit handlers."""

from __future__ import annotations

from pathlib import Path

from kernels import run_notebook
from nbtrace.rerun.kernelsetup import FINISH_CODE


def test_finish_cell_writes_the_run_with_its_captures(tmp_path: Path) -> None:
    db = str(tmp_path / "runs.db")
    (tmp_path / "helper_fin.py").write_text("def twice(x):\n    return 2 * x\n")
    (tmp_path / "points.csv").write_text("x\n1\n2\n")
    check = (
        "from nbtrace.store import open_store\n"
        f"_s = open_store({db!r})\n"
        "_runs, _ = _s.list_runs(limit=None)\n"
        "_run = _s.get_run(_runs[0]['id'])\n"
        "_s.close()\n"
        "assert _run['status'] == 'finished', _run['status']\n"
        "_mods = [m['path'] for m in _run.get('modules') or []]\n"
        "assert any(p.endswith('helper_fin.py') for p in _mods), _mods\n"
        "_ins = [i['path'] for i in _run.get('inputs') or []]\n"
        "assert any(p.endswith('points.csv') for p in _ins), _ins\n"
    )
    run_notebook(
        [
            "%load_ext nbtrace",
            "%track_run fin\nimport helper_fin\n"
            "with open('points.csv') as f:\n    total = helper_fin.twice(len(f.read()))",
            FINISH_CODE,  # the run is still active: the finish cell ends it
            check,
        ],
        db,
        tmp_path,
    )

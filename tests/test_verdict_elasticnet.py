"""The shipped 330-run ElasticNet notebook re-executes without false alarms, and an edited alpha
takes effect (the notebook uses ``alpha = nbtrace.log_param("alpha", alpha)`` before the fit)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from kernels import ROOT, run_notebook
from nbtrace.store import open_store


@pytest.mark.slow
def test_elasticnet_reproduces_and_takes_an_edited_alpha(tmp_path: Path) -> None:
    shutil.copy(ROOT / "notebooks" / "elasticnet.ipynb", tmp_path / "elasticnet.ipynb")
    db = str(tmp_path / "runs.db")
    nb = nbformat.read(tmp_path / "elasticnet.ipynb", as_version=4)
    run_notebook(nb, db, tmp_path, name="elasticnet.ipynb", timeout=600)
    store = open_store(db)
    runs, total = store.list_runs(filter="params.l1_ratio = 0.5", sort="params.alpha",
                                  limit=None)
    store.close()
    assert total == 30
    target = runs[10]

    def rerun(*args: str) -> dict:
        out = subprocess.run([sys.executable, "-m", "nbtrace.cli", "rerun", target["id"],
                              *args, "--json", "--db", db], capture_output=True, text=True,
                             check=True, timeout=900)
        return json.loads(out.stdout)

    same = rerun()
    assert same["verdict"]["status"] == "reproduced", same["verdict"]
    assert same["verdict"]["code_matches"] is True and not same["verdict"]["causes"]
    edited = rerun("--set", "alpha=0.5")
    v = edited["verdict"]
    assert v["status"] == "diverged" and v["override_without_effect"] is False
    assert v["metrics"]["MSE"]["new"] != v["metrics"]["MSE"]["original"]
    assert [c["name"] for c in v["causes"] if c["kind"] == "override"] == ["alpha"]
    store = open_store(db)
    new = store.get_run(edited["run"])
    store.close()
    assert new["params"] == {"alpha": 0.5, "l1_ratio": 0.5}
    from sklearn import datasets
    from sklearn.linear_model import ElasticNet
    from sklearn.metrics import mean_squared_error
    from sklearn.model_selection import train_test_split

    X, y = datasets.load_diabetes(return_X_y=True)
    Xtr, Xte, ytr, yte = train_test_split(X, y, test_size=0.25, random_state=42)
    model = ElasticNet(alpha=0.5, l1_ratio=0.5, random_state=42, max_iter=10_000).fit(Xtr, ytr)
    assert new["metrics"]["MSE"] == pytest.approx(mean_squared_error(yte, model.predict(Xte)))

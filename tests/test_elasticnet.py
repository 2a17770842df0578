"""The 330-run ElasticNet notebook (the classic MLflow tutorial with nbtrace) under nbclient."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
import numpy as np
import pytest

from kernels import ROOT, run_notebook


@pytest.mark.slow
def test_elasticnet_notebook(tmp_path: Path) -> None:
    subprocess.run(["git", "init", "-q", "-b", "main"], cwd=tmp_path, check=True)
    shutil.copy(ROOT / "notebooks" / "elasticnet.ipynb", tmp_path / "elasticnet.ipynb")
    subprocess.run(["git", "add", "."], cwd=tmp_path, check=True)
    subprocess.run(
        ["git", "-c", "user.email=t@e.x", "-c", "user.name=T", "commit", "-qm", "nb"],
        cwd=tmp_path,
        check=True,
    )
    db = str(tmp_path / "runs.db")
    nb = nbformat.read(tmp_path / "elasticnet.ipynb", as_version=4)
    run_notebook(nb, db, tmp_path, name="elasticnet.ipynb", timeout=600)

    def cli(*args: str) -> str:
        return subprocess.run(
            [sys.executable, "-m", "nbtrace.cli", *args, "--db", db],
            capture_output=True,
            text=True,
            check=True,
        ).stdout

    everything = json.loads(cli("runs", "--json", "--limit", "0"))
    assert everything["total"] == 330
    assert all(set(r["params"]) == {"alpha", "l1_ratio"} for r in everything["runs"])
    assert all(set(r["metrics"]) == {"MSE", "R2"} for r in everything["runs"])

    got = json.loads(
        cli(
            "runs",
            "--filter",
            "params.l1_ratio = 1 and metrics.MSE < 3000",
            "--json",
            "--limit",
            "0",
        )
    )
    # the expected answer, computed independently of nbtrace
    from sklearn import datasets
    from sklearn.linear_model import ElasticNet
    from sklearn.metrics import mean_squared_error
    from sklearn.model_selection import train_test_split

    X, y = datasets.load_diabetes(return_X_y=True)
    X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.25, random_state=42)
    expected = []
    for alpha in np.logspace(-4, 0, 30):
        m = ElasticNet(alpha=alpha, l1_ratio=1.0, random_state=42, max_iter=10_000)
        mse = mean_squared_error(y_test, m.fit(X_train, y_train).predict(X_test))
        if mse < 3000:
            expected.append(float(alpha))
    assert expected, "the data should give some runs under 3000"
    assert sorted(r["params"]["alpha"] for r in got["runs"]) == pytest.approx(sorted(expected))
    assert all(r["params"]["l1_ratio"] == 1.0 and r["metrics"]["MSE"] < 3000 for r in got["runs"])

    rid = got["runs"][0]["id"]
    doc = json.loads(cli("show", rid, "--json"))
    assert [c["source"] for c in doc["cells"]][:1] == ["%load_ext nbtrace"]
    assert doc["git"]["commit"] and doc["git"]["branch"] == "main"
    assert "scikit-learn" in doc["environment"]["packages"]
    assert doc["environment"]["imported"].get("sklearn")
    text = cli("show", rid)
    assert "git:" in text and "cells (execution order)" in text
    # 330 runs of one unchanged notebook share one package set and one source per cell
    size = (
        Path(db).stat().st_size + Path(db + "-wal").stat().st_size
        if Path(db + "-wal").exists()
        else Path(db).stat().st_size
    )
    assert size / 330 < 20_000

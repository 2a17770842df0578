"""The README's claim: MLflow tracking code works with ``mlflow.`` replaced by ``nbtrace.``.

The cells below are the tracking calls of ten MLflow notebooks and examples, as their authors
wrote them (models reduced to what the calls need), and the test replaces ``mlflow`` by
``nbtrace`` in them, the way a user moving over would. Flavor calls (``mlflow.sklearn.log_model``,
``mlflow.lightgbm.autolog``) are left out: those keep MLflow (see "Coming from MLflow").
Sources:
 1. MLflow docs, tracking quickstart (``set_experiment``, ``log_params`` of a dict, ``set_tag``);
 2. ``examples/sklearn_elasticnet_wine/train.py`` (``start_run()`` with no name);
 3. MLflow docs, hyperparameter tuning with child runs (``nested=True``, ``run_name=``, the
    parent logging after its children);
 4. ``examples/lightgbm/lightgbm_native/train.py`` (``log_metrics`` of a dict);
 5. ``examples/xgboost/xgboost_native/train.py`` (``log_params`` then ``log_metrics``);
 6. the PyTorch / Keras training loops of the docs (``log_metric(..., step=epoch)``);
 7. the docs' manual run (``run = start_run(...)``, ``run.info.run_id``, ``end_run()``);
 8. the docs' artifact logging (``log_dict``, ``log_text``, ``log_figure``, ``log_artifact``);
 9. logging with no active run (MLflow starts one);
10. ``active_run().info.run_id``, ``set_tags``, ``run.info.status`` after the run.
"""

from __future__ import annotations

from typing import Any

import pytest

from kernels import run_notebook
from nbtrace.store import open_store

MLFLOW_CELLS = [
    # 1
    """import mlflow
mlflow.set_experiment("MLflow Quickstart")
params = {"solver": "lbfgs", "max_iter": 1000, "multi_class": "auto", "random_state": 8888}
with mlflow.start_run():
    mlflow.log_params(params)
    mlflow.log_metric("accuracy", 0.9667)
    mlflow.set_tag("Training Info", "Basic LR model for iris data")""",
    # 2
    """import numpy as np
from sklearn.datasets import load_diabetes
from sklearn.linear_model import ElasticNet
from sklearn.metrics import mean_absolute_error, mean_squared_error, r2_score
X, y = load_diabetes(return_X_y=True)
alpha, l1_ratio = 0.5, 0.5
with mlflow.start_run():
    lr = ElasticNet(alpha=alpha, l1_ratio=l1_ratio, random_state=42)
    lr.fit(X, y)
    pred = lr.predict(X)
    rmse = np.sqrt(mean_squared_error(y, pred))
    mlflow.log_param("alpha", alpha)
    mlflow.log_param("l1_ratio", l1_ratio)
    mlflow.log_metric("rmse", rmse)
    mlflow.log_metric("r2", r2_score(y, pred))
    mlflow.log_metric("mae", mean_absolute_error(y, pred))""",
    # 3
    """mlflow.set_experiment("tuning")
with mlflow.start_run(run_name="parent") as parent_run:
    best = None
    for a in [0.1, 1.0]:
        with mlflow.start_run(run_name=f"alpha-{a}", nested=True) as child:
            mlflow.log_param("alpha", a)
            score = float(np.sqrt(mean_squared_error(y, ElasticNet(alpha=a).fit(X, y).predict(X))))
            mlflow.log_metric("rmse", score)
            best = score if best is None else min(best, score)
    mlflow.log_metric("best_rmse", best)""",
    # 4
    """with mlflow.start_run():
    loss, acc = 0.0521, 0.9811
    mlflow.log_metrics({"log_loss": loss, "accuracy": acc})""",
    # 5
    """params = {"objective": "multi:softprob", "learning_rate": 0.3, "colsample_bytree": 1.0,
          "subsample": 1.0, "seed": 42}
with mlflow.start_run():
    mlflow.log_params(params)
    mlflow.log_metrics({"log_loss": 0.0703, "accuracy": 0.9722})""",
    # 6
    """with mlflow.start_run(run_name="training-loop"):
    for epoch in range(5):
        mlflow.log_metric("loss", 1.0 / (epoch + 1), step=epoch)
        mlflow.log_metrics({"val_loss": 1.2 / (epoch + 1), "val_acc": 0.5 + 0.1 * epoch},
                           step=epoch)""",
    # 7
    """run = mlflow.start_run(run_name="manual")
print("run id", run.info.run_id)
mlflow.log_param("batch_size", 32)
mlflow.end_run()""",
    # 8
    """import matplotlib
matplotlib.use("Agg")
import matplotlib.pyplot as plt
with open("features.txt", "w") as f:
    f.write("age, sex, bmi")
with mlflow.start_run(run_name="artifacts"):
    mlflow.log_dict({"alpha": 0.5, "layers": [64, 32]}, "config.json")
    mlflow.log_text("trained on the diabetes set", "notes.txt")
    fig, ax = plt.subplots()
    ax.plot([0, 1], [2, 3])
    mlflow.log_figure(fig, "plot.png")
    mlflow.log_artifact("features.txt")""",
    # 9
    """mlflow.log_metric("outside", 1.0)""",
    # 10
    """with mlflow.start_run(run_name="tags") as run:
    assert mlflow.active_run().info.run_id == run.info.run_id
    mlflow.set_tags({"team": "forecast", "stage": "dev"})
print("status", run.info.status)""",
]


def as_nbtrace(source: str) -> str:
    """What a user moving over does: every ``mlflow`` becomes ``nbtrace``."""
    return source.replace("mlflow", "nbtrace")


@pytest.fixture(scope="module")
def moved(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    folder = tmp_path_factory.mktemp("moved")
    db = str(folder / "runs.db")
    cells = ["%load_ext nbtrace"] + [as_nbtrace(c) for c in MLFLOW_CELLS]
    nb = run_notebook(cells, db, folder, timeout=300)
    store = open_store(db)
    runs = [store.get_run(r["id"]) for r in store.list_runs(limit=None, sort="started_at")[0]]
    store.close()
    return {"runs": runs, "nb": nb}


def test_no_cell_raised_and_every_call_was_recorded(moved: dict[str, Any]) -> None:
    for cell in moved["nb"].cells[1:]:
        errors = [o for o in cell.outputs if o.output_type == "error"]
        assert not errors, (cell.source, errors)
    # 1 + 1 + (parent + 2 children) + 1 + 1 + 1 + 1 + 1 + 1 (implicit) + 1
    assert len(moved["runs"]) == 12


def by(moved: dict[str, Any], **match: Any) -> list[dict[str, Any]]:
    return [r for r in moved["runs"] if all(r.get(k) == v for k, v in match.items())]


def test_quickstart_and_examples_keep_params_metrics_tags(moved: dict[str, Any]) -> None:
    quick, wine, *_ = moved["runs"]
    assert quick["experiment"] == "MLflow Quickstart"
    assert quick["params"] == {"solver": "lbfgs", "max_iter": 1000, "multi_class": "auto",
                               "random_state": 8888}
    assert quick["metrics"]["accuracy"] == 0.9667
    assert quick["tags"]["Training Info"] == "Basic LR model for iris data"
    assert wine["params"] == {"alpha": 0.5, "l1_ratio": 0.5}
    assert set(wine["metrics"]) == {"rmse", "r2", "mae"}
    assert wine["name"]  # a default name (the notebook's name and a counter)
    lgb, xgb = [r for r in moved["runs"] if "log_loss" in r["metrics"]]
    assert lgb["metrics"] == {"log_loss": 0.0521, "accuracy": 0.9811}
    assert xgb["params"]["objective"] == "multi:softprob" and xgb["params"]["seed"] == 42


def test_nested_runs_keep_their_parent_open(moved: dict[str, Any]) -> None:
    (parent,) = by(moved, name="parent")
    children = [r for r in moved["runs"] if r.get("nested_in") == parent["id"]]
    assert sorted(c["name"] for c in children) == ["alpha-0.1", "alpha-1.0"]
    assert all(c["status"] == "finished" for c in children)
    # the parent logged after its children had ended
    assert parent["metrics"]["best_rmse"] == min(c["metrics"]["rmse"] for c in children)
    assert parent["status"] == "finished" and parent["experiment"] == "tuning"


def test_steps_manual_runs_artifacts_and_implicit_runs(moved: dict[str, Any]) -> None:
    (loop,) = by(moved, name="training-loop")
    assert set(loop["metrics"]) == {"loss", "val_loss", "val_acc"}
    assert loop["metrics"]["loss"] == pytest.approx(0.2)
    (manual,) = by(moved, name="manual")
    assert manual["params"] == {"batch_size": 32} and manual["status"] == "finished"
    printed = "".join(o.get("text", "") for o in moved["nb"].cells[7].outputs)
    assert f"run id {manual['id']}" in printed
    (art,) = by(moved, name="artifacts")
    assert {a["name"] for a in art["artifacts"]} >= {"config.json", "notes.txt", "plot.png",
                                                    "features.txt"}
    (implicit,) = [r for r in moved["runs"] if "outside" in r["metrics"]]
    assert implicit["status"] == "finished"
    (tags,) = by(moved, name="tags")
    assert tags["tags"]["team"] == "forecast" and tags["tags"]["stage"] == "dev"
    printed = "".join(o.get("text", "") for o in moved["nb"].cells[10].outputs)
    assert "status FINISHED" in printed  # MLflow spells statuses in capitals

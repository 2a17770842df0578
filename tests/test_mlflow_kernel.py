"""MLflow's client against ``nbtrace:`` in real kernels: the sklearn ElasticNet/wine tutorial,
autolog, and nbtrace's own API in MLflow's call shapes (issue 11, items 1 and 1b).

The tutorial runs twice, unchanged but for the tracking URI: once against MLflow's own SQLite
backend (read back with ``MlflowClient``), once against ``nbtrace:`` with ``%load_ext
nbtrace``; params and metrics must be what MLflow logged.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from kernels import run_notebook
from nbtrace.store import open_store

pytest.importorskip("mlflow")

TUTORIAL = [
    """import numpy as np
import mlflow
import mlflow.sklearn
from mlflow.models import infer_signature
from sklearn.datasets import load_wine
from sklearn.linear_model import ElasticNet
from sklearn.metrics import mean_absolute_error, mean_squared_error, r2_score
from sklearn.model_selection import train_test_split


def eval_metrics(actual, pred):
    rmse = np.sqrt(mean_squared_error(actual, pred))
    mae = mean_absolute_error(actual, pred)
    r2 = r2_score(actual, pred)
    return rmse, mae, r2


X, y = load_wine(return_X_y=True, as_frame=True)
train_x, test_x, train_y, test_y = train_test_split(X, y, random_state=42)""",
    """for alpha, l1_ratio in [(0.5, 0.5), (0.1, 0.9), (1.0, 0.0)]:
    with mlflow.start_run():
        lr = ElasticNet(alpha=alpha, l1_ratio=l1_ratio, random_state=42)
        lr.fit(train_x, train_y)
        predicted_qualities = lr.predict(test_x)
        (rmse, mae, r2) = eval_metrics(test_y, predicted_qualities)
        mlflow.log_param("alpha", alpha)
        mlflow.log_param("l1_ratio", l1_ratio)
        mlflow.log_metric("rmse", rmse)
        mlflow.log_metric("r2", r2)
        mlflow.log_metric("mae", mae)
        signature = infer_signature(train_x, predicted_qualities)
        mlflow.sklearn.log_model(lr, name="model", signature=signature)""",
]


def _cli(db: str, *args: str) -> str:
    return subprocess.run(
        [sys.executable, "-m", "nbtrace.cli", *args, "--db", db],
        capture_output=True,
        text=True,
        check=True,
        cwd=Path(db).parent,
    ).stdout


def _key(params: dict[str, Any]) -> tuple[str, str]:
    return params["alpha"], params["l1_ratio"]


@pytest.fixture(scope="module")
def tutorial(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The tutorial run against MLflow's SQLite backend and against nbtrace: (with nbtrace)."""
    work = tmp_path_factory.mktemp("wine")
    mlf = work / "mlflow"
    mlf.mkdir()
    uri = f"sqlite:///{mlf / 'mlflow.db'}"
    run_notebook(
        [f"import mlflow\nmlflow.set_tracking_uri({uri!r})"] + TUTORIAL,
        str(work / "unused.db"),
        mlf,
        name="wine.ipynb",
        timeout=300,
    )
    from mlflow.tracking import MlflowClient

    client = MlflowClient(uri)
    reference = {}
    for r in client.search_runs(["0"]):
        reference[_key(r.data.params)] = r.data
    nbt = work / "nbt"
    nbt.mkdir()
    db = str(nbt / "runs.db")
    run_notebook(
        ["%load_ext nbtrace", 'import mlflow\nmlflow.set_tracking_uri("nbtrace:")'] + TUTORIAL,
        db,
        nbt,
        name="wine.ipynb",
        timeout=300,
    )
    return {"reference": reference, "db": db, "folder": nbt}


def test_tutorial_runs_have_mlflows_params_and_metrics(tutorial: dict[str, Any]) -> None:
    listed = json.loads(_cli(tutorial["db"], "runs", "--json", "--limit", "0"))
    assert listed["total"] == 3
    ref = tutorial["reference"]
    assert len(ref) == 3
    for r in listed["runs"]:
        expected = ref[_key(r["params"])]
        assert r["params"] == expected.params  # MLflow's strings, exactly
        assert r["metrics"] == pytest.approx(expected.metrics, rel=1e-12)
        assert r["status"] == "finished"
        assert r["name"].startswith("wine-")  # the notebook's name and a counter


def test_tutorial_runs_are_nbtrace_runs(tutorial: dict[str, Any]) -> None:
    store = open_store(tutorial["db"])
    runs, _ = store.list_runs(limit=None)
    for summary in runs:
        run = store.get_run(summary["id"])
        sources = [c["source"] for c in run["cells"] if c["in_run"]]
        assert any("mlflow.start_run()" in s for s in sources)
        assert run["environment"]["packages"].get("mlflow")
        assert run["resources"]["wall_s"] > 0
        names = {a["name"]: a for a in run["artifacts"]}
        assert "models/model/MLmodel" in names
        model_file = next(n for n in names if n.startswith("models/model/model."))
        # stored where MLflow expects (the artifact root beside the store), same bytes
        root = Path(tutorial["folder"]) / "mlartifacts"
        on_disk = [
            p
            for p in root.rglob(model_file.rsplit("/", 1)[1])
            if hashlib.sha256(p.read_bytes()).hexdigest() == names[model_file]["sha256"]
            and p.stat().st_size == names[model_file]["size"]
        ]
        assert len(on_disk) == 1


def test_tutorial_run_reexecutes(tutorial: dict[str, Any]) -> None:
    runs = json.loads(_cli(tutorial["db"], "runs", "--json", "--limit", "0"))["runs"]
    target = next(r for r in runs if r["params"]["alpha"] == "0.1")
    out = json.loads(_cli(tutorial["db"], "rerun", target["id"], "--json"))
    v = out["verdict"]
    # MLflow's model files embed the run's id and time (MLmodel) and the skops zip its member
    # times and id()-based member names: equal once normalised, so the run reproduces.
    keys = ("artifacts", "artifacts_normalised", "outputs", "params", "causes")
    assert v["status"] == "reproduced", {k: v[k] for k in keys}
    assert v["artifacts"] == {}, v
    assert {"models/model/MLmodel", "models/model/model.skops"} <= set(
        v["artifacts_normalised"]
    ), v
    assert v["code_matches"]
    new = open_store(tutorial["db"]).get_run(out["run"])
    assert new["parent"] == target["id"]
    assert new["params"] == target["params"]


AUTOLOG = [
    "%load_ext nbtrace",
    """import mlflow
import mlflow.sklearn
from sklearn.datasets import load_wine
from sklearn.linear_model import ElasticNet

mlflow.set_tracking_uri("nbtrace:")
mlflow.set_experiment("autolog")
mlflow.sklearn.autolog()
X, y = load_wine(return_X_y=True)""",
    """import nbtrace
with mlflow.start_run(run_name="auto") as run:
    alpha = nbtrace.log_param("alpha", 0.3)  # read through nbtrace: overridable
    ElasticNet(alpha=alpha, l1_ratio=0.2).fit(X, y)""",
    """import json
df = mlflow.search_runs(experiment_names=["autolog"])
print(json.dumps({"type": type(df).__name__, "ids": list(df["run_id"]),
                  "alpha": list(df["params.alpha"])}))""",
]


def test_autolog(tmp_path: Path) -> None:
    db = str(tmp_path / "runs.db")
    nb = run_notebook(AUTOLOG, db, tmp_path, name="auto.ipynb", timeout=300)
    out = json.loads(
        "".join(
            o.get("text", "")
            for o in nb.cells[-1].outputs
            if o.output_type == "stream" and o.name == "stdout"
        )
    )
    store = open_store(db)
    runs, total = store.list_runs()
    assert total == 1
    run = store.get_run(runs[0]["id"])
    assert out == {"type": "DataFrame", "ids": [run["id"]], "alpha": ["0.3"]}
    assert run["experiment"] == "autolog" and run["name"] == "auto"
    assert run["params"]["alpha"] == "0.3" and run["params"]["l1_ratio"] == "0.2"
    assert {"training_score", "training_r2_score"} <= set(run["metrics"])
    assert any(a["name"].startswith("models/model/model.") for a in run["artifacts"])
    assert any("mlflow.sklearn.autolog()" in c["source"] for c in run["cells"])
    # what only autolog logged cannot be overridden on re-execution, and the run says so
    fixed = run["extra"]["mlflow_params"]
    assert "l1_ratio" in fixed and "max_iter" in fixed and "alpha" not in fixed
    # ... and what the code reads through nbtrace is: re-executed with alpha=0.9, autolog
    # itself records the edited value the estimator was built with
    out = json.loads(_cli(db, "rerun", run["id"], "--set", "alpha=0.9", "--json"))
    new = store.get_run(out["run"])
    assert new["parent"] == run["id"] and new["params"]["alpha"] == "0.9"
    assert new["params"]["l1_ratio"] == "0.2"
    assert out["verdict"]["status"] == "diverged"
    assert new["metrics"]["training_score"] != run["metrics"]["training_score"]


SHAPES = [
    "%load_ext nbtrace",
    """import sys
import nbtrace
exp = nbtrace.set_experiment("shapes")
assert exp.experiment_id == "shapes" and exp.name == "shapes"
with nbtrace.start_run(experiment_id=exp.experiment_id) as r:
    nbtrace.log_metric("m", 1, step=0, timestamp=1_700_000_000_000)
    info = (r.info.run_id, r.info.status)
print(info, r.info.status)""",
    """with nbtrace.start_run(run_name="outer") as outer:
    nbtrace.log_param("lr", 0.1)
    for i in range(2):
        with nbtrace.start_run(run_name=f"child{i}", nested=True) as child:
            nbtrace.log_metric("loss", i)
    nbtrace.log_metric("best", 0.5)""",
    "%track_run magic_parent",
    "%track_run magic_child --nested\n%log_metric c=1\n%end_run\n%log_metric p=2\n%end_run",
    'nbtrace.log_metric("implicit_m", 3)',
    'print(nbtrace.active_run() is None, "mlflow" in sys.modules,'
    ' "nbtrace.mlflow_bridge" in sys.modules)',
    """import matplotlib
matplotlib.use("Agg")
import matplotlib.pyplot as plt
import mlflow.data
import numpy as np
open("roc.txt", "w").write("roc")
fig, ax = plt.subplots()
ax.plot([1, 2])
with nbtrace.start_run(run_name="files", description="what this run is") as run:
    nbtrace.log_text("hello", "notes/hello.txt")
    nbtrace.log_dict({"a": 1}, "conf.json")
    nbtrace.log_figure(fig, "plots/fig.png")
    nbtrace.log_artifact("roc.txt", artifact_path="plots")
    nbtrace.log_input(mlflow.data.from_numpy(np.arange(4), name="arr"), context="training")""",
]


def test_mlflow_call_shapes_in_nbtrace(tmp_path: Path) -> None:
    db = str(tmp_path / "runs.db")
    nb = run_notebook(SHAPES, db, tmp_path, name="shapes.ipynb")

    def stdout(i: int) -> str:
        return "".join(
            o.get("text", "")
            for o in nb.cells[i].outputs
            if o.output_type == "stream" and o.name == "stdout"
        )

    def stderr(i: int) -> str:
        return "".join(
            o.get("text", "")
            for o in nb.cells[i].outputs
            if o.output_type == "stream" and o.name == "stderr"
        )

    store = open_store(db)
    runs = {r["name"]: r for r in store.list_runs(limit=None)[0]}
    first = runs["shapes-1"]  # no name: the notebook's name and a counter
    assert f"('{first['id']}', 'RUNNING') FINISHED" in stdout(1)
    assert store.metric_series(first["id"], "m") == [
        {"step": 0, "value": 1.0, "timestamp": "2023-11-14T22:13:20.000Z"}
    ]
    assert {r["experiment"] for r in runs.values()} == {"shapes"}
    outer = runs["outer"]
    assert outer["metrics"] == {"best": 0.5} and outer["params"] == {"lr": 0.1}
    assert runs["child0"]["nested_in"] == outer["id"] == runs["child1"]["nested_in"]
    assert runs["child0"]["parent"] is None  # nesting is not re-execution lineage
    assert [k["name"] for k in store.get_run(outer["id"])["nested_runs"]] == ["child0", "child1"]
    assert runs["magic_child"]["nested_in"] == runs["magic_parent"]["id"]
    assert runs["magic_parent"]["metrics"] == {"p": 2.0}
    assert runs["magic_parent"]["status"] == "finished"
    implicit = runs["shapes-2"]
    assert implicit["metrics"] == {"implicit_m": 3.0} and implicit["status"] == "finished"
    notice = stderr(5)
    assert "started run 'shapes-2'" in notice and "ends with this cell" in notice
    assert len(notice.strip().splitlines()) == 1
    # the implicit run ended with its cell; nothing imported MLflow
    assert stdout(6).split() == ["True", "False", "False"]
    files = store.get_run(runs["files"]["id"])
    names = {a["name"]: a for a in files["artifacts"]}
    assert set(names) == {"notes/hello.txt", "conf.json", "plots/fig.png", "plots/roc.txt"}
    assert store.artifact(files["id"], "notes/hello.txt")[0] == b"hello"
    assert json.loads(store.artifact(files["id"], "conf.json")[0]) == {"a": 1}
    assert store.artifact(files["id"], "plots/fig.png")[0][:8] == b"\x89PNG\r\n\x1a\n"
    assert files["note"] == "what this run is"
    # (files the cell read are captured as inputs too, since the verdict's dependency capture)
    (ds,) = [i for i in files["inputs"] if i["path"].startswith("dataset:")]
    assert ds["path"].startswith("dataset:arr@") and ds["size"] == 0


def test_a_nested_run_reexecutes(tmp_path: Path) -> None:
    cells = [
        "%load_ext nbtrace",
        """import nbtrace
with nbtrace.start_run(run_name="outer", experiment="cv"):
    for i in range(3):
        with nbtrace.start_run(run_name=f"fold{i}", nested=True):
            lr = nbtrace.log_param("lr", 0.1 * (i + 1))
            nbtrace.log_metric("score", lr * 10)
    nbtrace.log_metric("mean", 2.0)""",
    ]
    db = str(tmp_path / "runs.db")
    run_notebook(cells, db, tmp_path, name="folds.ipynb")
    store = open_store(db)
    runs = {r["name"]: r for r in store.list_runs(limit=None)[0]}
    out = json.loads(_cli(db, "rerun", runs["fold1"]["id"], "--set", "lr=0.5", "--json"))
    assert runs["fold1"]["experiment"] == "cv"  # a nested run is in its parent's experiment
    new = store.get_run(out["run"])
    assert new["parent"] == runs["fold1"]["id"] and new["name"] == "fold1"
    assert new["params"] == {"lr": 0.5} and new["metrics"] == {"score": 5.0}
    # only the target run was recorded: the replayed outer run and other folds are not
    assert store.list_runs()[1] == 5

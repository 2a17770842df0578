"""The MLflow bridge against the real ``mlflow`` package (issue 11, items 1, 2 and 3).

- MLflow's client (fluent API and ``MlflowClient``) against ``nbtrace:`` in a script: params,
  metrics with steps and timestamps, tags, experiments, nested runs, datasets, search,
  history, status; errors as MLflow's.
- ``nbtrace import mlflow+URI`` of an ``mlruns/`` folder and an ``mlflow.db`` that MLflow itself
  made (experiments, 56 runs, 100-step series, nested runs, artifacts, a dataset): counts,
  series and tags equal; a second import adds nothing.
- ``nbtrace export --to mlflow+sqlite:///…`` read back with ``MlflowClient``: same params,
  series, tags, the trace files; a second export adds nothing.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

from nbtrace.store import open_store

mlflow = pytest.importorskip("mlflow")
from mlflow.entities import Dataset, DatasetInput, InputTag, Metric, Param, RunTag  # noqa: E402
from mlflow.tracking import MlflowClient  # noqa: E402


def _cli(db: str, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    # In the store's folder: MLflow puts a new SQLite store's artifacts under ./mlruns
    return subprocess.run(
        [sys.executable, "-m", "nbtrace.cli", *args, "--db", db],
        capture_output=True,
        text=True,
        check=check,
        cwd=Path(db).parent,
    )


def _script(tmp: Path, body: str) -> dict[str, Any]:
    """Run ``body`` in a fresh interpreter; it prints one JSON object last."""
    path = tmp / "script.py"
    path.write_text(textwrap.dedent(body))
    out = subprocess.run(
        [sys.executable, str(path)], capture_output=True, text=True, cwd=tmp, check=False
    )
    assert out.returncode == 0, out.stderr[-3000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


PLUGIN = """
import json, time
import mlflow
from mlflow.entities import Dataset, DatasetInput, Metric, RunStatus
from mlflow.exceptions import MlflowException

mlflow.set_tracking_uri("nbtrace:///{db}")
exp_id = mlflow.set_experiment("plugin").experiment_id
client = mlflow.MlflowClient()
with mlflow.start_run(run_name="outer", description="a note") as outer:
    mlflow.log_params({{"alpha": 0.5, "kind": "enet"}})
    mlflow.log_metrics({{"loss": 3.0}}, step=0)
    mlflow.log_metric("loss", 2.0, step=1, timestamp=1_700_000_000_000)
    mlflow.set_tags({{"team": "a", "n": 1}})
    with mlflow.start_run(run_name="inner", nested=True) as inner:
        mlflow.log_metric("x", 1)
        ds = mlflow.data.from_numpy(__import__("numpy").arange(6).reshape(3, 2), name="arr")
        mlflow.log_input(ds, context="training")
    mlflow.log_metric("after_children", 7)
    mlflow.log_dict({{"a": 1}}, "conf/d.json")
    mlflow.log_text("hello", "notes.txt")
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots()
    ax.plot([1, 2, 3])
    mlflow.log_figure(fig, "plots/curve.png")
with mlflow.start_run(run_id=outer.info.run_id):  # resume a finished run
    mlflow.log_metric("loss", 1.0, step=2)
try:
    with mlflow.start_run(run_name="boom"):
        raise ValueError("x")
except ValueError:
    pass
killed = client.create_run(exp_id, run_name="killed")
client.log_batch(killed.info.run_id, metrics=[Metric("m", float(i), 1000 + i, i)
                                              for i in range(5)])
client.set_terminated(killed.info.run_id, "KILLED")
try:
    client.get_run("nosuchrun")
    missing = None
except MlflowException as exc:
    missing = exc.error_code
try:
    client.create_experiment("plugin")
    dup = None
except MlflowException as exc:
    dup = exc.error_code
got = client.get_run(outer.info.run_id)
inner_run = client.get_run(inner.info.run_id)
found = mlflow.search_runs(experiment_ids=[exp_id], filter_string="params.alpha = '0.5'",
                           output_format="list")
ordered = mlflow.search_runs(experiment_ids=[exp_id], order_by=["attributes.start_time ASC"],
                             output_format="list")
print(json.dumps({{
    "outer": outer.info.run_id, "inner": inner.info.run_id, "killed": killed.info.run_id,
    "status": got.info.status, "params": got.data.params, "metrics": got.data.metrics,
    "tags": got.data.tags, "artifact_uri": got.info.artifact_uri,
    "inner_tags": inner_run.data.tags,
    "datasets": [d.dataset.name for d in inner_run.inputs.dataset_inputs],
    "history": [(m.step, m.value, m.timestamp)
                for m in client.get_metric_history(outer.info.run_id, "loss")],
    "found": [r.info.run_id for r in found],
    "ordered": [r.info.run_name for r in ordered],
    "killed_status": client.get_run(killed.info.run_id).info.status,
    "experiments": sorted(e.name for e in client.search_experiments()),
    "missing": missing, "dup": dup,
}}))
"""


def test_mlflow_client_writes_nbtrace_runs(tmp_path: Path) -> None:
    db = str(tmp_path / "runs.db")
    out = _script(tmp_path, PLUGIN.format(db=db))
    assert out["status"] == "FINISHED"
    assert out["params"] == {"alpha": "0.5", "kind": "enet"}
    assert out["metrics"] == {"loss": 1.0, "after_children": 7.0}
    assert out["history"][:2] == [[0, 3.0, out["history"][0][2]], [1, 2.0, 1_700_000_000_000]]
    assert [h[:2] for h in out["history"][2:]] == [[2, 1.0]]  # logged after resuming
    assert out["tags"]["team"] == "a" and out["tags"]["n"] == "1"
    assert out["tags"]["mlflow.runName"] == "outer"
    assert out["tags"]["mlflow.note.content"] == "a note"
    assert out["inner_tags"]["mlflow.parentRunId"] == out["outer"]
    assert out["datasets"] == ["arr"]
    assert out["found"] == [out["outer"]]
    assert out["ordered"] == ["outer", "inner", "boom", "killed"]
    assert out["killed_status"] == "FAILED"
    assert out["experiments"] == ["Default", "plugin"]
    assert out["missing"] == "RESOURCE_DOES_NOT_EXIST" and out["dup"] == "RESOURCE_ALREADY_EXISTS"
    assert out["artifact_uri"] == (
        (tmp_path / "mlartifacts").as_uri() + f"/1/{out['outer']}/artifacts"
    )
    # the same runs, as nbtrace sees them
    store = open_store(db)
    runs = {r["name"]: r for r in store.list_runs(limit=None)[0]}
    assert runs["outer"]["params"] == {"alpha": "0.5", "kind": "enet"}
    assert runs["outer"]["experiment"] == "plugin"
    assert runs["inner"]["nested_in"] == out["outer"]
    assert runs["boom"]["status"] == "failed"
    assert store.get_run(out["outer"])["note"] == "a note"
    assert store.list_runs(filter="params.alpha > 0.4")[1] == 1  # MLflow's strings compare
    inputs = store.get_run(out["inner"])["inputs"]
    assert len(inputs) == 1 and inputs[0]["path"].startswith("dataset:arr@")
    series = store.metric_series(out["killed"], "m")
    assert [(p["step"], p["value"]) for p in series] == [(i, float(i)) for i in range(5)]
    # artifacts: where MLflow put them, and listed (name, size, sha256) with the nbtrace run
    listed = {a["name"]: a for a in store.get_run(out["outer"])["artifacts"]}
    assert set(listed) == {"conf/d.json", "notes.txt", "plots/curve.png"}
    folder = tmp_path / "mlartifacts" / "1" / out["outer"] / "artifacts"
    for name, a in listed.items():
        data = (folder / name).read_bytes()
        assert a["size"] == len(data) and a["sha256"] == hashlib.sha256(data).hexdigest()
        assert store.artifact(out["outer"], name)[0] == data
    assert listed["plots/curve.png"]["size"] > 1000


def test_a_run_left_open_ends_at_exit(tmp_path: Path) -> None:
    db = str(tmp_path / "runs.db")
    body = f"""
    import json, mlflow
    mlflow.set_tracking_uri("nbtrace:///{db}")
    run = mlflow.start_run(run_name="open")
    mlflow.log_metric("m", 1)
    mlflow.log_text("late", "late.txt")
    print(json.dumps({{"id": run.info.run_id}}))
    """
    out = _script(tmp_path, body)
    run = open_store(db).get_run(out["id"])
    assert run["status"] == "finished" and run["metrics"] == {"m": 1.0}
    assert [a["name"] for a in run["artifacts"]] == ["late.txt"]


# ------------------------------------------------------------- MLflow stores made by MLflow
def _populate(uri: str, artifacts: Path) -> dict[str, Any]:
    """Experiments, 56 runs (nested), 100-step series, artifacts and a dataset, via MLflow."""
    client = MlflowClient(uri)
    made: dict[str, Any] = {"runs": {}}
    art = artifacts / "src"
    art.mkdir(parents=True, exist_ok=True)
    (art / "notes.txt").write_text("hello")
    for e in ("exp-a", "exp-b"):
        exp_id = client.create_experiment(e, artifact_location=(artifacts / e).as_uri())
        for p in range(2):
            parent = client.create_run(
                exp_id,
                run_name=f"{e}-parent{p}",
                tags={
                    "mlflow.note.content": "parent note",
                    "mlflow.source.git.commit": "abc123",
                    "mlflow.source.name": "train.ipynb",
                    "team": "x",
                },
            )
            pid = parent.info.run_id
            client.log_artifact(pid, str(art / "notes.txt"), "docs")
            made["runs"][pid] = e
            for c in range(13):
                child = client.create_run(
                    exp_id, run_name=f"child{c}", tags={"mlflow.parentRunId": pid}
                )
                cid = child.info.run_id
                client.log_batch(
                    cid,
                    metrics=[
                        Metric("loss", 1.0 / (s + 1), 1_700_000_000_000 + s, s) for s in range(100)
                    ]
                    + [Metric("acc", s / 100, 1_700_000_000_000 + s, s) for s in range(100)],
                    params=[Param("alpha", str(c / 10)), Param("kind", "enet")],
                    tags=[RunTag("fold", str(c % 3))],
                )
                if c == 0:
                    ds = Dataset("wine", "d1g3st", "local", json.dumps({"uri": "/data/w.csv"}))
                    client.log_inputs(cid, [DatasetInput(ds, [InputTag("ctx", "train")])])
                client.set_terminated(cid, "FINISHED" if c % 5 else "FAILED")
                made["runs"][cid] = e
            client.set_terminated(pid)
    return made


def _check_imported(db: str, uri: str, made: dict[str, Any]) -> None:
    client = MlflowClient(uri)
    store = open_store(db)
    runs, total = store.list_runs(limit=None)
    assert total == len(made["runs"]) == 56
    by_id = {r["id"]: r for r in runs}
    for rid, exp in made["runs"].items():
        src = client.get_run(rid)
        got = store.get_run(rid, series=True)
        assert got["experiment"] == exp
        assert got["name"] == src.info.run_name
        assert got["params"] == src.data.params
        assert got["status"] == {"FINISHED": "finished", "FAILED": "failed"}[src.info.status]
        tags = dict(src.data.tags)
        assert got["nested_in"] == tags.pop("mlflow.parentRunId", None)
        assert got["note"] == tags.pop("mlflow.note.content", None)
        assert (got["git"] or {}).get("commit") == tags.pop("mlflow.source.git.commit", None)
        assert got["notebook"]["path"] == tags.pop("mlflow.source.name", None)
        assert got["user"] == tags.pop("mlflow.user", None) or src.info.user_id
        tags.pop("mlflow.runName")
        assert got["tags"] == tags
        for key in src.data.metrics:
            hist = client.get_metric_history(rid, key)
            assert [(p["step"], p["value"]) for p in got["series"][key]] == [
                (m.step, m.value) for m in hist
            ]
        assert got["extra"]["imported_from"] == {
            "kind": "mlflow",
            "uri": f"mlflow+{uri}",
            "run_id": rid,
        }
        assert by_id[rid]["id"] == rid
    parents = [r for r in runs if r["name"].endswith(("parent0", "parent1"))]
    for p in parents:
        a = store.get_run(p["id"])["artifacts"]
        assert [x["name"] for x in a] == ["docs/notes.txt"] and a[0]["size"] == 5
        assert store.artifact(p["id"], "docs/notes.txt")[0] == b"hello"
        assert len(store.get_run(p["id"])["nested_runs"]) == 13
    with_ds = [r for r in runs if store.get_run(r["id"])["inputs"]]
    assert len(with_ds) == 4
    assert store.get_run(with_ds[0]["id"])["inputs"][0]["path"] == "dataset:wine@d1g3st"


@pytest.fixture(scope="module")
def mlruns(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, dict[str, Any]]:
    os.environ["MLFLOW_ALLOW_FILE_STORE"] = "true"
    folder = tmp_path_factory.mktemp("mlruns")
    uri = (folder / "mlruns").as_uri()
    return uri, _populate(uri, folder / "artifacts")


@pytest.fixture(scope="module")
def mlflow_db(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, dict[str, Any]]:
    folder = tmp_path_factory.mktemp("mlflowdb")
    uri = f"sqlite:///{folder / 'mlflow.db'}"
    return uri, _populate(uri, folder / "artifacts")


@pytest.mark.parametrize("source", ["mlruns", "mlflow_db"])
def test_import_from_mlflow(source: str, request: pytest.FixtureRequest, tmp_path: Path) -> None:
    uri, made = request.getfixturevalue(source)
    db = str(tmp_path / "runs.db")
    first = json.loads(_cli(db, "import", f"mlflow+{uri}", "--json").stdout)
    assert first == {
        "imported": 56,
        "skipped": 0,
        "experiments": 3,
        "metric_values": 52 * 200,
        "artifacts": 4,
    }
    _check_imported(db, uri, made)
    again = _cli(db, "import", f"mlflow+{uri}")
    assert again.stdout.strip().endswith("56 already present")
    assert "imported 0 run(s)" in again.stdout
    assert open_store(db).list_runs()[1] == 56


def test_import_one_experiment_and_bad_uris(
    mlflow_db: tuple[str, dict[str, Any]], tmp_path: Path
) -> None:
    uri, made = mlflow_db
    db = str(tmp_path / "runs.db")
    out = _cli(db, "import", f"mlflow+{uri}", "--experiment", "exp-b")
    assert out.stdout.startswith("imported 28 run(s) from 1 experiment(s)")
    assert {r["experiment"] for r in open_store(db).list_runs(limit=None)[0]} == {"exp-b"}
    bad = _cli(db, "import", f"mlflow+{uri}", "--experiment", "nope", check=False)
    assert bad.returncode == 1 and "no experiment 'nope'" in bad.stderr
    assert "Traceback" not in bad.stderr and len(bad.stderr.strip().splitlines()) == 1
    bad = _cli(db, "import", "mlflow+", check=False)
    assert bad.returncode == 1 and "expected mlflow+URI" in bad.stderr


def test_export_to_mlflow(mlflow_db: tuple[str, dict[str, Any]], tmp_path: Path) -> None:
    uri, made = mlflow_db
    db = str(tmp_path / "runs.db")
    _cli(db, "import", f"mlflow+{uri}", "--experiment", "exp-a")
    target = f"sqlite:///{tmp_path / 'out.db'}"
    out = _cli(db, "export", "--to", f"mlflow+{target}", "--filter", "name like 'child%'")
    assert out.stdout.startswith("exported 26 run(s)")
    again = _cli(db, "export", "--to", f"mlflow+{target}")
    assert "exported 2 run(s)" in again.stdout and "26 already there" in again.stdout
    client = MlflowClient(target)
    store = open_store(db)
    exp = client.get_experiment_by_name("exp-a")
    exported = client.search_runs([exp.experiment_id], max_results=1000)
    assert len(exported) == 28
    by_nbtrace = {r.data.tags["nbtrace.run_id"]: r for r in exported}
    for nid, r in by_nbtrace.items():
        src = store.get_run(nid, series=True)
        assert r.data.params == src["params"]
        assert r.info.run_name == src["name"]
        for key, points in src["series"].items():
            hist = client.get_metric_history(r.info.run_id, key)
            assert [(m.step, m.value) for m in hist] == [(p["step"], p["value"]) for p in points]
        for k, v in src["tags"].items():
            assert r.data.tags[k] == v
        assert r.data.tags.get("mlflow.note.content") == src["note"]
        assert r.data.tags.get("mlflow.source.git.commit") == (src["git"] or {}).get("commit")
        files = {a.path for a in client.list_artifacts(r.info.run_id, "nbtrace")}
        assert files == {"nbtrace/notebook.ipynb", "nbtrace/run.json", "nbtrace/requirements.txt"}
    # nesting survives: each child's parent is its parent's MLflow run
    children = [r for r in exported if r.info.run_name.startswith("child")]
    ids = {r.info.run_id for r in exported}
    assert all(r.data.tags["mlflow.parentRunId"] in ids for r in children[-13:])
    parent = next(r for r in exported if r.info.run_name == "exp-a-parent0")
    local = client.download_artifacts(parent.info.run_id, "docs/notes.txt", str(tmp_path))
    assert Path(local).read_text() == "hello"
    doc = json.loads(
        Path(
            client.download_artifacts(parent.info.run_id, "nbtrace/run.json", str(tmp_path))
        ).read_text()
    )
    assert doc["id"] == parent.data.tags["nbtrace.run_id"]


def test_export_of_a_tracked_notebook_run(tmp_path: Path) -> None:
    from kernels import run_notebook

    db = str(tmp_path / "runs.db")
    run_notebook(
        [
            "%load_ext nbtrace",
            "import nbtrace\nwith nbtrace.start_run('nb', experiment='e'):\n"
            "    nbtrace.log_param('alpha', 0.5)\n    nbtrace.log_metric('m', 1.5, step=2)",
        ],
        db,
        tmp_path,
        name="train.ipynb",
    )
    target = f"sqlite:///{tmp_path / 'out.db'}"
    _cli(db, "export", "--to", f"mlflow+{target}", "--experiment", "moved")
    client = MlflowClient(target)
    (r,) = client.search_runs([client.get_experiment_by_name("moved").experiment_id])
    assert r.data.params == {"alpha": "0.5"} and r.data.metrics == {"m": 1.5}
    assert r.data.tags["mlflow.source.name"].endswith("train.ipynb")
    nb = json.loads(
        Path(
            client.download_artifacts(r.info.run_id, "nbtrace/notebook.ipynb", str(tmp_path))
        ).read_text()
    )
    assert any("nbtrace.start_run('nb'" in c["source"] for c in nb["cells"])
    reqs = Path(
        client.download_artifacts(r.info.run_id, "nbtrace/requirements.txt", str(tmp_path))
    ).read_text()
    assert "ipykernel==" in reqs


@pytest.mark.postgres
def test_mlflow_client_on_the_team_store(pg_store_url: str, tmp_path: Path) -> None:
    body = f"""
    import json, mlflow
    mlflow.set_tracking_uri({"nbtrace+" + pg_store_url!r})
    mlflow.set_experiment("team")
    with mlflow.start_run(run_name="pg") as run:
        mlflow.log_param("alpha", 0.5)
        for i in range(3):
            mlflow.log_metric("loss", 1.0 / (i + 1), step=i)
        with mlflow.start_run(run_name="kid", nested=True):
            mlflow.log_metric("x", 1)
    hist = mlflow.MlflowClient().get_metric_history(run.info.run_id, "loss")
    found = mlflow.search_runs(experiment_names=["team"], filter_string="params.alpha = '0.5'",
                               output_format="list")
    print(json.dumps({{"id": run.info.run_id, "hist": [m.value for m in hist],
                      "found": [r.info.run_id for r in found]}}))
    """
    out = _script(tmp_path, body)
    assert out["hist"] == [1.0, 0.5, 1.0 / 3] and out["found"] == [out["id"]]
    store = open_store(pg_store_url)
    runs = {r["name"]: r for r in store.list_runs()[0]}
    assert runs["pg"]["experiment"] == "team" and runs["pg"]["params"] == {"alpha": "0.5"}
    assert runs["kid"]["nested_in"] == out["id"]


@pytest.fixture(scope="module")
def mlflow_server(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """A real ``mlflow server`` on loopback (its own SQLite store and artifact root)."""
    import signal
    import socket
    import time
    import urllib.request

    folder = tmp_path_factory.mktemp("mlflow-server")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "mlflow",
            "server",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--workers",
            "1",
            "--backend-store-uri",
            f"sqlite:///{folder / 's.db'}",
            "--artifacts-destination",
            str(folder / "artifacts"),
        ],
        cwd=folder,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 180
    try:
        while True:
            try:
                with urllib.request.urlopen(f"{url}/health", timeout=5) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            assert proc.poll() is None, "mlflow server exited"
            assert time.monotonic() < deadline, "mlflow server did not start"
            time.sleep(0.5)
        yield url
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(30)


@pytest.mark.slow
def test_import_and_export_through_a_tracking_server(mlflow_server: str, tmp_path: Path) -> None:
    client = MlflowClient(mlflow_server)
    exp_id = client.create_experiment("served")
    parent = client.create_run(exp_id, run_name="p")
    (tmp_path / "a.txt").write_text("served file")
    client.log_artifact(parent.info.run_id, str(tmp_path / "a.txt"), "files")
    child = client.create_run(exp_id, run_name="c", tags={"mlflow.parentRunId": parent.info.run_id})
    client.log_batch(
        child.info.run_id,
        metrics=[Metric("m", float(s), 1000 + s, s) for s in range(100)],
        params=[Param("alpha", "0.1")],
    )
    for r in (child, parent):
        client.set_terminated(r.info.run_id)
    db = str(tmp_path / "runs.db")
    src = f"mlflow+{mlflow_server}"
    out = json.loads(_cli(db, "import", src, "--experiment", "served", "--json").stdout)
    assert out["imported"] == 2 and out["metric_values"] == 100 and out["artifacts"] == 1
    assert json.loads(_cli(db, "import", src, "--json").stdout)["imported"] == 0
    store = open_store(db)
    got = store.get_run(child.info.run_id, series=True)
    assert got["nested_in"] == parent.info.run_id and got["params"] == {"alpha": "0.1"}
    assert [p["value"] for p in got["series"]["m"]] == [float(s) for s in range(100)]
    assert store.artifact(parent.info.run_id, "files/a.txt")[0] == b"served file"
    out = _cli(db, "export", "--to", src, "--experiment", "back", "--json").stdout
    assert json.loads(out) == {"exported": 2, "skipped": 0}
    assert json.loads(_cli(db, "export", "--to", src, "--experiment", "back", "--json").stdout) == {
        "exported": 0,
        "skipped": 2,
    }
    back = client.search_runs([client.get_experiment_by_name("back").experiment_id])
    assert sorted(r.data.tags["nbtrace.run_id"] for r in back) == sorted(
        [parent.info.run_id, child.info.run_id]
    )


def test_without_mlflow_installed_a_clear_line(tmp_path: Path) -> None:
    # MLflow made unimportable in that interpreter, as on a machine without nbtrace[mlflow]
    code = (
        "import sys; sys.modules['mlflow'] = None\n"
        "from nbtrace.cli import main\n"
        f"sys.exit(main(sys.argv[1:] + ['--db', {str(tmp_path / 'r.db')!r}]))"
    )
    for args in (["import", "mlflow+sqlite:///x.db"], ["export", "--to", "mlflow+sqlite:///x.db"]):
        out = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True)
        assert out.returncode == 1
        assert (
            out.stderr.strip()
            == 'nbtrace: error: MLflow is not installed: pip install "nbtrace[mlflow]"'
        )


@pytest.mark.postgres
def test_import_from_mlflow_on_postgresql(pg_store_url: str, tmp_path: Path) -> None:
    # MLflow's SQL store on the throwaway cluster, through psycopg 3 (SQLAlchemy's
    # postgresql+psycopg driver; plain postgresql:// would need psycopg2)
    uri = pg_store_url.replace("postgresql://", "postgresql+psycopg://", 1)
    client = MlflowClient(uri)
    plain = f"mlflow+{pg_store_url}"  # as users write it: nbtrace picks the installed driver
    exp_id = client.create_experiment("pg-exp", artifact_location=(tmp_path / "a").as_uri())
    run = client.create_run(exp_id, run_name="on-pg")
    client.log_batch(
        run.info.run_id,
        metrics=[Metric("loss", 1.0 / (s + 1), 1000 + s, s) for s in range(100)],
        params=[Param("alpha", "0.5")],
        tags=[RunTag("team", "db")],
    )
    client.set_terminated(run.info.run_id)
    db = str(tmp_path / "runs.db")
    out = json.loads(_cli(db, "import", plain, "--json").stdout)
    assert out["imported"] == 1 and out["metric_values"] == 100
    got = open_store(db).get_run(run.info.run_id, series=True)
    assert got["params"] == {"alpha": "0.5"} and got["tags"] == {"team": "db"}
    assert [p["step"] for p in got["series"]["loss"]] == list(range(100))
    assert json.loads(_cli(db, "import", f"mlflow+{uri}", "--json").stdout)["imported"] == 0


def test_json_export_keeps_mlflows_datasets_and_models(tmp_path: Path) -> None:
    db, other = str(tmp_path / "runs.db"), str(tmp_path / "other.db")
    read = """
    import json, mlflow
    mlflow.set_tracking_uri("nbtrace:///{db}")
    (run,) = mlflow.search_runs(experiment_ids=["0"], output_format="list")
    models = mlflow.search_logged_models(experiment_ids=["0"], output_format="list")
    print(json.dumps({{
        "datasets": sorted(d.dataset.digest for d in run.inputs.dataset_inputs),
        "outputs": [o.model_id for o in run.outputs.model_outputs],
        "models": [(m.model_id, m.source_run_id, m.params.get("alpha")) for m in models],
    }}))
    """
    _script(
        tmp_path,
        f"""
        import mlflow, mlflow.sklearn
        from sklearn.datasets import load_wine
        from sklearn.linear_model import ElasticNet
        mlflow.set_tracking_uri("nbtrace:///{db}")
        mlflow.sklearn.autolog()
        X, y = load_wine(return_X_y=True)
        with mlflow.start_run():
            ElasticNet(alpha=0.3).fit(X, y)
        print("{{}}")
        """,
    )
    before = _script(tmp_path, read.format(db=db))
    assert before["datasets"] and before["outputs"] and before["models"]
    _cli(db, "export", "--format", "json", "-o", str(tmp_path / "runs.json"))
    _cli(other, "import", str(tmp_path / "runs.json"))
    assert _script(tmp_path, read.format(db=other)) == before

"""The reproducibility verdict, part 2 (issue 10), with real kernels, files and the CLI.

Each test records a small notebook in a real ipykernel, changes something (a data file, a
helper module, nothing at all), re-executes the run with the engine or ``nbtrace rerun`` and
checks what the verdict says and why.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from kernels import run_notebook
from nbtrace.errors import UsageError
from nbtrace.rerun import rerun_run
from nbtrace.store import open_store


def record(tmp_path: Path, cells: list[str], env: dict[str, str] | None = None,
           **kw: Any) -> tuple[str, dict[str, Any]]:
    """Run ``cells`` in a real kernel; the store's path and its (only or named) run."""
    db = str(tmp_path / "runs.db")
    nb = run_notebook(cells, db, tmp_path, env=env, **kw)
    store = open_store(db)
    runs, _ = store.list_runs(limit=None)
    run = store.get_run(runs[-1]["id"])
    store.close()
    run["_nb"] = nb
    return db, run


def rerun(db: str, run_id: str, **kw: Any) -> dict[str, Any]:
    store = open_store(db)
    try:
        return rerun_run(store, run_id, **kw)
    finally:
        store.close()


def cli(db: str, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "nbtrace.cli", *args, "--db", db],
                          capture_output=True, text=True, check=check, timeout=600)


def kinds(verdict: dict[str, Any], kind: str) -> list[dict[str, Any]]:
    return [c for c in verdict["causes"] if c["kind"] == kind]


def test_fresh_randomness_without_metrics_is_not_reproduced(tmp_path: Path) -> None:
    db, run = record(tmp_path, [
        "%load_ext nbtrace",
        "import os, nbtrace\nprint('setup done')",
        "%%track_run noisy\nprint(os.urandom(8).hex())",
        # while the kernel is still open, the run cell's outputs are already in the store
        "rid = nbtrace.runs()[0]['id'] if isinstance(nbtrace.runs(), list) else"
        " nbtrace.runs()['id'][0]\nouts = nbtrace.api.tracker().store.get_run(rid)['outputs']\n"
        "print('sealed', [len(o['excerpt']) for o in outs if o['seq'] == 3])",
    ])
    assert run["metrics"] == {}
    assert "sealed [16]" in run["_nb"].cells[3].outputs[0]["text"]
    v = rerun(db, run["id"])["verdict"]
    assert v["status"] == "diverged"
    fd = v["first_divergence"]
    assert fd["position"] == 3 and fd["first_line"] == "%%track_run noisy"
    assert fd["original"] != fd["new"] and len(fd["original"]) == 16
    assert [o["status"] for o in v["outputs"]][:2] == ["reproduced", "reproduced"]


def test_changed_data_file_is_named_by_drift_and_causes(tmp_path: Path) -> None:
    (tmp_path / "data.csv").write_text("x\n1\n2\n")
    db, run = record(tmp_path, [
        "%load_ext nbtrace",
        "import nbtrace",
        "%%track_run sums\nimport pandas as pd\ndf = pd.read_csv('data.csv')\n"
        "nbtrace.log_metric('total', float(df.x.sum()))",
    ])
    data = str(tmp_path / "data.csv")
    assert [i for i in run["inputs"] if i["path"] == data and not i["declared"]]
    assert "pandas" in run["environment"]["imported"]  # imported inside the run
    (tmp_path / "data.csv").write_text("x\n1\n5\n")
    drift = json.loads(cli(db, "drift", run["id"], "--json").stdout)
    assert [f["path"] for f in drift["inputs"]] == [data] and drift["differs"]
    assert f"data file {data} changed" in cli(db, "drift", run["id"]).stdout
    v = rerun(db, run["id"])["verdict"]
    assert v["status"] == "diverged" and v["metrics"]["total"]["new"] == 6.0
    assert [c["name"] for c in kinds(v, "input")] == [data]
    assert v["code_matches"] is True


HELPER_V1 = "def score(x):\n    return x * 2\n"
HELPER_V2 = "def score(x):\n    return x * 3\n"


def test_changed_module_is_named_and_recorded_modules_reproduce(tmp_path: Path) -> None:
    (tmp_path / "helper.py").write_text(HELPER_V1)
    db, run = record(tmp_path, [
        "%load_ext nbtrace",
        "import nbtrace",
        "%%track_run mod\nimport helper\nnbtrace.log_metric('s', helper.score(21))",
    ])
    path = str(tmp_path / "helper.py")
    assert [(m["path"], m["stored"]) for m in run["modules"]] == [(path, True)]
    (tmp_path / "helper.py").write_text(HELPER_V2)
    drift = json.loads(cli(db, "drift", run["id"], "--json").stdout)
    assert [m["path"] for m in drift["modules"]] == [path]
    assert "+    return x * 3" in drift["modules"][0]["diff"]
    v = rerun(db, run["id"])["verdict"]
    assert v["status"] == "diverged" and v["code_matches"] is False
    (cause,) = kinds(v, "module")
    assert cause["name"] == path and "-    return x * 2" in cause["diff"]
    out = json.loads(cli(db, "rerun", run["id"], "--recorded-modules", "--json").stdout)
    assert out["verdict"]["status"] == "reproduced", out["verdict"]
    assert out["verdict"]["code_matches"] is True and not kinds(out["verdict"], "module")
    assert (tmp_path / "helper.py").read_text() == HELPER_V2  # the user's file is untouched


def test_declared_input_change_is_listed_even_when_reproduced(tmp_path: Path) -> None:
    (tmp_path / "points.csv").write_text("x\n1\n2\n3\n")
    db, run = record(tmp_path, [
        "%load_ext nbtrace",
        "import nbtrace",
        "%%track_run mean\nnbtrace.log_input('points.csv')\n"
        "vals = [float(v) for v in open('points.csv').read().split()[1:]]\n"
        "nbtrace.log_metric('mean', sum(vals) / len(vals))",
    ])
    assert [i["declared"] for i in run["inputs"]] == [True]
    (tmp_path / "points.csv").write_text("x\n2\n1\n3\n")  # two rows swapped
    v = rerun(db, run["id"])["verdict"]
    assert v["status"] == "reproduced"
    assert [c["name"] for c in kinds(v, "input")] == [str(tmp_path / "points.csv")]


def test_unseeded_default_rng_and_parallel_search_reproduce(tmp_path: Path) -> None:
    db, run = record(tmp_path, [
        "%load_ext nbtrace",
        "import nbtrace\nimport numpy as np",
        "%%track_run rng\nrng = np.random.default_rng()\nprint(rng.random(3))\n"
        "nbtrace.log_metric('g', float(np.random.default_rng().normal()))",
        "%%track_run search\nfrom sklearn.datasets import make_classification\n"
        "from sklearn.ensemble import RandomForestClassifier\n"
        "from sklearn.model_selection import RandomizedSearchCV\n"
        "X, y = make_classification(n_samples=120, n_features=6, random_state=0)\n"
        "search = RandomizedSearchCV(RandomForestClassifier(n_estimators=8),\n"
        "    {'max_depth': [2, 3, 4, None], 'min_samples_leaf': [1, 2, 4]}, n_iter=4, cv=3,\n"
        "    n_jobs=-1)\nsearch.fit(X, y)\nprint(search.cv_results_['mean_test_score'])\n"
        "nbtrace.log_metric('best', float(search.best_score_))",
    ], timeout=300)
    store = open_store(db)
    ids = {r["name"]: r["id"] for r in store.list_runs(limit=None)[0]}
    store.close()
    for name in ("rng", "search"):
        v = rerun(db, ids[name], timeout=300)["verdict"]
        assert v["status"] == "reproduced", (name, v)


def test_unseeded_random_instances_reproduce(tmp_path: Path) -> None:
    """``random.Random()`` without a seed (a common way to get a private generator) draws in
    the replay what it drew in the recording; ``tempfile``'s names stay unpredictable."""
    db, run = record(tmp_path, [
        "%load_ext nbtrace",
        "import random, tempfile\nimport nbtrace",
        "%%track_run private\nrng = random.Random()\n"
        "print(rng.random(), random.Random().random())\n"
        "print(next(tempfile._get_candidate_names()) != next(tempfile._get_candidate_names()))\n"
        "nbtrace.log_metric('r', rng.random())",
    ])
    v = rerun(db, run["id"])["verdict"]
    assert v["status"] == "reproduced", v


def test_clean_notebook_with_figure_dataframe_and_unseeded_random_reproduces(
    tmp_path: Path,
) -> None:
    db, run = record(tmp_path, [
        "%load_ext nbtrace",
        "import random, time\nimport numpy as np\nimport pandas as pd\n"
        "import matplotlib.pyplot as plt\n%matplotlib inline\nimport nbtrace",
        "%track_run clean\nprint('drew', random.random(), np.random.rand())\n"
        "t0 = time.time(); print(f'took {time.time() - t0:.4f} s at', time.ctime())\n"
        "class Thing: pass\nprint(Thing())\n"
        "nbtrace.log_metric('m', np.random.rand())",
        "fig, ax = plt.subplots()\nax.plot(np.random.rand(20))\nplt.show()",
        "pd.DataFrame({'a': np.random.rand(3), 'b': list('xyz')})",
        "%end_run",
    ])
    outs = {o["seq"]: o for o in run["outputs"]}
    assert any(i["kind"] == "image/png" for i in outs[run["cells"][3]["seq"]]["items"])
    assert any(i["kind"] == "text/html" for i in outs[run["cells"][4]["seq"]]["items"])
    v = rerun(db, run["id"])["verdict"]
    assert v["status"] == "reproduced", v
    assert v["first_divergence"] is None and not v["causes"]
    assert {o["status"] for o in v["outputs"]} == {"reproduced"}


def test_ignore_output_tags_leave_a_cell_out(tmp_path: Path) -> None:
    import nbformat

    from kernels import make_notebook

    nb = make_notebook([
        "%load_ext nbtrace",
        "import os, nbtrace",
        "%%track_run tagged\nprint(os.urandom(8).hex())\nnbtrace.log_metric('m', 1.0)",
        "print(os.urandom(8).hex())",
    ])
    nb.cells[2].metadata["tags"] = ["nbtrace-ignore-output"]
    nb.cells[3].metadata["tags"] = ["nbval-ignore-output"]
    db = str(tmp_path / "runs.db")
    run_notebook(nb, db, tmp_path)
    nbformat.write(nb, tmp_path / "nb.ipynb")
    store = open_store(db)
    run_id = store.list_runs()[0][0]["id"]
    store.close()
    v = rerun(db, run_id)["verdict"]
    assert v["status"] == "reproduced", v
    assert [o["status"] for o in v["outputs"]] == ["reproduced", "reproduced", "ignored"]


OLD_ELASTICNET_LOOP = (
    "for alpha in [0.1, 0.2]:\n"
    "    with nbtrace.start_run('enet'):\n"
    "        model = ElasticNet(alpha=alpha, random_state=42).fit(X, y)\n"
    "        nbtrace.log_params({'alpha': float(alpha)})\n"
    "        nbtrace.log_metric('MSE', mean_squared_error(y, model.predict(X)))"
)


def test_override_the_code_cannot_consume_is_refused_naming_the_cell(tmp_path: Path) -> None:
    db, run = record(tmp_path, [
        "%load_ext nbtrace",
        "import nbtrace\nfrom sklearn import datasets\n"
        "from sklearn.linear_model import ElasticNet\n"
        "from sklearn.metrics import mean_squared_error\n"
        "X, y = datasets.load_diabetes(return_X_y=True)",
        OLD_ELASTICNET_LOOP,
    ])
    with pytest.raises(UsageError, match=r"'alpha' cannot be overridden: cell 3 .*for alpha in"
                                         r".*log_params\(\.\.\.\) is called and its result"):
        rerun(db, run["id"], overrides={"alpha": 0.5})
    bad = cli(db, "rerun", run["id"], "--set", "alpha=0.5", check=False)
    assert bad.returncode != 0 and "cannot be overridden: cell 3" in bad.stderr
    drift = json.loads(cli(db, "drift", run["id"], "--json").stdout)
    assert drift["parameters"]["alpha"]["overridable"] is False
    store = open_store(db)
    assert len(store.list_runs(limit=None)[0]) == 2  # nothing was saved
    store.close()


def test_override_without_effect_is_flagged_and_not_claimed(tmp_path: Path) -> None:
    (tmp_path / "conf.py").write_text("import nbtrace\ndef setup(v):\n"
                                      "    nbtrace.log_param('k', v)\n")
    db, run = record(tmp_path, [
        "%load_ext nbtrace",
        "import nbtrace, conf",
        "%%track_run hidden\nk = 3\nconf.setup(k)\nnbtrace.log_metric('m', k * 2.0)",
    ])
    v = rerun(db, run["id"], overrides={"k": 7})
    assert v["verdict"]["override_without_effect"] is True
    store = open_store(db)
    new = store.get_run(v["run"])
    store.close()
    assert "k" not in new["params"] and new["tags"]["nbtrace.override_without_effect"] == "k=7"


def test_import_without_load_ext_records_only_what_was_in_force(tmp_path: Path) -> None:
    db, run = record(tmp_path, [
        # Both generators drawn from before nbtrace starts: their state is the user's, so they
        # must be neither reseeded nor recorded (NumPy 2 imports numpy.random only on use).
        "import numpy as np\nimport random\nx = random.random()\ny = np.random.rand()",
        "import nbtrace\nwith nbtrace.start_run('late'):\n"
        "    nbtrace.log_metric('m', float(np.random.rand()))",
    ])
    seeds = run["environment"]["seeds"]
    assert "numpy" not in seeds and "random" not in seeds
    assert len(run["cells"]) == 2  # taken from the history, as %load_ext does
    said = "".join(o.get("text", "") for o in run["_nb"].cells[1].outputs)
    assert "%load_ext nbtrace was not run" in said and "numpy" in said
    script = tmp_path / "job.py"
    script.write_text("import nbtrace\nwith nbtrace.start_run('script'):\n"
                      "    nbtrace.log_metric('m', 1.0)\n")
    out = subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                         env={**os.environ, "NBTRACE_DB": db}, check=True)
    assert "cannot be re-executed" in out.stderr


def test_determinism_settings_recorded_and_given_to_the_replay(tmp_path: Path) -> None:
    db, run = record(tmp_path, [
        "%load_ext nbtrace",
        "%%track_run det\nimport os, nbtrace\nprint(os.environ.get('OMP_NUM_THREADS'))\n"
        "nbtrace.log_metric('m', 1.0)",
    ], env={"OMP_NUM_THREADS": "1"})
    assert run["determinism"]["env"]["OMP_NUM_THREADS"] == "1"
    assert run["determinism"]["env"]["PYTHONHASHSEED"]
    env = {k: v for k, v in os.environ.items() if k != "OMP_NUM_THREADS"}
    out = subprocess.run([sys.executable, "-m", "nbtrace.cli", "rerun", run["id"], "--json",
                          "--db", db], env=env, capture_output=True, text=True, check=True)
    assert json.loads(out.stdout)["verdict"]["status"] == "reproduced"


# Thread-order noise: three threads add 1e16, 1.0 and -1e16 in the order they finish; float
# addition is not associative, so the sum is 0.0 or 1.0 depending on that order. Which thread
# finishes first is forced by a counter file (one order per execution), so the test is not
# left to the scheduler's luck: the original gets 1.0, the three replays 0.0, 1.0, 0.0.
NOISY = (
    "%%track_run noisy\nimport threading, os\n"
    "n = int(open('count.txt').read()) if os.path.exists('count.txt') else 0\n"
    "open('count.txt', 'w').write(str(n + 1))\n"
    "order = [[0, 2, 1], [0, 1, 2], [2, 0, 1], [1, 0, 2]][n % 4]\n"
    "vals, total, lock = [1e16, 1.0, -1e16], [0.0], threading.Lock()\n"
    "gates = [threading.Event() for _ in vals]\n"
    "def add(i):\n    gates[i].wait()\n    with lock:\n        total[0] += vals[i]\n"
    "    nxt = order.index(i) + 1\n    if nxt < len(order):\n        gates[order[nxt]].set()\n"
    "ts = [threading.Thread(target=add, args=(i,)) for i in range(3)]\n"
    "[t.start() for t in ts]; gates[order[0]].set(); [t.join() for t in ts]\n"
    "nbtrace.log_metric('sum', total[0])"
)


def test_repeat_reports_within_noise_when_the_spread_covers_the_original(tmp_path: Path) -> None:
    db, run = record(tmp_path, ["%load_ext nbtrace", "import nbtrace", NOISY])
    assert run["metrics"]["sum"] == 1.0
    out = json.loads(cli(db, "rerun", run["id"], "--repeat", "3", "--json").stdout)
    v = out["verdict"]
    assert v["status"] == "within_noise", v
    assert v["noise"]["sum"]["min"] == 0.0 and v["noise"]["sum"]["max"] == 1.0
    assert v["noise"]["sum"]["within"] is True and v["repeats"] == 3
    text = cli(db, "rerun", run["id"], "--repeat", "2").stdout  # counters 4, 5: 1.0, 0.0
    assert "noise sum: min 0.0 max 1.0" in text


def test_big_data_file_is_hashed_partially_off_the_cell(tmp_path: Path) -> None:
    big = tmp_path / "big.bin"
    with open(big, "wb") as f:
        f.truncate(1 << 30)  # 1 GiB, sparse: nothing is written to the disk
    db, run = record(tmp_path, [
        "%load_ext nbtrace",
        "%%track_run big\nimport nbtrace\nwith open('big.bin', 'rb') as f:\n    f.read(16)\n"
        "nbtrace.log_metric('m', 1.0)",
    ])
    (item,) = [i for i in run["inputs"] if i["path"] == str(big)]
    assert item["partial"] is True and item["size"] == 1 << 30
    assert "first and last MiB" in cli(db, "show", run["id"]).stdout

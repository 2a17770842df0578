"""Migration 0003_verdict on SQLite and PostgreSQL: the run object's new keys, export/import
losslessly, ``nbtrace show`` and the ops' idempotence; and the verdict's pure parts."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from typing import Any

import pytest

from nbtrace.capture.outputs import OutputRecorder, normalize
from nbtrace.errors import UsageError
from nbtrace.hashing import sha256_text, stable_hash
from nbtrace.rerun.judge import compare_text
from nbtrace.rerun.noise import add_noise
from nbtrace.rerun.overrides import overridability
from nbtrace.store import open_store

IMG = "iVBORw0KGgo="  # the PNG signature, base64


def blob(kind: str, data: Any) -> tuple[str, tuple]:
    """A blob op keyed as the kernel keys it (and as import checks it)."""
    h = stable_hash([kind, data])
    return h, ("blob", h, kind, json.dumps(data, sort_keys=True))


SRC = "def f(): pass"
CELL = "print(1)"


def capture_ops(run_id: str, kernel: str) -> list[tuple]:
    rec = OutputRecorder()
    rec.stream("stdout", "score 0.5 at 0x7fdeadbeef00\n")
    rec.data({"text/plain": "<Figure>", "image/png": IMG})
    fp, excerpt, data, images = rec.seal()
    ((img_key, image),) = images.items()
    modules = [{"path": "/p/helper.py", "name": "helper", "sha256": sha256_text(SRC),
                "size": 13, "stored": True}]
    inputs = [{"path": "/p/data.csv", "sha256": "b" * 64, "size": 4, "mtime": 1.5,
               "partial": False}]
    det = {"env": {"OMP_NUM_THREADS": "1"}, "hash_randomization": True}
    mh, mop = blob("modules", modules)
    ih, iop = blob("inputs", inputs)
    dh, dop = blob("determinism", det)
    ikey, imgop = blob("image", image)
    assert ikey == img_key
    now = time.time()
    return [
        ("kernel", kernel, now, "h", "u", 1, "python3", sys.executable, "/p/nb.ipynb", "{}"),
        ("source", sha256_text(CELL), CELL),
        ("source", sha256_text(SRC), SRC),
        ("cell", kernel, 1, 1, None, sha256_text(CELL), 0),
        mop, iop, dop, imgop,
        ("run_start", {"id": run_id, "name": "r", "status": "running", "started_at": now,
                       "kernel_id": kernel, "start_seq": 1, "cell_index": 0}),
        ("input", run_id, "/p/data.csv", "b" * 64, 4),
        ("param", run_id, "k", "1", 1.0, "1"),
        ("run_end", run_id, "finished", now + 1, 1, "{}"),
        ("capture", run_id, mh, ih, dh, json.dumps({"numpy": "2"})),
        ("output", kernel, 1, fp, excerpt, json.dumps(data)),
    ]


@pytest.fixture(params=["sqlite", "postgresql"])
def location(request: pytest.FixtureRequest, tmp_path: Any) -> str:
    if request.param == "sqlite":
        return str(tmp_path / "runs.db")
    return request.getfixturevalue("pg_store_url")


def test_capture_in_run_object_and_lossless_export(location: str, tmp_path: Any) -> None:
    store = open_store(location)
    ops = capture_ops("run1", "k1")
    store.apply(ops)
    store.apply(ops)  # idempotent
    bad = json.loads(json.dumps(next(iter(store.export_runs()))))
    bad["outputs"][0][1] = "not a hash"
    with pytest.raises(UsageError, match="refused import: run 'run1': outputs\\[0\\]"):
        open_store(str(tmp_path / "third.db")).import_run(bad)
    run = store.get_run("run1")
    assert run["modules"] == [{"path": "/p/helper.py", "name": "helper",
                               "sha256": sha256_text(SRC), "size": 13, "stored": True}]
    assert run["inputs"] == [{"path": "/p/data.csv", "sha256": "b" * 64, "size": 4,
                              "mtime": 1.5, "declared": True, "partial": False}]
    assert run["determinism"]["env"] == {"OMP_NUM_THREADS": "1"}
    assert run["environment"]["imported"] == {"numpy": "2"}
    (out,) = run["outputs"]
    assert out["excerpt"].startswith("score 0.5 at 0x7fdeadbeef00")
    assert {i["kind"] for i in out["items"]} == {"stdout", "text/plain", "image/png"}
    sha = next(i["blob"] for i in out["items"] if i["kind"] == "image/png")
    assert store.image(sha) == {"mime": "image/png", "b64": IMG}
    assert store.source(sha256_text(SRC)) == SRC
    (doc,) = list(store.export_runs())
    other = open_store(str(tmp_path / "other.db"))
    assert other.import_run(json.loads(json.dumps(doc))) is True
    again = other.get_run("run1")
    for key in ("modules", "inputs", "determinism", "outputs"):
        assert again[key] == run[key], key
    assert again["environment"]["imported"] == run["environment"]["imported"]
    assert other.image(sha) == store.image(sha) and other.source(sha256_text(SRC)) == SRC
    store.apply([("param_delete", "run1", "k")])
    assert store.get_run("run1")["params"] == {}
    store.delete_run("run1")
    store.close()
    other.close()


def test_show_prints_the_capture(tmp_path: Any) -> None:
    db = str(tmp_path / "runs.db")
    store = open_store(db)
    store.apply(capture_ops("run2", "k2"))
    store.close()
    out = subprocess.run([sys.executable, "-m", "nbtrace.cli", "show", "run2", "--db", db],
                         capture_output=True, text=True, check=True).stdout
    assert "module: /p/helper.py 13 bytes" in out
    assert "determinism: OMP_NUM_THREADS=1" in out
    assert "output of seq 1" in out and "input (declared): /p/data.csv" in out


def test_normalisation_keeps_numbers_and_drops_noise() -> None:
    a = normalize("<Foo at 0x7f12ab34cd56> took 1.25 s on 2026-12-01 20:14:11\n"
                  " 50%|#| [00:01<00:01, 2.0it/s]\r100%|##| 2/2 [00:02<00:00, 1.0it/s]\n"
                  "loss 0.25\n")
    b = normalize("<Foo at 0x7f99ab34cd00> took 0.5 s on 2026-12-02 01:00:00\n"
                  "100%|##| 2/2 [00:03<00:00, 0.7it/s]\nloss 0.25\n")
    assert a == b
    assert compare_text("loss 0.25", "loss 0.2500000000001", 1e-9) == "within_tolerance"
    assert compare_text("loss 0.25", "loss 0.26", 1e-9) == "diverged"
    assert compare_text("id 3f9a", "id 77b3", 1e-9) == "diverged"


def test_noise_says_outside_when_replays_agree_with_each_other() -> None:
    verdict = {"status": "diverged"}
    replays = [{"id": f"r{i}", "metrics": {"m": 2.0}, "cells": [], "outputs": []}
               for i in range(3)]
    out = add_noise(dict(verdict), {"metrics": {"m": 1.0}}, replays,
                    [{"status": "diverged", "outputs": []}] * 3)
    assert out["status"] == "diverged" and out["noise"]["m"]["within"] is False


def test_overridability_idioms() -> None:
    cells = [
        {"seq": 1, "source": "%log_param a=1 b=2\n%log_metric s=a * 10"},
        {"seq": 2, "source": "c = nbtrace.log_param('c', 3)\nfit(c)"},
        {"seq": 3, "source": "fit(d)\nnbtrace.log_param('d', d)"},
        {"seq": 4, "source": "fit(e)\ne = nbtrace.log_param('e', e)"},
    ]
    got = overridability(cells, ["a", "b", "c", "d", "e", "f"])
    assert [got[k]["overridable"] for k in "abcdef"] == [True, False, True, False, False, True]
    assert "cell 3 (seq 3" in got["d"]["reason"] and "discarded" in got["d"]["reason"]
    assert "not used after" in got["e"]["reason"]


def test_drift_shows_diffs_only_of_files_below_the_servers_root(tmp_path: Any) -> None:
    from nbtrace.rerun.drift import files_drift

    secret = tmp_path / "outside" / "helper.py"
    secret.parent.mkdir()
    secret.write_text("TOKEN = 'now'\n")
    recorded = "TOKEN = 'then'\n"
    modules = [{"path": str(secret), "name": "helper", "sha256": sha256_text(recorded),
                "size": len(recorded), "stored": True}]
    store = open_store(str(tmp_path / "runs.db"))
    mh, mop = blob("modules", modules)
    store.apply([("source", sha256_text(recorded), recorded), mop,
                 ("run_start", {"id": "imp", "name": "r", "status": "finished",
                                "started_at": time.time()}),
                 ("capture", "imp", mh, None, None, None)])
    run = store.get_run("imp")
    (inside,) = files_drift(store, run, root_dir=str(tmp_path / "root"))["modules"]
    assert inside["current"] and "diff" not in inside  # outside the root: hash only
    (local,) = files_drift(store, run)["modules"]  # the CLI, as the local user
    assert "+TOKEN = 'now'" in local["diff"]
    store.close()

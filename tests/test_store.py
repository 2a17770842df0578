"""The store contract, run against both engines: the SQLite file and the PostgreSQL team store.

Given a fresh store (``store``: a SQLite file in a temp dir, or an empty database on the
throwaway PostgreSQL cluster of :mod:`pgcluster`), when kernels' ops are applied through
:meth:`Store.apply` and read back through the read API, then both engines give the same
answers. Every test here runs twice; none is specific to one engine.
"""

from __future__ import annotations

import base64
import hashlib
import json
import math
import os
import random
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from nbtrace.errors import (
    AmbiguousIdError,
    ConflictError,
    NBTraceError,
    NotFoundError,
    QueryError,
    UsageError,
)
from nbtrace.hashing import stable_hash
from nbtrace.jsonutil import param_number, param_to_json
from nbtrace.store import Store, open_store
from nbtrace.store import ops as op

BACKENDS = ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
HOST = socket.gethostname()
T0 = 1_750_000_000.0


# --------------------------------------------------------------------------- fixtures
def _location(kind: str, request: pytest.FixtureRequest, tmp_path: Path, tag: str = "") -> str:
    if kind == "sqlite":
        return str(tmp_path / f"runs{tag}.db")
    if tag:  # a second PostgreSQL database for the same test
        cluster = request.getfixturevalue("pg_cluster")
        name = cluster.create_database("o")
        request.addfinalizer(lambda: cluster.drop_database(name))
        return cluster.url(name)
    return request.getfixturevalue("pg_store_url")


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture
def store_url(backend: str, request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The location of a fresh, empty store of the engine under test."""
    return _location(backend, request, tmp_path)


@pytest.fixture
def store(store_url: str) -> Iterator[Store]:
    s = open_store(store_url)
    try:
        yield s
    finally:
        s.close()


@pytest.fixture
def other_store(backend: str, request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    """A fresh store of the *other* engine (export from one, import into the other)."""
    other = "postgres" if backend == "sqlite" else "sqlite"
    s = open_store(_location(other, request, tmp_path, tag="-other"))
    try:
        yield s
    finally:
        s.close()


# --------------------------------------------------------------------------- op builders
def sha(text: str | bytes) -> str:
    return hashlib.sha256(text.encode() if isinstance(text, str) else text).hexdigest()


def kernel_op(
    kernel_id: str = "k1", host: str = HOST, pid: int | None = None, started: float = T0
) -> tuple:
    return op.kernel(
        kernel_id,
        started,
        host,
        "ana",
        pid or os.getpid(),
        "python3",
        sys.executable,
        "/home/ana/nb.ipynb",
        json.dumps({"random": 1234}),
    )


def run_start(run_id: str, name: str = "train", started: float = T0, **fields: Any) -> tuple:
    row = {
        "id": run_id,
        "name": name,
        "status": "running",
        "started_at": started,
        "heartbeat_at": started,
        "user_name": "ana",
        "host": HOST,
        "pid": os.getpid(),
    }
    row.update(fields)
    return op.run_start(row)


def param_op(run_id: str, key: str, value: Any) -> tuple:
    text = value if isinstance(value, str) else param_to_json(value)
    return op.param(run_id, key, param_to_json(value), param_number(value), text)


def run_end(
    run_id: str, status: str = "finished", ended: float = T0 + 60, last_seq: int | None = None
) -> tuple:
    res = json.dumps({"wall_s": 60.0, "cpu_s": 12.5, "peak_rss_bytes": 123456789})
    return op.run_end(run_id, status, ended, last_seq, res)


def simple_run(
    store: Store,
    run_id: str,
    name: str = "train",
    started: float = T0,
    status: str = "finished",
    params: dict[str, Any] | None = None,
    metrics: dict[str, float] | None = None,
    tags: dict[str, str] | None = None,
    **fields: Any,
) -> None:
    ops: list[tuple] = [run_start(run_id, name, started, **fields)]
    ops += [param_op(run_id, k, v) for k, v in (params or {}).items()]
    ops += [
        op.metric(run_id, k, i + 1, None, started + 1, float(v))
        for i, (k, v) in enumerate((metrics or {}).items())
    ]
    ops += [op.tag(run_id, k, v) for k, v in (tags or {}).items()]
    if status != "running":
        ops.append(run_end(run_id, status, started + 60))
    store.apply(ops)


def full_run_ops(
    run_id: str, kernel_id: str, started: float = T0, parent: str | None = None, blob_tag: str = ""
) -> list[tuple]:
    """Every kind of op, so that an export/import round trip has every field to lose."""
    sources = ["import numpy as np\n", "%log_param alpha=0.5", "1/0  # oops", "%track_run fit"]
    ops: list[tuple] = [kernel_op(kernel_id, started=started - 10, pid=99999)]
    ops += [op.source(sha(s), s) for s in sources]
    ops += [
        op.cell(kernel_id, i + 1, i + 1, f"cell-{i}", sha(s), int(i == 2))
        for i, s in enumerate(sources)
    ]
    nb = [sha(s) for s in sources]
    env = {
        "python": "3.12.1",
        "executable": sys.executable,
        "platform": "Linux-6.1-x86_64",
        "hostname": "gpu-1",
        "cpu": "Xeon",
        "cpu_count": 8,
        "memory_bytes": 2**34,
        "gpus": [{"name": "A100", "memory_bytes": 2**35}],
        "tag": blob_tag,
    }
    git = {
        "commit": "a" * 40,
        "branch": "main",
        "dirty": True,
        "diff": "+x = 1\n",
        "remote": "https://github.com/o/r.git",
    }
    # Content-addressed keys as the kernel makes them (import verifies every one).
    h_nb, h_env, h_git = (
        stable_hash([kind, x]) for kind, x in (("notebook", nb), ("environment", env), ("git", git))
    )
    pkgs = [("numpy", "1.26.4"), ("scikit-learn", "1.5.0"), ("pandas", "2.2.2")]
    h_pkg = stable_hash(sorted(pkgs))
    ops += [
        op.blob(h_nb, "notebook", json.dumps(nb)),
        op.blob(h_env, "environment", json.dumps(env)),
        op.blob(h_git, "git", json.dumps(git)),
        op.packages(h_pkg, pkgs),
    ]
    ops.append(
        run_start(
            run_id,
            "fit",
            started,
            experiment="sweep",
            kernel_id=kernel_id,
            kernel_name="python3",
            start_seq=3,
            cell_index=0,
            notebook_path="/home/ana/nb.ipynb",
            notebook_hash=h_nb,
            env_hash=h_env,
            packages_hash=h_pkg,
            git_hash=h_git,
            imported=json.dumps({"numpy": "1.26.4"}),
            env_vars=json.dumps({"OMP_NUM_THREADS": "4"}),
            note="first try",
            parent=parent,
            extra=json.dumps({"loop_index": 0}),
            pid=99999,
        )
    )
    for k, v in {
        "alpha": 0.5,
        "epochs": 10,
        "use_gpu": True,
        "model": "enet",
        "layers": [64, 32],
        "seed": None,
    }.items():
        ops.append(param_op(run_id, k, v))
    values = [3.5, 2.25, math.nan, math.inf, -math.inf, 1.0]
    ops += [op.metric(run_id, "loss", i + 1, i * 10, started + i, v) for i, v in enumerate(values)]
    ops.append(op.metric(run_id, "mse", 7, None, started + 7, 1234.5))
    ops += [op.tag(run_id, "model", "enet"), op.tag(run_id, "stage", "dev")]
    data = bytes(range(256)) * 4
    ops.append(op.artifact(run_id, "model.bin", sha(data), len(data), data))
    ops.append(op.input(run_id, "data/train.csv", "c" * 64, 1000))
    ops.append(run_end(run_id, "finished", started + 60, last_seq=4))
    return ops


def count(store: Store, table: str, where: str = "1=1", args: tuple = ()) -> int:
    """Rows of ``table`` (store internals: checks what is stored once)."""
    b = store.backend  # type: ignore[attr-defined]
    with b.cursor(False) as cur:
        cur.execute(b.sql(f"SELECT count(*) FROM {table} WHERE {where}"), args)
        return int(cur.fetchone()[0])


def table_counts(store: Store) -> dict[str, int]:
    tables = (
        "kernels",
        "sources",
        "cells",
        "blobs",
        "package_versions",
        "runs",
        "params",
        "metrics",
        "latest_metrics",
        "tags",
        "artifacts",
        "artifact_blobs",
        "inputs",
    )
    return {t: count(store, t) for t in tables}


def ids(runs: list[dict[str, Any]]) -> list[str]:
    return [r["id"] for r in runs]


# --------------------------------------------------------------------------- lifecycle
def test_run_lifecycle(store: Store) -> None:
    store.apply([kernel_op(), run_start("aa01", "train", kernel_id="k1", start_seq=1)])
    run = store.get_run("aa01")
    assert run["status"] == "running" and run["ended_at"] is None
    assert run["started_at"] == "2025-06-15T15:06:40.000Z"
    assert run["user"] == "ana" and run["host"] == HOST

    store.apply([op.heartbeat("aa01", T0 + 30), run_end("aa01", "failed", T0 + 60)])
    run = store.get_run("aa01")
    assert run["status"] == "failed"
    assert run["ended_at"] == "2025-06-15T15:07:40.000Z"
    assert run["duration_s"] == pytest.approx(60.0)
    assert run["resources"] == {"wall_s": 60.0, "cpu_s": 12.5, "peak_rss_bytes": 123456789}
    runs, total = store.list_runs()
    assert total == 1 and runs[0]["status"] == "failed"
    with pytest.raises(UsageError):
        store.apply([("no_such_op", 1)])


def test_run_started_and_ended_in_one_batch_reads_as_two_batches(store: Store) -> None:
    """A batch holding both ends of a run (a loop of short runs) is written as one finished
    row; it must read exactly as the same ops applied in two batches, and stay idempotent."""
    start = run_start("bb01", "short", kernel_id="k1", start_seq=3, git_hash=None)
    ops = [kernel_op(), start, op.heartbeat("bb01", T0 + 30), run_end("bb01", "failed",
                                                                      T0 + 60, last_seq=4)]
    store.apply(ops)
    store.apply([kernel_op(), run_start("bb02", "short", kernel_id="k1", start_seq=3)])
    store.apply([op.heartbeat("bb02", T0 + 30), run_end("bb02", "failed", T0 + 60, last_seq=4)])
    one, two = store.get_run("bb01"), store.get_run("bb02")
    for key in ("status", "started_at", "ended_at", "duration_s", "resources", "name"):
        assert one[key] == two[key], key
    assert one["status"] == "failed" and one["ended_at"] == "2025-06-15T15:07:40.000Z"
    assert start[1]["status"] == "running"  # the caller's op is not changed (it may be retried)
    store.apply(ops)  # applied again (a retried batch): nothing changes, nothing duplicates
    assert store.get_run("bb01") == one
    assert store.list_runs()[1] == 2


def test_params_keep_their_json_types(store: Store) -> None:
    values = {
        "i": 3,
        "big": 2**53 + 1,
        "f": 0.1,
        "neg": -2.5e-300,
        "t": True,
        "fl": False,
        "s": "enet",
        "num_str": "42",
        "none": None,
        "lst": [1, "a", None, 2.5],
        "obj": {"a": [1, 2]},
        "nan": math.nan,
        "inf": -math.inf,
        "uni": "ünï 🎉",
    }
    simple_run(store, "bb01", params=values)
    got = store.get_run("bb01")["params"]
    listed = store.list_runs()[0][0]["params"]
    for p in (got, listed):
        assert set(p) == set(values)
        for k, v in values.items():
            if isinstance(v, float) and math.isnan(v):
                assert math.isnan(p[k])
            else:
                assert p[k] == v and type(p[k]) is type(v), k
    assert ids(store.list_runs("params.i = 3 and params.t = true and params.s = 'enet'")[0]) == [
        "bb01"
    ]
    assert ids(store.list_runs("params.f > 0.05 and params.num_str = '42'")[0]) == ["bb01"]
    assert store.list_runs("params.fl = true")[1] == 0


def test_nonfinite_metrics_round_trip(store: Store) -> None:
    values = [math.nan, math.inf, -math.inf, 0.0, -0.0, 5e-324, 1.7976931348623157e308]
    store.apply(
        [run_start("cc01")]
        + [op.metric("cc01", "m", i + 1, i, T0 + i, v) for i, v in enumerate(values)]
    )
    series = store.metric_series("cc01", "m")
    assert [s["step"] for s in series] == list(range(len(values)))
    got = [s["value"] for s in series]
    assert math.isnan(got[0]) and got[1] == math.inf and got[2] == -math.inf
    assert got[3:] == values[3:]  # (-0.0 may come back as 0.0: SQLite does not keep the sign)
    for last in (math.nan, math.inf, -math.inf):
        store.apply([op.metric("cc01", "last", int(T0) + len(str(last)), None, T0, last)])
    # latest = highest seq: -inf has the longest str
    assert store.get_run("cc01")["metrics"]["last"] == -math.inf
    store.apply([op.metric("cc01", "n", 1, None, T0, math.nan)])
    assert math.isnan(store.list_runs()[0][0]["metrics"]["n"])
    assert ids(store.list_runs("metrics.last < 0")[0]) == ["cc01"]
    assert store.list_runs("metrics.n > 0 or metrics.n < 0 or metrics.n = 0")[1] == 0


def test_metric_series_order_and_latest(store: Store) -> None:
    store.apply([run_start("dd01")])
    # Logged out of step order; two batches, the second holding older seqs.
    store.apply(
        [
            op.metric("dd01", "loss", seq, step, T0 + seq, float(seq))
            for seq, step in ((1, 10), (2, 5), (5, 20))
        ]
    )
    store.apply(
        [
            op.metric("dd01", "loss", seq, step, T0 + seq, float(seq))
            for seq, step in ((3, None), (4, 7))
        ]
    )
    series = store.metric_series("dd01", "loss")
    assert [(s["step"], s["value"]) for s in series] == [
        (10, 1.0),
        (5, 2.0),
        (None, 3.0),
        (7, 4.0),
        (20, 5.0),
    ]
    assert series[0]["timestamp"] == "2025-06-15T15:06:41.000Z"
    assert store.get_run("dd01")["metrics"] == {"loss": 5.0}
    assert store.get_run("dd01", series=True)["series"]["loss"] == series
    with pytest.raises(NotFoundError):
        store.metric_series("dd01", "nope")


def test_tags_upsert_and_remove(store: Store) -> None:
    simple_run(store, "ee01", tags={"model": "enet", "stage": "dev"})
    store.apply([op.tag("ee01", "model", "ridge")])
    assert store.get_run("ee01")["tags"] == {"model": "ridge", "stage": "dev"}
    run = store.update_run(
        "ee01", name="renamed", tags={"stage": None, "new": "1", "model": "x"}, note="a note"
    )
    assert run["tags"] == {"model": "x", "new": "1"} and run["name"] == "renamed"
    assert run["note"] == "a note"
    assert store.list_runs("tags.new = 1")[1] == 1
    assert store.list_runs("tags.stage = 'dev'")[1] == 0
    with pytest.raises(UsageError):
        store.update_run("ee01", name="  ")
    with pytest.raises(UsageError):
        store.update_run("ee01", tags={"": "v"})
    with pytest.raises(NotFoundError):
        store.update_run("ffff", name="x")


def test_cells_and_sources_are_stored_once(store: Store) -> None:
    src = "x = 1\nprint(x)\n"
    ops = []
    for k in ("k1", "k2"):
        ops += [kernel_op(k), op.source(sha(src), src)]
        ops += [op.cell(k, seq, seq, "c", sha(src), 0) for seq in (1, 2, 3)]
    store.apply(ops)
    store.apply([op.source(sha(src), src), op.cell("k1", 2, 2, "c", sha(src), 1)])  # upsert
    assert count(store, "sources") == 1
    assert count(store, "cells") == 6
    store.apply([run_start("ff01", kernel_id="k1", start_seq=2), run_end("ff01", last_seq=3)])
    cells = store.get_run("ff01")["cells"]
    assert [(c["seq"], c["error"], c["in_run"]) for c in cells] == [
        (1, False, False),
        (2, True, True),
        (3, False, True),
    ]
    assert {c["source"] for c in cells} == {src}


def test_package_sets_stored_once_for_330_runs(store: Store) -> None:
    pkgs = [(f"pkg-{i:03d}", f"1.{i}.0") for i in range(120)]
    h = sha(repr(pkgs))
    store.apply([kernel_op("k1")])
    for batch in range(0, 330, 30):
        ops: list[tuple] = []
        for i in range(batch, batch + 30):
            rid = f"{i:04d}aa"
            ops += [
                op.packages(h, pkgs),
                run_start(rid, kernel_id="k1", packages_hash=h, started=T0 + i),
                run_end(rid, ended=T0 + i + 1),
            ]
        store.apply(ops)
    assert count(store, "runs") == 330
    assert count(store, "package_versions") == len(pkgs)
    assert store.get_run("0329aa")["environment"]["packages"] == dict(pkgs)
    assert store.list_runs("env.pkg-007 >= 1.7.0 and env.pkg-007 < 1.10", limit=0)[1] == 330


def test_resolve_run_id(store: Store) -> None:
    for rid in ("abc123", "abc456", "abd789", "zz"):
        simple_run(store, rid)
    assert store.resolve_run_id("abc123") == "abc123"
    assert store.resolve_run_id("abd") == "abd789"
    assert store.resolve_run_id(" abc4 ") == "abc456"
    assert store.resolve_run_id("zz") == "zz"
    with pytest.raises(AmbiguousIdError) as exc:
        store.resolve_run_id("ab")
    assert "abc123" in str(exc.value) and "abd789" in str(exc.value)
    for bad in ("nope", "", "abc1234", "a%", "a_", "'; DROP TABLE runs; --", "x" * 10_000):
        with pytest.raises(NotFoundError):
            store.resolve_run_id(bad)
    with pytest.raises(NotFoundError):
        store.get_run("zzz")


def test_list_runs_filter_sort_limit_offset_total(store: Store) -> None:
    for i in range(25):
        simple_run(
            store,
            f"{i:02d}ff",
            name=f"run-{i:02d}",
            started=T0 + i * 100,
            status="failed" if i % 5 == 0 else "finished",
            params={"alpha": i / 10, "model": "enet" if i % 2 else "ridge"},
            metrics={"mse": 1000.0 - i * 7 if i != 3 else math.nan},
            tags={"grp": "a" if i < 12 else "b"},
            experiment="sweep" if i < 20 else None,
        )
    runs, total = store.list_runs()
    assert total == 25 and len(runs) == 25
    assert ids(runs) == [f"{i:02d}ff" for i in reversed(range(25))]  # newest first

    expected = [f"{i:02d}ff" for i in range(25) if i / 10 > 1 and i % 2 and i != 3]
    runs, total = store.list_runs("params.alpha > 1 and params.model = 'enet'", sort="started_at")
    assert ids(runs) == expected and total == len(expected)

    runs, total = store.list_runs("metrics.mse < 900", sort="-metrics.mse")
    mses = [r["metrics"]["mse"] for r in runs]
    assert mses == sorted(mses, reverse=True) and total == len(mses) == 10

    runs, total = store.list_runs(sort="metrics.mse", limit=5, offset=5)
    assert total == 25 and len(runs) == 5
    full = ids(store.list_runs(sort="metrics.mse", limit=None)[0])
    assert ids(runs) == full[5:10] and full[-1] == "03ff"  # NaN sorts last

    assert store.list_runs("status = 'failed'")[1] == 5
    assert store.list_runs("tags.grp = 'b' and (status = 'failed' or name like 'RUN-2%')")[1] == 6
    assert store.list_runs("experiment = 'sweep'", limit=0) == ([], 20)
    assert store.list_runs(limit=3, offset=24)[0][0]["id"] == "00ff"
    assert ids(store.list_runs(sort="name desc", limit=2)[0]) == ["24ff", "23ff"]
    with pytest.raises(QueryError):
        store.list_runs("params.alpha >")
    with pytest.raises(QueryError):
        store.list_runs(sort="nonsense")
    with pytest.raises(UsageError):
        store.list_runs(limit=-1)


def test_artifact_bytes_round_trip(store: Store) -> None:
    small = bytes(range(256))
    big = random.Random(1).randbytes(1_000_000)
    store.apply(
        [
            run_start("aa11"),
            op.artifact("aa11", "all.bin", sha(small), len(small), small),
            op.artifact("aa11", "big.bin", sha(big), len(big), big),
            op.artifact("aa11", "empty", sha(b""), 0, b""),
        ]
    )
    for name, data in (("all.bin", small), ("big.bin", big), ("empty", b"")):
        got, meta = store.artifact("aa11", name)
        assert type(got) is bytes and got == data
        assert meta == {"name": name, "sha256": sha(data), "size": len(data)}
    assert [a["name"] for a in store.get_run("aa11")["artifacts"]] == [
        "all.bin",
        "big.bin",
        "empty",
    ]
    with pytest.raises(NotFoundError):
        store.artifact("aa11", "missing")


def test_delete_run(store: Store) -> None:
    data = b"shared bytes"
    for rid in ("de01", "de02"):
        store.apply(
            full_run_ops(rid, "k-" + rid)[:-1]
            + [op.artifact(rid, "shared", sha(data), len(data), data), run_end(rid)]
        )
    store.apply([run_start("de03", host=HOST, pid=os.getpid())])
    with pytest.raises(ConflictError):
        store.delete_run("de03")
    store.delete_run("de01")
    with pytest.raises(NotFoundError):
        store.get_run("de01")
    for table in ("params", "metrics", "latest_metrics", "tags", "artifacts", "inputs"):
        assert count(store, table, "run_id = ?", ("de01",)) == 0, table
    assert store.artifact("de02", "shared")[0] == data  # still used by de02: kept
    store.delete_run("de02")
    assert count(store, "artifact_blobs") == 0
    assert ids(store.list_runs()[0]) == ["de03"]


def test_export_import_into_the_other_engine(store: Store, other_store: Store) -> None:
    store.apply(full_run_ops("0a0a0a", "kern-a"))
    store.apply(full_run_ops("0b0b0b", "kern-b", started=T0 + 100, parent="0a0a0a", blob_tag="b"))
    verdict = {
        "status": "diverged",
        "metrics": {"mse": {"original": 1.0, "new": 2.0, "delta": 1.0}},
        "environment_diff": {"changed": {"numpy": ["1.26.4", "2.0.0"]}},
        "code_matches": True,
        "error": None,
    }
    store.set_verdict("0b0b0b", verdict)
    docs = list(store.export_runs())
    assert [d["run"]["id"] for d in docs] == ["0a0a0a", "0b0b0b"]
    docs = json.loads(json.dumps(docs))  # through JSON, as `nbtrace export` writes them
    assert [other_store.import_run(d) for d in docs] == [True, True]
    before = table_counts(other_store)
    assert [other_store.import_run(d) for d in docs] == [False, False]
    assert table_counts(other_store) == before

    for rid in ("0a0a0a", "0b0b0b"):
        a, b = store.get_run(rid, series=True), other_store.get_run(rid, series=True)
        loss_a, loss_b = a["series"].pop("loss"), b["series"].pop("loss")
        assert a == b
        assert [(s["step"], s["timestamp"]) for s in loss_a] == [
            (s["step"], s["timestamp"]) for s in loss_b
        ]
        assert math.isnan(loss_b[2]["value"]) and loss_b[3:5] == loss_a[3:5]
        assert b["verdict"] == (verdict if rid == "0b0b0b" else None)
    b = other_store.get_run("0b0b0b")
    assert b["parent"] == "0a0a0a" and b["params"]["layers"] == [64, 32]
    assert b["environment"]["packages"]["numpy"] == "1.26.4"
    assert b["environment"]["gpus"] == [{"name": "A100", "memory_bytes": 2**35}]
    assert b["environment"]["seeds"] == {"random": 1234}
    assert b["git"]["dirty"] is True and b["notebook"]["cells"] == [c["sha256"] for c in b["cells"]]
    assert [c["in_run"] for c in b["cells"]] == [False, False, True, True]
    assert other_store.artifact("0b0b0b", "model.bin")[0] == bytes(range(256)) * 4
    assert ids(other_store.children("0a0a0a")) == ["0b0b0b"]
    assert other_store.children("0a0a0a")[0]["verdict"] == verdict

    def canon(doc: dict[str, Any]) -> str:
        doc = dict(doc)
        for k in ("params", "tags", "inputs", "artifacts", "packages", "cells"):
            doc[k] = sorted(doc[k])
        return json.dumps(doc, sort_keys=True)

    assert [canon(d) for d in other_store.export_runs()] == [canon(d) for d in docs]


def test_jobs(store: Store) -> None:
    simple_run(store, "f00d01")
    base = {
        "run_id": "f00d01",
        "state": "queued",
        "request": {"overrides": {"alpha": 0.3}},
        "owner": "ana",
    }
    store.save_job({**base, "id": "j1", "created_at": T0, "updated_at": T0})
    store.save_job({**base, "id": "j2", "created_at": T0 + 1, "updated_at": T0 + 1})
    store.save_job(
        {
            **base,
            "id": "j1",
            "state": "done",
            "new_run": "f00d02",
            "verdict": {"status": "reproduced"},
            "progress": {"cell": 3, "of": 3},
            "created_at": T0,
            "updated_at": T0 + 5,
        }
    )
    j1 = store.get_job("j1")
    assert j1["state"] == "done" and j1["verdict"] == {"status": "reproduced"}
    assert j1["request"] == {"overrides": {"alpha": 0.3}} and j1["progress"]["of"] == 3
    assert [j["id"] for j in store.list_jobs()] == ["j2", "j1"]
    assert [j["id"] for j in store.list_jobs(["queued", "running"])] == ["j2"]
    with pytest.raises(NotFoundError):
        store.get_job("nope")


def test_applying_a_batch_twice_writes_once(store: Store) -> None:
    batch = full_run_ops("1d1d1d", "kern-i")
    store.apply(batch)
    first = table_counts(store)
    run = store.get_run("1d1d1d", series=True)
    store.apply(batch)
    store.apply(list(reversed(batch)))  # also in any order within a batch
    assert table_counts(store) == first
    again = store.get_run("1d1d1d", series=True)
    assert json.dumps(again, sort_keys=True) == json.dumps(run, sort_keys=True)
    assert first["metrics"] == 7 and first["runs"] == 1 and first["sources"] == 4


# --------------------------------------------------------------------------- hostile input
MB = "x" * 1_000_000
HOSTILE = [
    "'; DROP TABLE runs; --",
    "<img src=x onerror=alert(1)>",
    "Robert'); DELETE FROM params; --",
    "ctl \x01\x02\x1b[31mred\x1b[0m \r\n\t\x7f end",
    "nul \x00 byte",
    "%s %(x)s %% ? ?? $1 \\ \\\\ ' \" `",
    "ünïcødé 🎉 \u202e mirrored",
    random.Random(7).randbytes(500_000).hex(),  # 1 MB, incompressible
]


def _stored(backend: str, text: str) -> str:
    """PostgreSQL text cannot hold NUL: the backend stores U+FFFD instead (documented)."""
    return text.replace("\x00", "\ufffd") if backend == "postgres" else text


def _quote(text: str) -> str:
    return "'" + text.replace("\\", "\\\\").replace("'", "''") + "'"


def test_hostile_names_tags_and_values(store: Store, backend: str) -> None:
    ops: list[tuple] = []
    for i, h in enumerate(HOSTILE):
        rid = f"{i:02d}ee"
        key = h[:200] if len(h) > 1000 else h
        ops += [
            run_start(rid, name=h, experiment=h, notebook_path=h, started=T0 + i),
            param_op(rid, key, h),
            param_op(rid, "p", h),
            op.metric(rid, key, 1, None, T0, 1.0),
            op.tag(rid, key, h),
            op.tag(rid, "t", h),
            op.source(sha(h), h),
            op.cell("k", i, i, h, sha(h), 0),
            op.artifact(rid, key, sha(h), len(h), h.encode("utf-8")),
            run_end(rid),
        ]
    store.apply(ops)
    runs, total = store.list_runs(limit=None)
    assert total == len(HOSTILE)
    for i, h in enumerate(HOSTILE):
        rid = f"{i:02d}ee"
        key = _stored(backend, h[:200] if len(h) > 1000 else h)
        run = store.get_run(rid)
        assert run["name"] == _stored(backend, h) and run["experiment"] == _stored(backend, h)
        assert run["params"]["p"] == h  # the JSON value keeps NUL (escaped) on both engines
        assert run["tags"][key] == _stored(backend, h) and run["tags"]["t"] == _stored(backend, h)
        assert key in run["metrics"]
        assert store.artifact(rid, key)[0] == h.encode("utf-8")
        if len(h) < 1000 and "\x00" not in h:
            for f in (
                f"name = {_quote(h)}",
                f"tags.t = {_quote(h)}",
                f"params.p = {_quote(h)}",
                f"experiment like {_quote(h[:5] + '%')}",
            ):
                assert rid in ids(store.list_runs(f, limit=None)[0]), f
    # renames and tags through update_run (the REST PATCH path): the kernel's rules apply
    from nbtrace.rules import MAX_LONG_NAME, name_problem, value_problem

    for h in HOSTILE:
        if name_problem("run", h, MAX_LONG_NAME) or value_problem("v", h):
            before = store.get_run("00ee")
            with pytest.raises(UsageError):
                store.update_run("00ee", name=h, tags={"x": h}, note=h)
            assert store.get_run("00ee") == before
            continue
        run = store.update_run("00ee", name=h, tags={"x": h}, note=h)
        assert run["name"] == run["tags"]["x"] == run["note"] == _stored(backend, h)
    with pytest.raises(UsageError):
        store.update_run("00ee", tags={MB: "v"})
    assert count(store, "runs") == len(HOSTILE) and count(store, "params") == 2 * len(HOSTILE)


HOSTILE_FILTERS = [
    "'; DROP TABLE runs; --",
    "name = ''; DROP TABLE runs; --'",
    "params.'x'' OR 1=1 --' = 1",
    "<img src=x onerror=alert(1)>",
    MB,
    "name = '" + MB + "'",
    "(" * 5000 + "name = 'a'",
    "not " * 5000 + "name = 'a'",
    "name = 'a'" + " or name = 'a'" * 2000,
    "\x00",
    "name = '\x00'",
    "name = '\ud800'",
    "metrics.x like 'a'",
    "params.x like 5",
    "started_at > 'yesterday'",
    "params.%s = 1",
    "params.`?` = '%'",
    'tags."a""b" like \'%\\\'',
    "env.numpy >= 1.2.3rc1",
    "duration > 'x'",
    "id in ()",
    "id in ('a',)",
    "status = 'running' and",
    ")",
    "''",
    "1 = 1",
    "name = 1e999",
    "params.a = -",
    "params.a = 99999999999999999999999999999999",
    "\u202e",
    "name = '\\'",
    "notebook like '\\\\%'",
    "params.x in (1, 'a', true)",
    "not not not status = 1",
]


def test_hostile_filters_raise_only_query_errors(store: Store) -> None:
    simple_run(store, "ab12", params={"x": 1, "a": 2}, tags={'a"b': "c"})
    rng = random.Random(42)
    atoms = [
        "params.a",
        "metrics.m",
        "tags.t",
        "name",
        "status",
        "env.numpy",
        "started_at",
        "=",
        "!=",
        "<",
        ">=",
        "like",
        "not",
        "in",
        "and",
        "or",
        "(",
        ")",
        ",",
        "'x'",
        '"y"',
        "1",
        "-2.5",
        "1.2.3",
        "true",
        "'%'",
        "'",
        "\\",
        "%s",
        "?",
        "`",
        "-",
        ";",
        "\x01",
    ]
    fuzz = [" ".join(rng.choice(atoms) for _ in range(rng.randint(1, 9))) for _ in range(400)]
    for text in HOSTILE_FILTERS + fuzz:
        for kw in ({"filter": text}, {"sort": text}):
            try:
                runs, total = store.list_runs(**kw)  # type: ignore[arg-type]
            except QueryError as exc:
                msg = str(exc)
                assert "\n" not in msg and len(msg) < 400 and "position" in msg
            else:
                assert total == len(runs) <= 1
        try:
            list(store.export_runs(text))
        except QueryError:
            pass
    assert count(store, "runs") == 1 and count(store, "params") == 2


# --------------------------------------------------------------------------- crash detection
def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_reap_marks_dead_kernels_crashed_and_heartbeat_revives(store: Store) -> None:
    now = time.time()
    timeout = store.heartbeat_timeout  # type: ignore[attr-defined]
    store.apply(
        [
            run_start("de4d01", host=HOST, pid=_dead_pid(), started=now, heartbeat_at=now),
            run_start(
                "a11e01",
                host=HOST,
                pid=os.getpid(),
                started=now - 10 * timeout,
                heartbeat_at=now - 10 * timeout,
            ),  # alive pid wins over an old heartbeat
            run_start(
                "07e401",
                host="elsewhere",
                pid=os.getpid(),
                started=now - 10 * timeout,
                heartbeat_at=now - timeout - 5,
            ),  # other host: only the heartbeat counts
            run_start(
                "07e402", host="elsewhere", pid=1, started=now - 10 * timeout, heartbeat_at=now - 1
            ),
            run_start("f1n101", host="elsewhere", started=now - 10 * timeout, heartbeat_at=None),
        ]
    )
    store.apply([run_end("f1n101", ended=now - 9 * timeout)])
    assert store.reap() == 2
    status = {r["id"]: r["status"] for r in store.list_runs()[0]}
    assert status == {
        "de4d01": "crashed",
        "a11e01": "running",
        "07e401": "crashed",
        "07e402": "running",
        "f1n101": "finished",
    }
    assert store.get_run("07e401")["ended_at"] is not None
    assert store.reap() == 0
    # The kernel on the other host was only cut off: its next heartbeat revives the run.
    store.apply([op.heartbeat("07e401", time.time())])
    assert store.get_run("07e401")["status"] == "running"
    store.apply([op.heartbeat("f1n101", time.time())])  # an ended run stays ended
    assert store.get_run("f1n101")["status"] == "finished"


# --------------------------------------------------------------------------- migrations
_OPEN = """
import sys, time
from nbtrace.store import open_store
t = float(sys.argv[2])
time.sleep(max(0.0, t - time.time()))
open_store(sys.argv[1]).close()
"""


def _migration_rows(store: Store) -> list[tuple[str, int]]:
    b = store.backend  # type: ignore[attr-defined]
    if type(store).__name__ == "SQLiteStore":
        sql = (
            "SELECT name, count(*) FROM _sqlite_migrations WHERE migration_set = 'nbtrace'"
            " GROUP BY name ORDER BY name"
        )
    else:
        sql = "SELECT name, count(*) FROM nbtrace_migrations GROUP BY name ORDER BY name"
    with b.cursor(False) as cur:
        cur.execute(sql)
        return [(n, int(c)) for n, c in cur.fetchall()]


@pytest.mark.parametrize("how", ["processes", "threads"])
def test_concurrent_first_open_applies_each_migration_once(store_url: str, how: str) -> None:
    errors: list[BaseException] = []
    if how == "processes":
        start = time.time() + 1.5  # all eight past their imports, then open at once
        procs = [
            subprocess.Popen(
                [sys.executable, "-c", _OPEN, store_url, str(start)],
                stderr=subprocess.PIPE,
                text=True,
            )
            for _ in range(8)
        ]
        for p in procs:
            _, err = p.communicate(timeout=60)
            assert p.returncode == 0, err
    else:
        barrier = threading.Barrier(8)

        def opener() -> None:
            try:
                barrier.wait()
                open_store(store_url).close()
            except BaseException as exc:  # noqa: BLE001
                errors.append(exc)

        threads = [threading.Thread(target=opener) for _ in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        assert not errors
    s = open_store(store_url)
    try:
        rows = _migration_rows(s)
        assert rows and all(c == 1 for _, c in rows), rows
        from nbtrace.store.schema import MIGRATIONS

        assert {n for n, _ in MIGRATIONS} <= {n for n, _ in rows}
        simple_run(s, "after")
        assert s.list_runs()[1] == 1
    finally:
        s.close()


def test_errors_are_nbtrace_errors(store: Store) -> None:
    """Malformed imports and unknown ids never leak an engine exception."""
    for doc in (
        {},
        {"format": "nbtrace-run/1"},
        {"format": "nbtrace-run/1", "run": {"x": 1}},
        {"format": "nbtrace-run/1", "run": {"id": "a"}, "params": [[1]]},
    ):
        with pytest.raises(NBTraceError):
            store.import_run(doc)  # type: ignore[arg-type]
    doc = {
        "format": "nbtrace-run/1",
        "run": {"id": "b64", "name": "n", "status": "finished", "started_at": T0},
        "artifacts": [["a", sha(b"z"), 1, base64.b64encode(b"z").decode()]],
    }
    assert store.import_run(doc) is True
    assert store.artifact("b64", "a")[0] == b"z"


def test_sqlite_batches_insert_many_rows_per_statement(tmp_path: Path) -> None:
    """A flush of thousands of rows is a handful of multi-row INSERTs, not one statement a
    row (each of which gives the GIL away and has to win it back from the user's thread),
    and it stores every row, in order, as ``executemany`` would: the last of two values for
    one param wins, the NaN goes to ``special``, a duplicate metric seq is ignored."""
    import sqlite3 as _sqlite3

    from nbtrace.store import ops as _ops
    from nbtrace.store.sqlite import SQLiteStore

    store = SQLiteStore(str(tmp_path / "runs.db"))
    statements: list[str] = []
    store.backend._connect().set_trace_callback(statements.append)
    n = 2_737  # not a multiple of the statement size: the rest goes in power-of-two pieces
    batch: list[tuple] = [_ops.run_start({"id": "r1", "name": "n", "status": "running",
                                          "started_at": 1.0})]
    batch += [_ops.metric("r1", "loss", i + 1, i, 100.0 + i, float(i)) for i in range(n)]
    batch += [_ops.metric("r1", "loss", 5, 4, 1.0, -1.0)]  # seq 5 again: ignored
    batch += [_ops.metric("r1", "odd", 1, 0, 1.0, float("nan"))]
    batch += [_ops.param("r1", "alpha", "0.1", 0.1, "0.1"), _ops.param("r1", "alpha", "0.5",
                                                                      0.5, "0.5")]
    store.apply(batch)
    inserts = [s for s in statements if s.lstrip().upper().startswith("INSERT INTO METRICS")]
    assert 1 < len(inserts) <= 12, len(inserts)
    conn = _sqlite3.connect(tmp_path / "runs.db")
    rows = conn.execute(
        "SELECT seq, step, value FROM metrics WHERE run_id = 'r1' AND key = 'loss' ORDER BY seq"
    ).fetchall()
    assert rows == [(i + 1, i, float(i)) for i in range(n)]
    assert conn.execute("SELECT value, special FROM metrics WHERE key = 'odd'").fetchone() == (
        None, "nan")
    run = store.get_run("r1")
    assert run["params"]["alpha"] == 0.5
    assert run["metrics"]["loss"] == float(n - 1)

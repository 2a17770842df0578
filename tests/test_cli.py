"""The ``nbtrace`` command as users run it (a subprocess), on a store made by a real kernel."""

from __future__ import annotations

import json
import math
import os
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from kernels import make_notebook, run_notebook
from nbtrace.cli import VERBS

NBTRACE = [sys.executable, "-m", "nbtrace.cli"]


def nbt(
    *args: str,
    db: str | None = None,
    check: bool = True,
    stdin: str | None = None,
    env: dict[str, str] | None = None,
) -> subprocess.CompletedProcess[str]:
    cmd = NBTRACE + list(args) + (["--db", db] if db else [])
    p = subprocess.run(
        cmd,
        capture_output=True,
        text=True,
        input=stdin,
        timeout=120,
        env=dict(os.environ, **(env or {})),
    )
    if check and p.returncode != 0:
        raise AssertionError(f"{cmd} failed: {p.stderr}")
    return p


@pytest.fixture(scope="module")
def store_db(tmp_path_factory: pytest.TempPathFactory) -> str:
    work = tmp_path_factory.mktemp("cli")
    db = str(work / "runs.db")
    cells = [
        "%load_ext nbtrace",
        "import nbtrace\n"
        "for a in (0.1, 0.5, 0.9):\n"
        "    for l1 in (0.5, 1):\n"
        "        with nbtrace.start_run('enet', experiment='grid', tags={'model': 'enet'}):\n"
        "            nbtrace.log_params({'alpha': a, 'l1_ratio': l1})\n"
        "            nbtrace.log_metrics({'MSE': 1000 * a + 100 * l1, 'R2': 1 - a})",
        "with nbtrace.start_run('odd <b>name</b>', tags={'model': 'svm'}):\n"
        "    nbtrace.log_param('alpha', 0.3)\n"
        "    nbtrace.log_metric('MSE', float('nan'))",
    ]
    run_notebook(make_notebook(cells), db, work)
    return db


def _runs(db: str, *args: str) -> dict[str, Any]:
    return json.loads(nbt("runs", "--json", *args, db=db).stdout)


def test_every_verb_has_help() -> None:
    top = nbt("--help").stdout
    for verb in VERBS:
        assert verb in top
        out = nbt(verb, "--help").stdout
        assert "--db" in out and "--json" in out


def test_runs_json_and_filter(store_db: str) -> None:
    data = _runs(store_db, "--limit", "0")
    assert data["total"] == 7 and len(data["runs"]) == 7
    required = {
        "id",
        "name",
        "experiment",
        "status",
        "started_at",
        "ended_at",
        "params",
        "metrics",
        "tags",
    }
    assert required <= set(data["runs"][0])
    sel = _runs(store_db, "--filter", "params.l1_ratio = 1 and metrics.MSE < 700")
    assert sorted(r["params"]["alpha"] for r in sel["runs"]) == [0.1, 0.5]
    sel = _runs(store_db, "--filter", "(tags.model = 'svm' or params.alpha >= 0.9)")
    assert sel["total"] == 3
    srt = _runs(store_db, "--filter", "experiment = 'grid'", "--sort", "-metrics.MSE")
    mses = [r["metrics"]["MSE"] for r in srt["runs"]]
    assert mses == sorted(mses, reverse=True)
    # NaN travels as strict JSON
    odd = _runs(store_db, "--filter", "tags.model = 'svm'")["runs"][0]
    assert odd["metrics"]["MSE"] == "NaN"
    assert odd["name"] == "odd <b>name</b>"
    env = _runs(store_db, "--filter", "env.numpy >= '1.0' and env.ipykernel like '%'")
    assert env["total"] == 7


def test_show_text_and_json(store_db: str) -> None:
    rid = _runs(store_db, "--limit", "1", "--sort", "started_at")["runs"][0]["id"]
    text = nbt("show", rid[:6], db=store_db).stdout
    for needle in (
        "params:",
        "alpha",
        "environment:",
        "cells (execution order):",
        "git:",
        "python ",
    ):
        assert needle in text
    doc = json.loads(nbt("show", rid, "--json", "--series", db=store_db).stdout)
    assert doc["id"] == rid
    for key in (
        "cells",
        "environment",
        "git",
        "resources",
        "notebook",
        "series",
        "artifacts",
        "inputs",
        "parent",
        "verdict",
        "user",
        "host",
    ):
        assert key in doc
    assert doc["cells"][0]["source"] == "%load_ext nbtrace"


def test_compare(store_db: str) -> None:
    ids = [
        r["id"]
        for r in _runs(store_db, "--filter", "experiment = 'grid'", "--sort", "params.alpha")[
            "runs"
        ][:2]
    ]
    data = json.loads(nbt("compare", *ids, "--json", db=store_db).stdout)
    params = {p["key"]: p for p in data["params"]}
    assert params["l1_ratio"]["differs"] is True and params["alpha"]["differs"] is False
    mse = {m["key"]: m for m in data["metrics"]}["MSE"]
    assert mse["goal"] == "min" and mse["best"] in ids
    text = nbt("compare", *ids, db=store_db).stdout
    assert "* params.l1_ratio" in text


@pytest.mark.parametrize(
    "args, message",
    [
        (["show", "zzzz"], "no run with id"),
        (["show", "'; DROP TABLE runs; --"], "no run with id"),
        (["runs", "--filter", "params.alpha >"], "position"),
        (["runs", "--filter", "bogus = 1"], "position"),
        (["runs", "--sort", "nope.x"], "position"),
        (["compare", "abc"], "compare needs at least two runs"),
        (["compare", "abc", "def"], "no run with id"),
        (["import", "/no/such/file.json"], "cannot read"),
    ],
)
def test_errors_are_one_line(store_db: str, args: list[str], message: str) -> None:
    p = nbt(*args, db=store_db, check=False)
    assert p.returncode == 1
    assert message in p.stderr
    assert p.stderr.count("\n") == 1 and "Traceback" not in p.stderr
    assert p.stdout == ""


def test_ambiguous_prefix(store_db: str) -> None:
    ids = [r["id"] for r in _runs(store_db, "--limit", "0")["runs"]]
    p = nbt("show", "", db=store_db, check=False)
    assert p.returncode == 1 and "no run with id" in p.stderr
    # a prefix shared by two ids (build one by hand if chance gave none)
    conn = sqlite3.connect(store_db)
    conn.execute("UPDATE runs SET id = 'abc111' WHERE id = ?", (ids[0],))
    conn.execute("UPDATE runs SET id = 'abc222' WHERE id = ?", (ids[1],))
    conn.commit()
    conn.close()
    try:
        p = nbt("show", "abc", db=store_db, check=False)
        assert p.returncode == 1 and "matches several runs" in p.stderr
    finally:
        conn = sqlite3.connect(store_db)
        conn.execute("UPDATE runs SET id = ? WHERE id = 'abc111'", (ids[0],))
        conn.execute("UPDATE runs SET id = ? WHERE id = 'abc222'", (ids[1],))
        conn.commit()
        conn.close()


def test_export_import_roundtrip(store_db: str, tmp_path: Path) -> None:
    out = tmp_path / "export.json"
    nbt("export", "--format", "json", "-o", str(out), db=store_db)
    other = str(tmp_path / "other.db")
    first = json.loads(nbt("import", str(out), "--json", db=other).stdout)
    assert first == {"imported": 7, "skipped": 0}
    again = json.loads(nbt("import", str(out), "--json", db=other).stdout)
    assert again == {"imported": 0, "skipped": 7}
    a = _runs(store_db, "--limit", "0", "--sort", "id")["runs"]
    b = _runs(other, "--limit", "0", "--sort", "id")["runs"]
    assert a == b
    for r in a:
        x = json.loads(nbt("show", r["id"], "--json", "--series", db=store_db).stdout)
        y = json.loads(nbt("show", r["id"], "--json", "--series", db=other).stdout)
        assert x == y
    csv_text = nbt("export", "--format", "csv", db=store_db).stdout
    header = csv_text.splitlines()[0]
    assert "params.alpha" in header and "metrics.MSE" in header
    assert len(csv_text.strip().splitlines()) == 8


def test_corrupt_and_locked_store(tmp_path: Path, store_db: str) -> None:
    bad = tmp_path / "bad.db"
    bad.write_bytes(b"garbage" * 1000)
    p = nbt("runs", db=str(bad), check=False)
    assert p.returncode == 1 and "corrupt" in p.stderr and "Traceback" not in p.stderr
    assert bad.read_bytes() == b"garbage" * 1000
    # a writer holding the lock: reads still work (WAL), writes wait then fail cleanly
    conn = sqlite3.connect(store_db, isolation_level=None)
    conn.execute("BEGIN EXCLUSIVE")
    try:
        p = nbt("runs", "--json", db=store_db, check=False, env={"NBTRACE_BUSY_TIMEOUT": "1"})
        assert p.returncode in (0, 1)
        if p.returncode == 1:
            assert "locked" in p.stderr
    finally:
        conn.execute("ROLLBACK")
        conn.close()


def test_nan_roundtrip_through_export(store_db: str, tmp_path: Path) -> None:
    out = tmp_path / "e.json"
    nbt("export", "--filter", "tags.model = 'svm'", "-o", str(out), db=store_db)
    text = out.read_text()
    assert "NaN" in text
    json.loads(text)  # strict parsers accept it (NaN is a string)
    other = str(tmp_path / "o.db")
    nbt("import", str(out), db=other)
    run = json.loads(nbt("runs", "--json", db=other).stdout)["runs"][0]
    assert run["metrics"]["MSE"] == "NaN"
    assert math.isnan(float(run["metrics"]["MSE"]))

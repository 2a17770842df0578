"""What leaves the store safely (issue 12, items 4 and 12), with a real SQLite file and kernel.

Given runs with names and tags that spreadsheets read as formulas, when they are exported as
CSV, then every such cell is neutralised (OWASP's rule). Given a store with a corrupt page in the
middle, when it is exported to a file, then no partial file is left (an earlier good export
survives), and a kernel opening the store is warned, once a day at most.
"""

from __future__ import annotations

import csv
import io
import json
import os
import sqlite3
import time
from pathlib import Path

import pytest

from kernels import run_notebook
from nbtrace.cli import main
from nbtrace.store import open_store

T0 = 1_750_000_000.0


def _run(store: object, rid: str, name: str, tags: dict[str, str], n_metrics: int = 1) -> None:
    ops: list[tuple] = [
        (
            "run_start",
            {
                "id": rid,
                "name": name,
                "status": "running",
                "started_at": T0 + int(rid, 16),
                "heartbeat_at": T0,
                "user_name": "ana",
                "host": "h",
                "pid": None,
            },
        )
    ]
    ops += [("tag", rid, k, v) for k, v in tags.items()]
    ops += [("param", rid, f"p{i}", json.dumps("x" * 200), None, "x" * 200) for i in range(20)]
    ops += [("metric", rid, "m", i + 1, i, T0, float(i)) for i in range(n_metrics)]
    ops.append(("run_end", rid, "finished", T0 + int(rid, 16) + 1, None, "{}"))
    store.apply(ops)  # type: ignore[attr-defined]


HOSTILE = {
    "link": '=HYPERLINK("http://evil","x")',
    "plus": "+1+cmd|' /C calc'!A0",
    "minus": "-2+3",
    "at": "@SUM(1+1)",
    "tab": "\t=1",
    "cr": "\r=1",
    "negative": "-1.5",
    "plain": "fine",
}


def test_csv_export_neutralises_formulas(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = str(tmp_path / "runs.db")
    store = open_store(db)
    _run(store, "000000000001", "=cmd|' /C calc'!A0", HOSTILE)
    store.close()
    assert main(["export", "--db", db, "--format", "csv"]) == 0
    rows = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    assert len(rows) == 1
    row = rows[0]
    assert row["name"] == "'=cmd|' /C calc'!A0"
    for key, value in HOSTILE.items():
        cell = row[f"tags.{key}"]
        if key in ("negative", "plain"):
            assert cell == value  # a negative number and plain text stay as they are
        else:
            assert cell == "'" + value, (key, cell)
    assert row["params.p0"] == "x" * 200


def _corrupt_middle(db: str) -> None:
    """Overwrite every 5th page of the file's second half (the later runs' metrics): the store
    still opens and lists, the first runs still export, a later one cannot be read."""
    with sqlite3.connect(db) as c:
        c.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        page = c.execute("PRAGMA page_size").fetchone()[0]
        pages = c.execute("PRAGMA page_count").fetchone()[0]
    with open(db, "r+b") as f:
        for n in range(pages // 2, pages - 1, 5):
            f.seek(page * n)
            f.write(b"\xa5" * page)


@pytest.fixture
def corrupt_db(tmp_path: Path) -> str:
    db = str(tmp_path / "runs.db")
    store = open_store(db)
    for i in range(1, 61):
        _run(store, f"{i:012x}", f"run{i}", {"k": "v"}, n_metrics=300)
    store.close()
    return db


def test_export_never_leaves_a_partial_file(
    corrupt_db: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "export.json"
    assert main(["export", "--db", corrupt_db, "-o", str(out)]) == 0  # a good export first
    good = out.read_bytes()
    json.loads(good)
    _corrupt_middle(corrupt_db)
    assert main(["export", "--db", corrupt_db, "-o", str(out)]) == 1
    err = capsys.readouterr().err
    assert "corrupt" in err and "\n" not in err.strip()
    assert out.read_bytes() == good  # the earlier export is intact
    assert sorted(os.listdir(tmp_path)) == sorted(
        p for p in os.listdir(tmp_path) if not p.endswith(".part")
    )
    fresh = tmp_path / "fresh.json"
    assert main(["export", "--db", corrupt_db, "-o", str(fresh)]) == 1
    assert not fresh.exists()
    assert not [p for p in os.listdir(tmp_path) if p.endswith(".part")]


def _warnings(nb: object) -> str:
    return "".join(
        o.get("text", "")
        for c in nb.cells
        for o in c.outputs  # type: ignore[attr-defined]
        if o.output_type == "stream"
    )


def test_a_kernel_is_warned_of_a_corrupt_store_once_a_day(corrupt_db: str, tmp_path: Path) -> None:
    cells = ["%load_ext nbtrace", "%track_run after\n%end_run"]
    nb = run_notebook(cells, corrupt_db, tmp_path)
    assert "is damaged" not in _warnings(nb)  # healthy: checked, nothing to say
    marker = Path(corrupt_db + ".checked")
    assert marker.exists()
    _corrupt_middle(corrupt_db)
    nb = run_notebook(cells, corrupt_db, tmp_path)
    assert "is damaged" not in _warnings(nb)  # checked clean less than a day ago: not again
    old = time.time() - 25 * 3600
    os.utime(marker, (old, old))
    nb = run_notebook(cells, corrupt_db, tmp_path, allow_errors=True)
    text = _warnings(nb)
    assert "nbtrace: warning: the store" in text and "is damaged (PRAGMA quick_check" in text
    assert "nbtrace export" in text
    nb = run_notebook(cells, corrupt_db, tmp_path, allow_errors=True)
    assert "is damaged" in _warnings(nb)  # a failed check is not remembered: warned again


def test_sync_refuses_a_spool_file_planting_content(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Issue 12, item 2 ("wherever bytes enter under a claimed hash"): a spool file is a file."""
    import hashlib

    monkeypatch.setenv("JUPYTER_DATA_DIR", str(tmp_path / "data"))
    db = str(tmp_path / "runs.db")
    store = open_store(db)
    location = store.display_location
    store.close()
    spool = tmp_path / "data" / "nbtrace" / "spool"
    spool.mkdir(parents=True)
    victim = hashlib.sha256(b"import numpy as np\n").hexdigest()
    lines = [{"location": location}, ["source", victim, "import os; os.system('evil')\n"]]
    (spool / "1-1.jsonl").write_text("\n".join(json.dumps(x) for x in lines) + "\n")
    assert main(["sync", "--db", db]) == 1
    err = capsys.readouterr().err.strip()
    assert "refused spooled write 1 (source)" in err and "\n" not in err
    assert (spool / "1-1.jsonl").exists()  # kept, not uploaded
    with sqlite3.connect(db) as c:
        assert c.execute("SELECT count(*) FROM sources").fetchone()[0] == 0
    good = [{"location": location}, ["source", victim, "import numpy as np\n"]]
    (spool / "1-1.jsonl").write_text("\n".join(json.dumps(x) for x in good) + "\n")
    assert main(["sync", "--db", db]) == 0
    with sqlite3.connect(db) as c:
        assert c.execute("SELECT source FROM sources").fetchone()[0] == "import numpy as np\n"

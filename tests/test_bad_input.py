"""Bad input in a real kernel: one-line errors, no traceback, nothing recorded is lost."""

from __future__ import annotations

import math
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from kernels import make_notebook, run_notebook
from nbtrace.store import open_store

GOOD_BEFORE = [
    "%load_ext nbtrace",
    "%track_run keeper",
    "%log_param a=1 s='<b>bold</b>'",
    "%log_metric nan_m=float('nan') pinf=float('inf') ninf=-float('inf') --step 1",
]

# (cell source, text the one-line error must contain)
BAD = [
    ("%track_run", "usage: %track_run NAME"),
    ("%track_run x --bogus 1", "unknown option --bogus"),
    ("%track_run x --tag novalue", "--tag takes K=V"),
    ("%log_param", "usage: %log_param"),
    ("%log_param 3x=1", "not a valid variable name"),
    ("%log_param alpha=", "missing expression"),
    ("%log_param undefined_name_xyz", "'undefined_name_xyz' is not defined"),
    ("%log_param b=(1, 2", "cannot parse"),
    ("%log_param c=1/0", "ZeroDivisionError"),
    ("%log_param big='x' * 1_000_000", "the limit is 65536"),
    ("%log_metric m='abc'", "must be a number"),
    ("%log_metric m=1 --step 1.5", "step must be an integer"),
    ("%log_metric m=1 --step", "--step needs a value"),
    ("%log_metric", "usage: %log_metric"),
    ("%end_run --status weird", "status must be 'finished' or 'failed'"),
    ("import nbtrace\nnbtrace.log_metric('a\\x00b', 1)", "contains control characters"),
    ("nbtrace.log_metric('m' * 1_000_000, 1)", "the limit is 250"),
    ("nbtrace.log_params([1, 2])", "log_params takes a dict"),
    # new names in log_params take an inline check: it must refuse what check_name refuses
    ("nbtrace.log_params({'ok_new': 1, 'a\\x00b': 1})", "contains control characters"),
    ("nbtrace.log_params({'   ': 1})", "must not be empty"),
    ("nbtrace.log_params({'p' * 300: 1.5})", "the limit is 250"),
    ("nbtrace.log_artifact('/no/such/file')", "no such file"),
    ("nbtrace.start_run('')", "must not be empty"),
]

AFTER = [
    "%log_metric after=2.5",
    "%end_run",
    "%log_metric orphan=1",  # no active run any more: an implicit run, ended with the cell
]


@pytest.fixture(scope="module")
def executed(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    work = tmp_path_factory.mktemp("bad")
    db = str(work / "runs.db")
    cells = GOOD_BEFORE + [src for src, _ in BAD] + AFTER
    nb = make_notebook(cells)
    nb = run_notebook(nb, db, work, allow_errors=True)
    return {"nb": nb, "db": db}


def _error(cell: Any) -> Any:
    """The cell's error as (ename, evalue, traceback lines), from an error output or from
    the one line IPython prints to stderr for a magic's ``UsageError``."""
    for o in cell.outputs:
        if o.output_type == "error":
            return SimpleNamespace(ename=o.ename, evalue=o.evalue, traceback=o.traceback)
        if o.output_type == "stream" and o.name == "stderr" and o.text.startswith("UsageError:"):
            text = o.text.rstrip("\n")
            return SimpleNamespace(
                ename="UsageError", evalue=text[len("UsageError: ") :], traceback=[text]
            )
    return None


@pytest.mark.parametrize("index", range(len(BAD)), ids=[b[0][:30] for b in BAD])
def test_one_line_error(executed: dict[str, Any], index: int) -> None:
    cell = executed["nb"].cells[len(GOOD_BEFORE) + index]
    err = _error(cell)
    assert err is not None, f"no error for {BAD[index][0]!r}"
    assert err.ename in ("UsageError",), err.ename
    assert BAD[index][1] in err.evalue
    assert "\n" not in err.evalue
    assert len(err.evalue) < 600
    # no Python traceback frames shown to the user
    assert not any("File " in line or "Traceback" in line for line in err.traceback)


def test_logging_outside_a_run_starts_an_implicit_run(executed: dict[str, Any]) -> None:
    cell = executed["nb"].cells[-1]
    assert _error(cell) is None
    notice = "".join(o.get("text", "") for o in cell.outputs if o.output_type == "stream")
    assert "no active run, started run" in notice and "ends with this cell" in notice
    runs, total = open_store(executed["db"]).list_runs(filter="name != 'keeper'")
    assert total == 1
    assert runs[0]["metrics"] == {"orphan": 1.0} and runs[0]["status"] == "finished"


def test_nothing_recorded_was_lost(executed: dict[str, Any]) -> None:
    store = open_store(executed["db"])
    runs, total = store.list_runs(filter="name = 'keeper'")
    assert total == 1
    run = store.get_run(runs[0]["id"], series=True)
    assert run["status"] == "finished"
    assert run["params"] == {"a": 1, "s": "<b>bold</b>"}
    m = run["metrics"]
    assert math.isnan(m["nan_m"]) and m["pinf"] == math.inf and m["ninf"] == -math.inf
    assert m["after"] == 2.5
    assert math.isnan(run["series"]["nan_m"][0]["value"])
    # the failed magics did not leave partial params behind
    assert "big" not in run["params"] and "c" not in run["params"]


def test_corrupt_store_is_a_clean_error(tmp_path: Path) -> None:
    bad = tmp_path / "runs.db"
    bad.write_bytes(b"this is not sqlite" * 100)
    nb = make_notebook(["%load_ext nbtrace"])
    nb = run_notebook(nb, str(bad), tmp_path, allow_errors=True)
    err = _error(nb.cells[0])
    assert err is not None and err.ename == "UsageError"
    assert "corrupt" in err.evalue or "not a valid nbtrace database" in err.evalue
    assert bad.read_bytes() == b"this is not sqlite" * 100

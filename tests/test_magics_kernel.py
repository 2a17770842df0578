"""The magics as IPython declares them, in a real ipykernel: options through
``magic_arguments`` (and the help they give ``%track_run?``), and an exception handler that
shares the shell with the user's own instead of replacing it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from kernels import run_notebook
from nbtrace.store import open_store

CELLS = [
    # 0: the user's own custom exception handler, set before nbtrace loads
    "class Mine(Exception):\n    pass\n\n"
    "def mine(shell, etype, value, tb, tb_offset=None):\n    print('mine handled:', value)\n\n"
    "get_ipython().set_custom_exc((Mine,), mine)",
    "%load_ext nbtrace",  # 1
    "raise Mine('while loaded')",  # 2: still the user's handler
    "import nbtrace\nnbtrace.log_metric('a\\x00b', 1)",  # 3: nbtrace's one line
    "print(get_ipython().object_inspect_text('%track_run'))",  # 4: what %track_run? shows
    "print(get_ipython().object_inspect_text('%end_run'))",  # 5
    "%track_run 'outer run' --tag k=1 --experiment e1",  # 6: quoted name, options after it
    "%track_run --nested inner --tag a=x=y --tag a=2 words",  # 7: options between words
    "%end_run",  # 8
    "%end_run --status failed",  # 9
    "%track_run x --exp e",  # 10: never abbreviated
    "%unload_ext nbtrace",  # 11
    "raise Mine('after unload')",  # 12: the user's handler is back
    "print(get_ipython().custom_exceptions == (Mine,))",  # 13
]


@pytest.fixture(scope="module")
def executed(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    work = tmp_path_factory.mktemp("magics")
    db = str(work / "runs.db")
    nb = run_notebook(CELLS, db, Path(work), allow_errors=True)
    store = open_store(db)
    runs = {r["name"]: store.get_run(r["id"]) for r in store.list_runs(limit=None)[0]}
    store.close()
    return {"nb": nb, "runs": runs}


def _text(cell: Any, name: str = "stdout") -> str:
    return "".join(o.get("text", "") for o in cell.outputs if o.get("name") == name)


def _errors(cell: Any) -> list[Any]:
    return [o for o in cell.outputs if o.output_type == "error"]


def test_the_users_exception_handler_keeps_working_and_comes_back(
    executed: dict[str, Any],
) -> None:
    cells = executed["nb"].cells
    assert _text(cells[2]) == "mine handled: while loaded\n" and not _errors(cells[2])
    (err,) = _errors(cells[3])
    assert err.ename == "UsageError" and len(err.traceback) == 1
    assert "contains control characters" in err.traceback[0]
    assert _text(cells[12]) == "mine handled: after unload\n" and not _errors(cells[12])
    assert _text(cells[13]) == "True\n"


def test_help_lists_the_options(executed: dict[str, Any]) -> None:
    track = _text(executed["nb"].cells[4])
    assert "%track_run [--experiment E] [--tag K=V] [--nested] [NAME ...]" in track
    for option in ("--experiment E", "--tag <K=V>", "--nested"):
        assert option in track
    assert "As a cell magic (``%%track_run NAME``)" in track  # the docstring is kept
    end = _text(executed["nb"].cells[5])
    assert "%end_run [--status finished|failed]" in end and "how the run ended" in end


def test_options_in_any_order(executed: dict[str, Any]) -> None:
    runs = executed["runs"]
    outer, inner = runs["outer run"], runs["inner words"]
    assert outer["experiment"] == "e1" and outer["tags"] == {"k": "1"}
    assert outer["status"] == "failed"  # --status failed ended it, after the inner one
    assert inner["nested_in"] == outer["id"] and inner["tags"] == {"a": "2"}
    assert inner["status"] == "finished"


def test_an_abbreviated_option_is_unknown(executed: dict[str, Any]) -> None:
    cell = executed["nb"].cells[10]
    assert _text(cell, "stderr").startswith("UsageError: unknown option --exp (known:")
    assert "x" not in executed["runs"]

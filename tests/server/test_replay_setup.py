"""The hidden setup cell of a hosted replay, executed for real in this process (as the kernel
would): settings into the environment, the folder, and the store check with its refusals."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from nbtrace.errors import ReplaySetupError
from nbtrace.rerun.kernelsetup import CLEARED, FORWARDED, payload, setup_code
from nbtrace.store import open_store

from .conftest import synthetic_run


@pytest.fixture
def kernel_state() -> Iterator[None]:
    """What the setup changes in a process: restored afterwards."""
    env, cwd = dict(os.environ), os.getcwd()
    yield
    os.chdir(cwd)
    os.environ.clear()
    os.environ.update(env)


def _store_with_run(path: Path) -> str:
    store = open_store(str(path))
    synthetic_run(store, "5e7000000001")
    store.close()
    return str(path)


def test_setup_sets_the_plan_moves_and_checks(tmp_path: Path, kernel_state: None) -> None:
    db = _store_with_run(tmp_path / "runs.db")
    folder = tmp_path / "nb dir ☃"
    folder.mkdir()
    os.environ["JPY_SESSION_NAME"] = "/elsewhere/other.ipynb"
    os.environ["NBTRACE_ENV_ALLOWLIST"] = "LANG"
    odd = "quotes \" ' backslash \\ newline \n emoji 😀 </script>"
    data = payload({"NBTRACE_DB": db, "NBTRACE_REPLAY": odd}, str(folder), "5e7000000001")
    assert data["env"]["NBTRACE_ENV_ALLOWLIST"] == "LANG" and "NBTRACE_ENV_ALLOWLIST" in FORWARDED
    exec(compile(setup_code(data), "<setup>", "exec"), {})  # noqa: S102 - our own generated code
    assert os.environ["NBTRACE_REPLAY"] == odd and os.environ["NBTRACE_DB"] == db
    assert "JPY_SESSION_NAME" in CLEARED and "JPY_SESSION_NAME" not in os.environ
    assert os.getcwd() == str(folder)


@pytest.mark.parametrize("case", ["no folder", "no sqlite file", "another store"])
def test_setup_refuses(tmp_path: Path, kernel_state: None, case: str) -> None:
    from nbtrace.rerun.kernelsetup import apply

    db = _store_with_run(tmp_path / "runs.db")
    other = str(tmp_path / "other.db")
    open_store(other).close()
    cwd, parent = str(tmp_path), "5e7000000001"
    if case == "no folder":
        cwd, words = str(tmp_path / "gone"), "does not exist where the kernel runs"
    elif case == "no sqlite file":
        db, words = str(tmp_path / "elsewhere" / "runs.db"), "cannot reach the SQLite store"
    else:
        db, words = other, "is not the server's"
    with pytest.raises(ReplaySetupError, match=words):
        apply({"env": {"NBTRACE_DB": db}, "cwd": cwd, "parent": parent})
    assert not (tmp_path / "elsewhere").exists()  # nothing created where it was not found

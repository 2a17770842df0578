"""Shared fixtures: a fresh SQLite store per test, PostgreSQL clusters, kernel checks.

Helpers (not fixtures) that test modules import live in ``tests/kernels.py`` (real kernels) and
``tests/pgcluster.py``; nothing imports this file as a module.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from pgcluster import *  # noqa: F401,F403  (PostgreSQL fixtures)


@pytest.fixture
def db_path(tmp_path: Path) -> str:
    """A path for a fresh SQLite store."""
    return str(tmp_path / "runs.db")


@pytest.fixture(scope="session", autouse=True)
def _python3_kernel_is_this_venv() -> None:
    """Kernels must run the interpreter under test (the venv with nbtrace installed)."""
    from jupyter_client.kernelspec import KernelSpecManager

    spec = KernelSpecManager().get_kernel_spec("python3")
    exe = spec.argv[0]
    if (
        exe not in (sys.executable, "python", "python3")
        and Path(exe).resolve() != Path(sys.executable).resolve()
    ):
        pytest.exit(f"the python3 kernel runs {exe}, not {sys.executable}", returncode=3)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Run the browser tests last.

    Why: Playwright's sync API leaves its event loop installed (and marked running) in the main
    thread until the session ends, so every pytest-jupyter server test collected after it fails
    with "This event loop is already running". Moving them last keeps one pytest session (one
    exit status) for the whole suite.
    """
    browser = [it for it in items if Path(str(it.path)).parent.name == "browser"]
    if browser:
        others = [it for it in items if Path(str(it.path)).parent.name != "browser"]
        items[:] = others + browser

"""Fixtures of the browser suite: Debian's Chromium, a store filled by real kernels, and a
real JupyterLab server reading it.

Run with ``.venv/bin/pytest tests/browser -q`` (marker ``browser``). Screenshots go to
``test-artifacts/`` at the repository root.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from labserver import LabServer, launch_args, populate_store  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "test-artifacts"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    here = Path(__file__).resolve().parent
    for item in items:
        if here in Path(str(item.fspath)).resolve().parents:
            item.add_marker(pytest.mark.browser)


@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args: dict[str, Any]) -> dict[str, Any]:
    """Debian's Chromium with flags that keep it off the network and quiet."""
    return {**browser_type_launch_args, **launch_args()}


@pytest.fixture(scope="session")
def browser_context_args(browser_context_args: dict[str, Any]) -> dict[str, Any]:
    return {**browser_context_args, "viewport": {"width": 1440, "height": 900}}


@pytest.fixture(scope="session")
def artifacts() -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    return ARTIFACTS


def _installed_front_end_is_current() -> None:
    """Stop early when JupyterLab would load another build than the one in the tree.

    An editable install copies the labextension: after ``jlpm build`` the copy is stale until
    ``pip install -e .`` (or ``jupyter labextension develop . --overwrite``, which links it).
    """
    built = ROOT / "src" / "nbtrace" / "labextension" / "package.json"
    installed = (
        Path(sys.prefix) / "share" / "jupyter" / "labextensions" / "nbtrace" / "package.json"
    )
    if not built.exists() or not installed.exists():
        return
    load = [
        json.loads(p.read_text()).get("jupyterlab", {}).get("_build", {}).get("load")
        for p in (built, installed)
    ]
    if load[0] != load[1]:
        pytest.exit(
            f"the installed nbtrace labextension ({installed.parent}) is not the one built in the"
            " tree: run `pip install -e .` or `jupyter labextension develop . --overwrite`",
            returncode=3,
        )


@pytest.fixture(scope="session")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LabServer]:
    """A JupyterLab server on a store populated by real kernels."""
    _installed_front_end_is_current()
    base = tmp_path_factory.mktemp("nbtrace-browser")
    root = base / "root"
    db = str(base / "runs.db")
    populate_store(db, root)
    server = LabServer(root, db, log=base / "jupyterlab.log").start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def dialogs(page: Any) -> list[str]:
    """Messages of every JavaScript dialog (alert, confirm...) the page opens."""
    seen: list[str] = []

    def on_dialog(dialog: Any) -> None:
        seen.append(dialog.message)
        dialog.dismiss()

    page.on("dialog", on_dialog)
    return seen

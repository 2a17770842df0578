"""Runs from MLflow's client and nested runs in the sidebar's details, in Chromium (issue 11).

The store is filled by real kernels: ``cv`` with three nested ``fold-*`` runs (nbtrace's API,
``nested=True``), and ``auto``, an ``mlflow.sklearn.autolog()`` run made through ``nbtrace:``.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from labserver import LabServer, run_notebook
from playwright.sync_api import Page, expect
from test_sidebar import open_sidebar, row, shot

pytestmark = pytest.mark.browser

pytest.importorskip("mlflow")


@pytest.fixture(scope="module")
def mlflow_lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LabServer]:
    base = tmp_path_factory.mktemp("nbtrace-browser-mlflow")
    root = base / "root"
    root.mkdir()
    db = str(base / "runs.db")
    run_notebook(
        [
            "%load_ext nbtrace",
            "import nbtrace\nwith nbtrace.start_run(run_name='cv', experiment='cv'):\n"
            "    for k in range(3):\n"
            "        with nbtrace.start_run(run_name=f'fold-{k}', nested=True):\n"
            "            nbtrace.log_metric('score', 0.5 + k / 10)\n"
            "    nbtrace.log_metric('mean', 0.6)",
        ],
        db,
        root,
        "cv.ipynb",
    )
    run_notebook(
        [
            "%load_ext nbtrace",
            "import mlflow, mlflow.sklearn\nfrom sklearn.datasets import load_wine\n"
            "from sklearn.linear_model import ElasticNet\n"
            'mlflow.set_tracking_uri("nbtrace:")\nmlflow.sklearn.autolog()\n'
            "X, y = load_wine(return_X_y=True)",
            "import matplotlib\nmatplotlib.use('Agg')\nimport matplotlib.pyplot as plt\n"
            "with mlflow.start_run(run_name='auto'):\n"
            "    ElasticNet(alpha=0.3, l1_ratio=0.2).fit(X, y)\n"
            "    fig, ax = plt.subplots()\n"
            "    ax.plot([3, 1, 2])\n"
            "    mlflow.log_figure(fig, 'plots/curve.png')",
        ],
        db,
        root,
        "auto.ipynb",
    )
    server = LabServer(root, db, log=base / "jupyterlab.log").start()
    try:
        yield server
    finally:
        server.stop()


def test_nested_runs_in_table_and_details(
    page: Page, mlflow_lab: LabServer, artifacts: Path
) -> None:
    open_sidebar(page, mlflow_lab)
    expect(row(page, "fold-1")).to_contain_text("cv")  # in its parent's experiment
    row(page, "cv").click()
    details = page.locator(".nbtrace-Details")
    nested = details.get_by_role("list", name="Runs nested in cv")
    expect(nested.get_by_role("listitem")).to_have_count(3)
    expect(nested).to_contain_text("fold-0")
    shot(page, artifacts, "nested-runs.png")
    nested.get_by_role("button", name="fold-2").click()
    expect(details.get_by_role("heading", name="fold-2")).to_be_visible()
    expect(details.locator(".nbtrace-Nesting-parent")).to_contain_text("Nested in")


def test_autologged_params_are_not_overridable(page: Page, mlflow_lab: LabServer) -> None:
    open_sidebar(page, mlflow_lab)
    row(page, "auto").click()
    details = page.locator(".nbtrace-Details")
    expect(details.get_by_role("heading", name="auto")).to_be_visible()
    expect(details).to_contain_text("models/model/MLmodel")
    # MLflow's log_figure, stored where MLflow puts it and previewed from the nbtrace run
    image = details.get_by_role("img", name="plots/curve.png")
    expect(image).to_be_visible()
    page.wait_for_function(
        "img => img.complete && img.naturalWidth > 0", arg=image.element_handle()
    )
    details.get_by_role("button", name="Re-execute").click()
    dialog = page.get_by_role("dialog")
    alpha = dialog.get_by_label("alpha", exact=True)
    expect(alpha).to_have_value("0.3")
    expect(alpha).to_have_attribute("readonly", "")
    expect(dialog.locator(".nbtrace-Rerun-params")).to_contain_text("not overridable")
    dialog.get_by_role("button", name="Close").click()
    expect(dialog).to_have_count(0)

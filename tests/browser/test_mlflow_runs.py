"""Runs from MLflow's client and nested runs in the sidebar's details, in Chromium (issue 11).

The store is filled by real kernels: ``cv`` with three nested ``fold-*`` runs (nbtrace's API,
``nested=True``), ``auto``, an ``mlflow.sklearn.autolog()`` run made through ``nbtrace:``, and
``hpo`` with two nested ``trial-*`` runs made by MLflow's client (``nested=True``) through
``nbtrace:``: the run list draws nested runs as a tree.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from labserver import LabServer, run_notebook
from playwright.sync_api import Page, expect
from test_runs_table import open_table
from test_sidebar import apply_filter, open_sidebar, row, shot

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
            "with mlflow.start_run(run_name='hpo'):\n"
            "    for k, lr in enumerate([0.1, 0.01]):\n"
            "        with mlflow.start_run(run_name=f'trial-{k}', nested=True):\n"
            "            mlflow.log_param('lr', lr)\n"
            "            mlflow.log_metric('loss', 3 * lr)",
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


def order(page: Page, scope: str = ".nbtrace-RunsSection") -> list[str]:
    """Names in the run list, top to bottom, without the tree's toggles."""
    names = page.locator(f"{scope} .nbtrace-RunsTable-row .nbtrace-sticky-name").all_inner_texts()
    return [n.replace("▾", "").replace("▸", "").replace("↻", "").strip() for n in names]


def test_nested_run_in_its_parents_experiment(page: Page, mlflow_lab: LabServer) -> None:
    open_sidebar(page, mlflow_lab)
    expect(row(page, "fold-1")).to_contain_text("cv")


def test_nested_mlflow_runs_are_a_tree_in_the_sidebar(
    page: Page, mlflow_lab: LabServer, artifacts: Path
) -> None:
    open_sidebar(page, mlflow_lab)
    parent = row(page, "hpo")
    expect(parent).to_have_attribute("aria-expanded", "true")
    expect(parent).to_have_attribute("data-depth", "0")
    for name in ("trial-0", "trial-1"):
        expect(row(page, name)).to_have_attribute("data-depth", "1")
    names = order(page)
    at = names.index("hpo")
    assert sorted(names[at + 1 : at + 3]) == ["trial-0", "trial-1"]
    shot(page, artifacts, "nested-tree.png")


def test_collapsing_a_parent_hides_its_nested_runs(page: Page, mlflow_lab: LabServer) -> None:
    open_sidebar(page, mlflow_lab)
    expect(row(page, "trial-0")).to_be_visible()
    page.get_by_role("button", name="Hide 2 nested runs of hpo").click()
    expect(row(page, "hpo")).to_have_attribute("aria-expanded", "false")
    expect(row(page, "trial-0")).to_have_count(0)
    expect(row(page, "trial-1")).to_have_count(0)
    page.get_by_role("button", name="Show 2 nested runs of hpo").click()
    expect(row(page, "trial-1")).to_be_visible()


def test_tree_keys_collapse_and_expand(page: Page, mlflow_lab: LabServer) -> None:
    open_sidebar(page, mlflow_lab)
    parent = row(page, "hpo")
    parent.focus()
    parent.press("ArrowLeft")
    expect(parent).to_have_attribute("aria-expanded", "false")
    expect(row(page, "trial-0")).to_have_count(0)
    parent.press("ArrowRight")
    expect(row(page, "trial-0")).to_be_visible()


def test_nested_run_matching_a_filter_shows_without_its_parent(
    page: Page, mlflow_lab: LabServer
) -> None:
    open_sidebar(page, mlflow_lab)
    apply_filter(page, "params.lr = 0.1")
    child = row(page, "trial-0")
    expect(child).to_be_visible()
    expect(child).to_have_attribute("data-depth", "0")
    expect(row(page, "hpo")).to_have_count(0)
    expect(row(page, "trial-1")).to_have_count(0)


def test_nested_runs_are_a_tree_in_the_main_table(page: Page, mlflow_lab: LabServer) -> None:
    view = open_table(page, mlflow_lab)
    parent = view.locator(".nbtrace-RunsTable-row").filter(has_text="hpo").first
    expect(parent).to_have_attribute("aria-expanded", "true")
    trial = view.locator(".nbtrace-RunsTable-row").filter(has_text="trial-1").first
    expect(trial).to_have_attribute("data-depth", "1")
    view.get_by_role("button", name="Hide 2 nested runs of hpo").click()
    expect(view.locator(".nbtrace-RunsTable-row").filter(has_text="trial-1")).to_have_count(0)


def test_nested_runs_listed_in_the_details(
    page: Page, mlflow_lab: LabServer, artifacts: Path
) -> None:
    open_sidebar(page, mlflow_lab)
    row(page, "cv").click()
    details = page.locator(".nbtrace-Details")
    nested = details.get_by_role("list", name="Runs nested in cv")
    expect(nested.get_by_role("listitem")).to_have_count(3)
    expect(nested).to_contain_text("fold-0")
    shot(page, artifacts, "nested-runs.png")


def test_nested_run_opened_from_its_parents_details(page: Page, mlflow_lab: LabServer) -> None:
    open_sidebar(page, mlflow_lab)
    row(page, "cv").click()
    details = page.locator(".nbtrace-Details")
    nested = details.get_by_role("list", name="Runs nested in cv")
    nested.get_by_role("button", name="fold-2").click()
    expect(details.get_by_role("heading", name="fold-2")).to_be_visible()
    expect(details.locator(".nbtrace-Nesting-parent")).to_contain_text("Nested in")


def test_mlflow_artifacts_listed_and_previewed(page: Page, mlflow_lab: LabServer) -> None:
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


def test_autologged_params_are_not_overridable(page: Page, mlflow_lab: LabServer) -> None:
    open_sidebar(page, mlflow_lab)
    row(page, "auto").click()
    details = page.locator(".nbtrace-Details")
    expect(details.get_by_role("heading", name="auto")).to_be_visible()
    details.get_by_role("button", name="Re-execute").click()
    dialog = page.get_by_role("dialog")
    alpha = dialog.get_by_label("alpha", exact=True)
    expect(alpha).to_have_value("0.3")
    expect(alpha).to_have_attribute("readonly", "")
    expect(dialog.locator(".nbtrace-Rerun-params")).to_contain_text("not overridable")
    dialog.get_by_role("button", name="Close").click()
    expect(dialog).to_have_count(0)

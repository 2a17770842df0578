"""The verdict in the Re-execute dialog (issue 10): causes, and the first divergent cell's output
original and new side by side, images included (as data: URLs of raster images only).

A store of its own: one run that prints and plots the numbers of a data file; the file is
edited before the re-execution, so the replay diverges at that cell and names the file.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from labserver import LabServer, run_notebook
from playwright.sync_api import Page, expect

pytestmark = pytest.mark.browser

CELLS = [
    "%load_ext nbtrace",
    "import matplotlib.pyplot as plt\n%matplotlib inline\nimport nbtrace",
    "%%track_run plotted\nvals = [float(v) for v in open('vals.txt').read().split()]\n"
    "print('sum', sum(vals))\nplt.plot(vals)\nplt.show()\nnbtrace.log_metric('s', sum(vals))",
]


# A parameter logged after use with its result discarded: the dialog must not offer to edit it.
FIXED = [
    "%load_ext nbtrace",
    "import nbtrace\nwith nbtrace.start_run('fixed'):\n    k = 3\n    m = k * 2.0\n"
    "    nbtrace.log_params({'k': k})\n    nbtrace.log_metric('m', m)",
]


@pytest.fixture(scope="module")
def verdict_lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LabServer]:
    base = tmp_path_factory.mktemp("nbtrace-verdict-browser")
    root = base / "root"
    root.mkdir()
    (root / "vals.txt").write_text("1 2 3")
    db = str(base / "runs.db")
    run_notebook(CELLS, db, root, "plot.ipynb")
    run_notebook(FIXED, db, root, "fixed.ipynb")
    (root / "vals.txt").write_text("1 5 3")
    server = LabServer(root, db, log=base / "jupyterlab.log").start()
    try:
        yield server
    finally:
        server.stop()


def test_verdict_shows_causes_and_first_divergence_side_by_side(
    page: Page, verdict_lab: LabServer, artifacts: Path
) -> None:
    from test_sidebar import open_sidebar, row, shot

    open_sidebar(page, verdict_lab)
    row(page, "plotted").click()
    page.locator(".nbtrace-Details").get_by_role("button", name="Re-execute").click()
    dialog = page.get_by_role("dialog")
    drift = dialog.get_by_role("region", name="Environment drift")
    expect(drift).to_contain_text("vals.txt changed since the run", timeout=30_000)
    expect(dialog.get_by_label("Use recorded modules")).not_to_be_checked()
    expect(dialog.get_by_label("Repeat", exact=True)).to_have_value("1")
    dialog.get_by_role("button", name="Start").click()
    status = dialog.locator(".nbtrace-Verdict-status")
    expect(status).to_contain_text("diverged", timeout=120_000)
    causes = dialog.get_by_role("region", name="Causes")
    expect(causes).to_contain_text("input")
    expect(causes).to_contain_text("vals.txt")
    first = dialog.get_by_role("region", name="First divergence")
    expect(first).to_contain_text("cell 3")
    original = first.get_by_role("figure", name="Original")
    new = first.get_by_role("figure", name="Re-execution")
    expect(original).to_contain_text("sum 6.0")
    expect(new).to_contain_text("sum 9.0")
    for side in (original, new):
        img = side.get_by_role("img")
        expect(img).to_have_count(1)
        assert (img.get_attribute("src") or "").startswith("data:image/png;base64,")
    assert original.get_by_role("img").get_attribute("src") != new.get_by_role(
        "img"
    ).get_attribute("src")
    shot(page, artifacts, "verdict.png")
    dialog.get_by_role("button", name="Close").click()
    expect(dialog).to_have_count(0)


def test_parameter_the_code_cannot_consume_is_marked(page: Page, verdict_lab: LabServer) -> None:
    from test_sidebar import open_sidebar, row

    open_sidebar(page, verdict_lab)
    row(page, "fixed").click()
    page.locator(".nbtrace-Details").get_by_role("button", name="Re-execute").click()
    dialog = page.get_by_role("dialog")
    expect(dialog).to_contain_text("not overridable: cell 2", timeout=30_000)
    expect(dialog.get_by_label("k", exact=True)).to_have_attribute("readonly", "")
    dialog.get_by_role("button", name="Close").click()

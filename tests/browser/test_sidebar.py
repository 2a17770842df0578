"""The nbtrace sidebar in a real JupyterLab, driven in Chromium.

The store behind the server is filled by real kernels (see ``labserver.populate_store``):
``baseline`` (alpha 0.5) and ``stronger-reg`` (alpha 2.0) in experiment ``demo``, ``slow``, three
``sweep-*`` runs, a ``broken`` (failed) run and ``html-names``, whose param name is HTML.
Tests run in file order; the re-execution tests, which add runs, come last.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import nbformat
import pytest
from labserver import XSS_NAME, LabServer, run_notebook
from playwright.sync_api import Locator, Page, expect
from playwright.sync_api import TimeoutError as PlaywrightTimeoutError

from gateways import wait_for

pytestmark = pytest.mark.browser

TIMEOUT = 20_000


def open_sidebar(page: Page, lab: LabServer, reset: bool = True, width: int = 640) -> None:
    """Load JupyterLab, open the nbtrace sidebar and widen it."""
    page.set_default_timeout(TIMEOUT)
    page.goto(lab.lab_url(reset=reset))
    tab = page.get_by_role("tab", name="nbtrace")
    tab.wait_for()
    # The tab's state is read once the layout is restored: before that, a restored open
    # sidebar may still show as unselected, and the click would then close it.
    page.wait_for_function("() => window.jupyterapp !== undefined")
    page.evaluate("() => window.jupyterapp.restored.then(() => true)")
    if tab.get_attribute("aria-selected") != "true":
        tab.click()
    expect(page.locator(".nbtrace-RunsSection")).to_be_visible()
    handle = page.locator("#jp-main-split-panel > .lm-SplitPanel-handle").first
    box = handle.bounding_box()
    assert box is not None
    page.mouse.move(box["x"] + box["width"] / 2, box["y"] + 300)
    page.mouse.down()
    page.mouse.move(width, box["y"] + 300, steps=4)
    page.mouse.up()


def rows(page: Page) -> Locator:
    return page.locator(".nbtrace-RunsTable-row")


def row_names(page: Page) -> list[str]:
    """Names shown in the table, top to bottom (the re-execution mark stripped)."""
    names = page.locator(".nbtrace-RunsTable-row td:nth-child(2)").all_inner_texts()
    return [n.replace("↻", "").strip() for n in names]


def row(page: Page, name: str) -> Locator:
    """The row of the original (not re-executed) run called ``name``."""
    return (
        page.locator(".nbtrace-RunsTable-row")
        .filter(has=page.get_by_role("checkbox", name=f"Select {name}", exact=True))
        .filter(has_not=page.locator(".nbtrace-rerun-mark"))
        .first
    )


def apply_filter(page: Page, query: str) -> None:
    box = page.get_by_role("searchbox", name="Filter runs")
    box.fill(query)
    box.press("Enter")


def shot(page: Page, artifacts: Path, name: str, **kw: Any) -> None:
    page.wait_for_timeout(300)  # let charts and fonts settle
    page.screenshot(path=str(artifacts / name), **kw)


def test_table_shows_runs(page: Page, lab: LabServer, artifacts: Path) -> None:
    open_sidebar(page, lab)
    expect(row(page, "baseline")).to_be_visible()
    names = row_names(page)
    for name in ("baseline", "stronger-reg", "sweep-0", "sweep-1", "sweep-2", "broken"):
        assert name in names
    assert XSS_NAME not in names
    # Newest first by default; the failed run looks failed.
    assert names.index("broken") < names.index("baseline")
    expect(row(page, "broken").locator(".nbtrace-status-failed")).to_have_text("failed")
    expect(page.locator(".nbtrace-StatusLine")).to_contain_text(f"{len(names)} runs")
    shot(page, artifacts, "sidebar.png")


def test_keyboard_moves_opens_and_ticks(page: Page, lab: LabServer) -> None:
    """Arrows move between rows, Enter shows the details, Space ticks the row."""
    open_sidebar(page, lab)
    expect(row(page, "baseline")).to_be_visible()
    names = row_names(page)
    rows(page).first.focus()
    page.keyboard.press("ArrowDown")
    expect(rows(page).nth(1)).to_be_focused()
    page.keyboard.press("Enter")
    expect(page.locator(".nbtrace-RunName")).to_have_text(names[1])
    expect(rows(page).nth(1)).to_be_focused()
    page.keyboard.press(" ")
    expect(page.get_by_role("checkbox", name=f"Select {names[1]}", exact=True)).to_be_checked()


def open_palette(page: Page) -> Locator:
    """Open the command palette, waiting on the events that make the shortcut work.

    Why a loop on visibility: right after load, the Lab may not have registered its key
    bindings, or the click may land before the dock panel takes focus; a shortcut pressed then
    is lost. Each attempt waits for the palette itself, not for a fixed time.
    """
    palette = page.locator(".lm-CommandPalette-input")
    page.locator(".jp-Launcher, .jp-LauncherBody").first.wait_for()  # the app has started
    for _ in range(10):
        page.locator("#jp-main-dock-panel").click()
        page.keyboard.press("Control+Shift+C")
        try:
            palette.wait_for(state="visible", timeout=3_000)
            return palette
        except PlaywrightTimeoutError:
            continue
    raise AssertionError("the command palette did not open")


def test_palette_command_opens_sidebar(page: Page, lab: LabServer) -> None:
    page.set_default_timeout(TIMEOUT)
    page.goto(lab.lab_url())
    tab = page.get_by_role("tab", name="nbtrace")
    expect(tab).to_have_attribute("aria-selected", "false")
    palette = open_palette(page)
    palette.fill("nbtrace: Open runs")
    # The item for exactly this command (other nbtrace commands may share the prefix).
    item = page.locator(
        ".lm-CommandPalette-item[data-command='nbtrace:open']"
    )
    expect(item).to_be_visible()
    item.click()
    expect(tab).to_have_attribute("aria-selected", "true")
    expect(row(page, "baseline")).to_be_visible()


def test_filter_narrows(page: Page, lab: LabServer) -> None:
    open_sidebar(page, lab)
    apply_filter(page, "experiment = 'demo' and params.alpha > 1")
    expect(rows(page)).to_have_count(1)
    assert row_names(page) == ["stronger-reg"]


def test_bad_filter_reports_position(page: Page, lab: LabServer) -> None:
    open_sidebar(page, lab)
    apply_filter(page, "params.alpha >> 1")
    alert = page.locator(".nbtrace-FilterBar-error")
    expect(alert).to_contain_text(re.compile(r"position \d+"))
    expect(page.get_by_role("searchbox", name="Filter runs")).to_have_attribute(
        "aria-invalid", "true"
    )
    expect(rows(page)).to_have_count(0)
    apply_filter(page, "name like 'sweep%'")
    expect(rows(page)).to_have_count(3)
    expect(alert).to_have_count(0)


def wait_saved(lab: LabServer, key: str, needle: str, timeout: float = 60.0) -> None:
    """Wait until JupyterLab's workspace on the server holds ``key`` with ``needle`` in it
    (the state database saves the workspace after a debounce)."""

    def saved() -> bool:
        data = (lab.get("/lab/api/workspaces/default") or {}).get("data") or {}
        return needle in json.dumps(data.get(key))

    wait_for(saved, timeout, f"the workspace to hold {key}", interval=0.05)


def test_filter_kept_across_reloads(page: Page, lab: LabServer) -> None:
    """The last filter is kept across reloads (state database, same workspace)."""
    open_sidebar(page, lab)
    apply_filter(page, "name like 'sweep%'")
    expect(rows(page)).to_have_count(3)
    wait_saved(lab, "nbtrace:runs-query", "sweep%")
    open_sidebar(page, lab, reset=False)
    expect(page.get_by_role("searchbox", name="Filter runs")).to_have_value("name like 'sweep%'")
    expect(rows(page)).to_have_count(3)
    apply_filter(page, "")
    expect(row(page, "baseline")).to_be_visible()


def test_sorting_by_name(page: Page, lab: LabServer) -> None:
    open_sidebar(page, lab)
    apply_filter(page, "experiment != 'security'")
    expect(row(page, "baseline")).to_be_visible()
    header = page.get_by_role("columnheader", name=re.compile("^Name"))
    header.get_by_role("button").click()
    expect(header).to_have_attribute("aria-sort", "ascending")
    expect(rows(page).first).to_contain_text("baseline")
    names = row_names(page)
    assert names == sorted(names)
    header.get_by_role("button").click()
    expect(header).to_have_attribute("aria-sort", "descending")
    expect(rows(page).first).to_contain_text("sweep-2")
    assert row_names(page) == sorted(names, reverse=True)


def test_sorting_by_a_chosen_metric_column(page: Page, lab: LabServer) -> None:
    """A metric column picked by the user, sorted by the server (numbers, missing last)."""
    open_sidebar(page, lab)
    apply_filter(page, "experiment != 'security'")
    expect(row(page, "baseline")).to_be_visible()
    page.get_by_role("button", name="Columns").click()
    page.get_by_role("checkbox", name="metrics.mse").check()
    page.get_by_role("button", name="Done").click()
    mse = page.get_by_role("columnheader", name=re.compile("mse"))
    mse.get_by_role("button").click()
    expect(mse).to_have_attribute("aria-sort", "ascending")
    expect(rows(page).first).to_contain_text("baseline")
    assert row_names(page)[:2] == ["baseline", "stronger-reg"]
    mse.get_by_role("button").click()
    expect(rows(page).first).to_contain_text("stronger-reg")
    page.get_by_role("button", name="Columns").click()
    page.get_by_role("checkbox", name="metrics.mse").uncheck()
    page.get_by_role("button", name="Done").click()  # the chooser is a popup over the table


def test_row_context_menu(page: Page, lab: LabServer) -> None:
    """Rows have a context menu with the re-execute command."""
    open_sidebar(page, lab)
    row(page, "baseline").click(button="right")
    expect(page.get_by_role("menuitem", name="Re-execute…")).to_be_visible()
    expect(page.get_by_role("menuitem", name="Open as notebook")).to_be_visible()
    page.keyboard.press("Escape")


def open_details(page: Page, lab: LabServer, name: str) -> Locator:
    """The sidebar with the details of the run ``name`` shown."""
    open_sidebar(page, lab)
    row(page, name).click()
    details = page.locator(".nbtrace-Details")
    expect(details.get_by_role("heading", name=name)).to_be_visible()
    return details


def test_details_show_cells(page: Page, lab: LabServer) -> None:
    """Cells in execution order with hashes; the run's own cells are marked."""
    details = open_details(page, lab, "baseline")
    cells = details.get_by_role("list", name="Recorded cells").get_by_role("listitem")
    expect(cells).to_have_count(7)
    expect(cells.nth(0)).to_contain_text("%load_ext nbtrace")
    expect(cells.nth(0)).to_contain_text("before run")
    expect(cells.nth(3)).to_contain_text("%log_param alpha=0.5")
    expect(cells.nth(3)).to_contain_text("in run")
    expect(cells.nth(3).locator(".nbtrace-Cell-hash")).to_have_text(re.compile("^[0-9a-f]{12}$"))


def test_details_show_params_and_metrics(page: Page, lab: LabServer) -> None:
    """Params, and metrics with their chart."""
    details = open_details(page, lab, "baseline")
    expect(details.get_by_role("table", name="Parameters")).to_contain_text("alpha")
    expect(details.get_by_role("table", name="Metrics")).to_contain_text("mse")
    expect(details.locator(".nbtrace-MetricsSection svg").first).to_be_visible()


def test_details_show_environment(page: Page, lab: LabServer, artifacts: Path) -> None:
    """The environment, with a package search."""
    details = open_details(page, lab, "baseline")
    env = details.get_by_role("table", name="Environment")
    expect(env).to_contain_text(re.compile(r"python\s*3\.\d+"))
    details.get_by_role("searchbox", name="Search packages").fill("nbformat")
    packages = details.get_by_role("table", name="Installed packages")
    expect(packages.get_by_role("row")).to_have_count(1)
    expect(packages).to_contain_text("nbformat")
    details.get_by_role("searchbox", name="Search packages").fill("")
    page.set_viewport_size({"width": 1440, "height": 1800})
    page.locator(".nbtrace-DetailsWidget").evaluate("n => n.scrollTop = 0")
    shot(page, artifacts, "details.png", clip={"x": 0, "y": 0, "width": 660, "height": 1800})


def test_compare_highlights_differences(page: Page, lab: LabServer, artifacts: Path) -> None:
    open_sidebar(page, lab)
    compare = page.get_by_role("button", name="Compare", exact=True)
    expect(compare).to_be_disabled()
    page.get_by_role("checkbox", name="Select baseline", exact=True).last.check()
    expect(compare).to_be_disabled()
    page.get_by_role("checkbox", name="Select stronger-reg", exact=True).check()
    expect(compare).to_be_enabled()
    compare.click()
    view = page.locator(".nbtrace-Compare")
    expect(view).to_be_visible()
    params = view.get_by_role("table", name="Parameters compared")
    alpha = params.get_by_role("row").filter(
        has=page.get_by_role("rowheader", name=re.compile("^alpha"))
    )
    l1 = params.get_by_role("row").filter(
        has=page.get_by_role("rowheader", name=re.compile("^l1_ratio"))
    )
    expect(alpha).to_have_class(re.compile("nbtrace-diff"))
    expect(alpha.locator(".nbtrace-diff-cell")).to_have_text("2")
    expect(l1).not_to_have_class(re.compile("nbtrace-diff"))
    # Best value marked: lower mse is better, baseline has it.
    metrics = view.get_by_role("table", name="Metrics compared")
    best = metrics.locator(".nbtrace-best").first
    expect(best).to_contain_text("300")
    # Charts (Vega) and a code diff naming the edited line.
    expect(view.locator(".nbtrace-CompareCharts svg").first).to_be_visible()
    expect(view.locator(".nbtrace-CompareCode")).to_contain_text("alpha=2.0")
    view.get_by_role("checkbox", name="Only differences").check()
    expect(l1).to_have_count(0)
    expect(alpha).to_be_visible()
    view.get_by_role("checkbox", name="Only differences").uncheck()
    shot(page, artifacts, "compare.png")


def test_html_in_names_is_text(page: Page, lab: LabServer, dialogs: list[str]) -> None:
    open_sidebar(page, lab)
    row(page, "html-names").click()
    details = page.locator(".nbtrace-Details")
    params = details.get_by_role("table", name="Parameters")
    expect(params.get_by_role("rowheader", name=XSS_NAME)).to_be_visible()
    expect(params).to_contain_text("<b>bold</b><script>alert(2)</script>")
    expect(details.get_by_role("list", name="Tags")).to_contain_text(XSS_NAME)
    # Image artifacts inline (fetched with credentials, shown from a data: URL of a raster
    # image, the SVG rasterised): the SVG's script does not run.
    for name in ("plot.png", "evil.svg"):
        image = details.get_by_role("img", name=name)
        expect(image).to_have_attribute("src", re.compile("^data:image/png;base64,"))
        page.wait_for_function(
            "img => img.complete && img.naturalWidth > 0", arg=image.element_handle()
        )
    # Also as a table column and in a comparison.
    page.get_by_role("checkbox", name="Select html-names").check()
    page.get_by_role("checkbox", name="Select sweep-0").check()
    page.get_by_role("button", name="Compare", exact=True).click()
    expect(page.locator(".nbtrace-Compare").get_by_role("rowheader", name=XSS_NAME)).to_be_visible()
    page.wait_for_timeout(500)
    assert page.locator('img[src="x"]').count() == 0
    assert page.locator("b", has_text="bold").count() == 0
    assert page.locator(".nbtrace-Sidebar script, .nbtrace-Compare script").count() == 0
    assert dialogs == []


def test_edit_tags(page: Page, lab: LabServer) -> None:
    details = open_details(page, lab, "sweep-1")
    details.get_by_role("textbox", name="Tag name").fill("reviewed")
    details.get_by_role("textbox", name="Tag value").fill("<i>yes</i>")
    details.get_by_role("button", name="Add tag").click()
    tags = details.get_by_role("list", name="Tags")
    expect(tags).to_contain_text("<i>yes</i>")
    run_id = details.locator(".nbtrace-RunId code").inner_text()
    assert lab.get(f"/nbtrace/api/runs/{run_id}")["tags"]["reviewed"] == "<i>yes</i>"
    details.get_by_role("button", name="Remove tag reviewed").click()
    expect(tags).not_to_contain_text("reviewed")
    assert "reviewed" not in lab.get(f"/nbtrace/api/runs/{run_id}")["tags"]


def test_edit_note(page: Page, lab: LabServer) -> None:
    details = open_details(page, lab, "sweep-1")
    details.get_by_role("textbox", name="Note").fill("learning rate too small")
    details.get_by_role("button", name="Save note").click()
    expect(details.get_by_role("button", name="Save note")).to_be_disabled()
    run_id = details.locator(".nbtrace-RunId code").inner_text()
    assert lab.get(f"/nbtrace/api/runs/{run_id}")["note"] == "learning rate too small"


def test_dark_theme(page: Page, lab: LabServer, artifacts: Path) -> None:
    open_sidebar(page, lab)
    row(page, "stronger-reg").click()
    expect(page.locator(".nbtrace-MetricsSection svg").first).to_be_visible()
    page.evaluate(
        "window.jupyterapp.commands.execute('apputils:change-theme', {theme: 'JupyterLab Dark'})"
    )
    expect(page.locator("body")).to_have_attribute("data-jp-theme-light", "false")
    page.wait_for_timeout(800)
    background = page.locator(".nbtrace-Sidebar").evaluate(
        "n => getComputedStyle(n).backgroundColor"
    )
    text = page.locator(".nbtrace-RunName").evaluate("n => getComputedStyle(n).color")
    assert luminance(background) < 0.25 < luminance(text), (background, text)
    page.get_by_role("checkbox", name="Select stronger-reg", exact=True).check()
    page.get_by_role("checkbox", name="Select baseline", exact=True).check()
    page.get_by_role("button", name="Compare", exact=True).click()
    expect(page.locator(".nbtrace-CompareCharts svg").first).to_be_visible()
    axis = page.locator(".nbtrace-CompareCharts svg text").first.evaluate(
        "n => getComputedStyle(n).fill"
    )
    assert luminance(axis) > 0.5, axis  # chart labels follow the dark theme
    shot(page, artifacts, "dark.png")
    page.evaluate(
        "window.jupyterapp.commands.execute('apputils:change-theme', {theme: 'JupyterLab Light'})"
    )
    expect(page.locator("body")).to_have_attribute("data-jp-theme-light", "true")


def luminance(css: str) -> float:
    r, g, b = (int(x) for x in re.findall(r"\d+", css)[:3])
    return (0.2126 * r + 0.7152 * g + 0.0722 * b) / 255


def test_server_errors_are_explained(page: Page, lab: LabServer) -> None:
    page.route(
        re.compile(r".*/nbtrace/api/runs\?.*"),
        lambda route: route.fulfill(
            status=404, body="<html>404 Not Found</html>", content_type="text/html"
        ),
    )
    open_sidebar(page, lab)
    expect(page.get_by_role("alert")).to_contain_text("nbtrace server extension is not installed")
    page.unroute(re.compile(r".*/nbtrace/api/runs\?.*"))
    page.route(
        re.compile(r".*/nbtrace/api/runs\?.*"),
        lambda route: route.fulfill(
            status=503,
            body='{"message": "the nbtrace store is unavailable: disk I/O error"}',
            content_type="application/json",
        ),
    )
    page.get_by_role("button", name="Refresh runs").click()
    expect(page.get_by_role("alert")).to_contain_text("disk I/O error")


def test_new_runs_appear_without_a_refresh(page: Page, lab: LabServer) -> None:
    """A kernel logs a run while the sidebar is open: it shows up without a refresh."""
    open_sidebar(page, lab)
    expect(row(page, "baseline")).to_be_visible()
    run_notebook(
        ["%load_ext nbtrace", "%track_run live-run\n%log_metric x=1\n%end_run"],
        lab.db,
        lab.root,
        "live.ipynb",
    )
    expect(row(page, "live-run")).to_be_visible(timeout=15_000)


def test_what_changed_since_the_run(page: Page, lab: LabServer) -> None:
    """"What changed since this run" against the notebook open now: edit one code cell of
    baseline.ipynb on disk and add one, then open it."""
    open_sidebar(page, lab)
    expect(row(page, "baseline")).to_be_visible()
    path = lab.root / "baseline.ipynb"
    nb = nbformat.read(path, as_version=4)
    nb.cells[3].source = nb.cells[3].source.replace("alpha=0.5", "alpha=0.7")
    nb.cells.append(nbformat.v4.new_code_cell("print(mse)"))
    nbformat.write(nb, path)
    page.evaluate(
        "window.jupyterapp.commands"
        ".execute('docmanager:open', {path: 'baseline.ipynb'}).then(() => true)"
    )
    expect(page.locator(".jp-NotebookPanel")).to_be_visible()
    row(page, "baseline").click()
    section = page.locator(".nbtrace-WhatChanged")
    section.locator(":scope > summary").click()
    changes = section.get_by_role("list", name="Changed cells").get_by_role("listitem")
    expect(changes).to_have_count(2)
    expect(changes.nth(0)).to_contain_text("edited")
    expect(changes.nth(0)).to_contain_text("alpha=0.7")
    expect(changes.nth(1)).to_contain_text("added")


def test_open_as_notebook(page: Page, lab: LabServer) -> None:
    """"Open as notebook": a new notebook with a tagged parameters cell."""
    open_details(page, lab, "baseline")
    page.locator(".nbtrace-Details").get_by_role("button", name="Open as notebook").click()
    tab = page.get_by_role("tab", name=re.compile(r"^baseline-[0-9a-f]{8}\.ipynb"))
    expect(tab).to_be_visible()
    created = sorted(lab.root.glob("baseline-*.ipynb"))
    assert created, "no notebook created"
    made = nbformat.read(created[-1], as_version=4)
    params = [c for c in made.cells if "parameters" in c.metadata.get("tags", [])]
    assert len(params) == 1 and "alpha = 0.5" in params[0].source
    assert any("%log_param alpha l1_ratio solver" in c.source for c in made.cells)


def test_delete_a_run_after_confirming(page: Page, lab: LabServer) -> None:
    run_notebook(
        ["%load_ext nbtrace", "%track_run doomed-run\n%log_metric x=1\n%end_run"],
        lab.db,
        lab.root,
        "doomed.ipynb",
    )
    open_details(page, lab, "doomed-run")
    page.locator(".nbtrace-Details").get_by_role("button", name="Delete").click()
    page.locator(".jp-Dialog").get_by_role("button", name="Delete").click()
    expect(row(page, "doomed-run")).to_have_count(0)
    assert "doomed-run" not in row_names(page)


def test_rerun_progress_and_cancel(page: Page, lab: LabServer) -> None:
    open_sidebar(page, lab)
    row(page, "slow").click()
    page.locator(".nbtrace-Details").get_by_role("button", name="Re-execute").click()
    dialog = page.get_by_role("dialog")
    dialog.get_by_label("pause", exact=True).fill("3")
    dialog.get_by_role("button", name="Start").click()
    progress = dialog.get_by_role("region", name="Progress")
    expect(progress).to_contain_text(re.compile(r"Running cell \d+ of \d+"), timeout=60_000)
    dialog.get_by_role("button", name="Cancel").click()
    expect(progress).to_contain_text("Cancelled", timeout=30_000)
    expect(dialog.get_by_role("button", name="Cancel")).to_have_count(0)
    dialog.get_by_role("button", name="Close").click()
    expect(dialog).to_have_count(0)


def test_rerun_with_edited_param(page: Page, lab: LabServer, artifacts: Path) -> None:
    open_sidebar(page, lab)
    row(page, "baseline").click()
    page.locator(".nbtrace-Details").get_by_role("button", name="Re-execute").click()
    dialog = page.get_by_role("dialog")
    alpha = dialog.get_by_label("alpha", exact=True)
    expect(alpha).to_have_value("0.5")
    expect(dialog.get_by_role("region", name="Environment drift")).to_contain_text(
        re.compile("drift", re.I), timeout=30_000
    )
    alpha.fill("0.25")
    expect(dialog).to_contain_text("was 0.5")
    dialog.get_by_role("button", name="Start").click()
    verdict = dialog.locator(".nbtrace-Verdict-status")
    expect(verdict).to_contain_text(
        re.compile("reproduced|within_tolerance|diverged|failed"), timeout=120_000
    )
    expect(verdict).to_contain_text("diverged")
    deltas = dialog.get_by_role("table", name="Metric deltas")
    expect(deltas).to_contain_text("mse")
    shot(page, artifacts, "rerun.png")
    dialog.get_by_role("button", name="Close").click()
    expect(dialog).to_have_count(0)
    # The new run is in the table, selected, a child of baseline with alpha 0.25.
    active = page.locator(".nbtrace-RunsTable-row[aria-selected='true']")
    expect(active).to_contain_text("baseline")
    expect(active.locator(".nbtrace-rerun-mark")).to_have_count(1)
    details = page.locator(".nbtrace-Details")
    expect(details.get_by_role("table", name="Parameters")).to_contain_text("0.25")
    expect(details.locator(".nbtrace-LineageSection")).to_contain_text("diverged")


def test_rerun_of_another_users_run_asks_for_trust(page: Page, lab: LabServer) -> None:
    """Issue 12, item 3: the dialog shows who recorded the run and the code that will run,
    and starts only after an explicit confirmation."""
    from nbtrace.store import open_store

    store = open_store(lab.db)
    rid = next(r["id"] for r in store.list_runs(limit=None)[0] if r["name"] == "sweep-1")
    store.apply([("run_update", rid, {"user_name": "mallory"})])
    store.close()
    open_sidebar(page, lab)
    row(page, "sweep-1").click()
    page.locator(".nbtrace-Details").get_by_role("button", name="Re-execute").click()
    dialog = page.get_by_role("dialog")
    dialog.get_by_role("button", name="Start").click()
    trust = dialog.get_by_role("region", name="Trust this code")
    expect(trust).to_contain_text("Recorded by mallory@")
    expect(trust).to_contain_text("not by you on this host")
    code = trust.get_by_label("Code that will run")
    expect(code).to_contain_text("nbtrace.start_run(f'sweep-{k}'")
    button = trust.get_by_role("button", name="Trust and run")
    expect(button).to_be_disabled()
    expect(dialog.get_by_role("button", name="Start")).to_be_disabled()
    trust.get_by_label("I have read this code and trust it").check()
    button.click()
    verdict = dialog.locator(".nbtrace-Verdict-status")
    expect(verdict).to_contain_text(
        re.compile("reproduced|within_tolerance|diverged|failed"), timeout=120_000
    )
    expect(trust).to_have_count(0)
    dialog.get_by_role("button", name="Close").click()


def open_sweep(page: Page, lab: LabServer, name: str) -> Locator:
    """The sweep dialog of the run ``name``."""
    open_details(page, lab, name)
    page.locator(".nbtrace-Details").get_by_role("button", name="Sweep…").click()
    return page.get_by_role("dialog", name=f"Sweep {name}")


def test_sweep_form_checks_the_values(page: Page, lab: LabServer) -> None:
    dialog = open_sweep(page, lab, "stronger-reg")
    values = dialog.get_by_label("Values of alpha")
    expect(values).to_have_value("2")
    values.fill("1, 3")
    dialog.get_by_label("Values of l1_ratio").fill("0.1, x")
    expect(dialog).to_contain_text('"x" expects a number')
    expect(dialog.get_by_role("button", name="Start sweep")).to_be_disabled()
    dialog.get_by_label("Values of l1_ratio").fill("0.1")
    expect(dialog).to_contain_text("2 runs.")
    expect(dialog.get_by_role("button", name="Start sweep")).to_be_enabled()


def test_sweep_runs_and_shows_its_runs(page: Page, lab: LabServer, artifacts: Path) -> None:
    dialog = open_sweep(page, lab, "stronger-reg")
    dialog.get_by_label("Values of alpha").fill("1, 3")
    expect(dialog).to_contain_text("2 runs.")
    dialog.get_by_label("Kernels at once").fill("2")
    dialog.get_by_role("button", name="Start sweep").click()
    status = dialog.get_by_role("status")
    expect(status).to_contain_text("2 of 2 done", timeout=180_000)
    expect(status).to_contain_text("sweep done")
    shot(page, artifacts, "sweep.png")
    dialog.get_by_role("button", name="Show the sweep's runs").click()
    expect(dialog).to_have_count(0)
    expect(page.get_by_role("searchbox", name="Filter runs")).to_have_value(
        re.compile(r"^tags\.sweep = '[0-9a-f]+'$")
    )
    expect(rows(page)).to_have_count(2, timeout=30_000)
    params = page.get_by_role("table", name="Parameters compared")
    expect(params).to_contain_text("alpha")
    expect(params).to_contain_text("3")


def test_sweep_of_another_users_run_asks_for_trust(page: Page, lab: LabServer) -> None:
    from nbtrace.store import open_store

    store = open_store(lab.db)
    ids = [r["id"] for r in store.list_runs(limit=None)[0] if r["name"] == "baseline"]
    store.apply([("run_update", rid, {"user_name": "mallory"}) for rid in ids])
    store.close()
    open_sidebar(page, lab)
    row(page, "baseline").click()
    page.locator(".nbtrace-Details").get_by_role("button", name="Sweep…").click()
    dialog = page.get_by_role("dialog", name="Sweep baseline")
    dialog.get_by_label("Values of alpha").fill("0.5, 0.7")
    dialog.get_by_role("button", name="Start sweep").click()
    trust = dialog.get_by_role("region", name="Trust this code")
    expect(trust).to_contain_text("Recorded by mallory@")
    expect(trust.get_by_label("Code that will run")).to_contain_text("%track_run")
    button = trust.get_by_role("button", name="Trust and run")
    expect(button).to_be_disabled()
    expect(dialog.get_by_role("button", name="Start sweep")).to_be_disabled()
    trust.get_by_label("I have read this code and trust it").check()
    button.click()
    expect(dialog.get_by_role("status")).to_contain_text("sweep done", timeout=180_000)
    expect(trust).to_have_count(0)

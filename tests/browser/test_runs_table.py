"""The main-area runs table, its column chooser, parallel coordinates, artifact previews and
keyboard use, in Chromium at 1280x800 against a real JupyterLab.

The store (``labserver.populate_table_store``, 338 runs made by real kernels) holds the quick
start notebook's runs, a 330-run grid search tagged by sweep, a run with 1,000 param keys and
a run with artifacts. Screenshots go to ``test-artifacts/``.
"""

from __future__ import annotations

import json
import re
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from labserver import GRID_RUNS, LabServer, populate_table_store
from playwright.sync_api import Locator, Page, expect

pytestmark = pytest.mark.browser

TIMEOUT = 20_000
VIEWPORT = {"width": 1280, "height": 800}
TOTAL = GRID_RUNS + 8

#: Records the type of every object URL the page creates (an SVG or HTML ``blob:`` URL has
#: the Lab's origin and runs its script when opened).
BLOB_PROBE = """
window.__nbtraceBlobTypes = [];
const made = URL.createObjectURL.bind(URL);
URL.createObjectURL = obj => {
  window.__nbtraceBlobTypes.push(obj && obj.type !== undefined ? obj.type : String(obj));
  return made(obj);
};
"""


@pytest.fixture(scope="module")
def table_lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LabServer]:
    base = tmp_path_factory.mktemp("nbtrace-table")
    root = base / "root"
    db = str(base / "runs.db")
    populate_table_store(db, root)
    server = LabServer(root, db, log=base / "jupyterlab.log").start()
    try:
        yield server
    finally:
        server.stop()


def open_table(page: Page, lab: LabServer, palette: bool = False) -> Locator:
    """Load JupyterLab at 1280x800 and open the runs table (from the palette, or by its
    command)."""
    page.set_default_timeout(TIMEOUT)
    page.set_viewport_size(VIEWPORT)
    page.goto(lab.lab_url())
    page.get_by_role("tab", name="nbtrace").wait_for()
    page.wait_for_function("window.jupyterapp?.commands.hasCommand('nbtrace:open-table')")
    page.evaluate("() => window.jupyterapp.restored")
    if palette:
        open_from_palette(page)
    else:
        page.evaluate("window.jupyterapp.commands.execute('nbtrace:open-table')")
    page.evaluate("window.jupyterapp.shell.collapseLeft()")  # the whole width for the table
    view = page.locator(".nbtrace-RunsTableWidget")
    expect(view.get_by_role("table", name="Runs table")).to_be_visible()
    expect(view.locator(".nbtrace-RunsTable-row").first).to_be_visible()
    return view


def open_from_palette(page: Page) -> None:
    """Open the command palette, find "nbtrace: Open runs table" and press Enter."""
    palette = page.locator(".lm-CommandPalette-input")
    # The palette opens once the shell has settled; ask again while it is not on screen.
    page.wait_for_function(
        """() => {
          const input = document.querySelector('.lm-CommandPalette-input');
          if (input && input.offsetParent !== null) { return true; }
          window.jupyterapp.commands.execute('apputils:activate-command-palette');
          return false;
        }""",
        polling=1000,
    )
    palette.fill("nbtrace: Open runs table")
    item = page.get_by_role("menuitem", name=re.compile("^nbtrace: Open runs table"))
    expect(item).to_have_class(re.compile("lm-mod-active"))
    page.keyboard.press("Enter")  # the palette re-renders as it filters: no click on an item


def apply_filter(view: Locator, query: str) -> None:
    box = view.get_by_role("searchbox", name="Filter runs")
    box.fill(query)
    box.press("Enter")


def status_count(view: Locator) -> int:
    text = view.locator(".nbtrace-StatusLine").inner_text()
    match = re.search(r"([\d,]+) runs?", text)
    assert match, text
    return int(match.group(1).replace(",", ""))


def shot(page: Page, artifacts: Path, name: str) -> None:
    page.wait_for_timeout(300)  # fonts and charts settle; the assertions above waited already
    page.screenshot(path=str(artifacts / name))


def column_cells(view: Locator, key: str) -> list[str]:
    """Texts of one column (by its header's title) in the rows on screen."""
    headers = view.locator("thead tr").last.locator("th")
    titles = [headers.nth(i).get_attribute("title") for i in range(headers.count())]
    index = titles.index(key) + 1
    return view.locator(f".nbtrace-RunsTable-row td:nth-child({index})").all_inner_texts()


def test_default_columns_tell_degree_sweep_runs_apart(
    page: Page, table_lab: LabServer, artifacts: Path
) -> None:
    view = open_table(page, table_lab, palette=True)
    apply_filter(view, "name = 'degree-sweep'")
    expect(view.locator(".nbtrace-RunsTable-row")).to_have_count(4)
    # No column picked: the param that differs and the latest metric are shown.
    expect(view.get_by_role("columnheader", name=re.compile("degree"))).to_be_visible()
    expect(view.get_by_role("columnheader", name=re.compile("mse"))).to_be_visible()
    assert sorted(column_cells(view, "params.degree"), key=int) == ["1", "3", "5", "9"]
    mse = column_cells(view, "metrics.mse")
    assert len(set(mse)) == 4 and all(mse), mse
    shot(page, artifacts, "runs-table.png")


def test_column_groups_above_the_headers(page: Page, table_lab: LabServer) -> None:
    view = open_table(page, table_lab)
    apply_filter(view, "name = 'degree-sweep'")
    expect(view.locator(".nbtrace-RunsTable-row")).to_have_count(4)
    groups = view.locator(".nbtrace-RunsTable-groups th")
    expect(groups.filter(has_text="Parameters")).to_have_count(1)
    expect(groups.filter(has_text="Metrics")).to_have_count(1)
    expect(groups.filter(has_text="System")).to_have_count(1)


def test_name_column_stays_when_scrolled_sideways(page: Page, table_lab: LabServer) -> None:
    view = open_table(page, table_lab)
    apply_filter(view, "name = 'degree-sweep'")
    expect(view.locator(".nbtrace-RunsTable-row")).to_have_count(4)
    name = view.locator(".nbtrace-RunsTable-row td.nbtrace-sticky-name").first
    before = name.bounding_box()
    view.locator(".nbtrace-RunsTable-scroll").evaluate("n => n.scrollLeft = 400")
    page.wait_for_function(
        "n => n.scrollLeft > 0", arg=view.locator(".nbtrace-RunsTable-scroll").element_handle()
    )
    assert before is not None and name.bounding_box()["x"] == pytest.approx(before["x"], abs=1)


def test_column_chooser_lists_every_column_inside_the_viewport(
    page: Page, table_lab: LabServer, artifacts: Path
) -> None:
    view = open_table(page, table_lab)
    expect(view.locator(".nbtrace-StatusLine")).to_contain_text(f"{TOTAL} runs")
    view.get_by_role("button", name="Columns").click()
    chooser = page.get_by_role("dialog", name="Choose columns")
    expect(chooser).to_be_visible()
    for name in ("Done", "Add", "Defaults"):
        box = chooser.get_by_role("button", name=name).bounding_box()
        assert box is not None
        assert box["x"] >= 0 and box["y"] >= 0
        assert box["x"] + box["width"] <= VIEWPORT["width"]
        assert box["y"] + box["height"] <= VIEWPORT["height"], (name, box)
    listed = chooser.get_by_role("list", name="Table columns").get_by_role("checkbox")
    assert listed.count() >= 1000  # the wide run's keys, the grid's, the quick start's
    shot(page, artifacts, "column-chooser.png")
    chooser.get_by_role("button", name="Done").click()
    expect(chooser).to_have_count(0)


def test_column_chooser_search_and_ticks(page: Page, table_lab: LabServer) -> None:
    """Search narrows; a column ticked is shown; unticked, it stays listed, unticked."""
    view = open_table(page, table_lab)
    view.get_by_role("button", name="Columns").click()
    chooser = page.get_by_role("dialog", name="Choose columns")
    listed = chooser.get_by_role("list", name="Table columns").get_by_role("checkbox")
    chooser.get_by_role("searchbox", name="Search columns").fill("p0999")
    expect(listed).to_have_count(1)
    listed.first.check()
    expect(view.get_by_role("columnheader", name=re.compile("p0999"))).to_be_visible()
    listed.first.uncheck()
    expect(listed).to_have_count(1)
    expect(listed.first).not_to_be_checked()
    expect(view.get_by_role("columnheader", name=re.compile("p0999"))).to_have_count(0)
    chooser.get_by_role("button", name="Defaults").click()
    chooser.get_by_role("button", name="Done").click()
    expect(chooser).to_have_count(0)


def test_column_chooser_whole_in_the_sidebar(page: Page, table_lab: LabServer) -> None:
    """In the 250 px sidebar too, the popup is whole."""
    open_table(page, table_lab)
    page.get_by_role("tab", name="nbtrace").click()
    sidebar = page.locator(".nbtrace-RunsSection")
    sidebar.get_by_role("button", name="Columns").click()
    chooser = page.get_by_role("dialog", name="Choose columns")
    done = chooser.get_by_role("button", name="Done").bounding_box()
    assert done is not None and done["x"] + done["width"] <= VIEWPORT["width"]
    assert done["y"] + done["height"] <= VIEWPORT["height"]
    page.keyboard.press("Escape")
    expect(chooser).to_have_count(0)


def test_parallel_coordinates_brushing_narrows_the_table(
    page: Page, table_lab: LabServer, artifacts: Path
) -> None:
    view = open_table(page, table_lab)
    apply_filter(view, "experiment = 'grid'")
    expect(view.locator(".nbtrace-StatusLine")).to_contain_text(f"{GRID_RUNS} runs")
    view.get_by_role("button", name="Parallel coordinates").click()
    region = view.get_by_role("region", name="Parallel coordinates")
    chart = region.get_by_role("img", name=re.compile("^Parallel coordinates"))
    expect(chart).to_be_visible()
    axes = region.locator(".mark-rule.role-mark line")
    expect(axes).to_have_count(3)  # alpha, l1_ratio, mse
    box = axes.first.bounding_box()
    assert box is not None
    # Drag over the first axis (alpha), from 40 % of its height up past its top (the brush
    # stops at the top, the axis's maximum).
    x, top, height = box["x"], box["y"], box["height"]
    page.mouse.move(x - 10, top + height * 0.4)
    page.mouse.down()
    page.mouse.move(x + 10, top - 20, steps=6)
    page.mouse.up()
    status = view.locator(".nbtrace-StatusLine")
    expect(status).to_contain_text("in the brush")
    brushed = status_count(view)
    assert 0 < brushed < GRID_RUNS
    # Every run left has a large alpha (the top of the axis is its maximum, 2.0).
    alphas = [float(a) for a in column_cells(view, "params.alpha")]
    assert alphas and min(alphas) > 1.0, alphas
    shot(page, artifacts, "parallel-coordinates.png")
    region.get_by_role("button", name="Clear the brush filter").click()
    expect(status).not_to_contain_text("in the brush")
    expect(status).to_contain_text(f"{GRID_RUNS} runs")


def test_grouping_by_sweep_tag_collapses(page: Page, table_lab: LabServer) -> None:
    view = open_table(page, table_lab)
    apply_filter(view, "experiment = 'grid'")
    view.get_by_role("combobox", name="Group by").select_option("tags.sweep")
    groups = view.locator(".nbtrace-RunsTable-groupRow")
    # Rows are virtualized: the next group's header is on screen once the one above closes.
    for k in range(3):
        expect(groups).to_have_count(k + 1)
        header = groups.nth(k)
        expect(header).to_have_attribute("aria-expanded", "true")
        expect(header).to_contain_text(re.compile(r"sweep = grid-\d \((114|108)\)"))
        header.click()
        expect(header).to_have_attribute("aria-expanded", "false")
    expect(view.locator(".nbtrace-RunsTable-row")).to_have_count(0)
    view.get_by_role("combobox", name="Group by").select_option("")
    expect(groups).to_have_count(0)


def test_grouping_keyboard_opens_a_group(page: Page, table_lab: LabServer) -> None:
    """Enter on a closed group's header opens it."""
    view = open_table(page, table_lab)
    apply_filter(view, "experiment = 'grid'")
    view.get_by_role("combobox", name="Group by").select_option("tags.sweep")
    groups = view.locator(".nbtrace-RunsTable-groupRow")
    groups.first.click()
    expect(groups.first).to_have_attribute("aria-expanded", "false")
    groups.first.focus()
    page.keyboard.press("Enter")
    expect(groups.first).to_have_attribute("aria-expanded", "true")
    expect(view.locator(".nbtrace-RunsTable-row").first).to_be_visible()
    view.get_by_role("combobox", name="Group by").select_option("")
    expect(groups).to_have_count(0)


def test_keyboard_selection_opens_compare(
    page: Page, table_lab: LabServer, artifacts: Path
) -> None:
    view = open_table(page, table_lab)
    apply_filter(view, "name = 'degree-sweep'")
    rows = view.locator(".nbtrace-RunsTable-row")
    expect(rows).to_have_count(4)
    rows.first.focus()
    page.keyboard.press("Space")
    page.keyboard.press("ArrowDown")
    page.keyboard.press("Space")
    page.keyboard.press("Enter")
    details = page.locator(".nbtrace-MainDetails")
    expect(details.get_by_role("heading", name="degree-sweep")).to_be_visible()
    expect(view.locator(".nbtrace-SelectedCount")).to_have_text("2 selected")
    checked = view.get_by_role("checkbox", name="Select degree-sweep", exact=True)
    expect(checked.nth(0)).to_be_checked()
    expect(checked.nth(1)).to_be_checked()
    compare = view.get_by_role("button", name="Compare", exact=True)
    expect(compare).to_be_enabled()
    compare.focus()
    page.keyboard.press("Enter")
    compared = page.locator(".nbtrace-Compare")
    expect(compared).to_be_visible()
    params = compared.get_by_role("table", name="Parameters compared")
    expect(params).to_contain_text("degree")
    # Columns sized to content, scrolled inside their section; labels on one line.
    cell = params.get_by_role("rowheader").first
    assert cell.evaluate("n => getComputedStyle(n).whiteSpace") == "nowrap"
    shot(page, artifacts, "compare-from-table.png")


def open_artifacts_run(page: Page, lab: LabServer) -> Locator:
    view = open_table(page, lab)
    apply_filter(view, "name = 'artifacts'")
    view.locator(".nbtrace-RunsTable-row").first.click()
    details = page.locator(".nbtrace-MainDetails")
    expect(details.get_by_role("heading", name="artifacts", exact=True)).to_be_visible()
    return details


def test_csv_text_and_json_artifacts_preview(
    page: Page, table_lab: LabServer, artifacts: Path
) -> None:
    details = open_artifacts_run(page, table_lab)
    # The CSV previews as a table of its rows.
    csv = details.get_by_role("table", name="Preview of table.csv")
    expect(csv.get_by_role("columnheader")).to_have_text(["epoch", "loss", "note"])
    expect(csv.get_by_role("row")).to_have_count(4)
    expect(csv.get_by_role("row").nth(1)).to_contain_text("warm, up")
    expect(csv.get_by_role("row").nth(3)).to_contain_text('said "done"')
    # Text and JSON as text.
    details.get_by_role("button", name="Preview log.txt").click()
    expect(details.get_by_role("region", name="Preview of log.txt")).to_contain_text(
        "<b>not bold</b>"
    )
    details.get_by_role("button", name="Preview scores.json").click()
    expect(details.get_by_role("region", name="Preview of scores.json")).to_contain_text(
        '"r2": 0.9'
    )
    assert details.locator("b, i").count() == 0
    shot(page, artifacts, "artifact-previews.png")


def test_svg_artifact_never_gets_the_lab_origin(page: Page, table_lab: LabServer) -> None:
    page.add_init_script(BLOB_PROBE)
    details = open_artifacts_run(page, table_lab)
    svg = details.get_by_role("img", name="pwn.svg")
    page.wait_for_function("img => img.complete && img.naturalWidth > 0", arg=svg.element_handle())
    # What "open image in new tab" does: the artifact's script must not run in the Lab's
    # origin (it would leave a mark in the Lab's localStorage and read /api/contents).
    other = page.context.new_page()
    other.goto(svg.get_attribute("src"))
    other.close()
    assert page.evaluate("localStorage.getItem('nbtrace-pwned')") is None
    # No object URL of an active type was ever made, not even to download the file.
    with page.expect_download() as download:
        details.get_by_role("button", name="Download pwn.svg").click()
    assert download.value.suggested_filename == "pwn.svg"
    types = page.evaluate("window.__nbtraceBlobTypes")
    assert not [t for t in types if re.search("svg|html|xml|javascript", t, re.I)], types
    # Shown as a PNG data: URL (the SVG rasterised), raster images as data: URLs too.
    for name in ("plot.png", "pwn.svg"):
        image = details.get_by_role("img", name=name)
        expect(image).to_have_attribute("src", re.compile("^data:image/png;base64,"))
    assert details.locator("script, svg script, iframe").count() == 0
    assert page.evaluate("localStorage.getItem('nbtrace-pwned')") is None


def rerun_through_rest(lab: LabServer, run_id: str) -> str:
    """Start a re-execution with the token (no XSRF needed) and wait for its new run."""
    headers = {"Authorization": f"token {lab.token}", "Content-Type": "application/json"}
    req = urllib.request.Request(
        f"{lab.url}/nbtrace/api/runs/{run_id}/rerun",
        data=json.dumps({"overrides": {}}).encode(),
        headers=headers,
        method="POST",
    )
    with urllib.request.urlopen(req, timeout=30) as resp:
        job = json.loads(resp.read())["job"]
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        state: dict[str, Any] = lab.get(f"/nbtrace/api/jobs/{job}")
        if state["state"] in ("done", "error", "cancelled"):
            assert state["run"], state
            return state["run"]
        time.sleep(0.5)
    raise AssertionError("the re-execution did not finish")


def test_executed_notebook_previews_read_only(
    page: Page, table_lab: LabServer, artifacts: Path
) -> None:
    runs = table_lab.get("/nbtrace/api/runs?filter=name%20%3D%20'polyfit'")["runs"]
    new_run = rerun_through_rest(table_lab, runs[0]["id"])
    view = open_table(page, table_lab)
    apply_filter(view, "name = 'polyfit'")
    view.locator(f".nbtrace-RunsTable-row[data-run-id='{new_run}']").click()
    details = page.locator(".nbtrace-MainDetails")
    details.get_by_role("button", name="Preview executed.ipynb").click()
    notebook = details.get_by_role("list", name="Preview of executed.ipynb")
    expect(notebook).to_contain_text("np.polyfit")
    # Outputs rendered by JupyterLab's rendermime (the mse value of the cell that shows it).
    expect(notebook.locator(".jp-RenderedText").first).to_be_visible()
    assert notebook.locator("script, iframe").count() == 0
    shot(page, artifacts, "executed-notebook.png")


def patch_note(lab: LabServer, run_id: str, note: str) -> None:
    req = urllib.request.Request(
        f"{lab.url}/nbtrace/api/runs/{run_id}",
        data=json.dumps({"note": note}).encode(),
        headers={"Authorization": f"token {lab.token}", "Content-Type": "application/json"},
        method="PATCH",
    )
    with urllib.request.urlopen(req, timeout=30):
        pass


def saved_width(path: Path, key: str) -> float:
    """A column width in the user's settings file (JSON5 with comments: parsed leniently)."""
    try:
        text = path.read_text()
    except FileNotFoundError:
        return 0
    match = re.search(rf'"columnWidths"\s*:\s*\{{[^}}]*"{key}"\s*:\s*([\d.]+)', text)
    return float(match.group(1)) if match else 0


def test_notes_column_and_column_widths_are_kept(page: Page, table_lab: LabServer) -> None:
    run = table_lab.get("/nbtrace/api/runs?filter=name%20%3D%20'training-curve'")["runs"][0]
    patch_note(table_lab, run["id"], "loss plateaus <b>early</b>\nretry with warm-up")
    view = open_table(page, table_lab)
    apply_filter(view, "name = 'training-curve'")
    expect(view.locator(".nbtrace-RunsTable-row")).to_have_count(1)
    assert column_cells(view, "Notes") == ["loss plateaus <b>early</b> retry with warm-up"]
    # Resize the Notes column by dragging its edge: the width is saved in the settings.
    header = view.get_by_role("columnheader", name="Notes")
    before = header.bounding_box()
    handle = view.get_by_role("separator", name="Resize column Notes").bounding_box()
    assert before is not None and handle is not None
    page.mouse.move(handle["x"] + 2, handle["y"] + handle["height"] / 2)
    page.mouse.down()
    page.mouse.move(handle["x"] + 122, handle["y"] + handle["height"] / 2, steps=5)
    page.mouse.up()
    wider = before["width"] + 100
    expect(header).to_have_attribute("style", re.compile("top"))  # still there after the drag
    assert header.bounding_box()["width"] >= wider
    # Saved once the pointer rests, in the user's settings file on the server.
    settings = table_lab.root.parent / "lab-home" / "settings"
    saved = settings / "nbtrace" / "plugin.jupyterlab-settings"
    deadline = time.monotonic() + 20
    while saved_width(saved, "note") < wider:
        assert time.monotonic() < deadline, "the column width was not saved in the settings"
        page.wait_for_timeout(200)
    view = open_table(page, table_lab)
    apply_filter(view, "name = 'training-curve'")
    box = view.get_by_role("columnheader", name="Notes").bounding_box()
    assert box is not None and box["width"] >= wider

#!/usr/bin/env python3
"""How fast the JupyterLab sidebar and the main-area runs table show a store of 100,000 runs
(issue 16: under 1 s to paint), measured in Chromium.

    .venv/bin/python benchmarks/sidebar.py              # 100,000 runs, 5 repetitions
    .venv/bin/python benchmarks/sidebar.py --quick      # 3 repetitions
    .venv/bin/python benchmarks/sidebar.py --runs 10000

The store is written once through the nbtrace Python API (``nbtrace.start_run``,
``log_params``, ``log_metric``) into ``benchmarks/.work/sidebar-v2-<N>.db`` and reused; one run
in 50 is a parent with two nested runs (``nested=True``), so the tables draw their tree of
nested runs as they would at a team's scale. A real
JupyterLab server (the helpers of ``tests/browser/labserver.py``) serves it; Debian's Chromium
(headless) loads JupyterLab and the script times, in the page (``performance.now()``):

- open: ``nbtrace:open`` executed (JupyterLab already loaded) → first table row painted;
- page load: navigation start → first row painted, with the sidebar restored open (this
  includes JupyterLab's own start-up, printed alongside for reference);
- sort: a click on the Name header → the first row shows the new order (one server round trip);
- scroll: the table scrolled to its middle (row 5,000) → those rows painted;
- compare: 20 runs ticked, a click on Compare → the compare view painted with its tables and
  its first chart (one ``compare`` request, then Vega renders);
- main-area table (1280x800): ``nbtrace:open-table`` executed → its first row painted (target
  1 s), a click on its Name header → re-sorted rows painted, and the table scrolled to row
  5,000 → that row painted (target 200 ms).

"Painted" means the row is in the DOM and two animation frames have passed. Figures are
printed (median, min, max); nothing is asserted. Timings vary with the machine.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
import urllib.parse
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
WORK = ROOT / "benchmarks" / ".work"
sys.path.insert(0, str(ROOT / "tests" / "browser"))

from labserver import LabServer, launch_args  # noqa: E402

FILL = r"""
import os, random, sys, time
import nbtrace
n = int(sys.argv[1])
rng = random.Random(42)
models = ["enet", "lasso", "ridge", "svr", "gbr"]
t = time.time()


def body():
    alpha = round(rng.uniform(0.001, 2.0), 4)
    nbtrace.log_params({"alpha": alpha, "l1_ratio": round(rng.random(), 3), "max_iter": 1000})
    for step in range(3):
        nbtrace.log_metric("mse", 3000 * alpha / (step + 1) + rng.uniform(0, 50), step=step)
    nbtrace.log_metric("r2", round(rng.uniform(0.2, 0.95), 4))


i = 0
while i < n:
    model = models[i % len(models)]
    with nbtrace.start_run(f"{model}-{i:06d}", experiment=f"exp-{i % 7}", tags={"model": model}):
        body()
        i += 1
        # One run in 50 has two nested runs (cross-validation folds).
        for fold in range(2 if i % 50 == 1 else 0):
            if i < n:
                with nbtrace.start_run(f"{model}-{i - 1:06d}-fold{fold}", nested=True):
                    body()
                i += 1
nbtrace.flush()
print(f"{n} runs written in {time.time() - t:.1f} s", file=sys.stderr)
"""

#: Installed before any page script: resolves with the time the first row is painted.
PAINT_PROBE = """
window.__nbtraceFirstRow = new Promise(resolve => {
  const painted = () => resolve(performance.now());
  const done = () => requestAnimationFrame(() => requestAnimationFrame(painted));
  const start = () => {
    if (document.querySelector('.nbtrace-RunsTable-row')) { done(); return; }
    const obs = new MutationObserver(() => {
      if (document.querySelector('.nbtrace-RunsTable-row')) { obs.disconnect(); done(); }
    });
    obs.observe(document.documentElement, {childList: true, subtree: true});
  };
  if (document.documentElement) { start(); }
  else { document.addEventListener('DOMContentLoaded', start); }
});
window.__jupyterRestored = new Promise(resolve => {
  const wait = setInterval(() => {
    if (window.jupyterapp) {
      clearInterval(wait);
      window.jupyterapp.restored.then(() => resolve(performance.now()));
    }
  }, 5);
});
"""

OPEN = """
() => new Promise(resolve => {
  const t0 = performance.now();
  const painted = () => resolve(performance.now() - t0);
  const done = () => requestAnimationFrame(() => requestAnimationFrame(painted));
  const visible = () => {
    const row = document.querySelector('#nbtrace-sidebar .nbtrace-RunsTable-row');
    return row && row.offsetParent !== null;
  };
  const obs = new MutationObserver(() => { if (visible()) { obs.disconnect(); done(); } });
  obs.observe(document.body, {childList: true, subtree: true, attributes: true});
  window.jupyterapp.commands.execute('nbtrace:open');
  if (visible()) { obs.disconnect(); done(); }
})
"""

SORT = """
(scope) => new Promise(resolve => {
  const table = document.querySelector(`${scope} .nbtrace-RunsTable`);
  const first = () => table.querySelector('.nbtrace-RunsTable-row td:nth-child(2)')?.textContent;
  const before = first();
  const t0 = performance.now();
  const obs = new MutationObserver(() => {
    if (first() && first() !== before) {
      obs.disconnect();
      requestAnimationFrame(() => requestAnimationFrame(() => resolve(performance.now() - t0)));
    }
  });
  obs.observe(table, {childList: true, subtree: true, characterData: true});
  const header = [...table.querySelectorAll('th')]
    .find(th => th.textContent.startsWith('Name'));
  header.querySelector('button').click();
})
"""

SCROLL = """
(index) => new Promise(resolve => {
  const scroller = document.querySelector('.nbtrace-RunsTable-scroll');
  const t0 = performance.now();
  const ready = () => document.querySelector(`.nbtrace-RunsTable-row[data-index="${index}"]`);
  const obs = new MutationObserver(() => {
    if (ready()) {
      obs.disconnect();
      requestAnimationFrame(() => requestAnimationFrame(() => resolve(performance.now() - t0)));
    }
  });
  obs.observe(scroller, {childList: true, subtree: true});
  scroller.scrollTop = (index + 1) * 26;
})
"""


COMPARE = """
() => new Promise(resolve => {
  const view = () => document.querySelector('.nbtrace-Compare');
  const ready = () => view() && view().offsetParent !== null
    && view().querySelector('table[aria-label="Metrics compared"] tbody tr')
    && view().querySelector('.nbtrace-CompareCharts svg');
  const t0 = performance.now();
  const obs = new MutationObserver(() => {
    if (ready()) {
      obs.disconnect();
      requestAnimationFrame(() => requestAnimationFrame(() => resolve(performance.now() - t0)));
    }
  });
  obs.observe(document.body, {childList: true, subtree: true});
  document.querySelector('.nbtrace-CompareButton').click();
})
"""

#: The main-area table ("nbtrace: Open runs table") opened → its first row painted.
OPEN_TABLE = """
() => new Promise(resolve => {
  const t0 = performance.now();
  const painted = () => resolve(performance.now() - t0);
  const done = () => requestAnimationFrame(() => requestAnimationFrame(painted));
  const visible = () => {
    const row = document.querySelector('.nbtrace-RunsTableWidget .nbtrace-RunsTable-row');
    return row && row.offsetParent !== null;
  };
  const obs = new MutationObserver(() => { if (visible()) { obs.disconnect(); done(); } });
  obs.observe(document.body, {childList: true, subtree: true, attributes: true});
  window.jupyterapp.commands.execute('nbtrace:open-table');
  if (visible()) { obs.disconnect(); done(); }
})
"""

#: The main-area table scrolled to a row → that row painted (two header rows above).
SCROLL_TABLE = """
(index) => new Promise(resolve => {
  const scroller = document.querySelector('.nbtrace-RunsTableWidget .nbtrace-RunsTable-scroll');
  const t0 = performance.now();
  const ready = () => scroller.querySelector(`.nbtrace-RunsTable-row[data-index="${index}"]`);
  const obs = new MutationObserver(() => {
    if (ready()) {
      obs.disconnect();
      requestAnimationFrame(() => requestAnimationFrame(() => resolve(performance.now() - t0)));
    }
  });
  obs.observe(scroller, {childList: true, subtree: true});
  scroller.scrollTop = (index + 2) * 26;
})
"""


def measure_main_table(lab: LabServer, reps: int, row: int) -> dict[str, list[float]]:
    """Open the main-area table at 1280x800 and scroll it to ``row``, ``reps`` times."""
    from playwright.sync_api import sync_playwright

    opens, sorts, scrolls = [], [], []
    with sync_playwright() as p:
        browser = p.chromium.launch(**launch_args())
        context = browser.new_context(viewport={"width": 1280, "height": 800})
        page = context.new_page()
        for _ in range(reps):
            page.goto(lab.lab_url(reset=True))
            page.wait_for_function("window.jupyterapp !== undefined")
            page.evaluate("window.jupyterapp.restored.then(() => true)")
            page.wait_for_timeout(300)
            opens.append(page.evaluate(OPEN_TABLE))
            page.wait_for_timeout(300)
            sorts.append(page.evaluate(SORT, ".nbtrace-RunsTableWidget"))
            page.wait_for_timeout(300)
            scrolls.append(page.evaluate(SCROLL_TABLE, row))
        browser.close()
    return {
        "main-area table: `nbtrace: Open runs table` → rows painted (1280x800)": opens,
        "main-area table: click Name header → re-sorted rows painted": sorts,
        f"main-area table: scroll to row {row:,} → rows painted": scrolls,
    }


def ensure_store(n: int) -> Path:
    WORK.mkdir(parents=True, exist_ok=True)
    db = WORK / f"sidebar-v2-{n}.db"
    marker = WORK / f"sidebar-v2-{n}.done"
    if db.exists() and marker.exists():
        return db
    for p in WORK.glob(f"sidebar-v2-{n}.db*"):
        p.unlink()
    print(f"writing {n:,} runs to {db} (once) ...", file=sys.stderr, flush=True)
    env = dict(os.environ, NBTRACE_DB=str(db))
    subprocess.run([sys.executable, "-c", FILL, str(n)], check=True, env=env)
    marker.write_text("ok\n")
    return db


def stats(xs: list[float]) -> str:
    return f"{statistics.median(xs):,.0f} ms (min {min(xs):,.0f}, max {max(xs):,.0f})"


def api_ms(lab: LabServer, query: dict[str, str], reps: int) -> list[float]:
    out = []
    for _ in range(reps + 1):
        t = time.perf_counter()
        lab.get("/nbtrace/api/runs?" + urllib.parse.urlencode(query))
        out.append((time.perf_counter() - t) * 1000)
    return out[1:]  # first call warms the server's caches


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--runs", type=int, default=100_000)
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--quick", action="store_true", help="3 repetitions")
    args = ap.parse_args(argv)
    reps = 3 if args.quick else args.reps
    from playwright.sync_api import sync_playwright

    db = ensure_store(args.runs)
    root = WORK / "sidebar-root"
    root.mkdir(exist_ok=True)
    lab = LabServer(root, str(db), log=WORK / "sidebar-jupyterlab.log").start()
    results: dict[str, list[float]] = {}
    try:
        total = lab.get("/nbtrace/api/runs?limit=1")["total"]
        results["REST `GET runs?limit=100` (first page, newest first)"] = api_ms(
            lab, {"limit": "100"}, reps
        )
        results["REST same, `sort=-metrics.mse`"] = api_ms(
            lab, {"limit": "100", "sort": "-metrics.mse"}, reps
        )
        results["REST same, `offset=5000`"] = api_ms(lab, {"limit": "100", "offset": "5000"}, reps)
        results["REST same, `filter=params.alpha > 1 and tags.model = 'enet'`"] = api_ms(
            lab, {"limit": "100", "filter": "params.alpha > 1 and tags.model = 'enet'"}, reps
        )
        with sync_playwright() as p:
            browser = p.chromium.launch(**launch_args())
            context = browser.new_context(viewport={"width": 1440, "height": 900})
            context.add_init_script(PAINT_PROBE)
            page = context.new_page()
            opens, loads, boots, sorts, scrolls, compares, dom_rows = [], [], [], [], [], [], []
            for _ in range(reps):
                page.goto(lab.lab_url(reset=True))
                page.wait_for_function("window.jupyterapp !== undefined")
                page.evaluate("window.jupyterapp.restored.then(() => true)")
                page.evaluate(
                    "window.jupyterapp.shell.activateById('filebrowser')"
                )  # sidebar closed
                page.wait_for_timeout(300)
                opens.append(page.evaluate(OPEN))
                page.wait_for_timeout(1500)  # let the workspace save the open sidebar
                # Page load with the sidebar restored open.
                page.goto(lab.lab_url(reset=False))
                loads.append(page.evaluate("window.__nbtraceFirstRow"))
                boots.append(page.evaluate("window.__jupyterRestored"))
                page.wait_for_timeout(500)
                dom_rows.append(page.locator(".nbtrace-RunsTable-row").count())
                boxes = page.locator(".nbtrace-RunsTable-row input[type=checkbox]")
                for i in range(20):
                    boxes.nth(i).check()
                compares.append(page.evaluate(COMPARE))
                page.keyboard.press("Escape")
                sorts.append(page.evaluate(SORT, "#nbtrace-sidebar"))
                scrolls.append(page.evaluate(SCROLL, total // 2))
            browser.close()
        results["open the sidebar → table painted (JupyterLab loaded)"] = opens
        results["page load → table painted (sidebar restored open)"] = loads
        results["page load → JupyterLab restored (reference)"] = boots
        results["click Name header → re-sorted rows painted"] = sorts
        results[f"scroll to row {total // 2:,} → rows painted"] = scrolls
        results["20 runs ticked, click Compare → compare view painted (tables, first chart)"] = (
            compares
        )
        results.update(measure_main_table(lab, reps, min(5000, total - 1)))
    finally:
        lab.stop()

    print(
        f"Store: {total:,} runs (SQLite, {db.stat().st_size / 1e6:.0f} MB). Chromium headless,"
        f" 1440x900, {reps} repetitions; median (min, max).\n"
    )
    print("| measure | time |\n|---|---:|")
    for label, xs in results.items():
        print(f"| {label} | {stats(xs)} |")
    print(f"\nRows in the DOM with {total:,} runs: {max(dom_rows)} (virtualized table).")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

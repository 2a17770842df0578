"""The sidebar's Re-execute on a JupyterLab started with ``--gateway-url``: the replay kernel
is the gateway's (a child of the ``jupyter kernelgateway`` process), and the verdict shows."""

from __future__ import annotations

import re
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Page, expect

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from labserver import LabServer, run_notebook  # noqa: E402
from test_sidebar import open_sidebar, row  # noqa: E402

from gateways import Sampler, start_gateway  # noqa: E402

pytestmark = pytest.mark.browser

CELLS = [
    "%load_ext nbtrace",
    "%track_run on-gateway\n%log_param alpha=0.5\n%log_metric score=alpha * 4\n%end_run",
]


@pytest.fixture(scope="module")
def gateway_lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    base = tmp_path_factory.mktemp("gateway-lab")
    root = base / "root"
    root.mkdir()
    db = str(base / "runs.db")
    run_notebook(CELLS, db, root, "gw.ipynb")
    gateway = start_gateway(base)
    args = [f"--gateway-url={gateway.url}", f"--GatewayClient.auth_token={gateway.token}"]
    try:
        lab = LabServer(root, db, log=base / "lab.log", extra_args=args).start()
    except Exception:
        gateway.stop()
        raise
    try:
        yield {"lab": lab, "gateway": gateway}
    finally:
        lab.stop()
        gateway.stop()


def test_rerun_from_the_sidebar_runs_on_the_gateway(
    page: Page, gateway_lab: dict[str, Any]
) -> None:
    lab, gateway = gateway_lab["lab"], gateway_lab["gateway"]
    open_sidebar(page, lab)
    row(page, "on-gateway").click()
    page.locator(".nbtrace-Details").get_by_role("button", name="Re-execute").click()
    dialog = page.get_by_role("dialog")
    expect(dialog.get_by_role("region", name="Environment drift")).to_contain_text(
        "kernel runs on the gateway", timeout=60_000
    )
    with Sampler(gateway, interval=0.02) as seen:
        dialog.get_by_role("button", name="Start").click()
        verdict = dialog.locator(".nbtrace-Verdict-status")
        expect(verdict).to_contain_text(
            re.compile("reproduced|within_tolerance|diverged|failed"), timeout=180_000
        )
    expect(verdict).to_contain_text("reproduced")
    assert [p for p, pp in seen.kernel_pids.items() if pp == gateway.proc.pid], seen.kernel_pids
    assert lab.proc is not None
    assert not [p for p, pp in seen.kernel_pids.items() if pp == lab.proc.pid]

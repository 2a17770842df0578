"""Helpers shared by the browser tests and ``benchmarks/sidebar.py``.

- ``run_notebook``: execute a small notebook in a real ipykernel (nbclient) with ``NBTRACE_DB``
  pointing at a given store, so runs are made by the real kernel side (magics, capture).
- ``populate_store``: the runs the browser tests rely on.
- ``LabServer``: a real ``python -m jupyterlab`` on a free port, with its own token, settings
  and workspaces directories, and ``NBTRACE_DB`` in its environment.
- ``launch_args``: how to start Debian's Chromium here.
"""

from __future__ import annotations

import json
import os
import secrets
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import nbformat

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from kernels import make_notebook  # noqa: E402  (tests/kernels.py: the suite's one notebook builder)

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]

#: A param name that would run script if it were ever rendered as HTML.
XSS_NAME = "<img src=x onerror=alert(1)>"
#: A 2x2 red PNG (an image artifact) and an SVG that would run script if it were a document.
PNG_B64 = (
    "iVBORw0KGgoAAAANSUhEUgAAAAIAAAACCAIAAAD91JpzAAAAEElEQVR4nGP4z8AARAwQCgAf7gP9i18U1AAAAABJRU5E"
    "rkJggg=="
)
EVIL_SVG = (
    '<svg xmlns="http://www.w3.org/2000/svg" width="20" height="20" onload="alert(3)">'
    '<script>alert(4)</script><rect width="20" height="20" fill="green"/></svg>'
)


def launch_args() -> dict[str, Any]:
    """Playwright launch options for the machine's Chromium."""
    return {"executable_path": CHROMIUM, "args": list(CHROMIUM_ARGS), "headless": True}


def run_notebook(
    cells: list[str], db: str, workdir: Path, name: str, allow_errors: bool = False
) -> Any:
    """Save ``cells`` as ``workdir/name`` and execute them in a fresh python3 kernel."""
    try:
        from nbtrace.rerun.kernelclient import CellIdNotebookClient as Client
    except ImportError:  # pragma: no cover - older tree
        from nbclient import NotebookClient as Client
    nb = make_notebook(cells)
    path = Path(workdir) / name
    nbformat.write(nb, path)
    env = dict(os.environ)
    env.update({"NBTRACE_DB": db, "NBTRACE_NOTEBOOK": str(path)})
    client = Client(
        nb,
        timeout=120,
        kernel_name="python3",
        allow_errors=allow_errors,
        resources={"metadata": {"path": str(workdir)}},
    )
    client.execute(env=env)
    nbformat.write(nb, path)
    return nb


TRAIN_CELLS = [
    "%load_ext nbtrace",
    "import math",
    "%track_run {name} --experiment demo --tag model=enet",
    "%log_param alpha={alpha} l1_ratio=0.1 solver='cd'",
    "for step in range(6):\n"
    "    mse = 3000 * alpha / (step + 1) + 50\n"
    "    %log_metric mse=mse --step step",
    "%log_metric r2=round(1 - mse / 5000, 4)",
    "%end_run",
]


def populate_store(db: str, workdir: Path) -> None:
    """Runs made by real kernels: two training runs that differ in ``alpha``, a slow run (to
    cancel its re-execution), a small sweep, a failed run and a run whose param name and value
    are HTML."""
    workdir.mkdir(parents=True, exist_ok=True)
    for name, alpha in (("baseline", 0.5), ("stronger-reg", 2.0)):
        cells = [c.replace("{name}", name).replace("{alpha}", repr(alpha)) for c in TRAIN_CELLS]
        run_notebook(cells, db, workdir, f"{name}.ipynb")
    run_notebook(
        [
            "%load_ext nbtrace",
            "import time",
            "%track_run slow --experiment slow",
            "%log_param pause=0.5",
            "time.sleep(pause)",
            "time.sleep(pause)",
            "time.sleep(pause)",
            "time.sleep(pause)",
            "%end_run",
        ],
        db,
        workdir,
        "slow.ipynb",
    )
    run_notebook(
        [
            "%load_ext nbtrace",
            "import nbtrace",
            "for k, lr in enumerate([0.1, 0.01, 0.001]):\n"
            "    with nbtrace.start_run(f'sweep-{k}', experiment='sweep'):\n"
            "        nbtrace.log_param('lr', lr)\n"
            "        nbtrace.log_metric('loss', 1.0 + lr * 10)\n",
            "import base64, pathlib\n"
            f"pathlib.Path('plot.png').write_bytes(base64.b64decode({PNG_B64!r}))\n"
            f"pathlib.Path('evil.svg').write_text({EVIL_SVG!r})\n",
            "with nbtrace.start_run('html-names', experiment='security'):\n"
            "    nbtrace.log_artifact('plot.png')\n"
            "    nbtrace.log_artifact('evil.svg')\n"
            f"    nbtrace.log_param({XSS_NAME!r}, '<b>bold</b><script>alert(2)</script>')\n"
            f"    nbtrace.set_tag('note', {XSS_NAME!r})\n"
            "    nbtrace.log_metric('score', 1.0)\n",
            "%%track_run broken --experiment demo\nraise ValueError('boom')",
        ],
        db,
        workdir,
        "misc.ipynb",
        allow_errors=True,
    )


#: An SVG artifact whose script, if it ever ran with JupyterLab's origin, would leave a mark
#: in the Lab's localStorage and read the user's files through the REST API with their cookie.
PWN_SVG = (
    '<svg xmlns="http://www.w3.org/2000/svg" width="40" height="20"'
    " onload=\"localStorage.setItem('nbtrace-pwned', 'onload')\">"
    "<script>localStorage.setItem('nbtrace-pwned', 'script');"
    "fetch('/api/contents').then(r => r.text())"
    ".then(t => localStorage.setItem('nbtrace-pwned', t.slice(0, 40)))</script>"
    '<rect width="40" height="20" fill="blue"/></svg>'
)
CSV_TEXT = 'epoch,loss,note\n0,0.9,"warm, up"\n1,0.5,ok\n2,0.25,"said ""done"""\n'
#: Runs in the main-area table's store: 330 of a grid search, quickstart's 6, 2 more.
GRID_RUNS = 330


def quickstart_cells() -> list[str]:
    """The code cells of notebooks/quickstart.ipynb, as a user runs them."""
    nb = nbformat.read(Path(__file__).resolve().parents[2] / "notebooks" / "quickstart.ipynb", 4)
    return [c.source for c in nb.cells if c.cell_type == "code"]


def populate_table_store(db: str, workdir: Path) -> None:
    """The store of the main-area table tests (338 runs), made by real kernels: the quick start
    notebook as is (four ``degree-sweep`` runs among them), a 330-run grid search tagged with its
    sweep, a run with 1,000 distinct param keys, and a run with text, JSON, CSV, PNG and SVG
    artifacts (the SVG's script would leave a mark if it ever ran in the Lab's origin)."""
    workdir.mkdir(parents=True, exist_ok=True)
    run_notebook(quickstart_cells(), db, workdir, "quickstart.ipynb")
    run_notebook(
        [
            "import nbtrace, itertools",
            "grid = list(itertools.product([0.001, 0.01, 0.1, 0.5, 1.0, 2.0], range(55)))\n"
            f"assert len(grid) == {GRID_RUNS}\n"
            "for alpha, k in grid:\n"
            "    with nbtrace.start_run('enet', experiment='grid',"
            " tags={'sweep': f'grid-{k % 3}'}):\n"
            "        nbtrace.log_params({'alpha': alpha, 'l1_ratio': round(k / 55, 3)})\n"
            "        nbtrace.log_metric('mse', 3000 * alpha + k)\n",
            "with nbtrace.start_run('wide', experiment='wide'):\n"
            "    nbtrace.log_params({f'p{i:04d}': i for i in range(1000)})\n",
            "import base64, json, pathlib\n"
            f"pathlib.Path('plot.png').write_bytes(base64.b64decode({PNG_B64!r}))\n"
            f"pathlib.Path('pwn.svg').write_text({PWN_SVG!r})\n"
            f"pathlib.Path('table.csv').write_text({CSV_TEXT!r})\n"
            "pathlib.Path('log.txt').write_text('line one\\n<b>not bold</b>\\n')\n"
            "scores = {'r2': 0.9, 'tags': ['<i>x</i>']}\n"
            "pathlib.Path('scores.json').write_text(json.dumps(scores))\n"
            "with nbtrace.start_run('artifacts', experiment='files'):\n"
            "    for f in ('plot.png', 'pwn.svg', 'table.csv', 'log.txt', 'scores.json'):\n"
            "        nbtrace.log_artifact(f)\n"
            "    nbtrace.log_metric('score', 1.0)\n",
        ],
        db,
        workdir,
        "grid.ipynb",
    )


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class LabServer:
    """A JupyterLab server started as a subprocess for the tests."""

    def __init__(
        self, root: Path, db: str, log: Path | None = None, extra_args: list[str] | None = None
    ) -> None:
        self.root = Path(root)
        self.extra_args = list(extra_args or [])
        self.db = db
        self.port = free_port()
        self.token = secrets.token_hex(16)
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = log or (self.root.parent / "jupyterlab.log")
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 60) -> "LabServer":
        home = self.root.parent / "lab-home"
        for sub in ("settings", "workspaces", "config", "runtime"):
            (home / sub).mkdir(parents=True, exist_ok=True)
        # No "get notified about Jupyter news?" toast over the panels.
        notif = home / "settings" / "@jupyterlab" / "apputils-extension"
        notif.mkdir(parents=True, exist_ok=True)
        (notif / "notification.jupyterlab-settings").write_text('{"fetchNews": "false"}')
        env = dict(os.environ)
        env.update(
            {
                "NBTRACE_DB": self.db,
                "JUPYTERLAB_SETTINGS_DIR": str(home / "settings"),
                "JUPYTERLAB_WORKSPACES_DIR": str(home / "workspaces"),
                "JUPYTER_CONFIG_DIR": str(home / "config"),
                "JUPYTER_RUNTIME_DIR": str(home / "runtime"),
            }
        )
        cmd = [
            sys.executable,
            "-m",
            "jupyterlab",
            "--allow-root",
            "--no-browser",
            "--ip",
            "127.0.0.1",
            "--port",
            str(self.port),
            f"--ServerApp.token={self.token}",
            f"--ServerApp.root_dir={self.root}",
            "--LabApp.expose_app_in_browser=True",
            "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
            *self.extra_args,
        ]
        self._logfile = open(self.log, "wb")
        self.proc = subprocess.Popen(cmd, env=env, stdout=self._logfile, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"jupyterlab exited early; see {self.log}")
            try:
                self.get("/api/status")
                return self
            except (urllib.error.URLError, ConnectionError, OSError):
                time.sleep(0.25)
        self.stop()
        raise RuntimeError(f"jupyterlab did not answer within {timeout}s; see {self.log}")

    def get(self, path: str) -> Any:
        """GET a JSON endpoint with the token."""
        req = urllib.request.Request(
            self.url + path, headers={"Authorization": f"token {self.token}"}
        )
        with urllib.request.urlopen(req, timeout=10) as resp:
            body = resp.read()
        return json.loads(body) if body else None

    def lab_url(self, reset: bool = True) -> str:
        return f"{self.url}/lab?{'reset&' if reset else ''}token={self.token}"

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if getattr(self, "_logfile", None):
            self._logfile.close()

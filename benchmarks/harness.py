"""Shared machinery of the benchmark scripts: statistics, result rows, real kernels, a git work
tree, the machine's description.

Why a real kernel (jupyter_client) for the kernel-side cases: nbtrace's promise is about what a
notebook user pays, so ``log_metric`` and run start/end are timed inside a cell of an ipykernel
that loaded ``%load_ext nbtrace``, including the work nbtrace does at the cell's end (the flush
that makes the cell durable). MLflow is timed the same way, in its own kernel, alternating.

Nothing here asserts a timing: these are measurements, printed and written to RESULTS.md.
"""

from __future__ import annotations

import json
import math
import os
import platform
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "benchmarks"
WORK = BENCH / ".work"

# ------------------------------------------------------------------------------ statistics


def median(xs: Sequence[float]) -> float:
    """The median (mean of the two middle values for an even count)."""
    s = sorted(xs)
    n = len(s)
    if not n:
        return math.nan
    mid = n // 2
    return s[mid] if n % 2 else (s[mid - 1] + s[mid]) / 2


def p95(xs: Sequence[float]) -> float:
    """95th percentile, linear interpolation between closest ranks (the max for n < 3)."""
    s = sorted(xs)
    n = len(s)
    if not n:
        return math.nan
    if n < 3:
        return s[-1]
    pos = 0.95 * (n - 1)
    lo = int(math.floor(pos))
    hi = min(lo + 1, n - 1)
    return s[lo] + (s[hi] - s[lo]) * (pos - lo)


@dataclass
class Row:
    """One measured quantity, for nbtrace and (when it has an equivalent) MLflow.

    ``unit`` is the unit of the samples: ``s`` (shown scaled to µs/ms/s), ``B`` (bytes) or
    ``x`` (a plain number). ``target`` is a human-readable goal, ``target_value`` the same as a
    number in the row's unit, compared with the nbtrace median (lower is better).
    """

    case: str
    label: str
    unit: str = "s"
    nbtrace: list[float] = field(default_factory=list)
    mlflow: list[float] = field(default_factory=list)
    target: str = ""
    target_value: float | None = None
    note: str = ""
    #: The target's "≥ Nx faster than MLflow" part: the MLflow/nbtrace ratio it needs.
    min_ratio: float | None = None

    @property
    def ratio(self) -> float | None:
        if not self.nbtrace or not self.mlflow:
            return None
        a, b = median(self.nbtrace), median(self.mlflow)
        if a <= 0 or math.isnan(a) or math.isnan(b):
            return None
        return b / a

    @property
    def met(self) -> bool | None:
        if self.target_value is None or not self.nbtrace:
            return None
        if self.min_ratio is not None and (self.ratio or 0) < self.min_ratio:
            return False
        return median(self.nbtrace) <= self.target_value

    def to_json(self) -> dict[str, Any]:
        return {
            "case": self.case,
            "label": self.label,
            "unit": self.unit,
            "nbtrace": self.nbtrace,
            "mlflow": self.mlflow,
            "target": self.target,
            "target_value": self.target_value,
            "note": self.note,
            "min_ratio": self.min_ratio,
        }

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> Row:
        return cls(**d)


def fmt(value: float | None, unit: str) -> str:
    """A value in a readable unit (µs / ms / s for seconds, KB / MB for bytes)."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "—"
    if unit == "s":
        a = abs(value)
        if a < 1e-3:
            return f"{value * 1e6:.2f} µs" if a < 1e-5 else f"{value * 1e6:.1f} µs"
        if a < 1:
            return f"{value * 1e3:.2f} ms" if a < 1e-2 else f"{value * 1e3:.1f} ms"
        return f"{value:.2f} s"
    if unit == "B":
        a = abs(value)
        if a < 1024:
            return f"{value:.0f} B"
        if a < 1024 * 1024:
            return f"{value / 1024:.1f} KB"
        return f"{value / 1024 / 1024:.1f} MB"
    if unit == "%":
        return f"{value:.1f} %"
    return f"{value:.3g}"


def fmt_ratio(r: float | None) -> str:
    if r is None:
        return "—"
    return f"{r:,.0f}x" if r >= 100 else f"{r:.1f}x"


def table(rows: Sequence[Row]) -> str:
    """A Markdown table of ``rows``: medians, p95s, sample counts, ratio, target."""
    head = (
        "| measure | nbtrace median | nbtrace p95 | MLflow median | MLflow p95 | MLflow/nbtrace"
        " | n (nbt/mlf) | target |\n|---|---:|---:|---:|---:|---:|---:|---|\n"
    )
    lines = []
    for r in rows:
        met = r.met
        tgt = r.target + ("" if met is None else (" ✅" if met else " ❌"))
        lines.append(
            f"| {r.label} | {fmt(median(r.nbtrace) if r.nbtrace else None, r.unit)}"
            f" | {fmt(p95(r.nbtrace) if r.nbtrace else None, r.unit)}"
            f" | {fmt(median(r.mlflow) if r.mlflow else None, r.unit)}"
            f" | {fmt(p95(r.mlflow) if r.mlflow else None, r.unit)}"
            f" | {fmt_ratio(r.ratio)} | {len(r.nbtrace)}/{len(r.mlflow)} | {tgt} |"
        )
    return head + "\n".join(lines) + "\n"


def alternate(reps: int, warmup: int, fns: dict[str, Callable[[], Any]]) -> dict[str, list[Any]]:
    """Call each of ``fns`` ``warmup + reps`` times, alternating (order flipped every round);
    return the results of the timed rounds per name (warm-up results are dropped)."""
    out: dict[str, list[Any]] = {k: [] for k in fns}
    names = list(fns)
    for i in range(warmup + reps):
        order = names if i % 2 == 0 else names[::-1]
        for name in order:
            result = fns[name]()
            if i >= warmup:
                out[name].append(result)
    return out


def loadavg() -> float:
    try:
        return os.getloadavg()[0]
    except OSError:
        return 0.0


def wait_quiet(limit: float = 1.0, max_wait: float = 60.0) -> float:
    """Wait (at most ``max_wait`` s) until the 1-minute load average falls under ``limit``;
    returns the load average then. Other jobs on the machine inflate every figure."""
    deadline = time.time() + max_wait
    load = loadavg()
    while load > limit and time.time() < deadline:
        time.sleep(2)
        load = loadavg()
    return load


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


# ------------------------------------------------------------------------------ kernels


class KernelError(RuntimeError):
    """A cell raised in the benchmark kernel."""


MARK = "\x1e@bench@"


class Kernel:
    """A real ipykernel (this interpreter's ``python3`` kernel) driven cell by cell."""

    def __init__(self, env: dict[str, str], cwd: Path, timeout: float = 900) -> None:
        from jupyter_client.manager import start_new_kernel

        self.timeout = timeout
        self.km, self.kc = start_new_kernel(
            startup_timeout=120, kernel_name="python3", env=env, cwd=str(cwd)
        )
        exe = self.value("__import__('sys').executable")
        if Path(exe).resolve() != Path(sys.executable).resolve():
            self.close()
            raise RuntimeError(f"the python3 kernel runs {exe}, not {sys.executable}")

    def run(self, code: str) -> str:
        """Execute ``code`` as one cell; its stdout (raises :class:`KernelError` on error)."""
        out: list[str] = []
        err: list[str] = []

        def hook(msg: dict[str, Any]) -> None:
            kind, content = msg["msg_type"], msg["content"]
            if kind == "stream" and content.get("name") == "stdout":
                out.append(content["text"])
            elif kind == "error":
                err.append("\n".join(content.get("traceback", [])))

        reply = self.kc.execute_interactive(
            code, timeout=self.timeout, output_hook=hook, allow_stdin=False
        )
        if reply["content"]["status"] != "ok" or err:
            raise KernelError(f"cell failed:\n{code}\n---\n" + "\n".join(err))
        return "".join(out)

    def value(self, expr: str, setup: str = "") -> Any:
        """The JSON value of ``expr`` evaluated in a cell (after ``setup`` lines)."""
        code = (setup + "\n" if setup else "") + (
            f"print({MARK!r} + __import__('json').dumps({expr}))"
        )
        text = self.run(code)
        return json.loads(text.rsplit(MARK, 1)[1])

    def close(self) -> None:
        try:
            self.kc.stop_channels()
        finally:
            self.km.shutdown_kernel(now=True)


@contextmanager
def kernel(env: dict[str, str], cwd: Path) -> Iterator[Kernel]:
    k = Kernel(env, cwd)
    try:
        yield k
    finally:
        k.close()


def kernel_env(tmp: Path, **extra: str) -> dict[str, str]:
    """Environment of a benchmark kernel: isolated IPython/Jupyter dirs, quiet libraries."""
    env = dict(os.environ)
    for var in ("NBTRACE_DB", "MLFLOW_TRACKING_URI", "NBTRACE_REPLAY", "NBTRACE_SEEDS"):
        env.pop(var, None)
    env.update(
        {
            "IPYTHONDIR": str(tmp / "ipython"),
            "JUPYTER_DATA_DIR": str(tmp / "jupyter-data"),
            "PYDEVD_DISABLE_FILE_VALIDATION": "1",
            "MLFLOW_ENABLE_ASYNC_LOGGING": "false",
            "GIT_PYTHON_REFRESH": "quiet",
            "PYTHONWARNINGS": "ignore",
        }
    )
    env.update(extra)
    return env


# ------------------------------------------------------------------------------ work tree


def git(cwd: Path, *args: str) -> str:
    return subprocess.run(
        ["git", "-c", "user.email=bench@example.com", "-c", "user.name=bench", *args],
        cwd=cwd,
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()


def make_worktree(parent: Path, notebook: Path | None = None) -> tuple[Path, Path]:
    """A git work tree holding a notebook (committed) and a dirty tracked file, as a user's
    project typically is: git capture then runs status, config and a diff. Returns
    (folder, notebook path)."""
    folder = parent / "project"
    folder.mkdir(parents=True, exist_ok=True)
    git(folder, "init", "-q", "-b", "main")
    nb = folder / "analysis.ipynb"
    if notebook is not None:
        shutil.copy(notebook, nb)
    else:
        nb.write_text(json.dumps(_tiny_notebook()))
    (folder / "helpers.py").write_text("def f(x):\n    return x * 2\n" * 20)
    git(folder, "add", ".")
    git(folder, "commit", "-qm", "start")
    git(folder, "remote", "add", "origin", "https://example.com/team/project.git")
    with open(folder / "helpers.py", "a") as f:
        f.write("\n# edited\n")
    return folder, nb


def _tiny_notebook() -> dict[str, Any]:
    cells = ["%load_ext nbtrace", "import nbtrace", "with nbtrace.start_run('r'):\n    pass"]
    return {
        "cells": [
            {
                "cell_type": "code",
                "execution_count": None,
                "id": f"c{i}",
                "metadata": {},
                "outputs": [],
                "source": src,
            }
            for i, src in enumerate(cells)
        ],
        "metadata": {"kernelspec": {"name": "python3", "display_name": "Python 3"}},
        "nbformat": 4,
        "nbformat_minor": 5,
    }


@contextmanager
def tempdir(prefix: str) -> Iterator[Path]:
    WORK.mkdir(parents=True, exist_ok=True)
    d = Path(tempfile.mkdtemp(prefix=prefix, dir=WORK))
    try:
        yield d
    finally:
        shutil.rmtree(d, ignore_errors=True)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def sqlite_size(path: Path) -> int:
    """Bytes of an SQLite store after a WAL checkpoint: the file plus what is left of its WAL."""
    import sqlite3

    conn = sqlite3.connect(path)
    try:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        conn.close()
    total = 0
    for suffix in ("", "-wal"):
        p = Path(str(path) + suffix)
        if p.exists():
            total += p.stat().st_size
    return total


# ------------------------------------------------------------------------------ machine


def machine() -> dict[str, Any]:
    """What the figures were measured on."""
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.lower().startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    mem = None
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemTotal:"):
                    mem = int(line.split()[1]) * 1024
    except OSError:
        pass
    import sqlite3

    versions: dict[str, str] = {}
    from importlib.metadata import PackageNotFoundError, version

    for dist in (
        "nbtrace", "mlflow", "ipykernel", "jupyter_server", "nbclient", "scikit-learn",
        "pandas", "SQLAlchemy", "psycopg",
    ):
        try:
            versions[dist] = version(dist)
        except PackageNotFoundError:
            pass
    try:
        head = git(ROOT, "rev-parse", "--short", "HEAD")
        dirty = bool(git(ROOT, "status", "--porcelain", "--untracked-files=no"))
        commit = head + (" (with uncommitted changes)" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        commit = "unknown"
    pg = None
    pg_bin = shutil.which("postgres") or "/usr/lib/postgresql/15/bin/postgres"
    if Path(pg_bin).exists():
        try:
            out = subprocess.run([pg_bin, "--version"], capture_output=True, text=True)
            pg = out.stdout.strip()
        except OSError:
            pg = None
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "memory_gb": round(mem / 1024**3, 1) if mem else None,
        "os": platform.platform(),
        "python": platform.python_version(),
        "sqlite": sqlite3.sqlite_version,
        "postgresql": pg,
        "versions": versions,
        "commit": commit,
    }

"""The Python API (``nbtrace.start_run``, ``log_metric``, ...): one tracker per process.

Why module-level functions: they mirror MLflow's fluent API so the classic tutorial works with
``mlflow.`` replaced by ``nbtrace.``; the same calls work in a plain Python script.
"""

from __future__ import annotations

import atexit
import threading
from collections.abc import Iterator, Mapping
from typing import Any

from .errors import UsageError
from .tracker import Run, Tracker

_tracker: Tracker | None = None
_lock = threading.Lock()


def tracker(fresh: bool | None = None) -> Tracker:
    """The process's tracker, created (and the store opened) on first use.

    In a notebook kernel where ``%load_ext nbtrace`` was not run, the first call loads the
    extension itself (cells from the history, as ``%load_ext`` records them) and says so once:
    without it the run could not be re-executed. Generators already in use by then are left
    unseeded and unrecorded (``fresh`` false), and the message names them.
    """
    global _tracker
    created = None
    if _tracker is None:
        with _lock:
            if _tracker is None:
                shell = _kernel_shell() if fresh is None else None
                _tracker = Tracker(fresh=True if fresh is None and shell is None else bool(fresh))
                atexit.register(_tracker.close)
                created = shell
    if created is not None:
        _autoload(created, _tracker)
    return _tracker


def _kernel_shell() -> Any:
    """The running ipykernel shell, when this process is one (IPython never imported here)."""
    import sys

    ipython = sys.modules.get("IPython")
    if ipython is None:
        return None
    try:
        shell = ipython.get_ipython()
    except Exception:  # noqa: BLE001 - a half-initialised IPython
        return None
    return shell if shell is not None and getattr(shell, "kernel", None) is not None else None


def _autoload(shell: Any, t: Tracker) -> None:
    """Load the extension for a kernel that called the API without ``%load_ext nbtrace``."""
    from .magics import load

    try:
        load(shell)
    except Exception as exc:  # noqa: BLE001 - then the run is recorded without its code
        t.warn(f"nbtrace: could not record this kernel's cells ({exc}); runs here cannot be"
               " re-executed: run %load_ext nbtrace first")
        return
    unseeded = ", ".join(t.unseeded) or "none"
    t.warn(
        "nbtrace: %load_ext nbtrace was not run: recording this kernel from here as it would."
        f" Random generators already in use are not seeded or recorded ({unseeded}): their"
        " draws will not replay; put %load_ext nbtrace in the first cell to fix that"
    )


def configure(db: str | None = None) -> Tracker:
    """Use the store at ``db`` from now on (ends the active run of the previous store)."""
    global _tracker
    with _lock:
        if _tracker is not None:
            _tracker.close()
        _tracker = Tracker(db)
        atexit.register(_tracker.close)
    return _tracker


class ActiveRun:
    """Returned by :func:`start_run`; a context manager that ends the run on exit."""

    def __init__(self, run: Run) -> None:
        self._run = run

    @property
    def id(self) -> str:
        """The run id."""
        return self._run.id

    @property
    def name(self) -> str:
        """The run name."""
        return self._run.name

    def __enter__(self) -> "ActiveRun":
        return self

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        t = tracker()
        if t.active is self._run:
            t.end_run(status="failed" if exc_type is not None else "finished")

    def __repr__(self) -> str:
        return f"<nbtrace run {self.name!r} id={self.id}>"


def start_run(
    name: str, experiment: str | None = None, tags: Mapping[str, Any] | None = None
) -> ActiveRun:
    """Start a run (ending the active one); use as ``with nbtrace.start_run("x"):``."""
    return ActiveRun(tracker().start_run(name, experiment=experiment, tags=dict(tags or {})))


def end_run(status: str = "finished") -> None:
    """End the active run with ``status`` (``finished`` or ``failed``)."""
    tracker().end_run(status=status)


def active_run() -> ActiveRun | None:
    """The active run, or None."""
    run = tracker().active
    return ActiveRun(run) if run is not None else None


def log_param(key: str, value: Any) -> Any:
    """Log a parameter; returns the value to use (an override when re-executing)."""
    return tracker().log_param(key, value)


def log_params(params: Mapping[str, Any]) -> dict[str, Any]:
    """Log several parameters; returns them (with overrides applied when re-executing)."""
    _mapping(params, "log_params")
    return tracker().log_params(params)


def log_metric(key: str, value: Any, step: int | None = None) -> None:
    """Log a metric value (microseconds: buffered, durable at cell end)."""
    tracker().log_metric(key, value, step)


def log_metrics(metrics: Mapping[str, Any], step: int | None = None) -> None:
    """Log several metrics at one step."""
    _mapping(metrics, "log_metrics")
    t = tracker()
    for k, v in metrics.items():
        t.log_metric(k, v, step)


def set_tag(key: str, value: Any) -> None:
    """Set a tag on the active run."""
    tracker().set_tag(key, value)


def set_tags(tags: Mapping[str, Any]) -> None:
    """Set several tags on the active run."""
    _mapping(tags, "set_tags")
    for k, v in tags.items():
        tracker().set_tag(k, v)


def log_artifact(path: str, name: str | None = None) -> dict[str, Any]:
    """Store a file's content with the active run (addressed by sha256)."""
    return tracker().log_artifact(path, name)


def log_input(path: str) -> dict[str, Any]:
    """Record a data file's fingerprint (sha256, size) with the active run."""
    return tracker().log_input(path)


def flush() -> None:
    """Write everything logged so far (normally automatic at cell end)."""
    if _tracker is not None:
        _tracker.flush()


def runs(filter: str | None = None, sort: str | None = None, limit: int | None = None) -> Any:
    """Runs matching ``filter`` as a pandas DataFrame (a list of dicts without pandas).

    Columns: id, name, experiment, status, started_at, ended_at, duration_s, user, host, then
    ``params.X``, ``metrics.X`` and ``tags.X`` for every key present.
    """
    t = tracker()
    t.flush()
    rows, _ = t.store.list_runs(filter=filter, sort=sort, limit=limit, count="bounded")
    flat = [flatten(r) for r in rows]
    try:
        import pandas as pd
    except ImportError:
        return flat
    return pd.DataFrame(flat)


def flatten(summary: Mapping[str, Any]) -> dict[str, Any]:
    """A run summary as one flat row (``params.alpha``, ``metrics.mse``, ...)."""
    row = {k: v for k, v in summary.items() if k not in ("params", "metrics", "tags")}
    for group in ("params", "metrics", "tags"):
        for k, v in (summary.get(group) or {}).items():
            row[f"{group}.{k}"] = v
    return row


def _mapping(obj: Any, fn: str) -> None:
    if not isinstance(obj, Mapping):
        raise UsageError(f"{fn} takes a dict of name: value, not {type(obj).__name__}")


def iter_runs(filter: str | None = None) -> Iterator[dict[str, Any]]:
    """Whole run objects matching ``filter`` (for scripts that need cells or environment)."""
    t = tracker()
    t.flush()
    rows, _ = t.store.list_runs(filter=filter, limit=None)
    for r in rows:
        yield t.store.get_run(r["id"])


def _bind_package_attributes() -> None:
    """Make ``nbtrace.log_metric`` & co. plain attributes of the package once this loads.

    Why: the package resolves them lazily through its module ``__getattr__``, which runs an
    import statement on every access; ``nbtrace.log_metric(...)`` in a training loop paid that
    (~1.5 µs, half the call) on every step.
    """
    import sys

    pkg = sys.modules.get(__name__.rpartition(".")[0])
    for name in getattr(pkg, "_API", ()):
        if name in globals():
            setattr(pkg, name, globals()[name])


_bind_package_attributes()

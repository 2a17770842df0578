"""The Python API (``nbtrace.start_run``, ``log_metric``, ...): one tracker per process.

Why module-level functions: they mirror MLflow's fluent API so the classic tutorial works with
``mlflow.`` replaced by ``nbtrace.``; the same calls work in a plain Python script.
"""

from __future__ import annotations

import atexit
import os
import threading
from collections.abc import Iterator, Mapping
from typing import Any

from .errors import UsageError
from .store import ops
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


class RunInfo:
    """MLflow's ``run.info`` shape: ``run_id``, ``run_name``, ``status``, ``experiment_name``.

    ``status`` is spelled as MLflow spells it (``RUNNING``, ``FINISHED``, ``FAILED``) so code
    written against MLflow reads it unchanged.
    """

    def __init__(self, run: Run) -> None:
        self._run = run

    @property
    def run_id(self) -> str:
        return self._run.id

    @property
    def run_name(self) -> str:
        return self._run.name

    @property
    def status(self) -> str:
        return self._run.status.upper()

    @property
    def experiment_name(self) -> str | None:
        return self._run.experiment

    @property
    def parent_run_id(self) -> str | None:
        """The run this one is nested in (``nested=True``), or None."""
        return self._run.nested_in

    @property
    def start_time(self) -> int:
        """Start time in milliseconds since the epoch (MLflow's unit)."""
        return int(self._run.started_at * 1000)


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

    @property
    def info(self) -> RunInfo:
        """``run.info.run_id`` / ``run.info.status``, as in MLflow."""
        return RunInfo(self._run)

    def __enter__(self) -> "ActiveRun":
        return self

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        t = tracker()
        if t.active is self._run or self._run in t.stack:
            t.end_run(status="failed" if exc_type is not None else "finished", run=self._run)

    def __repr__(self) -> str:
        return f"<nbtrace run {self.name!r} id={self.id}>"


def start_run(
    name: str | None = None,
    experiment: str | None = None,
    tags: Mapping[str, Any] | None = None,
    *,
    run_name: str | None = None,
    nested: bool = False,
    experiment_name: str | None = None,
    experiment_id: str | None = None,
    description: str | None = None,
) -> ActiveRun:
    """Start a run; use as ``with nbtrace.start_run("x"):``.

    Takes MLflow's shapes too: no name (the notebook's name and a counter), ``run_name=``,
    ``nested=True`` (the active run stays open and becomes active again when this one ends),
    ``experiment_name=`` / ``experiment_id=`` (nbtrace's experiments are their names:
    ``set_experiment(...).experiment_id`` is the name). Without ``nested`` every open run is
    ended first.
    """
    if name is not None and run_name is not None and name != run_name:
        raise UsageError("give the run name once: name or run_name")
    given = [e for e in (experiment, experiment_name, experiment_id) if e is not None]
    if len(set(given)) > 1:
        raise UsageError("give the experiment once: experiment, experiment_name or experiment_id")
    t = tracker()
    run = t.start_run(
        name if name is not None else run_name,
        experiment=given[0] if given else None,
        tags=dict(tags or {}),
        nested=nested,
    )
    if description and not run.ghost:
        if not isinstance(description, str):
            raise UsageError("description must be a string")
        t.writer.submit(ops.run_update(run.id, {"note": description}))
    return ActiveRun(run)


def end_run(status: str = "finished") -> None:
    """End the active run with ``status`` (``finished`` or ``failed``; MLflow's ``FINISHED``,
    ``FAILED``, ``KILLED`` too)."""
    tracker().end_run(status=status)


class Experiment:
    """What :func:`set_experiment` returns: MLflow's ``.name`` and ``.experiment_id`` (in
    nbtrace an experiment is its name, so both are the name)."""

    def __init__(self, name: str | None) -> None:
        self.name = name
        self.experiment_id = name

    def __repr__(self) -> str:
        return f"<nbtrace experiment {self.name!r}>"


def set_experiment(
    experiment_name: str | None = None, experiment_id: str | None = None
) -> Experiment:
    """Runs started from now on without an experiment go to ``experiment_name`` (or
    ``experiment_id``, the same thing in nbtrace)."""
    if (
        experiment_name is not None
        and experiment_id is not None
        and (experiment_name != experiment_id)
    ):
        raise UsageError("give the experiment once: experiment_name or experiment_id")
    name = experiment_name if experiment_name is not None else experiment_id
    return Experiment(tracker().set_experiment(name))


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


def log_metric(key: str, value: Any, step: int | None = None, timestamp: int | None = None) -> None:
    """Log a metric value (microseconds: buffered, durable at cell end); ``timestamp`` in
    milliseconds since the epoch, as in MLflow (default now)."""
    if timestamp is None:
        tracker().log_metric(key, value, step)
    else:
        tracker().log_metric_to(None, key, value, step, _seconds(timestamp))


def log_metrics(
    metrics: Mapping[str, Any], step: int | None = None, timestamp: int | None = None
) -> None:
    """Log several metrics at one step."""
    _mapping(metrics, "log_metrics")
    t = tracker()
    if timestamp is None:
        for k, v in metrics.items():
            t.log_metric(k, v, step)
    else:
        ts = _seconds(timestamp)
        for k, v in metrics.items():
            t.log_metric_to(None, k, v, step, ts)


def _seconds(timestamp_ms: Any) -> float:
    if isinstance(timestamp_ms, bool) or not isinstance(timestamp_ms, (int, float)):
        raise UsageError(f"timestamp must be milliseconds since the epoch, not {timestamp_ms!r}")
    return timestamp_ms / 1000


def set_tag(key: str, value: Any) -> None:
    """Set a tag on the active run."""
    tracker().set_tag(key, value)


def set_tags(tags: Mapping[str, Any]) -> None:
    """Set several tags on the active run."""
    _mapping(tags, "set_tags")
    for k, v in tags.items():
        tracker().set_tag(k, v)


def log_artifact(
    path: str, name: str | None = None, *, artifact_path: str | None = None
) -> dict[str, Any]:
    """Store a file's content with the active run (addressed by sha256).

    ``artifact_path`` is MLflow's folder argument: ``log_artifact("roc.png", artifact_path=
    "plots")`` stores ``plots/roc.png``.
    """
    if not isinstance(path, (str, os.PathLike)):
        raise UsageError(f"log_artifact takes a file path, not {type(path).__name__}")
    if artifact_path:
        name = f"{artifact_path.strip('/')}/{name or os.path.basename(os.fspath(path))}"
    return tracker().log_artifact(os.fspath(path), name)


def log_text(text: str, artifact_file: str) -> dict[str, Any]:
    """Store ``text`` as artifact ``artifact_file`` (MLflow's ``log_text``)."""
    if not isinstance(text, str):
        raise UsageError(f"log_text takes a string, not {type(text).__name__}")
    return tracker().log_artifact_data(artifact_file, text.encode("utf-8"))


def log_dict(dictionary: Mapping[str, Any], artifact_file: str) -> dict[str, Any]:
    """Store ``dictionary`` as JSON artifact ``artifact_file`` (MLflow's ``log_dict``; YAML
    when the name ends in ``.yaml``/``.yml`` and PyYAML is installed)."""
    _mapping(dictionary, "log_dict")
    from .jsonutil import dumps

    if artifact_file.endswith((".yaml", ".yml")):
        try:
            import yaml

            text = yaml.safe_dump(dict(dictionary), sort_keys=False)
        except ImportError:
            text = dumps(dictionary, indent=2)
    else:
        text = dumps(dictionary, indent=2)
    return tracker().log_artifact_data(artifact_file, text.encode("utf-8"))


def log_figure(figure: Any, artifact_file: str) -> dict[str, Any]:
    """Store a matplotlib (``savefig``) or plotly (``to_image``/``to_html``) figure as artifact
    ``artifact_file``, in the format its extension names (MLflow's ``log_figure``)."""
    import io

    ext = os.path.splitext(artifact_file)[1].lstrip(".").lower() or "png"
    if hasattr(figure, "savefig"):
        buf = io.BytesIO()
        figure.savefig(buf, format=ext)
        data = buf.getvalue()
    elif ext == "html" and hasattr(figure, "to_html"):
        data = figure.to_html().encode("utf-8")
    elif hasattr(figure, "to_image"):
        data = figure.to_image(format=ext)
    else:
        raise UsageError(
            f"log_figure takes a matplotlib or plotly figure, not {type(figure).__name__}"
        )
    return tracker().log_artifact_data(artifact_file, data)


def log_input(path: Any, context: str | None = None) -> dict[str, Any]:
    """Record a data file's fingerprint (sha256, size) with the active run; an MLflow
    ``Dataset`` (from ``mlflow.data``) is recorded by its name and digest."""
    if not isinstance(path, (str, os.PathLike)):
        name, digest = getattr(path, "name", None), getattr(path, "digest", None)
        if isinstance(name, str) and isinstance(digest, str):
            return tracker().log_dataset(name, digest)
        raise UsageError(f"log_input takes a file path or a dataset, not {type(path).__name__}")
    return tracker().log_input(os.fspath(path))


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

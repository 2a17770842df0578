"""``nbtrace import mlflow+URI``: MLflow's history into nbtrace, through ``MlflowClient``.

Why MLflow's client and not its files: every backend MLflow supports (an ``mlruns/`` folder,
``mlflow.db``, PostgreSQL, a tracking server) reads the same way, and MLflow's format changes
stay MLflow's concern.

What maps where: the MLflow run id is kept as the nbtrace run id (so a second import finds it
and adds nothing, and ``mlflow.parentRunId`` links stay valid as ``nested_in``); system tags
become nbtrace fields (``mlflow.user`` → user, ``mlflow.source.name`` → notebook path,
``mlflow.source.git.*`` → git, ``mlflow.parentRunId`` → nested_in, ``mlflow.note.content`` →
note, ``mlflow.runName`` → name); params keep MLflow's strings (compared as numbers when they
are); metrics come in as full series; datasets as inputs; artifacts (and MLflow 3 logged models'
files) are copied into the store, content-addressed. Every imported run carries
``extra.imported_from = {"kind": "mlflow", "uri", "run_id"}``: its code, if any, is someone
else's (the re-execution trust rule applies to it).
"""

from __future__ import annotations

import hashlib
import json
import os
import socket
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import NBTraceError, StoreError, UsageError, one_line
from ..hashing import sha256_text
from ..jsonutil import param_to_json
from ..store import ops
from ..store.base import Op
from ..store.sql import SQLStore
from . import tables
from .uri import mlflow_tracking_uri

#: MLflow system tags that become nbtrace fields rather than tags.
MAPPED_TAGS = (
    "mlflow.runName",
    "mlflow.user",
    "mlflow.parentRunId",
    "mlflow.note.content",
    "mlflow.source.name",
    "mlflow.source.git.commit",
    "mlflow.source.git.branch",
    "mlflow.source.git.repoURL",
)
_STATUS = {
    "RUNNING": "running",
    "SCHEDULED": "running",
    "FINISHED": "finished",
    "FAILED": "failed",
    "KILLED": "failed",
}
COPY_MAX_BYTES = 256 * 1024 * 1024


@dataclass
class ImportSummary:
    """What one import did (printed as the summary line)."""

    runs: int = 0
    skipped: int = 0
    experiments: int = 0
    metric_values: int = 0
    artifacts: int = 0

    def line(self, uri: str) -> str:
        return (
            f"imported {self.runs} run(s) from {self.experiments} experiment(s) of {uri}"
            f" ({self.metric_values} metric values, {self.artifacts} artifact files);"
            f" {self.skipped} already present"
        )


def client_for(uri: str) -> Any:
    """``MlflowClient`` for ``mlflow+URI`` (a clean error when MLflow is missing)."""
    try:
        from mlflow.tracking import MlflowClient
    except ImportError:
        raise UsageError('MLflow is not installed: pip install "nbtrace[mlflow]"') from None
    tracking = mlflow_tracking_uri(uri)
    # MLflow logs INFO lines and warnings with tracebacks (e.g. for a stray folder in mlruns/)
    # through the logging module; the CLI's contract is one summary line, errors one line.
    import logging

    logging.getLogger("mlflow").setLevel(logging.ERROR)
    # MLflow writes "View run ... at: URL" to stdout when a run on a server ends; stdout is
    # the CLI's (--json: nothing but JSON).
    os.environ.setdefault("MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT", "true")
    tracking = _postgres_driver(tracking)
    if tracking.startswith("file:"):
        # MLflow 3 refuses its file store unless asked: reading an existing mlruns/ is the point.
        os.environ.setdefault("MLFLOW_ALLOW_FILE_STORE", "true")
    return MlflowClient(tracking_uri=tracking)


def _postgres_driver(tracking: str) -> str:
    """``postgresql://`` for MLflow through psycopg 3 when psycopg2 is missing.

    Why: MLflow's SQL store hands the URI to SQLAlchemy, whose default PostgreSQL driver is
    psycopg2; nbtrace's team store installs psycopg 3, which SQLAlchemy knows as
    ``postgresql+psycopg``. An explicit ``postgresql+driver://`` is left alone.
    """
    for scheme in ("postgresql://", "postgres://"):
        if tracking.startswith(scheme):
            import importlib.util

            if importlib.util.find_spec("psycopg2") is None and importlib.util.find_spec("psycopg"):
                return "postgresql+psycopg://" + tracking[len(scheme) :]
    return tracking


def _paged(fetch: Callable[[str | None], Any]) -> Iterator[Any]:
    token = None
    while True:
        page = fetch(token)
        yield from page
        token = getattr(page, "token", None)
        if not token:
            return


def import_mlflow(
    store: SQLStore,
    uri: str,
    experiment: str | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> ImportSummary:
    """Import every run of ``uri`` (only experiment ``experiment`` when given)."""
    client = client_for(uri)  # first: a clean error when MLflow is not installed
    from mlflow.entities import ViewType
    from mlflow.exceptions import MlflowException

    summary = ImportSummary()
    try:
        exps = list(
            _paged(
                lambda t: client.search_experiments(
                    view_type=ViewType.ALL, max_results=1000, page_token=t
                )
            )
        )
        if experiment is not None:
            exps = [e for e in exps if e.name == experiment]
            if not exps:
                raise UsageError(f"no experiment {one_line(experiment, 80)!r} in {uri}")
        work: list[tuple[Any, Any]] = []
        for e in exps:
            runs = list(
                _paged(
                    lambda t, e=e: client.search_runs(
                        [e.experiment_id],
                        run_view_type=ViewType.ALL,
                        max_results=1000,
                        page_token=t,
                    )
                )
            )
            work.extend((e, r) for r in runs)
        summary.experiments = len(exps)
        for e in exps:
            _ensure_experiment(store, e)
        for i, (e, run) in enumerate(work):
            if _exists(store, run.info.run_id):
                summary.skipped += 1
            else:
                _import_run(store, client, uri, e, run, summary)
                summary.runs += 1
            if progress is not None:
                progress(i + 1, len(work))
    except MlflowException as exc:
        raise StoreError(f"MLflow at {uri}: {one_line(exc.message, 200)}") from None
    return summary


def _ensure_experiment(store: SQLStore, e: Any) -> None:
    if e.name == tables.DEFAULT_NAME or tables.experiment(store, name=e.name) is not None:
        return
    try:
        tables.insert_experiment(store, e.name, None, dict(e.tags or {}))
    except NBTraceError:
        pass  # created meanwhile


def _exists(store: SQLStore, run_id: str) -> bool:
    with store._cur() as cur:
        cur.execute("SELECT 1 FROM runs WHERE id = ?", (run_id,))
        return cur.fetchone() is not None


def _import_run(
    store: SQLStore, client: Any, uri: str, e: Any, run: Any, summary: ImportSummary
) -> None:
    """One MLflow run as one batch of ops (all or nothing)."""
    info, tags = run.info, dict(run.data.tags)
    rid = info.run_id
    _check_keys(rid, run)
    batch: list[Op] = []
    git = _git_blob(tags)
    git_hash = None
    if git is not None:
        data = json.dumps(git, sort_keys=True)
        git_hash = hashlib.sha256(("git" + data).encode()).hexdigest()
        batch.append(ops.blob(git_hash, "git", data))
    row = {
        "id": rid,
        "name": info.run_name or tags.get("mlflow.runName") or rid[:12],
        "experiment": None if e.name == tables.DEFAULT_NAME else e.name,
        "status": _STATUS.get(info.status, "failed"),
        "started_at": (info.start_time or 0) / 1000,
        "ended_at": info.end_time / 1000 if info.end_time else None,
        "user_name": tags.get("mlflow.user") or info.user_id or None,
        "notebook_path": tags.get("mlflow.source.name"),
        "git_hash": git_hash,
        "note": tags.get("mlflow.note.content"),
        "nested_in": tags.get("mlflow.parentRunId"),
        "extra": json.dumps({"imported_from": {"kind": "mlflow", "uri": uri, "run_id": rid}}),
    }
    if row["status"] == "running":
        row["status"] = "crashed"  # nothing here will ever end it
        row["ended_at"] = row["ended_at"] or row["started_at"]
    batch.append(ops.run_start(row))
    for k, v in run.data.params.items():
        batch.append(ops.param(rid, k, param_to_json(v), _number(v), v))
    for k, v in tags.items():
        if k not in MAPPED_TAGS:
            batch.append(ops.tag(rid, k, v))
    for key in run.data.metrics:
        history = client.get_metric_history(rid, key)
        for seq, m in enumerate(history, start=1):
            batch.append(ops.metric(rid, key, seq, m.step, m.timestamp / 1000, float(m.value)))
        summary.metric_values += len(history)
    io: list[tuple[str, dict[str, Any]]] = []
    for di in (run.inputs.dataset_inputs if run.inputs else []) or []:
        d = di.dataset
        key = f"dataset:{d.name}@{d.digest}"
        batch.append(ops.input(rid, key, sha256_text(key), 0))
        io.append(
            (key, {"dataset": d.to_dictionary(), "tags": {t.key: t.value for t in di.tags or []}})
        )
    for name, data in _artifacts(client, run):
        batch.append(ops.artifact(rid, name, hashlib.sha256(data).hexdigest(), len(data), data))
        summary.artifacts += 1
    # The trust rule of re-execution: an imported run's code is someone else's.
    batch.append(ops.import_mark(rid, time.time(), _user(), socket.gethostname()))
    store.apply(batch)
    tables.set_io(store, rid, io)


def _check_keys(rid: str, run: Any) -> None:
    """Names as nbtrace takes them (a store, or a server, can hold anything): the import stops
    with one line naming the run; the runs imported before it are kept."""
    from ..tracker import MAX_VALUE, check_name

    if not isinstance(rid, str) or not rid or len(rid) > 64 or not rid.replace("-", "").isalnum():
        raise UsageError(f"MLflow run id {one_line(rid, 80)!r} is not usable as a run id")
    try:
        for kind, items in (("param", run.data.params), ("tag", run.data.tags)):
            for key, value in items.items():
                check_name(kind, key)
                if not isinstance(value, str) or len(value) > MAX_VALUE:
                    raise UsageError(f"{kind} {one_line(key, 60)!r} has a value nbtrace refuses")
        for key in run.data.metrics:
            check_name("metric", key)
    except UsageError as exc:
        raise UsageError(f"MLflow run {rid}: {exc}") from None


def _user() -> str | None:
    import getpass

    try:
        return getpass.getuser()
    except Exception:  # noqa: BLE001 - no passwd entry in some containers
        return None


def _git_blob(tags: dict[str, str]) -> dict[str, Any] | None:
    commit = tags.get("mlflow.source.git.commit")
    if not commit:
        return None
    return {
        "commit": commit,
        "branch": tags.get("mlflow.source.git.branch"),
        "dirty": None,
        "diff": None,
        "remote": tags.get("mlflow.source.git.repoURL"),
    }


def _number(text: str) -> float | None:
    try:
        f = float(text)
    except (TypeError, ValueError):
        return None
    return f if f == f and abs(f) != float("inf") else None


def _artifacts(client: Any, run: Any) -> Iterator[tuple[str, bytes]]:
    """(name, bytes) of the run's artifact files and of its MLflow 3 logged models' files."""
    rid = run.info.run_id
    with tempfile.TemporaryDirectory(prefix="nbtrace-import-") as tmp:
        try:
            local = client.download_artifacts(rid, "", tmp)
        except Exception:  # noqa: BLE001 - a run without artifacts (or an unreachable root)
            local = None
        if local:
            yield from _files(Path(local), "")
        for m in _logged_models(client, run):
            dest = Path(tmp) / "models" / m.model_id
            dest.mkdir(parents=True, exist_ok=True)
            try:
                from mlflow.artifacts import download_artifacts

                got = download_artifacts(
                    artifact_uri=m.artifact_location,
                    dst_path=str(dest),
                    tracking_uri=client._tracking_client.tracking_uri,
                )
            except Exception:  # noqa: BLE001 - a model whose files are gone
                continue
            yield from _files(Path(got), f"models/{m.name or m.model_id}/")


def _logged_models(client: Any, run: Any) -> list[Any]:
    try:
        found = client.search_logged_models(
            experiment_ids=[run.info.experiment_id],
            filter_string=f"source_run_id = '{run.info.run_id}'",
        )
    except Exception:  # noqa: BLE001 - MLflow 2 stores have no logged models
        return []
    return list(found)


def _files(folder: Path, prefix: str) -> Iterator[tuple[str, bytes]]:
    if not folder.is_dir():
        return
    # Symlinks are skipped: only files MLflow wrote are copied, never what a link points at.
    for path in sorted(p for p in folder.rglob("*") if p.is_file() and not p.is_symlink()):
        if path.stat().st_size <= COPY_MAX_BYTES:
            yield prefix + path.relative_to(folder).as_posix(), path.read_bytes()


def terminal_progress(stream: Any = None) -> Callable[[int, int], None] | None:
    """A one-line progress bar on a terminal (None when ``stream`` is not one)."""
    stream = stream or sys.stderr
    if not stream.isatty():
        return None

    def show(done: int, total: int) -> None:
        width = 30
        filled = width * done // max(total, 1)
        stream.write(f"\r[{'#' * filled}{'.' * (width - filled)}] {done}/{total} runs")
        if done == total:
            stream.write("\n")
        stream.flush()

    return show

"""MLflow's tracking store for ``nbtrace:`` URIs: MLflow's client writes nbtrace runs.

MLflow finds this class through the ``mlflow.tracking_store`` entry point (schemes
``nbtrace``, ``nbtrace+postgresql``, ``nbtrace+postgres``); nothing imports it unless MLflow
asks, so ``%load_ext nbtrace`` never pays for MLflow.

Why writes go through the kernel's :class:`~nbtrace.tracker.Tracker`: when nbtrace is loaded
in the kernel, an MLflow run *is* the nbtrace run, with the cells, environment, git state,
seeds and resources the tracker captures, re-executable like any other; and
``mlflow.log_metric`` costs what ``nbtrace.log_metric`` costs (a queue append), not a
transaction. Reads (``get_run``, ``search_runs``) flush the queue first, so MLflow's
read-your-writes holds. Searching reuses MLflow's own filter, sort and pagination
(``SearchUtils``, as MLflow's file store does), so filter strings mean what MLflow says.

Artifacts are MLflow's business: each run's ``artifact_uri`` is under an artifact root next
to the store (``<store folder>/mlartifacts``; MLflow's ``--default-artifact-root`` or
``NBTRACE_MLFLOW_ARTIFACT_ROOT`` choose another), and MLflow's artifact repositories write
there. When a run ends, the files under its artifact folder and its logged models' folders are
recorded with the nbtrace run too (name, size, sha256 and content), so nbtrace lists and serves
them.
"""

from __future__ import annotations

import json
import os
import threading
import time
from typing import Any

from mlflow.entities import RunStatus, ViewType
from mlflow.exceptions import MlflowException
from mlflow.protos import databricks_pb2
from mlflow.store.entities.paged_list import PagedList
from mlflow.store.tracking import SEARCH_MAX_RESULTS_DEFAULT
from mlflow.store.tracking.abstract_store import AbstractStore
from mlflow.utils.search_utils import (
    SearchExperimentsUtils,
    SearchUtils,
)

from ..errors import NBTraceError
from ..jsonutil import param_to_json
from ..store import ops
from ..tracker import Run, Tracker
from . import entities as ent
from . import tables
from .errors import mlflow_errors
from .models import LoggedModelsMixin, _local_path
from .uri import default_artifact_root, location_from_uri


def _tracker_for(location: str) -> Tracker:
    """The kernel's tracker when it writes to ``location``, else one for ``location``.

    With no tracker yet, the MLflow URI chooses the process's store (``nbtrace.log_*`` then
    writes there too); a tracker on another store is left alone and a second one is made.
    """
    from .. import api

    current = api._tracker
    if current is None:
        return api.configure(location)
    if _same_location(current.location, location):
        return current
    found = _private.get(location)
    if found is None:
        found = _private[location] = Tracker(location)
        import atexit

        atexit.register(found.close)
    return found


_private: dict[str, Tracker] = {}


def _same_location(a: str, b: str) -> bool:
    if a == b:
        return True
    if "://" in a or "://" in b:
        return False
    return os.path.realpath(os.path.expanduser(a)) == os.path.realpath(os.path.expanduser(b))


class NBTraceTrackingStore(LoggedModelsMixin, AbstractStore):
    """MLflow's ``AbstractStore`` over an nbtrace store (see the module docstring)."""

    def __init__(self, store_uri: str | None = None, artifact_uri: str | None = None) -> None:
        super().__init__()
        self.location = location_from_uri(store_uri or "nbtrace:")
        self.tracker = _tracker_for(self.location)
        self.store = self.tracker.store
        root = artifact_uri or os.environ.get("NBTRACE_MLFLOW_ARTIFACT_ROOT")
        self.artifact_root = (root or default_artifact_root(self.location)).rstrip("/")
        #: Runs this store created or logged to, by id (also after they end: MLflow's client
        #: may log to a finished run), so metric sequence numbers continue without a query.
        self._runs: dict[str, Run] = {}
        self._exp_of: dict[str, str] = {}
        #: Params each run got through MLflow's client (autolog, mlflow.log_param).
        self._mlflow_params: dict[str, set[str]] = {}
        #: MLflow's async logging calls log_batch from its worker thread: a run's metric
        #: sequence numbers must not be handed out twice.
        self._log_lock = threading.Lock()

    # ------------------------------------------------------------------ helpers
    def _sync(self) -> None:
        """Make everything queued visible to reads (MLflow's read-your-writes)."""
        self.tracker.writer.flush()

    def _run(self, run_id: str) -> Run:
        run = self._runs.get(run_id)
        if run is not None:
            return run
        for open_run in self.tracker.open_runs():
            if open_run.id == run_id:
                self._runs[run_id] = open_run
                return open_run
        self._sync()
        rows = tables.run_rows(self.store, "r.id = ?", [run_id])
        if not rows:
            raise MlflowException(
                f"Run '{run_id}' not found", databricks_pb2.RESOURCE_DOES_NOT_EXIST
            )
        r = rows[0]
        run = Run(id=run_id, name=r["name"], experiment=r["experiment"], status=r["status"])
        run.metric_seq = _max_metric_seq(self.store, run_id)
        self._runs[run_id] = run
        return run

    def _exp_ids(self) -> dict[str | None, str]:
        """Experiment name → id (None → the Default experiment)."""
        ids: dict[str | None, str] = {e["name"]: e["id"] for e in tables.experiments(self.store)}
        ids[None] = tables.DEFAULT_ID
        return ids

    def _exp_name(self, experiment_id: str | None) -> str | None:
        """The nbtrace experiment of MLflow's ``experiment_id`` (Default → None)."""
        exp_id = tables.DEFAULT_ID if experiment_id is None else str(experiment_id)
        e = tables.experiment(self.store, exp_id=exp_id)
        if e is None:
            raise MlflowException(
                f"No experiment with id {exp_id}", databricks_pb2.RESOURCE_DOES_NOT_EXIST
            )
        if e["lifecycle_stage"] != "active":
            raise MlflowException(f"Experiment {exp_id} is deleted", databricks_pb2.INVALID_STATE)
        return None if exp_id == tables.DEFAULT_ID else e["name"]

    def _exp_location(self, experiment_id: str) -> str:
        e = tables.experiment(self.store, exp_id=experiment_id)
        if e is not None and e["artifact_location"]:
            return e["artifact_location"].rstrip("/")
        return f"{self.artifact_root}/{experiment_id}"

    def run_artifact_uri(self, experiment_id: str, run_id: str) -> str:
        """Where MLflow puts run ``run_id``'s artifacts (as MLflow's SQL store lays them out)."""
        return f"{self._exp_location(experiment_id)}/{run_id}/artifacts"

    def _entities(self, rows: list[dict[str, Any]]) -> list[Any]:
        ids = self._exp_ids()
        out = []
        for r in rows:
            exp_id = ids.get(r["experiment"], tables.DEFAULT_ID)
            out.append(ent.run_entity(r, exp_id, self.run_artifact_uri(exp_id, r["id"])))
        return out

    # ------------------------------------------------------------------ experiments
    @mlflow_errors
    def search_experiments(
        self,
        view_type: int = ViewType.ACTIVE_ONLY,
        max_results: int = SEARCH_MAX_RESULTS_DEFAULT,
        filter_string: str | None = None,
        order_by: list[str] | None = None,
        page_token: str | None = None,
    ) -> PagedList:
        wanted = {
            ViewType.ACTIVE_ONLY: ("active",),
            ViewType.DELETED_ONLY: ("deleted",),
        }.get(view_type, ("active", "deleted"))
        exps = [
            ent.experiment_entity(e, self.artifact_root)
            for e in tables.experiments(self.store)
            if e["lifecycle_stage"] in wanted
        ]
        exps = SearchExperimentsUtils.filter(exps, filter_string)
        exps = SearchExperimentsUtils.sort(
            exps, order_by or ["creation_time DESC", "experiment_id ASC"]
        )
        page, token = SearchUtils.paginate(exps, page_token, max_results)
        return PagedList(page, token)

    @mlflow_errors
    def create_experiment(
        self, name: str, artifact_location: str | None = None, tags: list[Any] | None = None
    ) -> str:
        from ..tracker import check_name

        check_name("experiment", name, 1000)
        return tables.insert_experiment(
            self.store, name, artifact_location, {t.key: t.value for t in tags or []}
        )

    @mlflow_errors
    def get_experiment(self, experiment_id: str) -> Any:
        e = tables.experiment(self.store, exp_id=str(experiment_id))
        if e is None:
            raise MlflowException(
                f"No Experiment with id={experiment_id} exists",
                databricks_pb2.RESOURCE_DOES_NOT_EXIST,
            )
        return ent.experiment_entity(e, self.artifact_root)

    @mlflow_errors
    def get_experiment_by_name(self, experiment_name: str) -> Any:
        e = tables.experiment(self.store, name=experiment_name)
        return ent.experiment_entity(e, self.artifact_root) if e else None

    @mlflow_errors
    def delete_experiment(self, experiment_id: str) -> None:
        tables.update_experiment(self.store, str(experiment_id), lifecycle_stage="deleted")

    @mlflow_errors
    def restore_experiment(self, experiment_id: str) -> None:
        tables.update_experiment(self.store, str(experiment_id), lifecycle_stage="active")

    @mlflow_errors
    def rename_experiment(self, experiment_id: str, new_name: str) -> None:
        tables.update_experiment(self.store, str(experiment_id), name=new_name)

    @mlflow_errors
    def set_experiment_tag(self, experiment_id: str, tag: Any) -> None:
        e = self.get_experiment(experiment_id)
        tags = dict(e.tags)
        tags[tag.key] = tag.value
        tables.update_experiment(self.store, str(experiment_id), tags=tags)

    @mlflow_errors
    def delete_experiment_tag(self, experiment_id: str, key: str) -> None:
        e = self.get_experiment(experiment_id)
        tags = dict(e.tags)
        tags.pop(key, None)
        tables.update_experiment(self.store, str(experiment_id), tags=tags)

    # ------------------------------------------------------------------ runs
    @mlflow_errors
    def create_run(
        self,
        experiment_id: str,
        user_id: str,
        start_time: int | None,
        tags: list[Any] | None,
        run_name: str | None,
    ) -> Any:
        experiment = self._exp_name(experiment_id)
        given = {t.key: t.value for t in tags or []}
        name_tag = given.pop("mlflow.runName", None)
        if run_name and name_tag and run_name != name_tag:
            raise MlflowException(
                "run_name and the mlflow.runName tag differ", databricks_pb2.INVALID_PARAMETER_VALUE
            )
        parent = given.pop("mlflow.parentRunId", None)
        note = given.pop("mlflow.note.content", None)
        active = self.tracker.active
        nested = parent is not None and active is not None and active.id == parent
        run = self.tracker.start_run(
            run_name or name_tag,
            experiment=experiment,
            tags=given,
            nested=nested,
            nested_in=None if nested else parent,
            started_at=start_time / 1000 if start_time else None,
        )
        self._runs[run.id] = run
        if note and not run.ghost:
            self.tracker.writer.submit(ops.run_update(run.id, {"note": note}))
        exp_id = tables.DEFAULT_ID if experiment_id is None else str(experiment_id)
        self._exp_of[run.id] = exp_id
        return self._memory_entity(run, given, note)

    def _memory_entity(
        self, run: Run, tags: dict[str, str] | None = None, note: str | None = None
    ) -> Any:
        """The entity of a run from what this process knows (a new run; or a run that a
        re-execution replays only to reach its target, which is never written)."""
        exp_id = self._exp_of.get(run.id, tables.DEFAULT_ID)
        r = {
            "id": run.id,
            "name": run.name,
            "experiment": run.experiment,
            "status": run.status,
            "started_at": run.started_at,
            "ended_at": None,
            "user": self.tracker.user,
            "nested_in": run.nested_in,
            "params": {},
            "latest": {},
            "tags": tags or {},
            "io": [],
            "note": note,
            "notebook_path": self.tracker._notebook_path(),
        }
        return ent.run_entity(r, exp_id, self.run_artifact_uri(exp_id, run.id))

    @mlflow_errors
    def get_run(self, run_id: str) -> Any:
        known = self._runs.get(run_id)
        if known is not None and known.ghost:
            return self._memory_entity(known)
        self._sync()
        rows = tables.run_rows(self.store, "r.id = ?", [run_id])
        if not rows:
            raise MlflowException(
                f"Run '{run_id}' not found", databricks_pb2.RESOURCE_DOES_NOT_EXIST
            )
        return self._entities(rows)[0]

    @mlflow_errors
    def update_run_info(
        self, run_id: str, run_status: int, end_time: int | None, run_name: str | None
    ) -> Any:
        run = self._run(run_id)
        status = RunStatus.to_string(run_status)
        if run_name and not run.ghost:
            run.name = run_name
            self.tracker.writer.submit(ops.run_update(run_id, {"name": run_name}))
        if RunStatus.is_terminated(run_status):
            ended = end_time / 1000 if end_time else time.time()
            self._mark_not_overridable(run)
            if run in self.tracker.open_runs():
                self.tracker.end_run(status=status, run=run, ended_at=ended)
            elif not run.ghost:
                run.status = "failed" if status != "FINISHED" else "finished"
                self.tracker.writer.submit(
                    ops.run_update(run_id, {"status": run.status, "ended_at": ended})
                )
            if not run.ghost:
                self._record_artifacts(run_id)
                if self.tracker.writer._stop.is_set():
                    # MLflow ends its runs at exit after nbtrace's own exit handler stopped
                    # the background writer: write now or the end would be lost.
                    self.tracker.writer.flush()
        elif status == "RUNNING" and not run.ghost and run not in self.tracker.open_runs():
            run.status = "running"
            self.tracker.writer.submit(
                ops.run_update(
                    run_id, {"status": "running", "ended_at": None, "heartbeat_at": time.time()}
                )
            )
        return self.get_run(run_id).info

    def _mark_not_overridable(self, run: Run) -> None:
        """Record which params only MLflow's client logged (``extra.mlflow_params``).

        Why: a re-execution's override takes effect where the code reads a value through
        ``nbtrace.log_param`` / ``%log_param``; a value autolog read off an estimator cannot
        be overridden, and the re-execute dialog says so rather than silently ignoring it.
        """
        only = sorted(self._mlflow_params.pop(run.id, set()) - run.param_keys)
        if only and not run.ghost and run.extra is not None and "cwd" in run.extra:
            run.extra["mlflow_params"] = only
            self.tracker.writer.submit(ops.run_update(run.id, {"extra": json.dumps(run.extra)}))

    @mlflow_errors
    def delete_run(self, run_id: str) -> None:
        self._sync()
        self.store.delete_run(run_id)

    def restore_run(self, run_id: str) -> None:
        raise MlflowException(
            "nbtrace deletes runs for good; there is nothing to restore",
            databricks_pb2.INVALID_STATE,
        )

    # ------------------------------------------------------------------ logging
    def log_metric(self, run_id: str, metric: Any) -> None:
        """One metric: the hot path (a queue append, as ``nbtrace.log_metric``)."""
        run = self._runs.get(run_id) or self._run(run_id)
        try:
            with self._log_lock:
                self.tracker.log_metric_to(
                    run, metric.key, metric.value, metric.step, metric.timestamp / 1000
                )
        except NBTraceError as exc:
            raise MlflowException(str(exc), databricks_pb2.INVALID_PARAMETER_VALUE) from None
        if metric.model_id is not None:
            self._model_metrics(metric.model_id, [metric])

    @mlflow_errors
    def log_batch(
        self, run_id: str, metrics: list[Any], params: list[Any], tags: list[Any]
    ) -> None:
        run = self._runs.get(run_id) or self._run(run_id)
        for p in params:
            self._param(run, p.key, p.value)
        with self._log_lock:
            for m in metrics:
                self.tracker.log_metric_to(run, m.key, m.value, m.step, m.timestamp / 1000)
        by_model: dict[str, list[Any]] = {}
        for m in metrics:
            if m.model_id is not None:
                by_model.setdefault(m.model_id, []).append(m)
        for model_id, ms in by_model.items():
            self._model_metrics(model_id, ms)
        for t in tags:
            self._tag(run, t.key, t.value)

    def log_param(self, run_id: str, param: Any) -> None:
        self.log_batch(run_id, [], [param], [])

    def set_tag(self, run_id: str, tag: Any) -> None:
        self.log_batch(run_id, [], [], [tag])

    @mlflow_errors
    def delete_tag(self, run_id: str, key: str) -> None:
        self._sync()
        self.store.update_run(run_id, tags={key: None})

    def _param(self, run: Run, key: str, value: Any) -> None:
        from ..tracker import check_name

        check_name("param", key)
        text = str(value)
        self._mlflow_params.setdefault(run.id, set()).add(key)
        if not run.ghost:
            self.tracker.writer.submit(
                ops.param(run.id, key, param_to_json(text), _number(text), text)
            )

    def _tag(self, run: Run, key: str, value: str) -> None:
        if run.ghost:
            return
        if key == "mlflow.runName":
            run.name = value
            self.tracker.writer.submit(ops.run_update(run.id, {"name": value}))
        elif key == "mlflow.note.content":
            self.tracker.writer.submit(ops.run_update(run.id, {"note": value}))
        elif key == "mlflow.parentRunId":
            run.nested_in = value
            self.tracker.writer.submit(ops.run_update(run.id, {"nested_in": value}))
        else:
            self.tracker.set_tag(key, value, run=run)

    @mlflow_errors
    def get_metric_history(
        self,
        run_id: str,
        metric_key: str,
        max_results: int | None = None,
        page_token: str | None = None,
    ) -> PagedList:
        from mlflow.entities import Metric

        self._sync()
        rows = _series(self.store, run_id, metric_key)
        metrics = [Metric(metric_key, v, int(round(ts * 1000)), step or 0) for step, ts, v in rows]
        if max_results is None:
            return PagedList(metrics, None)
        page, token = SearchUtils.paginate(metrics, page_token, max_results)
        return PagedList(page, token)

    @mlflow_errors
    def _search_runs(
        self,
        experiment_ids: list[str],
        filter_string: str | None,
        run_view_type: int,
        max_results: int,
        order_by: list[str] | None,
        page_token: str | None,
    ) -> tuple[list[Any], str | None]:
        if run_view_type == ViewType.DELETED_ONLY:
            return [], None  # nbtrace deletes runs for good
        self._sync()
        names: list[str] = []
        default = False
        by_id = {e["id"]: e["name"] for e in tables.experiments(self.store)}
        for exp_id in experiment_ids:
            if str(exp_id) == tables.DEFAULT_ID:
                default = True
            elif str(exp_id) in by_id:
                names.append(by_id[str(exp_id)])
        clauses, args = [], []
        if names:
            clauses.append(f"r.experiment IN ({','.join('?' * len(names))})")
            args.extend(names)
        if default:
            clauses.append("r.experiment IS NULL")
        if not clauses:
            return [], None
        runs = self._entities(tables.run_rows(self.store, " OR ".join(clauses), args))
        runs = SearchUtils.filter(runs, filter_string)
        runs = SearchUtils.sort(runs, order_by)
        return SearchUtils.paginate(runs, page_token, max_results)

    # ------------------------------------------------------------------ inputs and outputs
    @mlflow_errors
    def log_inputs(
        self, run_id: str, datasets: list[Any] | None = None, models: list[Any] | None = None
    ) -> None:
        run = self._runs.get(run_id) or self._run(run_id)
        items: list[tuple[str, dict[str, Any]]] = []
        for di in datasets or []:
            d = di.dataset
            key = f"dataset:{d.name}@{d.digest}"
            items.append(
                (
                    key,
                    {"dataset": d.to_dictionary(), "tags": {t.key: t.value for t in di.tags or []}},
                )
            )
            path, sha, size = _dataset_fingerprint(d, key)
            if not run.ghost:
                self.tracker.writer.submit(ops.input(run_id, path, sha, size))
        for mi in models or []:
            items.append((f"model_in:{mi.model_id}", {"model_id": mi.model_id}))
        if not run.ghost:
            self._sync()
            tables.set_io(self.store, run_id, items)

    @mlflow_errors
    def log_outputs(self, run_id: str, models: list[Any]) -> None:
        run = self._runs.get(run_id) or self._run(run_id)
        if not run.ghost:
            self._sync()
            tables.set_io(
                self.store,
                run_id,
                [
                    (f"model_out:{m.model_id}", {"model_id": m.model_id, "step": m.step})
                    for m in models or []
                ],
            )

    def link_traces_to_run(self, trace_ids: list[str], run_id: str) -> None:
        """Traces are not stored by nbtrace: linking them is a no-op."""

    @mlflow_errors
    def record_logged_model(self, run_id: str, mlflow_model: Any) -> None:
        run = self._runs.get(run_id) or self._run(run_id)
        self._sync()
        rows = tables.run_rows(self.store, "r.id = ?", [run_id])
        history = json.loads(rows[0]["tags"].get("mlflow.log-model.history", "[]")) if rows else []
        history.append(mlflow_model.get_tags_dict())
        self._tag(run, "mlflow.log-model.history", json.dumps(history))


def _number(text: str) -> float | None:
    """The number a string parameter holds, so ``params.alpha > 0.1`` compares numbers."""
    try:
        f = float(text)
    except ValueError:
        return None
    return f if f == f and f not in (float("inf"), float("-inf")) else None


def _dataset_fingerprint(d: Any, key: str) -> tuple[str, str, int]:
    """An nbtrace input for an MLflow dataset: the file itself when its source is a local
    file (real sha256 and size), else the dataset's name and MLflow digest."""
    import json

    from ..hashing import sha256_file

    try:
        source = json.loads(d.source) if d.source else {}
    except ValueError:
        source = {}
    uri = source.get("uri") or source.get("path") if isinstance(source, dict) else None
    local = _local_path(uri) if isinstance(uri, str) else None
    if local is not None and local.is_file():
        sha, size = sha256_file(str(local))
        return str(local.resolve()), sha, size
    from ..hashing import sha256_text

    return key, sha256_text(key), 0


def _max_metric_seq(store: Any, run_id: str) -> int:
    with store._cur() as cur:
        cur.execute("SELECT COALESCE(MAX(seq), 0) FROM metrics WHERE run_id = ?", (run_id,))
        return int(cur.fetchone()[0])


def _series(store: Any, run_id: str, key: str) -> list[tuple[int | None, float, float]]:
    with store._cur() as cur:
        cur.execute(
            "SELECT step, ts, value, special FROM metrics WHERE run_id = ? AND key = ?"
            " ORDER BY seq",
            (run_id, key),
        )
        return [(st, ts, float(sp) if sp else v) for st, ts, v, sp in cur.fetchall()]

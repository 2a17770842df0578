"""MLflow 3's logged models in the ``nbtrace:`` tracking store, and the run's artifact files
recorded with the nbtrace run.

Why a mixin of :class:`~.store.NBTraceTrackingStore`: logged models are their own entities in
MLflow 3 (``create_logged_model``, ``finalize_logged_model``, ``search_logged_models``, which
``log_model`` and autolog call); they are stored as JSON rows (:mod:`.tables`) and their files
live under the experiment's artifact location, like a run's.
"""

from __future__ import annotations

import hashlib
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from mlflow.exceptions import MlflowException
from mlflow.protos import databricks_pb2
from mlflow.store.entities.paged_list import PagedList
from mlflow.utils.search_utils import SearchLoggedModelsUtils

from ..errors import NotFoundError
from ..store import ops
from . import entities as ent
from . import tables
from .errors import mlflow_errors

#: Files larger than this stay in the artifact root only (not copied into the store).
COPY_MAX_BYTES = 256 * 1024 * 1024


class LoggedModelsMixin:
    """Logged models and artifact recording; ``self`` is an NBTraceTrackingStore."""

    store: Any
    tracker: Any

    @mlflow_errors
    def create_logged_model(
        self,
        experiment_id: str = tables.DEFAULT_ID,
        name: str | None = None,
        source_run_id: str | None = None,
        tags: list[Any] | None = None,
        params: list[Any] | None = None,
        model_type: str | None = None,
    ) -> Any:
        from mlflow.entities import LoggedModel, LoggedModelStatus

        self._exp_name(experiment_id)
        model_id = f"m-{uuid.uuid4().hex}"
        now = int(time.time() * 1000)
        model = LoggedModel(
            experiment_id=str(experiment_id),
            model_id=model_id,
            name=name or f"model-{model_id[2:10]}",
            artifact_location=f"{self._exp_location(str(experiment_id))}/models/{model_id}"
            "/artifacts",
            creation_timestamp=now,
            last_updated_timestamp=now,
            model_type=model_type,
            source_run_id=source_run_id,
            status=LoggedModelStatus.PENDING,
            tags={t.key: t.value for t in tags or []},
            params={p.key: p.value for p in params or []},
        )
        tables.save_model(self.store, ent.model_to_dict(model))
        return self.get_logged_model(model_id)

    @mlflow_errors
    def get_logged_model(self, model_id: str, allow_deleted: bool = False) -> Any:
        return ent.model_from_dict(tables.model(self.store, model_id, allow_deleted))

    def _update_model(self, model_id: str, change: Callable[[dict[str, Any]], None]) -> Any:
        d = tables.model(self.store, model_id)
        change(d)
        d["last_updated_timestamp"] = int(time.time() * 1000)
        tables.save_model(self.store, d)
        return ent.model_from_dict(d)

    @mlflow_errors
    def finalize_logged_model(self, model_id: str, status: Any) -> Any:
        return self._update_model(
            model_id,
            lambda d: d.update(
                status=int(status.to_int()) if hasattr(status, "to_int") else int(status)
            ),
        )

    @mlflow_errors
    def set_logged_model_tags(self, model_id: str, tags: list[Any]) -> None:
        self._update_model(
            model_id, lambda d: d.setdefault("tags", {}).update({t.key: t.value for t in tags})
        )

    @mlflow_errors
    def delete_logged_model_tag(self, model_id: str, key: str) -> None:
        d = tables.model(self.store, model_id)
        if key not in (d.get("tags") or {}):
            raise MlflowException(
                f"No tag with key {key!r} on model {model_id!r}",
                databricks_pb2.RESOURCE_DOES_NOT_EXIST,
            )
        self._update_model(model_id, lambda d: d["tags"].pop(key, None))

    @mlflow_errors
    def log_logged_model_params(self, model_id: str, params: list[Any]) -> None:
        self._update_model(
            model_id, lambda d: d.setdefault("params", {}).update({p.key: p.value for p in params})
        )

    @mlflow_errors
    def delete_logged_model(self, model_id: str) -> None:
        tables.save_model(self.store, tables.model(self.store, model_id), "deleted")

    @mlflow_errors
    def search_logged_models(
        self,
        experiment_ids: list[str],
        filter_string: str | None = None,
        datasets: list[dict[str, Any]] | None = None,
        max_results: int | None = None,
        order_by: list[dict[str, Any]] | None = None,
        page_token: str | None = None,
    ) -> PagedList:
        found = [
            ent.model_from_dict(d)
            for d in tables.models(self.store, [str(e) for e in experiment_ids])
        ]
        found = SearchLoggedModelsUtils.filter_logged_models(found, filter_string, datasets)
        found = SearchLoggedModelsUtils.sort(found, order_by)
        page, token = SearchLoggedModelsUtils.paginate(found, page_token, max_results or 100)
        return PagedList(page, token)

    def _model_metrics(self, model_id: str, metrics: list[Any]) -> None:
        try:
            self._update_model(
                model_id,
                lambda d: d.setdefault("metrics", []).extend(ent._metric_dict(m) for m in metrics),
            )
        except NotFoundError:
            pass  # a model of another store: the run still has the metric

    # ------------------------------------------------------------------ artifacts into nbtrace
    def _record_artifacts(self, run_id: str) -> None:
        """Record the run's artifact files (and its logged models' files) with the nbtrace run.

        Only local artifact roots (``file:`` or a path) are read; a remote root (S3, an MLflow
        server) keeps the artifacts where MLflow put them.
        """
        run = self.get_run(run_id)
        sources = [("", run.info.artifact_uri)]
        for d in tables.models(self.store, run_id=run_id):
            sources.append((f"models/{d.get('name') or d['model_id']}/", d["artifact_location"]))
        for prefix, uri in sources:
            folder = _local_path(uri)
            if folder is None or not folder.is_dir():
                continue
            files = (p for p in folder.rglob("*") if p.is_file() and not p.is_symlink())
            for path in sorted(files):
                size = path.stat().st_size
                if size > COPY_MAX_BYTES:
                    continue
                data = path.read_bytes()
                name = prefix + path.relative_to(folder).as_posix()
                self.tracker.writer.submit(
                    ops.artifact(run_id, name, hashlib.sha256(data).hexdigest(), size, data)
                )
        self.tracker.writer.kick()


def _local_path(uri: str | None) -> Path | None:
    """The local folder of a ``file:`` URI or a plain path; None for remote URIs."""
    from urllib.parse import unquote, urlparse

    if not uri:
        return None
    parsed = urlparse(uri)
    if parsed.scheme == "file":
        return Path(unquote(parsed.path))
    if parsed.scheme == "" or len(parsed.scheme) == 1:  # a path (or a Windows drive letter)
        return Path(uri)
    return None

"""nbtrace rows as MLflow entities (``Run``, ``Experiment``, ``Metric``, ``LoggedModel``).

Why one place: the tracking store and the importer/exporter agree on how nbtrace's native
fields map to MLflow's system tags. A run's name, user, nesting, notebook, git commit and note
are nbtrace fields; MLflow reads them as ``mlflow.runName``, ``mlflow.user``,
``mlflow.parentRunId``, ``mlflow.source.name``, ``mlflow.source.git.commit`` and
``mlflow.note.content``.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from mlflow.entities import (
    Dataset,
    DatasetInput,
    Experiment,
    ExperimentTag,
    InputTag,
    LoggedModel,
    LoggedModelInput,
    LoggedModelOutput,
    Metric,
    Param,
    Run,
    RunData,
    RunInfo,
    RunInputs,
    RunOutputs,
    RunTag,
)

#: nbtrace status → MLflow's RunStatus name (MLflow has no "crashed": a crash failed the run).
STATUS_TO_MLFLOW = {
    "running": "RUNNING",
    "finished": "FINISHED",
    "failed": "FAILED",
    "crashed": "FAILED",
}

#: MLflow system tags that nbtrace keeps as native fields rather than tags.
NATIVE_TAGS = ("mlflow.runName", "mlflow.parentRunId", "mlflow.note.content")


def millis(iso_or_epoch: Any) -> int | None:
    """ISO 8601 text (as summaries carry) or epoch seconds, as epoch milliseconds."""
    if iso_or_epoch is None:
        return None
    if isinstance(iso_or_epoch, (int, float)):
        return int(round(iso_or_epoch * 1000))
    return int(
        round(datetime.fromisoformat(iso_or_epoch.replace("Z", "+00:00")).timestamp() * 1000)
    )


def param_text(value: Any) -> str:
    """A parameter as MLflow's string (MLflow logs ``str(value)``)."""
    if isinstance(value, str):
        return value
    if isinstance(value, (dict, list)):
        return json.dumps(value)
    return str(value)


def system_tags(r: dict[str, Any]) -> dict[str, str]:
    """MLflow's system tags for nbtrace's native fields of run summary ``r``."""
    tags = {"mlflow.runName": r["name"]}
    if r.get("user"):
        tags["mlflow.user"] = r["user"]
    if r.get("nested_in"):
        tags["mlflow.parentRunId"] = r["nested_in"]
    if r.get("notebook_path"):
        tags["mlflow.source.name"] = r["notebook_path"]
        tags["mlflow.source.type"] = "NOTEBOOK"
    if r.get("commit"):
        tags["mlflow.source.git.commit"] = r["commit"]
    if r.get("note"):
        tags["mlflow.note.content"] = r["note"]
    return tags


def run_entity(r: dict[str, Any], experiment_id: str, artifact_uri: str) -> Run:
    """An MLflow ``Run`` from :func:`~.tables.run_rows`'s row ``r``."""
    info = RunInfo(
        run_id=r["id"],
        experiment_id=experiment_id,
        user_id=r.get("user") or "",
        status=STATUS_TO_MLFLOW.get(r["status"], "FAILED"),
        start_time=millis(r["started_at"]),
        end_time=millis(r["ended_at"]),
        lifecycle_stage="active",
        artifact_uri=artifact_uri,
        run_name=r["name"],
    )
    metrics = [
        Metric(k, v, int(round(ts * 1000)), step or 0) for k, (v, ts, step) in r["latest"].items()
    ]
    params = [Param(k, param_text(v)) for k, v in r["params"].items()]
    tags = dict(r["tags"])
    tags.update(system_tags(r))
    data = RunData(metrics=metrics, params=params, tags=[RunTag(k, v) for k, v in tags.items()])
    datasets, model_in, model_out = [], [], []
    for key, d in r["io"]:
        if key.startswith("dataset:"):
            tags_in = [InputTag(k, v) for k, v in (d.get("tags") or {}).items()]
            datasets.append(DatasetInput(Dataset.from_dictionary(d["dataset"]), tags_in))
        elif key.startswith("model_in:"):
            model_in.append(LoggedModelInput(d["model_id"]))
        elif key.startswith("model_out:"):
            model_out.append(LoggedModelOutput(d["model_id"], d.get("step") or 0))
    return Run(info, data, RunInputs(datasets, model_in), RunOutputs(model_out))


def experiment_entity(e: dict[str, Any], artifact_root: str) -> Experiment:
    """An MLflow ``Experiment`` from an experiment row."""
    return Experiment(
        experiment_id=e["id"],
        name=e["name"],
        artifact_location=e["artifact_location"] or f"{artifact_root}/{e['id']}",
        lifecycle_stage=e["lifecycle_stage"],
        tags=[ExperimentTag(k, v) for k, v in e["tags"].items()],
        creation_time=millis(e["created_at"]),
        last_update_time=millis(e["updated_at"]),
    )


def model_to_dict(model: LoggedModel) -> dict[str, Any]:
    """A logged model as JSON-able data (metrics as plain dicts)."""
    d = model.to_dictionary()
    d["metrics"] = [_metric_dict(m) for m in (model.metrics or [])]
    status = d.get("status")
    d["status"] = int(status) if status is not None else None
    return d


def model_from_dict(d: dict[str, Any]) -> LoggedModel:
    """Inverse of :func:`model_to_dict`."""
    d = dict(d)
    d["metrics"] = [Metric(**m) for m in d.get("metrics") or []]
    return LoggedModel.from_dictionary(d)


def _metric_dict(m: Metric) -> dict[str, Any]:
    return {
        "key": m.key,
        "value": m.value,
        "timestamp": m.timestamp,
        "step": m.step,
        "model_id": m.model_id,
        "dataset_name": m.dataset_name,
        "dataset_digest": m.dataset_digest,
        "run_id": m.run_id,
    }

"""``nbtrace export --to mlflow+URI``: nbtrace runs into any MLflow store, via ``MlflowClient``.

Each run becomes an MLflow run with its params, full metric series, tags and artifacts, plus
nbtrace's trace in a form MLflow users read: system tags (``mlflow.user``,
``mlflow.source.name``, ``mlflow.source.git.commit``, ``mlflow.parentRunId``,
``mlflow.note.content``), the recorded code as ``nbtrace/notebook.ipynb``, the whole run object
as ``nbtrace/run.json`` and its packages as ``nbtrace/requirements.txt``. The tag
``nbtrace.run_id`` makes the export idempotent: a run already exported is skipped.
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import StoreError, one_line
from ..jsonutil import dumps
from ..store.base import Store
from .importer import client_for

RUN_ID_TAG = "nbtrace.run_id"
_STATUS = {"finished": "FINISHED", "failed": "FAILED", "crashed": "FAILED", "running": "RUNNING"}
_BATCH = {"metrics": 1000, "params": 100, "tags": 100}  # MLflow's log_batch limits


@dataclass
class ExportSummary:
    """What one export did."""

    runs: int = 0
    skipped: int = 0

    def line(self, uri: str) -> str:
        return f"exported {self.runs} run(s) to {uri}; {self.skipped} already there"


def export_mlflow(
    store: Store,
    uri: str,
    filter: str | None = None,
    experiment: str | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> ExportSummary:
    """Export runs matching ``filter`` (into experiment ``experiment`` when given)."""
    client = client_for(uri)  # first: a clean error when MLflow is not installed
    from mlflow.exceptions import MlflowException

    summary = ExportSummary()
    runs, _ = store.list_runs(filter=filter, sort="started_at", limit=None)
    done: dict[str, str] = {}  # nbtrace id → MLflow run id
    linked: set[str] = set()  # nbtrace ids whose MLflow run has its parent link
    exp_ids: dict[str, str] = {}
    try:
        for i, r in enumerate(runs):
            exp_name = experiment or r["experiment"] or "Default"
            exp_id = exp_ids.get(exp_name) or _experiment_id(client, exp_name)
            if exp_name not in exp_ids:
                exp_ids[exp_name] = exp_id
                found = _already_exported(client, exp_id)
                done.update({k: v for k, (v, _) in found.items()})
                linked.update(k for k, (_, has) in found.items() if has)
            if r["id"] in done:
                summary.skipped += 1
                _link_late(client, r, done, linked)
            else:
                done[r["id"]] = _export_run(client, store, r["id"], exp_id, done)
                summary.runs += 1
            if progress is not None:
                progress(i + 1, len(runs))
    except MlflowException as exc:
        raise StoreError(f"MLflow at {uri}: {one_line(exc.message, 200)}") from None
    return summary


def _link_late(client: Any, r: dict[str, Any], done: dict[str, str], linked: set[str]) -> None:
    """Give an already-exported run the parent link that an earlier, filtered export could
    not (its parent was not exported then): exporting again converges."""
    parent = r.get("nested_in")
    if parent and parent in done and r["id"] not in linked:
        client.set_tag(done[r["id"]], "mlflow.parentRunId", done[parent])
        linked.add(r["id"])


def _experiment_id(client: Any, name: str) -> str:
    e = client.get_experiment_by_name(name)
    if e is not None:
        if e.lifecycle_stage != "active":
            client.restore_experiment(e.experiment_id)
        return e.experiment_id
    return client.create_experiment(name)


def _already_exported(client: Any, exp_id: str) -> dict[str, tuple[str, bool]]:
    """nbtrace run id → (MLflow run id, has a parent link) of the runs an earlier export put
    in ``exp_id``."""
    from mlflow.entities import ViewType

    found: dict[str, tuple[str, bool]] = {}
    token = None
    while True:
        page = client.search_runs(
            [exp_id], run_view_type=ViewType.ALL, max_results=1000, page_token=token
        )
        for run in page:
            nid = run.data.tags.get(RUN_ID_TAG)
            if nid:
                found[nid] = (run.info.run_id, "mlflow.parentRunId" in run.data.tags)
        token = page.token
        if not token:
            return found


def _tags(run: dict[str, Any], done: dict[str, str]) -> dict[str, str]:
    tags = {k: str(v) for k, v in run["tags"].items()}
    tags[RUN_ID_TAG] = run["id"]
    if run.get("user"):
        tags["mlflow.user"] = run["user"]
    nb = run.get("notebook") or {}
    if nb.get("path"):
        tags["mlflow.source.name"] = nb["path"]
        tags["mlflow.source.type"] = "NOTEBOOK"
    git = run.get("git") or {}
    if git.get("commit"):
        tags["mlflow.source.git.commit"] = git["commit"]
        if git.get("branch"):
            tags["mlflow.source.git.branch"] = git["branch"]
        if git.get("remote"):
            tags["mlflow.source.git.repoURL"] = git["remote"]
    if run.get("note"):
        tags["mlflow.note.content"] = run["note"]
    parent = run.get("nested_in")
    if parent and parent in done:
        tags["mlflow.parentRunId"] = done[parent]
    return tags


def _export_run(client: Any, store: Store, run_id: str, exp_id: str, done: dict[str, str]) -> str:
    from mlflow.entities import Metric, Param, RunTag
    from mlflow.utils.time import get_current_time_millis

    from .entities import param_text

    run = store.get_run(run_id, series=True)
    start = _ms(run["started_at"]) or get_current_time_millis()
    tags = _tags(run, done)
    created = client.create_run(
        exp_id, start_time=start, tags={RUN_ID_TAG: run_id}, run_name=run["name"]
    )
    mid = created.info.run_id
    params = [Param(k, param_text(v)[:6000]) for k, v in run["params"].items()]
    metrics = [
        Metric(k, float(p["value"]), _ms(p["timestamp"]) or start, p["step"] or 0)
        for k, points in (run.get("series") or {}).items()
        for p in points
    ]
    tag_list = [RunTag(k, v[:8000]) for k, v in tags.items() if k != RUN_ID_TAG]
    for kind, items in (("params", params), ("metrics", metrics), ("tags", tag_list)):
        size = _BATCH[kind]
        for i in range(0, len(items), size):
            client.log_batch(mid, **{kind: items[i : i + size]})
    _log_files(client, store, run, mid)
    status = _STATUS.get(run["status"], "FAILED")
    if status != "RUNNING":
        client.set_terminated(mid, status, end_time=_ms(run["ended_at"]))
    return mid


def _log_files(client: Any, store: Store, run: dict[str, Any], mlflow_run_id: str) -> None:
    """The run's artifacts, and nbtrace's trace under ``nbtrace/``, as MLflow artifacts."""
    with tempfile.TemporaryDirectory(prefix="nbtrace-export-") as tmp:
        root = Path(tmp)
        for a in run["artifacts"]:
            data, _ = store.artifact(run["id"], a["name"])
            dest = (root / "files" / a["name"]).resolve()
            if not dest.is_relative_to((root / "files").resolve()):
                continue  # a name that would climb out of the folder: never written
            dest.parent.mkdir(parents=True, exist_ok=True)
            dest.write_bytes(data)
        trace = root / "trace" / "nbtrace"
        trace.mkdir(parents=True)
        (trace / "run.json").write_text(dumps(run, indent=2), encoding="utf-8")
        (trace / "notebook.ipynb").write_text(
            json.dumps(_notebook(run), indent=1), encoding="utf-8"
        )
        pkgs = (run.get("environment") or {}).get("packages") or {}
        (trace / "requirements.txt").write_text(
            "".join(f"{n}=={v}\n" for n, v in sorted(pkgs.items())), encoding="utf-8"
        )
        if (root / "files").is_dir():
            client.log_artifacts(mlflow_run_id, str(root / "files"))
        client.log_artifacts(mlflow_run_id, str(root / "trace"))


def _notebook(run: dict[str, Any]) -> dict[str, Any]:
    """The recorded cells (execution order) as an nbformat 4 notebook, without outputs."""
    cells = [
        {
            "cell_type": "code",
            "execution_count": c.get("execution_count"),
            "id": f"c{c['seq']}",
            "metadata": {
                "nbtrace": {
                    "seq": c["seq"],
                    "sha256": c["sha256"],
                    "in_run": c["in_run"],
                    "error": c["error"],
                }
            },
            "outputs": [],
            "source": c.get("source") or "",
        }
        for c in run.get("cells") or []
    ]
    return {
        "nbformat": 4,
        "nbformat_minor": 5,
        "metadata": {
            "kernelspec": {
                "name": run.get("kernel_name") or "python3",
                "display_name": "Python 3",
                "language": "python",
            },
            "nbtrace": {
                "run_id": run["id"],
                "notebook_path": (run.get("notebook") or {}).get("path"),
            },
        },
        "cells": cells,
    }


def _ms(iso: str | None) -> int | None:
    from .entities import millis

    return millis(iso)

"""SQL for what only MLflow's client needs: experiment ids, logged models, dataset links.

Why apart from ``store/sql.py``: these tables serve the ``nbtrace:`` tracking store alone; the
rest of nbtrace never reads them. Nothing here imports MLflow: values are plain dicts and JSON
text, turned into MLflow entities by :mod:`.entities`.

Experiments: nbtrace names a run's experiment on the run (``runs.experiment``); MLflow needs an
id per experiment. ``mlflow_experiments`` maps ids to names; experiments known only from runs
(``%track_run x --experiment E``) get an id the first time MLflow lists them. Id ``"0"`` is
MLflow's ``Default`` experiment and holds the runs without an experiment.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from typing import Any

from ..errors import ConflictError, NotFoundError, one_line
from ..store.sql import SUMMARY_COLUMNS, SQLStore

DEFAULT_ID = "0"
DEFAULT_NAME = "Default"
_EXP_COLS = (
    "id",
    "name",
    "artifact_location",
    "lifecycle_stage",
    "created_at",
    "updated_at",
    "tags",
)
_CHUNK = 500


def _exp(row: Sequence[Any]) -> dict[str, Any]:
    e = dict(zip(_EXP_COLS, row))
    e["tags"] = json.loads(e["tags"] or "{}")
    return e


def sync_experiments(store: SQLStore) -> None:
    """Give every experiment named by a run (and MLflow's Default) a row with an id."""
    with store._cur() as cur:
        cur.execute(
            "SELECT DISTINCT r.experiment FROM runs r WHERE r.experiment IS NOT NULL AND NOT"
            " EXISTS (SELECT 1 FROM mlflow_experiments e WHERE e.name = r.experiment)"
        )
        missing = [r[0] for r in cur.fetchall()]
        cur.execute("SELECT 1 FROM mlflow_experiments WHERE id = ?", (DEFAULT_ID,))
        has_default = cur.fetchone() is not None
    if not has_default:
        insert_experiment(store, DEFAULT_NAME, None, {}, exp_id=DEFAULT_ID)
    for name in missing:
        insert_experiment(store, name, None, {})


def insert_experiment(
    store: SQLStore,
    name: str,
    artifact_location: str | None,
    tags: dict[str, str],
    exp_id: str | None = None,
) -> str:
    """Create an experiment (a new id unless ``exp_id``); an existing name raises Conflict."""
    now = time.time()
    with store._cur(write=True) as cur:
        cur.execute("SELECT id FROM mlflow_experiments WHERE name = ?", (name,))
        found = cur.fetchone()
        if found is not None:
            if exp_id is not None and found[0] == exp_id:
                return exp_id
            raise ConflictError(f"experiment {one_line(name, 80)!r} already exists")
        if exp_id is None:
            # Integer ids as MLflow's SQL store gives them; CAST so "10" sorts after "9".
            cur.execute("SELECT COALESCE(MAX(CAST(id AS BIGINT)), 0) FROM mlflow_experiments")
            exp_id = str(int(cur.fetchone()[0]) + 1)
        cur.execute(
            "INSERT INTO mlflow_experiments (id, name, artifact_location, lifecycle_stage,"
            " created_at, updated_at, tags) VALUES (?,?,?,?,?,?,?) ON CONFLICT (id) DO NOTHING",
            (exp_id, name, artifact_location, "active", now, now, json.dumps(tags)),
        )
    return exp_id


def experiments(store: SQLStore) -> list[dict[str, Any]]:
    """Every experiment row (after :func:`sync_experiments`)."""
    sync_experiments(store)
    with store._cur() as cur:
        cur.execute(f"SELECT {', '.join(_EXP_COLS)} FROM mlflow_experiments ORDER BY id")
        return [_exp(r) for r in cur.fetchall()]


def experiment(
    store: SQLStore, exp_id: str | None = None, name: str | None = None
) -> dict[str, Any] | None:
    """One experiment by id or by name, or None."""
    col, value = ("id", exp_id) if exp_id is not None else ("name", name)
    with store._cur() as cur:
        cur.execute(
            f"SELECT {', '.join(_EXP_COLS)} FROM mlflow_experiments WHERE {col} = ?", (value,)
        )
        row = cur.fetchone()
    if row is None and (exp_id == DEFAULT_ID or name is not None):
        sync_experiments(store)
        with store._cur() as cur:
            cur.execute(
                f"SELECT {', '.join(_EXP_COLS)} FROM mlflow_experiments WHERE {col} = ?",
                (value,),
            )
            row = cur.fetchone()
    return _exp(row) if row else None


def update_experiment(store: SQLStore, exp_id: str, **fields: Any) -> None:
    """Set ``name``, ``lifecycle_stage`` or ``tags`` of an experiment; a rename renames the
    experiment of its runs too (nbtrace keeps the name on the run)."""
    old = experiment(store, exp_id=exp_id)
    if old is None:
        raise NotFoundError(f"no experiment with id {one_line(exp_id, 40)!r}")
    if "tags" in fields:
        fields["tags"] = json.dumps(fields["tags"])
    fields["updated_at"] = time.time()
    with store._cur(write=True) as cur:
        if "name" in fields:
            cur.execute(
                "SELECT 1 FROM mlflow_experiments WHERE name = ? AND id != ?",
                (fields["name"], exp_id),
            )
            if cur.fetchone():
                raise ConflictError(f"experiment {one_line(fields['name'], 80)!r} already exists")
            if exp_id != DEFAULT_ID:
                cur.execute(
                    "UPDATE runs SET experiment = ? WHERE experiment = ?",
                    (fields["name"], old["name"]),
                )
        cols = list(fields)
        cur.execute(
            f"UPDATE mlflow_experiments SET {', '.join(c + ' = ?' for c in cols)} WHERE id = ?",
            [fields[c] for c in cols] + [exp_id],
        )


# ---------------------------------------------------------------------- runs as MLflow sees them
def run_rows(store: SQLStore, where: str, args: Sequence[Any]) -> list[dict[str, Any]]:
    """Run summaries (``where`` over ``runs r``) with what MLflow's entities need besides:
    each latest metric's step and timestamp, the git commit, the note, the kernel's start."""
    with store._cur() as cur:
        cur.execute(
            f"SELECT {', '.join('r.' + c for c in SUMMARY_COLUMNS)} FROM runs r WHERE {where}"
            " ORDER BY r.started_at DESC",
            list(args),
        )
        rows = cur.fetchall()
        runs = store._summaries(cur, rows)
        by_id = {r["id"]: r for r in runs}
        for r in runs:
            r["latest"], r["io"], r["note"], r["commit"] = {}, [], None, None
        ids = list(by_id)
        for i in range(0, len(ids), _CHUNK):
            chunk = ids[i : i + _CHUNK]
            marks = ",".join("?" * len(chunk))
            cur.execute(
                "SELECT run_id, key, value, special, ts, step FROM latest_metrics"
                f" WHERE run_id IN ({marks})",
                chunk,
            )
            for run_id, key, value, special, ts, step in cur.fetchall():
                v = float(special) if special else value
                by_id[run_id]["latest"][key] = (v, ts, step)
            cur.execute(
                "SELECT r.id, r.note, b.data FROM runs r LEFT JOIN blobs b ON b.hash = r.git_hash"
                f" WHERE r.id IN ({marks})",
                chunk,
            )
            for run_id, note, git in cur.fetchall():
                by_id[run_id]["note"] = note
                if git:
                    by_id[run_id]["commit"] = (json.loads(git) or {}).get("commit")
            cur.execute(f"SELECT run_id, key, data FROM mlflow_io WHERE run_id IN ({marks})", chunk)
            for run_id, key, data in cur.fetchall():
                by_id[run_id]["io"].append((key, json.loads(data)))
    return runs


def set_io(store: SQLStore, run_id: str, items: list[tuple[str, dict[str, Any]]]) -> None:
    """Record MLflow dataset inputs, model inputs and model outputs of a run (idempotent)."""
    if not items:
        return
    with store._cur(write=True) as cur:
        cur.executemany(
            "INSERT INTO mlflow_io (run_id, key, data) VALUES (?,?,?)"
            " ON CONFLICT (run_id, key) DO UPDATE SET data = excluded.data",
            [(run_id, k, json.dumps(d, sort_keys=True)) for k, d in items],
        )


# ---------------------------------------------------------------------- logged models
def save_model(store: SQLStore, model: dict[str, Any], lifecycle_stage: str = "active") -> None:
    """Insert or replace a logged model (``model``: MLflow's ``LoggedModel.to_dictionary``
    with plain metric dicts)."""
    with store._cur(write=True) as cur:
        cur.execute(
            "INSERT INTO mlflow_models (id, experiment_id, run_id, lifecycle_stage, data)"
            " VALUES (?,?,?,?,?) ON CONFLICT (id) DO UPDATE SET data = excluded.data,"
            " lifecycle_stage = excluded.lifecycle_stage",
            (
                model["model_id"],
                model["experiment_id"],
                model.get("source_run_id"),
                lifecycle_stage,
                json.dumps(model, sort_keys=True),
            ),
        )


def model(store: SQLStore, model_id: str, allow_deleted: bool = False) -> dict[str, Any]:
    """One logged model's dictionary; NotFound when missing (or deleted)."""
    with store._cur() as cur:
        cur.execute("SELECT data, lifecycle_stage FROM mlflow_models WHERE id = ?", (model_id,))
        row = cur.fetchone()
    if row is None or (row[1] != "active" and not allow_deleted):
        raise NotFoundError(f"no logged model with id {one_line(model_id, 60)!r}")
    return json.loads(row[0])


def models(
    store: SQLStore, experiment_ids: Sequence[str] = (), run_id: str | None = None
) -> list[dict[str, Any]]:
    """Active logged models of some experiments, or of one run."""
    if run_id is not None:
        where, args = "run_id = ?", [run_id]
    else:
        where = f"experiment_id IN ({','.join('?' * len(experiment_ids))})"
        args = list(experiment_ids)
        if not experiment_ids:
            return []
    with store._cur() as cur:
        cur.execute(
            f"SELECT data FROM mlflow_models WHERE {where} AND lifecycle_stage = 'active'", args
        )
        return [json.loads(r[0]) for r in cur.fetchall()]

"""Moving runs between stores: lossless export documents, and importing them.

Why its own module: a document is checked whole (:mod:`.importdoc`) before it becomes ops,
and the ops go through :meth:`~.write.WriteMixin.apply` like a kernel's, so an import can
never write what a kernel could not.
"""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Iterable, Sequence
from typing import Any

from ..errors import UsageError
from ..jsonutil import decode_float, encode_float
from ..util import iso
from . import capture_sql as cs
from . import ops
from . import query as q
from .base import Op
from .documents import IMPORTED_REF, DocumentsMixin
from .engine import _Cursor, metric_value
from .schema import RUN_COLUMNS
from .write import WriteMixin


class TransferMixin(DocumentsMixin, WriteMixin):
    """Export documents of runs and import them (keeping their ids)."""

    def export_runs(self, filter: str | None = None) -> Iterable[dict[str, Any]]:
        where, wparams = q.compile_filter(filter, self.backend.dialect)
        with self._cur() as cur:
            cur.execute(f"SELECT r.id FROM runs r WHERE {where} ORDER BY r.started_at", wparams)
            ids = [r[0] for r in cur.fetchall()]
        for run_id in ids:
            with self._cur() as cur:
                yield self._export_one(cur, run_id)

    def _export_one(self, cur: "_Cursor", run_id: str) -> dict[str, Any]:
        row = self._run_row(cur, run_id)
        if (row["imported"] or "").startswith(IMPORTED_REF):
            # The document carries the JSON itself (as stores before the blob form did), so
            # that it reads the same wherever it is imported.
            row["imported"] = json.dumps(self._imported(cur, row["imported"]), sort_keys=True)
        doc: dict[str, Any] = {"format": "nbtrace-run/1", "run": row}

        def rows(sql: str, args: Sequence[Any]) -> list[list[Any]]:
            return _rows(cur, sql, args)

        doc["params"] = rows("SELECT key, value, num, text FROM params WHERE run_id = ?", [run_id])
        doc["metrics"] = [
            [k, s, st, ts, encode_float(metric_value(v, sp))]
            for k, s, st, ts, v, sp in rows(
                "SELECT key, seq, step, ts, value, special FROM metrics WHERE run_id = ?"
                " ORDER BY key, seq",
                [run_id],
            )
        ]
        doc["tags"] = rows("SELECT key, value FROM tags WHERE run_id = ?", [run_id])
        doc["inputs"] = rows("SELECT path, sha256, size FROM inputs WHERE run_id = ?", [run_id])
        doc["mlflow_io"] = rows("SELECT key, data FROM mlflow_io WHERE run_id = ?", [run_id])
        doc["mlflow_models"] = rows(
            "SELECT id, experiment_id, lifecycle_stage, data FROM mlflow_models WHERE run_id = ?",
            [run_id],
        )
        doc["artifacts"] = _export_artifacts(cur, run_id)
        _export_kernel(cur, row, doc)
        doc["blobs"] = {}
        for h in (row["notebook_hash"], row["env_hash"], row["git_hash"]):
            if h:
                b = rows("SELECT kind, data FROM blobs WHERE hash = ?", [h])
                if b:
                    doc["blobs"][h] = b[0]
        doc["packages"] = (
            rows(
                "SELECT name, version FROM package_versions WHERE set_hash = ?",
                [row["packages_hash"]],
            )
            if row["packages_hash"]
            else []
        )
        cs.export_part(cur, row, doc)
        return doc

    def import_run(self, doc: dict[str, Any]) -> bool:
        from .importdoc import check_document

        check_document(doc, RUN_COLUMNS)  # the schema and every content hash, before a write
        row = dict(doc["run"])
        run_id = row["id"]
        with self._cur() as cur:
            cur.execute("SELECT 1 FROM runs WHERE id = ?", (run_id,))
            if cur.fetchone():
                return False
            known_cells = self._known_cells(cur, row.get("kernel_id"))
        batch = _import_ops(doc, row, known_cells)
        batch += cs.import_ops(doc, run_id, row.get("kernel_id"))
        self.apply(batch)
        return True

    def _known_cells(self, cur: "_Cursor", kernel_id: str | None) -> dict[int, str]:
        """``{seq: sha256}`` of the cells this store already holds for ``kernel_id``."""
        if not kernel_id:
            return {}
        cur.execute("SELECT seq, sha256 FROM cells WHERE kernel_id = ?", (kernel_id,))
        return {int(seq): sha for seq, sha in cur.fetchall()}

    def is_imported(self, ref: str) -> dict[str, Any] | None:
        """``{"imported_at", "user", "host"}`` when run ``ref`` came from an import, else None."""
        run_id = self.resolve_run_id(ref)
        with self._cur() as cur:
            cur.execute(
                "SELECT imported_at, user_name, host FROM imported_runs WHERE run_id = ?",
                (run_id,),
            )
            r = cur.fetchone()
        if r is None:
            return None
        return {"imported_at": iso(r[0]), "user": r[1], "host": r[2]}


def _rows(cur: "_Cursor", sql: str, args: Sequence[Any]) -> list[list[Any]]:
    cur.execute(sql, args)
    return [list(r) for r in cur.fetchall()]


def _export_artifacts(cur: "_Cursor", run_id: str) -> list[list[Any]]:
    """``[name, sha256, size, base64]`` of each artifact, chunked ones joined."""
    import base64

    out = []
    for n, s, z, d in _rows(
        cur,
        "SELECT a.name, a.sha256, a.size, b.data FROM artifacts a"
        " JOIN artifact_blobs b ON b.sha256 = a.sha256 WHERE a.run_id = ?",
        [run_id],
    ):
        if not d and z:
            d = b"".join(r[0] for r in _rows(
                cur, "SELECT data FROM artifact_chunks WHERE sha256 = ? ORDER BY idx", [s]))
        out.append([n, s, z, base64.b64encode(bytes(d)).decode("ascii")])
    return out


def _export_kernel(cur: "_Cursor", row: dict[str, Any], doc: dict[str, Any]) -> None:
    """The run's kernel, its cells up to the run's last one, and their sources."""
    kernel_id = row["kernel_id"]
    doc["kernel"] = None
    doc["cells"] = []
    doc["sources"] = {}
    if not kernel_id:
        return
    k = _rows(
        cur,
        "SELECT id, started_at, host, user_name, pid, kernel_name, executable,"
        " notebook_path, seeds FROM kernels WHERE id = ?",
        [kernel_id],
    )
    doc["kernel"] = k[0] if k else None
    sql = (
        "SELECT c.seq, c.execution_count, c.cell_id, c.sha256, c.error, s.source"
        " FROM cells c LEFT JOIN sources s ON s.sha256 = c.sha256 WHERE c.kernel_id = ?"
    )
    args: list[Any] = [kernel_id]
    if row["last_seq"] is not None:
        sql += " AND c.seq <= ?"
        args.append(row["last_seq"])
    for seq, ec, cid, sha, err, src in _rows(cur, sql, args):
        doc["cells"].append([seq, ec, cid, sha, err])
        if src is not None:
            doc["sources"][sha] = src


def _import_ops(doc: dict[str, Any], row: dict[str, Any], known: dict[int, str]) -> list[Op]:
    """The ops that write checked document ``doc`` (see :mod:`.importdoc`).

    Cells the store already holds for the run's kernel are not written again, and one that
    differs from the document's refuses it: a document must not rewrite (or add cells
    under) a kernel's history that this store recorded itself.
    """
    import base64
    import getpass

    run_id = row["id"]
    batch: list[Op] = []
    if doc.get("kernel"):
        batch.append(ops.kernel(*doc["kernel"]))
    for sha, src in doc.get("sources", {}).items():
        batch.append(ops.source(sha, src))
    for seq, ec, cid, sha, err in doc.get("cells", []):
        if seq in known:
            if known[seq] != sha:
                raise UsageError(
                    f"refused import: run {run_id!r}: cell seq {seq} of kernel"
                    f" {row['kernel_id']!r} differs from the one this store holds"
                )
            continue
        batch.append(ops.cell(row["kernel_id"], seq, ec, cid, sha, int(err)))
    for h, (kind, data) in doc.get("blobs", {}).items():
        batch.append(ops.blob(h, kind, data))
    if row.get("packages_hash") and doc.get("packages"):
        batch.append(ops.packages(row["packages_hash"], [tuple(p) for p in doc["packages"]]))
    batch.append(ops.run_start(row))
    for key, value, num, text in doc.get("params", []):
        batch.append(ops.param(run_id, key, value, num, text))
    for key, seq, step, ts, value in doc.get("metrics", []):
        batch.append(ops.metric(run_id, key, seq, step, ts, float(decode_float(value))))
    for key, value in doc.get("tags", []):
        batch.append(ops.tag(run_id, key, value))
    for path, sha, size in doc.get("inputs", []):
        batch.append(ops.input(run_id, path, sha, size))
    for name, sha, size, data in doc.get("artifacts", []):
        batch.append(ops.artifact(run_id, name, sha, size, base64.b64decode(data)))
    for key, data in _mlflow_rows(doc, "mlflow_io", 2):
        batch.append(ops.mlflow_io(run_id, key, data))
    for model_id, exp_id, stage, data in _mlflow_rows(doc, "mlflow_models", 4):
        batch.append(ops.mlflow_model(model_id, exp_id, run_id, stage, data))
    try:
        user = getpass.getuser()
    except Exception:  # noqa: BLE001 - no passwd entry in some containers
        user = None
    batch.append(ops.import_mark(run_id, time.time(), user, socket.gethostname()))
    return batch


def _mlflow_rows(doc: dict[str, Any], section: str, width: int) -> list[list[str]]:
    """The document's MLflow rows (dataset/model links, logged models), each ``width`` short
    strings ending in a JSON object: anything else is refused before a write."""
    rows = doc.get(section, [])
    ok = isinstance(rows, list) and all(
        isinstance(r, list)
        and len(r) == width
        and all(isinstance(v, str) and len(v) <= 1000 for v in r[:-1])
        and isinstance(r[-1], str)
        and len(r[-1]) <= 16 * 2**20
        for r in rows
    )
    if ok:
        try:
            ok = all(isinstance(json.loads(r[-1]), dict) for r in rows)
        except ValueError:
            ok = False
    if not ok:
        raise UsageError(f"refused import: {section} must be rows of text ending in a JSON object")
    return rows

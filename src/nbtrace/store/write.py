"""Writing ops: one batch from a kernel's writer, applied in one transaction.

Why the order is fixed (:data:`_APPLY_ORDER`): rows that others point at (kernels, sources,
runs) go in before the rows pointing at them, and one global order of shared rows leaves two
writers no lock cycle to deadlock on. Ops written by one statement over their rows as they
come are a table (:data:`STATEMENTS`); the others have an ``_op_<kind>`` method.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

from ..errors import UsageError
from . import capture_sql as cs
from . import query as q
from .base import Op
from .engine import SQLBase, _Cursor, encode_metric
from .schema import RUN_COLUMNS

_RUN_COLUMN_SET = frozenset(RUN_COLUMNS)
#: Size of the chunks artifacts are stored, written and served in.
ARTIFACT_CHUNK = 1 << 20

# Rows shared between writers (content-addressed: sources, blobs, package sets) are
# inserted in key order. Why: two kernels inserting the same keys in different orders each
# wait on a row the other holds, and PostgreSQL aborts one of them as a deadlock; one global
# order (kind, then key) leaves no cycle to form.
_KEY_ORDERED = frozenset({"source", "blob"})

#: The ops written by one statement over their rows as they are (sorted by key for
#: :data:`_KEY_ORDERED` ones).
STATEMENTS = {
    "kernel": "INSERT INTO kernels (id, started_at, host, user_name, pid, kernel_name, executable,"
    " notebook_path, seeds) VALUES (?,?,?,?,?,?,?,?,?) ON CONFLICT (id) DO NOTHING",
    "source": "INSERT INTO sources (sha256, source) VALUES (?,?) ON CONFLICT (sha256) DO NOTHING",
    "blob": "INSERT INTO blobs (hash, kind, data) VALUES (?,?,?) ON CONFLICT (hash) DO NOTHING",
    "cell": "INSERT INTO cells (kernel_id, seq, execution_count, cell_id, sha256, error)"
    " VALUES (?,?,?,?,?,?) ON CONFLICT (kernel_id, seq) DO UPDATE SET"
    " error = excluded.error",
    "param": "INSERT INTO params (run_id, key, value, num, text) VALUES (?,?,?,?,?)"
    " ON CONFLICT (run_id, key) DO UPDATE SET value = excluded.value,"
    " num = excluded.num, text = excluded.text",
    "tag": "INSERT INTO tags (run_id, key, value) VALUES (?,?,?)"
    " ON CONFLICT (run_id, key) DO UPDATE SET value = excluded.value",
    "input": "INSERT INTO inputs (run_id, path, sha256, size) VALUES (?,?,?,?)"
    " ON CONFLICT (run_id, path) DO UPDATE SET sha256 = excluded.sha256,"
    " size = excluded.size",
    # ("mlflow_io", run_id, key, data_json): an MLflow dataset input or model link
    "mlflow_io": "INSERT INTO mlflow_io (run_id, key, data) VALUES (?,?,?)"
    " ON CONFLICT (run_id, key) DO UPDATE SET data = excluded.data",
    # ("mlflow_model", id, experiment_id, run_id, lifecycle_stage, data_json)
    "mlflow_model": "INSERT INTO mlflow_models (id, experiment_id, run_id, lifecycle_stage, data)"
    " VALUES (?,?,?,?,?) ON CONFLICT (id) DO UPDATE SET data = excluded.data,"
    " lifecycle_stage = excluded.lifecycle_stage",
    "import_mark": "INSERT INTO imported_runs (run_id, imported_at, user_name, host)"
    " VALUES (?,?,?,?) ON CONFLICT (run_id) DO NOTHING",
}


class WriteMixin(SQLBase):
    """:meth:`~.base.Store.apply` and one method per op kind not in :data:`STATEMENTS`."""

    def apply(self, ops: Sequence[Op], wait: bool = True) -> None:
        if not ops:
            return
        try:
            self._apply(ops, wait)
        except UnicodeEncodeError:
            # Lone surrogates (from a badly decoded file, say) cannot be stored as UTF-8;
            # store U+FFFD instead rather than failing, and retrying, the batch forever.
            self._apply([_scrub(op) for op in ops], wait)
        _remove_staged(ops)

    def _apply(self, ops: Sequence[Op], wait: bool = True) -> None:
        groups: dict[str, list[tuple]] = {}
        for op in ops:
            groups.setdefault(op[0], []).append(op[1:])
        if "run_start" in groups and "run_end" in groups:
            _fold_run_ends(groups)
        with self._cur(write=True, wait=wait) as cur:
            for kind in _APPLY_ORDER:
                rows = groups.pop(kind, None)
                if not rows:
                    continue
                sql = STATEMENTS.get(kind)
                if sql is None:
                    getattr(self, "_op_" + kind)(cur, rows)
                else:
                    if kind in _KEY_ORDERED:
                        rows = sorted(rows, key=_first)
                    cur.executemany(sql, rows)
            if groups:
                raise UsageError(f"unknown store operation(s): {', '.join(sorted(groups))}")

    def _op_packages(self, cur: "_Cursor", rows: list[tuple]) -> None:
        for set_hash, pairs in sorted(rows, key=_first):
            pairs = sorted(pairs, key=_first)
            cur.execute("SELECT 1 FROM package_versions WHERE set_hash = ? LIMIT 1", (set_hash,))
            if cur.fetchone():
                continue
            cur.executemany(
                "INSERT INTO package_versions (set_hash, name, version, version_key)"
                " VALUES (?,?,?,?) ON CONFLICT (set_hash, name) DO NOTHING",
                [(set_hash, n, v, q.version_key(v)) for n, v in pairs],
            )

    def _op_run_start(self, cur: "_Cursor", rows: list[tuple]) -> None:
        # One statement per distinct set of columns (runs from one kernel share theirs): a
        # batch of 330 runs from a loop is one executemany, not 330 statements.
        by_cols: dict[tuple[str, ...], list[list[Any]]] = {}
        for (row,) in rows:
            unknown = row.keys() - _RUN_COLUMN_SET
            if unknown:
                raise UsageError(f"unknown run fields: {sorted(unknown)}")
            cols = tuple(c for c in RUN_COLUMNS if c in row)
            by_cols.setdefault(cols, []).append([row[c] for c in cols])
        for cols, values in by_cols.items():
            cur.executemany(
                f"INSERT INTO runs ({', '.join(cols)}) VALUES ({', '.join('?' * len(cols))})"
                " ON CONFLICT (id) DO NOTHING",
                values,
            )

    def _op_metric(self, cur: "_Cursor", rows: list[tuple]) -> None:
        # The hot loop of a flush (10,000 metrics from a training loop): a finite float's row
        # is the op's own tuple, inserted as is (no tuple built, no call per row); the few
        # NaN/inf values take a second statement that also fills ``special``.
        finite: list[tuple] = []
        specials: list[tuple] = []
        latest: dict[tuple[str, str], tuple] = {}
        get = latest.get
        append = finite.append
        for row in rows:
            value = row[5]
            if type(value) is float and value - value == 0.0:
                append(row)
                full = None
            else:
                v, special = encode_metric(float(value))
                full = (*row[:5], v, special)
                specials.append(full)
            key = (row[0], row[1])
            prev = get(key)
            if prev is None or row[2] > prev[2]:
                latest[key] = full or row
        cur.executemany(
            "INSERT INTO metrics (run_id, key, seq, step, ts, value)"
            " VALUES (?,?,?,?,?,?) ON CONFLICT (run_id, key, seq) DO NOTHING",
            finite,
        )
        cur.executemany(
            "INSERT INTO metrics (run_id, key, seq, step, ts, value, special)"
            " VALUES (?,?,?,?,?,?,?) ON CONFLICT (run_id, key, seq) DO NOTHING",
            specials,
        )
        cur.executemany(
            "INSERT INTO latest_metrics (run_id, key, seq, step, ts, value, special)"
            " VALUES (?,?,?,?,?,?,?) ON CONFLICT (run_id, key) DO UPDATE SET"
            " seq = excluded.seq, step = excluded.step, ts = excluded.ts,"
            " value = excluded.value, special = excluded.special"
            " WHERE excluded.seq > latest_metrics.seq",
            [r if len(r) == 7 else (*r, None) for r in latest.values()],
        )

    def _op_artifact(self, cur: "_Cursor", rows: list[tuple]) -> None:
        for run_id, name, sha, size, data in rows:
            if len(data) > ARTIFACT_CHUNK:
                view = memoryview(data)
                chunks = (bytes(view[i : i + ARTIFACT_CHUNK])
                          for i in range(0, len(data), ARTIFACT_CHUNK))
                self._store_chunks(cur, sha, chunks)
            else:
                cur.execute(
                    "INSERT INTO artifact_blobs (sha256, data) VALUES (?,?)"
                    " ON CONFLICT (sha256) DO NOTHING",
                    (sha, data),
                )
            self._artifact_row(cur, run_id, name, sha, size)

    def _op_artifact_file(self, cur: "_Cursor", rows: list[tuple]) -> None:
        """Artifacts staged as files by the kernel, read and stored 1 MiB at a time."""
        for run_id, name, sha, size, path in rows:
            try:
                f = open(path, "rb")
            except OSError:
                continue  # staged file gone (written by an earlier attempt and removed)
            with f:
                self._store_chunks(cur, sha, _read_chunks(f))
            self._artifact_row(cur, run_id, name, sha, size)

    def _store_chunks(self, cur: "_Cursor", sha: str, chunks: Iterable[bytes]) -> None:
        cur.execute("SELECT 1 FROM artifact_blobs WHERE sha256 = ?", (sha,))
        if cur.fetchone():
            return  # content-addressed: stored once
        cur.execute("INSERT INTO artifact_blobs (sha256, data) VALUES (?,?)", (sha, b""))
        for idx, chunk in enumerate(chunks):
            cur.execute(
                "INSERT INTO artifact_chunks (sha256, idx, data) VALUES (?,?,?)"
                " ON CONFLICT (sha256, idx) DO NOTHING",
                (sha, idx, chunk),
            )

    def _artifact_row(self, cur: "_Cursor", run_id: str, name: str, sha: str, size: int) -> None:
        cur.execute(
            "INSERT INTO artifacts (run_id, name, sha256, size) VALUES (?,?,?,?)"
            " ON CONFLICT (run_id, name) DO UPDATE SET sha256 = excluded.sha256,"
            " size = excluded.size",
            (run_id, name, sha, size),
        )

    def _op_capture(self, cur: "_Cursor", rows: list[tuple]) -> None:
        cs.op_capture(cur, rows)

    def _op_output(self, cur: "_Cursor", rows: list[tuple]) -> None:
        cs.op_output(cur, rows)

    def _op_param_delete(self, cur: "_Cursor", rows: list[tuple]) -> None:
        cs.op_param_delete(cur, rows)

    def _op_run_update(self, cur: "_Cursor", rows: list[tuple]) -> None:
        for run_id, fields in rows:
            bad = set(fields) - set(RUN_COLUMNS) or {"id"} & set(fields)
            if bad:
                raise UsageError(f"cannot update run fields: {sorted(bad)}")
            cols = list(fields)
            cur.execute(
                f"UPDATE runs SET {', '.join(c + ' = ?' for c in cols)} WHERE id = ?",
                [fields[c] for c in cols] + [run_id],
            )

    def _op_heartbeat(self, cur: "_Cursor", rows: list[tuple]) -> None:
        # A heartbeat also revives a run wrongly reaped while its kernel was cut off (reap set
        # its ended_at; only a kernel's own run_end ends a run for good).
        cur.executemany(
            "UPDATE runs SET heartbeat_at = ?, ended_at = CASE WHEN status = 'crashed' THEN NULL"
            " ELSE ended_at END, status = CASE WHEN status = 'crashed' THEN 'running'"
            " ELSE status END WHERE id = ? AND (ended_at IS NULL OR status = 'crashed')",
            [(ts, run_id) for run_id, ts in rows],
        )

    def _op_run_end(self, cur: "_Cursor", rows: list[tuple]) -> None:
        cur.executemany(
            "UPDATE runs SET status = ?, ended_at = ?, heartbeat_at = ?, last_seq = ?,"
            " resources = ? WHERE id = ?",
            [(st, end, end, last, res, rid) for rid, st, end, last, res in rows],
        )


def _read_chunks(f: Any) -> Iterator[bytes]:
    while True:
        chunk = f.read(ARTIFACT_CHUNK)
        if not chunk:
            return
        yield chunk


def _remove_staged(ops: Sequence[Op]) -> None:
    """Delete the staged copies of ``artifact_file`` ops once their batch is committed."""
    for op in ops:
        if op[0] == "artifact_file":
            try:
                os.unlink(op[5])
            except OSError:
                pass


def _scrub(value: Any) -> Any:
    """``value`` with unencodable characters in its strings replaced by U+FFFD."""
    if isinstance(value, str):
        return value.encode("utf-16", "surrogatepass").decode("utf-16", "replace")
    if isinstance(value, tuple):
        return tuple(_scrub(v) for v in value)
    if isinstance(value, list):
        return [_scrub(v) for v in value]
    if isinstance(value, dict):
        return {k: _scrub(v) for k, v in value.items()}
    return value


def _fold_run_ends(groups: dict[str, list[tuple]]) -> None:
    """Write a run started and ended within one batch as one finished row.

    Why: a loop of short runs (the 330-run ElasticNet grid) puts both ends of every run in the
    same flush; an INSERT then an UPDATE of each row (and of its status and time indexes) was
    a third of the flush. The folded row is what the UPDATE would have left; heartbeats of an
    ended run change nothing either way.
    """
    starts: dict[str, int] = {}
    for i, (row,) in enumerate(groups["run_start"]):
        if isinstance(row, dict) and "id" in row:
            starts[row["id"]] = i
    if not starts:
        return
    rest: list[tuple] = []
    for end in groups["run_end"]:
        rid, status, ended, last, res = end
        i = starts.get(rid)
        if i is None:
            rest.append(end)
            continue
        row = dict(groups["run_start"][i][0])  # a copy: the batch may be retried as it was
        row.update(status=status, ended_at=ended, heartbeat_at=ended, last_seq=last,
                   resources=res)
        groups["run_start"][i] = (row,)
    if rest:
        groups["run_end"] = rest
    else:
        del groups["run_end"]


def _first(row: Sequence[Any]) -> Any:
    return row[0]


_APPLY_ORDER = (
    "kernel",
    "source",
    "blob",
    "packages",
    "run_start",
    "cell",
    "param",
    "metric",
    "tag",
    "artifact",
    "artifact_file",
    "input",
    "capture",
    "output",
    "param_delete",
    "mlflow_io",
    "mlflow_model",
    "run_update",
    "heartbeat",
    "run_end",
    "import_mark",
)

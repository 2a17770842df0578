"""The store's SQL, written once for SQLite and PostgreSQL.

Why one module: every statement here runs on both engines (the common subset: ``ON CONFLICT``,
``EXISTS``, ``substr``); a backend only supplies connections, transactions, the placeholder
style and error translation (see :class:`Backend`). The query language compiles through
:mod:`.query`, which targets both dialects from one place too.
"""

from __future__ import annotations

import json
import math
import os
import socket
import time
from abc import ABC, abstractmethod
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from ..errors import AmbiguousIdError, ConflictError, NotFoundError, UsageError, one_line
from ..jsonutil import decode_float, encode_float, param_from_json
from ..util import iso, pid_alive
from . import capture_sql as cs
from . import query as q
from .base import Op, Store
from .schema import RUN_COLUMNS, table_columns

_RUN_COLUMN_SET = frozenset(RUN_COLUMNS)
JOB_COLUMNS = table_columns("jobs")
SWEEP_COLUMNS = table_columns("sweeps")
SUMMARY_COLUMNS = (
    "id",
    "name",
    "experiment",
    "status",
    "started_at",
    "ended_at",
    "user_name",
    "host",
    "parent",
    "notebook_path",
    "verdict",
    "note",
    "nested_in",
)
#: Characters of a run's note in a listing (the table's Notes column); the run has it whole.
_SUMMARY_NOTE_CHARS = 300
_CHUNK = 500
#: See :func:`SQLStore._imported`.
IMPORTED_REF = "blob:"
#: A bounded count (see :meth:`SQLStore._count`) stops this many runs past the page.
COUNT_BOUND = 1000
#: Size of the chunks artifacts are stored, written and served in.
ARTIFACT_CHUNK = 1 << 20
_MAX_ID_LEN = 64
#: Longest tag name update_run accepts (as the kernel side): keys are in primary-key btree
#: indexes, whose entries PostgreSQL caps at 2,704 bytes.
_MAX_KEY_LEN = 250


class Total(int):
    """A count of matching runs; ``exact`` False means "more than this many".

    An ``int`` so that every caller of :meth:`Store.list_runs` keeps working unchanged.
    """

    exact: bool

    def __new__(cls, value: int, exact: bool = True) -> "Total":
        self = super().__new__(cls, value)
        self.exact = exact
        return self


def metric_value(value: float | None, special: str | None) -> float | None:
    """Decode a stored metric: NaN/inf are kept in ``special`` (SQLite stores NaN as NULL)."""
    if special:
        return float(special)
    return value


def encode_metric(value: float) -> tuple[float | None, str | None]:
    """The ``(value, special)`` columns for a metric value (inverse of :func:`metric_value`)."""
    if math.isnan(value):
        return None, "nan"
    if math.isinf(value):
        return value, "inf" if value > 0 else "-inf"
    return value, None


def _loads(text: str | None, default: Any = None) -> Any:
    return json.loads(text) if text else default


class Backend(ABC):
    """What an engine supplies: connections, transactions, placeholder style, errors."""

    dialect: q.Dialect

    @abstractmethod
    @contextmanager
    def cursor(self, write: bool, wait: bool = True) -> Iterator[Any]:
        """A DB-API cursor inside a transaction (``write``: an immediate write lock; ``wait``
        False: fail at once rather than wait for another writer's lock, where the engine can)."""

    @abstractmethod
    def close(self) -> None:
        """Close every connection."""

    def sql(self, text: str) -> str:
        """Rewrite ``?`` placeholders for the engine (identity for SQLite)."""
        return text


class SQLStore(Store):
    """A :class:`Store` over any :class:`Backend`."""

    def __init__(self, backend: Backend, display_location: str) -> None:
        self.backend = backend
        self.display_location = display_location
        self.host = socket.gethostname()
        self.heartbeat_timeout = _heartbeat_timeout()
        self._last_reap = 0.0

    # ------------------------------------------------------------------ helpers
    @contextmanager
    def _cur(self, write: bool = False, wait: bool = True) -> Iterator[Any]:
        with self.backend.cursor(write, wait) as cur:
            yield _Cursor(cur, self.backend)

    def close(self) -> None:
        self.backend.close()

    # ------------------------------------------------------------------ writes
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
                if rows:
                    getattr(self, "_op_" + kind)(cur, rows)
            if groups:
                raise UsageError(f"unknown store operation(s): {', '.join(sorted(groups))}")

    def _op_kernel(self, cur: "_Cursor", rows: list[tuple]) -> None:
        cur.executemany(
            "INSERT INTO kernels (id, started_at, host, user_name, pid, kernel_name, executable,"
            " notebook_path, seeds) VALUES (?,?,?,?,?,?,?,?,?) ON CONFLICT (id) DO NOTHING",
            rows,
        )

    # Rows shared between writers (content-addressed: sources, blobs, package sets) are
    # inserted in key order. Why: two kernels inserting the same keys in different orders each
    # wait on a row the other holds, and PostgreSQL aborts one of them as a deadlock; one global
    # order (kind, then key) leaves no cycle to form.

    def _op_source(self, cur: "_Cursor", rows: list[tuple]) -> None:
        cur.executemany(
            "INSERT INTO sources (sha256, source) VALUES (?,?) ON CONFLICT (sha256) DO NOTHING",
            sorted(rows, key=_first),
        )

    def _op_blob(self, cur: "_Cursor", rows: list[tuple]) -> None:
        cur.executemany(
            "INSERT INTO blobs (hash, kind, data) VALUES (?,?,?) ON CONFLICT (hash) DO NOTHING",
            sorted(rows, key=_first),
        )

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

    def _op_cell(self, cur: "_Cursor", rows: list[tuple]) -> None:
        cur.executemany(
            "INSERT INTO cells (kernel_id, seq, execution_count, cell_id, sha256, error)"
            " VALUES (?,?,?,?,?,?) ON CONFLICT (kernel_id, seq) DO UPDATE SET"
            " error = excluded.error",
            rows,
        )

    def _op_param(self, cur: "_Cursor", rows: list[tuple]) -> None:
        cur.executemany(
            "INSERT INTO params (run_id, key, value, num, text) VALUES (?,?,?,?,?)"
            " ON CONFLICT (run_id, key) DO UPDATE SET value = excluded.value,"
            " num = excluded.num, text = excluded.text",
            rows,
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

    def _op_tag(self, cur: "_Cursor", rows: list[tuple]) -> None:
        cur.executemany(
            "INSERT INTO tags (run_id, key, value) VALUES (?,?,?)"
            " ON CONFLICT (run_id, key) DO UPDATE SET value = excluded.value",
            rows,
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

    def _op_input(self, cur: "_Cursor", rows: list[tuple]) -> None:
        cur.executemany(
            "INSERT INTO inputs (run_id, path, sha256, size) VALUES (?,?,?,?)"
            " ON CONFLICT (run_id, path) DO UPDATE SET sha256 = excluded.sha256,"
            " size = excluded.size",
            rows,
        )

    def _op_mlflow_io(self, cur: "_Cursor", rows: list[tuple]) -> None:
        # ("mlflow_io", run_id, key, data_json): an MLflow dataset input or model link
        cur.executemany(
            "INSERT INTO mlflow_io (run_id, key, data) VALUES (?,?,?)"
            " ON CONFLICT (run_id, key) DO UPDATE SET data = excluded.data",
            rows,
        )

    def _op_mlflow_model(self, cur: "_Cursor", rows: list[tuple]) -> None:
        # ("mlflow_model", id, experiment_id, run_id, lifecycle_stage, data_json)
        cur.executemany(
            "INSERT INTO mlflow_models (id, experiment_id, run_id, lifecycle_stage, data)"
            " VALUES (?,?,?,?,?) ON CONFLICT (id) DO UPDATE SET data = excluded.data,"
            " lifecycle_stage = excluded.lifecycle_stage",
            rows,
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

    # ------------------------------------------------------------------ ids
    def resolve_run_id(self, ref: str) -> str:
        ref = (ref or "").strip()
        if not ref or len(ref) > _MAX_ID_LEN or not all(c.isalnum() or c == "-" for c in ref):
            raise NotFoundError(f"no run with id {one_line(ref, 80)!r}")
        with self._cur() as cur:
            cur.execute("SELECT id FROM runs WHERE id = ?", (ref,))
            if cur.fetchone():
                return ref
            cur.execute(
                "SELECT id FROM runs WHERE substr(id, 1, ?) = ? ORDER BY id LIMIT 6",
                (len(ref), ref),
            )
            found = [r[0] for r in cur.fetchall()]
        if not found:
            raise NotFoundError(f"no run with id {ref!r}")
        if len(found) > 1:
            shown = ", ".join(found[:5]) + (", ..." if len(found) > 5 else "")
            raise AmbiguousIdError(f"run id prefix {ref!r} matches several runs: {shown}")
        return found[0]

    # ------------------------------------------------------------------ crash detection
    def reap(self) -> int:
        now = time.time()
        with self._cur() as cur:
            cur.execute(
                "SELECT id, host, pid, heartbeat_at, started_at FROM runs WHERE status = 'running'"
            )
            running = cur.fetchall()
        dead = []
        for run_id, host, pid, hb, started in running:
            if host == self.host and pid:
                alive = pid == os.getpid() or pid_alive(pid, since=started)
            else:
                alive = (hb or started) > now - self.heartbeat_timeout
            if not alive:
                dead.append((hb or started, run_id))
        if dead:
            dead = self._last_signs_of_life(dead)
            with self._cur(write=True) as cur:
                cur.executemany(
                    "UPDATE runs SET status = 'crashed', ended_at = ?"
                    " WHERE id = ? AND status = 'running'",
                    dead,
                )
        return len(dead)

    def _last_signs_of_life(self, dead: list[tuple[float, str]]) -> list[tuple[float, str]]:
        """``(end time, run id)`` of crashed runs: the latest of the heartbeat (also written at
        each cell's end) and the last metric logged, so a crashed 4 s run does not read as
        lasting 2 ms."""
        out = []
        with self._cur() as cur:
            for hb, run_id in dead:
                cur.execute("SELECT max(ts) FROM metrics WHERE run_id = ?", (run_id,))
                r = cur.fetchone()
                last = r[0] if r and r[0] is not None else hb
                out.append((max(hb, last), run_id))
        return out

    def _maybe_reap(self) -> None:
        """Reap at most once a second: reads stay cheap under polling."""
        now = time.monotonic()
        if now - self._last_reap > 1.0:
            self._last_reap = now
            self.reap()

    # ------------------------------------------------------------------ listing
    def list_runs(
        self,
        filter: str | None = None,
        sort: str | None = None,
        limit: int | None = 100,
        offset: int = 0,
        count: str = "exact",
    ) -> tuple[list[dict[str, Any]], int]:
        where, wparams = q.compile_filter(filter, self.backend.dialect)
        order, oparams = q.compile_sort(sort, self.backend.dialect)
        driver = q.sort_driver(filter, sort)
        if limit is not None and (limit < 0 or limit > 1_000_000):
            raise UsageError("limit must be between 0 and 1000000")
        if offset < 0:
            raise UsageError("offset must not be negative")
        if count not in ("exact", "bounded"):
            raise UsageError("count must be 'exact' or 'bounded'")
        self._maybe_reap()
        cols = ", ".join("r." + c for c in SUMMARY_COLUMNS)
        with self._cur() as cur:
            total = self._count(cur, where, wparams, count, offset + (limit or 0))
            if driver is not None and limit is not None:
                rows = self._page_by_metric(cur, cols, where, wparams, driver, limit, offset)
            else:
                page = "" if limit is None else f" LIMIT {int(limit)} OFFSET {int(offset)}"
                cur.execute(
                    f"SELECT {cols} FROM runs r WHERE {where} ORDER BY {order}{page}",
                    list(wparams) + list(oparams),
                )
                rows = cur.fetchall()
            runs = self._summaries(cur, rows)
        return runs, total

    def _count(self, cur: "_Cursor", where: str, wparams: list, count: str, seen: int) -> "Total":
        """How many runs match: exactly, or (``bounded``, with a filter) at most
        ``seen + COUNT_BOUND``, with ``exact`` False when more match.

        Why bounded: an exact count evaluates the filter on every run (90 ms at 100,000
        runs), while a page needs only the runs up to it. A listing without a filter counts
        the primary key index, which stays cheap, so it is always exact.
        """
        if count == "exact" or where == "1=1":
            cur.execute(f"SELECT count(*) FROM runs r WHERE {where}", wparams)
            return Total(int(cur.fetchone()[0]))
        cap = seen + COUNT_BOUND
        cur.execute(
            f"SELECT count(*) FROM (SELECT 1 FROM runs r WHERE {where} LIMIT {cap + 1}) c",
            wparams,
        )
        n = int(cur.fetchone()[0])
        return Total(min(n, cap), exact=n <= cap)

    def _page_by_metric(
        self,
        cur: "_Cursor",
        cols: str,
        where: str,
        wparams: list,
        d: q.SortDriver,
        limit: int,
        offset: int,
    ) -> list[Any]:
        """A page sorted by one metric (see :class:`~.query.SortDriver`): runs with the metric
        in index order, then (NULLs last) the runs without it, by id."""
        way = "DESC" if d.desc else "ASC"
        src = f"{d.table} s JOIN runs r ON r.id = s.run_id"
        cond = f"s.key = ? AND s.{d.column} IS NOT NULL{d.cond} AND {where}"
        # Equal numbers of a param order by its text, as the general sort does.
        tie = f"s.text{self.backend.dialect.binary} {way}, " if d.table == "params" else ""
        cur.execute(
            f"SELECT {cols} FROM {src} WHERE {cond}"
            f" ORDER BY s.{d.column} {way}, {tie}r.id LIMIT {int(limit)} OFFSET {int(offset)}",
            [d.key, *d.params, *wparams],
        )
        rows = cur.fetchall()
        if len(rows) == limit:
            return rows
        if rows or offset == 0:
            skip = 0
        else:  # the page starts past the runs that have the number: count those
            cur.execute(f"SELECT count(*) FROM {src} WHERE {cond}", [d.key, *d.params, *wparams])
            skip = offset - int(cur.fetchone()[0])
        # Then the runs without it: for a param, those holding text, by text; then the rest.
        then, tparams = "", []
        if d.table == "params":
            then = (
                "(SELECT p.text FROM params p WHERE p.run_id = r.id AND p.key = ?)"
                f"{self.backend.dialect.binary} {way} NULLS LAST, "
            )
            tparams = [d.key]
        cur.execute(
            f"SELECT {cols} FROM runs r WHERE NOT EXISTS (SELECT 1 FROM {d.table} s"
            f" WHERE s.run_id = r.id AND s.key = ? AND s.{d.column} IS NOT NULL) AND {where}"
            f" ORDER BY {then}r.id LIMIT {int(limit - len(rows))} OFFSET {max(0, int(skip))}",
            [d.key, *wparams, *tparams],
        )
        return rows + cur.fetchall()

    def _summaries(self, cur: "_Cursor", rows: Sequence[Sequence[Any]]) -> list[dict[str, Any]]:
        runs = []
        for row in rows:
            r = dict(zip(SUMMARY_COLUMNS, row))
            verdict = _loads(r.pop("verdict"))
            runs.append(
                {
                    "id": r["id"],
                    "name": r["name"],
                    "experiment": r["experiment"],
                    "status": r["status"],
                    "started_at": iso(r["started_at"]),
                    "ended_at": iso(r["ended_at"]),
                    "duration_s": (r["ended_at"] - r["started_at"]) if r["ended_at"] else None,
                    "user": r["user_name"],
                    "host": r["host"],
                    "parent": r["parent"],
                    "nested_in": r["nested_in"],
                    "notebook_path": r["notebook_path"],
                    "verdict_status": verdict.get("status") if verdict else None,
                    "note": (r["note"] or "")[:_SUMMARY_NOTE_CHARS] or None,
                    "params": {},
                    "metrics": {},
                    "tags": {},
                }
            )
        by_id = {r["id"]: r for r in runs}
        ids = list(by_id)
        for i in range(0, len(ids), _CHUNK):
            chunk = ids[i : i + _CHUNK]
            marks = ",".join("?" * len(chunk))
            # One statement for the three tables: a round trip each cost more than the rows
            # on a team server.
            cur.execute(
                f"SELECT 0, run_id, key, value, CAST(NULL AS DOUBLE PRECISION), CAST(NULL AS TEXT)"
                f" FROM params WHERE run_id IN ({marks})"
                f" UNION ALL SELECT 1, run_id, key, CAST(NULL AS TEXT), value, special"
                f" FROM latest_metrics WHERE run_id IN ({marks})"
                f" UNION ALL SELECT 2, run_id, key, value, CAST(NULL AS DOUBLE PRECISION),"
                f" CAST(NULL AS TEXT) FROM tags WHERE run_id IN ({marks})",
                chunk * 3,
            )
            for kind, run_id, key, text, num, special in cur.fetchall():
                run = by_id[run_id]
                if kind == 0:
                    run["params"][key] = param_from_json(text)
                elif kind == 1:
                    run["metrics"][key] = metric_value(num, special)
                else:
                    run["tags"][key] = text
        return runs

    # ------------------------------------------------------------------ one run
    def _run_row(self, cur: "_Cursor", run_id: str) -> dict[str, Any]:
        cur.execute(f"SELECT {', '.join(RUN_COLUMNS)} FROM runs WHERE id = ?", (run_id,))
        row = cur.fetchone()
        if row is None:
            raise NotFoundError(f"no run with id {run_id!r}")
        return dict(zip(RUN_COLUMNS, row))

    def get_run(self, ref: str, series: bool = False) -> dict[str, Any]:
        self._maybe_reap()
        run_id = self.resolve_run_id(ref)
        with self._cur() as cur:
            row = self._run_row(cur, run_id)
            summary = self._summaries(cur, [[row[c] for c in SUMMARY_COLUMNS]])[0]
            run: dict[str, Any] = {k: v for k, v in summary.items() if k not in ("verdict_status",)}
            run["note"] = row["note"]
            run["verdict"] = _loads(row["verdict"])
            run["kernel_name"] = row["kernel_name"]
            run["kernel_id"] = row["kernel_id"]
            run["position"] = {
                "start_seq": row["start_seq"],
                "cell_index": row["cell_index"],
                "last_seq": row["last_seq"],
            }
            run["cells"] = self._cells(cur, row)
            nb_cells = self._blob(cur, row["notebook_hash"])
            run["notebook"] = {"path": row["notebook_path"], "cells": nb_cells or []}
            env = self._blob(cur, row["env_hash"]) or {}
            env["packages"] = self._packages(cur, row["packages_hash"])
            env["imported"] = self._imported(cur, row["imported"])
            env["env_vars"] = _loads(row["env_vars"], {})
            if row["kernel_id"]:
                cur.execute("SELECT seeds FROM kernels WHERE id = ?", (row["kernel_id"],))
                k = cur.fetchone()
                env["seeds"] = _loads(k[0], {}) if k else {}
            run["environment"] = env
            run["git"] = self._blob(cur, row["git_hash"])
            run["resources"] = _loads(row["resources"], {})
            run["extra"] = _loads(row["extra"], {})
            cur.execute(
                "SELECT name, sha256, size FROM artifacts WHERE run_id = ? ORDER BY name", (run_id,)
            )
            run["artifacts"] = [{"name": n, "sha256": s, "size": z} for n, s, z in cur.fetchall()]
            cur.execute(
                "SELECT path, sha256, size FROM inputs WHERE run_id = ? ORDER BY path", (run_id,)
            )
            run["inputs"] = [{"path": p, "sha256": s, "size": z} for p, s, z in cur.fetchall()]
            cs.add_to_run(cur, row, run)
            if series:
                run["series"] = self._series(cur, run_id, None)
            run["children"] = self._children(cur, run_id)
            run["nested_runs"] = self._nested_runs(cur, run_id)
        return run

    def _nested_runs(self, cur: "_Cursor", run_id: str) -> list[dict[str, Any]]:
        """Summaries of the runs nested in run ``run_id`` (``start_run(nested=True)``)."""
        cur.execute(
            f"SELECT {', '.join(SUMMARY_COLUMNS)} FROM runs WHERE nested_in = ?"
            " ORDER BY started_at",
            (run_id,),
        )
        return self._summaries(cur, cur.fetchall())

    def _cells(self, cur: "_Cursor", row: dict[str, Any]) -> list[dict[str, Any]]:
        if not row["kernel_id"]:
            return []
        sql = (
            "SELECT c.seq, c.execution_count, c.cell_id, c.sha256, s.source, c.error"
            " FROM cells c LEFT JOIN sources s ON s.sha256 = c.sha256 WHERE c.kernel_id = ?"
        )
        args: list[Any] = [row["kernel_id"]]
        if row["last_seq"] is not None:
            sql += " AND c.seq <= ?"
            args.append(row["last_seq"])
        cur.execute(sql + " ORDER BY c.seq", args)
        start = row["start_seq"] if row["start_seq"] is not None else 1 << 62
        return [
            {
                "seq": seq,
                "execution_count": ec,
                "cell_id": cid,
                "sha256": sha,
                "source": src,
                "error": bool(err),
                "in_run": seq >= start,
            }
            for seq, ec, cid, sha, src, err in cur.fetchall()
        ]

    def _imported(self, cur: "_Cursor", text: str | None) -> dict[str, Any]:
        """A run's imported modules: its ``imported`` column is their JSON, or ``blob:HASH``
        naming a blob that holds it (kernels store each distinct set once)."""
        if text and text.startswith(IMPORTED_REF):
            return self._blob(cur, text[len(IMPORTED_REF) :]) or {}
        return _loads(text, {})

    def _blob(self, cur: "_Cursor", h: str | None) -> Any:
        if not h:
            return None
        cur.execute("SELECT data FROM blobs WHERE hash = ?", (h,))
        r = cur.fetchone()
        return json.loads(r[0]) if r else None

    def _packages(self, cur: "_Cursor", set_hash: str | None) -> dict[str, str]:
        if not set_hash:
            return {}
        cur.execute(
            "SELECT name, version FROM package_versions WHERE set_hash = ? ORDER BY name",
            (set_hash,),
        )
        return dict(cur.fetchall())

    def _series(self, cur: "_Cursor", run_id: str, key: str | None) -> Any:
        sql = "SELECT key, step, value, special, ts FROM metrics WHERE run_id = ?"
        args: list[Any] = [run_id]
        if key is not None:
            sql += " AND key = ?"
            args.append(key)
        cur.execute(sql + " ORDER BY key, seq", args)
        out: dict[str, list[dict[str, Any]]] = {}
        for k, step, value, special, ts in cur.fetchall():
            out.setdefault(k, []).append(
                {"step": step, "value": metric_value(value, special), "timestamp": iso(ts)}
            )
        return out

    def _children(self, cur: "_Cursor", run_id: str) -> list[dict[str, Any]]:
        cur.execute(
            f"SELECT {', '.join(SUMMARY_COLUMNS)} FROM runs WHERE parent = ? ORDER BY started_at",
            (run_id,),
        )
        rows = cur.fetchall()
        kids = self._summaries(cur, rows)
        for kid, row in zip(kids, rows):
            kid["verdict"] = _loads(row[SUMMARY_COLUMNS.index("verdict")])
        return kids

    def metric_series(self, ref: str, key: str) -> list[dict[str, Any]]:
        run_id = self.resolve_run_id(ref)
        with self._cur() as cur:
            s = self._series(cur, run_id, key)
        if key not in s:
            raise NotFoundError(f"run {run_id} has no metric {one_line(key, 80)!r}")
        return s[key]

    def children(self, ref: str) -> list[dict[str, Any]]:
        run_id = self.resolve_run_id(ref)
        with self._cur() as cur:
            return self._children(cur, run_id)

    def artifact(self, ref: str, name: str) -> tuple[bytes, dict[str, Any]]:
        meta, chunks = self.artifact_stream(ref, name)
        return b"".join(chunks), meta

    def artifact_stream(self, ref: str, name: str) -> tuple[dict[str, Any], Iterator[bytes]]:
        """``{name, sha256, size}`` and an iterator of the artifact's bytes, 1 MiB at a time.

        Each chunk is read by its own short transaction (from whichever thread iterates), so
        a client downloading a 200 MB artifact holds one chunk in memory, not the blob.
        """
        run_id = self.resolve_run_id(ref)
        with self._cur() as cur:
            cur.execute(
                "SELECT a.sha256, a.size, length(b.data) FROM artifacts a JOIN artifact_blobs b"
                " ON b.sha256 = a.sha256 WHERE a.run_id = ? AND a.name = ?",
                (run_id, name),
            )
            r = cur.fetchone()
        if r is None:
            raise NotFoundError(f"run {run_id} has no artifact {one_line(name, 80)!r}")
        sha, size, inline = r[0], int(r[1]), int(r[2] or 0)
        meta = {"name": name, "sha256": sha, "size": size}
        return meta, self._chunks(sha, inline > 0 or size == 0)

    def _chunks(self, sha: str, inline: bool) -> Iterator[bytes]:
        if inline:
            with self._cur() as cur:
                cur.execute("SELECT data FROM artifact_blobs WHERE sha256 = ?", (sha,))
                r = cur.fetchone()
            if r is not None:
                yield bytes(r[0])
            return
        idx = 0
        while True:
            with self._cur() as cur:
                cur.execute(
                    "SELECT data FROM artifact_chunks WHERE sha256 = ? AND idx = ?", (sha, idx)
                )
                r = cur.fetchone()
            if r is None:
                return
            yield bytes(r[0])
            idx += 1

    # ------------------------------------------------------------------ edits
    def update_run(
        self,
        ref: str,
        name: str | None = None,
        tags: dict[str, str | None] | None = None,
        note: str | None = None,
    ) -> dict[str, Any]:
        run_id = self.resolve_run_id(ref)
        _check_edit(name, tags, note)
        with self._cur(write=True) as cur:
            if name is not None:
                cur.execute("UPDATE runs SET name = ? WHERE id = ?", (name, run_id))
            if note is not None:
                cur.execute("UPDATE runs SET note = ? WHERE id = ?", (note, run_id))
            for key, value in (tags or {}).items():
                if value is None:
                    cur.execute("DELETE FROM tags WHERE run_id = ? AND key = ?", (run_id, key))
                else:
                    self._op_tag(cur, [(run_id, key, str(value))])
        return self.get_run(run_id)

    def image(self, sha256: str) -> dict[str, Any] | None:
        with self._cur() as cur:
            return cs.image_data(cur, sha256)

    def source(self, sha256: str) -> str | None:
        with self._cur() as cur:
            cur.execute("SELECT source FROM sources WHERE sha256 = ?", (sha256,))
            r = cur.fetchone()
        return r[0] if r else None

    def set_verdict(self, run_id: str, verdict: dict[str, Any]) -> None:
        from ..jsonutil import dumps

        with self._cur(write=True) as cur:
            cur.execute("UPDATE runs SET verdict = ? WHERE id = ?", (dumps(verdict), run_id))

    def delete_run(self, ref: str) -> None:
        run_id = self.resolve_run_id(ref)
        self._maybe_reap()
        with self._cur(write=True) as cur:
            cur.execute("SELECT status FROM runs WHERE id = ?", (run_id,))
            r = cur.fetchone()
            if r and r[0] == "running":
                cur.execute("SELECT 1 FROM imported_runs WHERE run_id = ?", (run_id,))
                if not cur.fetchone():  # an imported run is a copy: no kernel here ends it
                    raise ConflictError(
                        f"run {run_id} is still running; end it before deleting it"
                    )
            for table in (
                "params", "metrics", "latest_metrics", "tags", "artifacts", "inputs",
                "imported_runs", "run_capture", "mlflow_io",
            ):
                cur.execute(f"DELETE FROM {table} WHERE run_id = ?", (run_id,))
            cur.execute("DELETE FROM runs WHERE id = ?", (run_id,))
            cur.execute(
                "DELETE FROM artifact_blobs WHERE NOT EXISTS"
                " (SELECT 1 FROM artifacts a WHERE a.sha256 = artifact_blobs.sha256)"
            )
            cur.execute(
                "DELETE FROM artifact_chunks WHERE NOT EXISTS"
                " (SELECT 1 FROM artifact_blobs b WHERE b.sha256 = artifact_chunks.sha256)"
            )

    # ------------------------------------------------------------------ export / import
    def export_runs(self, filter: str | None = None) -> Iterable[dict[str, Any]]:
        where, wparams = q.compile_filter(filter, self.backend.dialect)
        with self._cur() as cur:
            cur.execute(f"SELECT r.id FROM runs r WHERE {where} ORDER BY r.started_at", wparams)
            ids = [r[0] for r in cur.fetchall()]
        for run_id in ids:
            with self._cur() as cur:
                yield self._export_one(cur, run_id)

    def _export_one(self, cur: "_Cursor", run_id: str) -> dict[str, Any]:
        import base64

        row = self._run_row(cur, run_id)
        if (row["imported"] or "").startswith(IMPORTED_REF):
            # The document carries the JSON itself (as stores before the blob form did), so
            # that it reads the same wherever it is imported.
            row["imported"] = json.dumps(self._imported(cur, row["imported"]), sort_keys=True)
        doc: dict[str, Any] = {"format": "nbtrace-run/1", "run": row}

        def rows(sql: str, args: Sequence[Any]) -> list[list[Any]]:
            cur.execute(sql, args)
            return [list(r) for r in cur.fetchall()]

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
        doc["artifacts"] = []
        for n, s, z, d in rows(
            "SELECT a.name, a.sha256, a.size, b.data FROM artifacts a"
            " JOIN artifact_blobs b ON b.sha256 = a.sha256 WHERE a.run_id = ?",
            [run_id],
        ):
            if not d and z:
                d = b"".join(r[0] for r in rows(
                    "SELECT data FROM artifact_chunks WHERE sha256 = ? ORDER BY idx", [s]))
            doc["artifacts"].append([n, s, z, base64.b64encode(bytes(d)).decode("ascii")])
        kernel_id = row["kernel_id"]
        doc["kernel"] = None
        doc["cells"] = []
        doc["sources"] = {}
        if kernel_id:
            k = rows(
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
            for seq, ec, cid, sha, err, src in rows(sql, args):
                doc["cells"].append([seq, ec, cid, sha, err])
                if src is not None:
                    doc["sources"][sha] = src
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
        ops = _import_ops(doc, row, known_cells)
        ops += cs.import_ops(doc, run_id, row.get("kernel_id"))
        self.apply(ops)
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

    def _op_import_mark(self, cur: "_Cursor", rows: list[tuple]) -> None:
        cur.executemany(
            "INSERT INTO imported_runs (run_id, imported_at, user_name, host) VALUES (?,?,?,?)"
            " ON CONFLICT (run_id) DO NOTHING",
            rows,
        )

    # ------------------------------------------------------------------ jobs
    def save_job(self, job: dict[str, Any]) -> None:
        from ..jsonutil import dumps

        row = {c: job.get(c) for c in JOB_COLUMNS}
        for c in ("verdict", "progress", "request"):
            if row[c] is not None and not isinstance(row[c], str):
                row[c] = dumps(row[c])
        cols = list(JOB_COLUMNS)
        with self._cur(write=True) as cur:
            cur.execute(
                f"INSERT INTO jobs ({', '.join(cols)}) VALUES ({', '.join('?' * len(cols))})"
                f" ON CONFLICT (id) DO UPDATE SET "
                + ", ".join(f"{c} = excluded.{c}" for c in cols if c != "id"),
                [row[c] for c in cols],
            )

    def _job(self, r: Sequence[Any]) -> dict[str, Any]:
        job = dict(zip(JOB_COLUMNS, r))
        for c in ("verdict", "progress", "request"):
            job[c] = _loads(job[c])
        return job

    def get_job(self, job_id: str) -> dict[str, Any]:
        with self._cur() as cur:
            cur.execute(f"SELECT {', '.join(JOB_COLUMNS)} FROM jobs WHERE id = ?", (job_id,))
            r = cur.fetchone()
        if r is None:
            raise NotFoundError(f"no job with id {one_line(job_id, 80)!r}")
        return self._job(r)

    def list_jobs(self, states: Sequence[str] | None = None) -> list[dict[str, Any]]:
        sql = f"SELECT {', '.join(JOB_COLUMNS)} FROM jobs"
        args: list[Any] = []
        if states:
            sql += f" WHERE state IN ({','.join('?' * len(states))})"
            args = list(states)
        with self._cur() as cur:
            cur.execute(sql + " ORDER BY created_at DESC", args)
            return [self._job(r) for r in cur.fetchall()]

    # ------------------------------------------------------------------ sweeps
    def save_sweep(self, sweep: dict[str, Any]) -> None:
        from ..jsonutil import dumps

        row = {c: sweep.get(c) for c in SWEEP_COLUMNS}
        for c in ("request", "jobs"):
            if row[c] is not None and not isinstance(row[c], str):
                row[c] = dumps(row[c])
        cols = list(SWEEP_COLUMNS)
        with self._cur(write=True) as cur:
            cur.execute(
                f"INSERT INTO sweeps ({', '.join(cols)}) VALUES ({', '.join('?' * len(cols))})"
                f" ON CONFLICT (id) DO UPDATE SET "
                + ", ".join(f"{c} = excluded.{c}" for c in cols if c != "id"),
                [row[c] for c in cols],
            )

    def get_sweep(self, sweep_id: str) -> dict[str, Any]:
        with self._cur() as cur:
            cur.execute(f"SELECT {', '.join(SWEEP_COLUMNS)} FROM sweeps WHERE id = ?", (sweep_id,))
            r = cur.fetchone()
        if r is None:
            raise NotFoundError(f"no sweep with id {one_line(sweep_id, 80)!r}")
        sweep = dict(zip(SWEEP_COLUMNS, r))
        for c in ("request", "jobs"):
            sweep[c] = _loads(sweep[c])
        return sweep


def _import_ops(doc: dict[str, Any], row: dict[str, Any], known: dict[int, str]) -> list[Op]:
    """The ops that write checked document ``doc`` (see :mod:`.importdoc`).

    Cells the store already holds for the run's kernel are not written again, and one that
    differs from the document's refuses it: a document must not rewrite (or add cells
    under) a kernel's history that this store recorded itself.
    """
    import base64
    import getpass

    run_id = row["id"]
    ops: list[Op] = []
    if doc.get("kernel"):
        ops.append(("kernel", *doc["kernel"]))
    for sha, src in doc.get("sources", {}).items():
        ops.append(("source", sha, src))
    for seq, ec, cid, sha, err in doc.get("cells", []):
        if seq in known:
            if known[seq] != sha:
                raise UsageError(
                    f"refused import: run {run_id!r}: cell seq {seq} of kernel"
                    f" {row['kernel_id']!r} differs from the one this store holds"
                )
            continue
        ops.append(("cell", row["kernel_id"], seq, ec, cid, sha, int(err)))
    for h, (kind, data) in doc.get("blobs", {}).items():
        ops.append(("blob", h, kind, data))
    if row.get("packages_hash") and doc.get("packages"):
        ops.append(("packages", row["packages_hash"], [tuple(p) for p in doc["packages"]]))
    ops.append(("run_start", row))
    for key, value, num, text in doc.get("params", []):
        ops.append(("param", run_id, key, value, num, text))
    for key, seq, step, ts, value in doc.get("metrics", []):
        ops.append(("metric", run_id, key, seq, step, ts, float(decode_float(value))))
    for key, value in doc.get("tags", []):
        ops.append(("tag", run_id, key, value))
    for path, sha, size in doc.get("inputs", []):
        ops.append(("input", run_id, path, sha, size))
    for name, sha, size, data in doc.get("artifacts", []):
        ops.append(("artifact", run_id, name, sha, size, base64.b64decode(data)))
    for key, data in _mlflow_rows(doc, "mlflow_io", 2):
        ops.append(("mlflow_io", run_id, key, data))
    for model_id, exp_id, stage, data in _mlflow_rows(doc, "mlflow_models", 4):
        ops.append(("mlflow_model", model_id, exp_id, run_id, stage, data))
    try:
        user = getpass.getuser()
    except Exception:  # noqa: BLE001 - no passwd entry in some containers
        user = None
    ops.append(("import_mark", run_id, time.time(), user, socket.gethostname()))
    return ops


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


def _check_edit(name: Any, tags: Any, note: Any) -> None:
    """Refuse an edit the kernel would refuse (:mod:`nbtrace.rules`), before any write.

    Why here, below the REST adapter: every path that edits a run (PATCH, the Python API,
    future ones) must apply the same limits and character rules as the kernel: a lone
    surrogate, a NUL, a newline or U+202E in a name, a 5 MB name or a 120 MB note.
    """
    from ..rules import MAX_LONG_NAME, name_problem, value_problem

    if name is not None:
        problem = name_problem("run", name, MAX_LONG_NAME)
        if problem:
            raise UsageError(problem)
    if tags is not None and not isinstance(tags, dict):
        raise UsageError("tags must be an object of name: value (null removes a tag)")
    for key, value in (tags or {}).items():
        problem = name_problem("tag", key, _MAX_KEY_LEN)
        if problem is None and value is not None:
            problem = value_problem(f"tag {one_line(key, 60)!r} value", str(value))
        if problem:
            raise UsageError(problem)
    if note is not None:
        problem = value_problem("a note", note)
        if problem:
            raise UsageError(problem)


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


class _Cursor:
    """A cursor that rewrites placeholders for its backend."""

    def __init__(self, cur: Any, backend: Backend) -> None:
        self._cur = cur
        self._b = backend

    def execute(self, sql: str, args: Sequence[Any] = ()) -> None:
        self._cur.execute(self._b.sql(sql), args)

    def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        if rows:
            self._cur.executemany(self._b.sql(sql), rows)

    def fetchone(self) -> Any:
        return self._cur.fetchone()

    def fetchall(self) -> list[Any]:
        return self._cur.fetchall()


def _heartbeat_timeout() -> float:
    from ..config import heartbeat_timeout

    return heartbeat_timeout()

"""One run's document: what :meth:`~.base.Store.get_run` returns, and the parts read on their
own (a metric's series, the re-executions of a run, an artifact's bytes, a stored source).

Why one module: these are the reads of a run that the listing does not make, and they share
the decoding of its row (JSON columns, content-addressed blobs, the cells in its range).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

from ..errors import NotFoundError, one_line
from ..util import iso
from . import capture_sql as cs
from .engine import _Cursor, loads, metric_value
from .listing import SUMMARY_COLUMNS, ListingMixin
from .ops import IMPORTED_REF
from .schema import RUN_COLUMNS


class DocumentsMixin(ListingMixin):
    """Reads of one run and of what it points at (its summary comes from the listing)."""

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
            run["verdict"] = loads(row["verdict"])
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
            env["env_vars"] = loads(row["env_vars"], {})
            if row["kernel_id"]:
                cur.execute("SELECT seeds FROM kernels WHERE id = ?", (row["kernel_id"],))
                k = cur.fetchone()
                env["seeds"] = loads(k[0], {}) if k else {}
            run["environment"] = env
            run["git"] = self._blob(cur, row["git_hash"])
            run["resources"] = loads(row["resources"], {})
            run["extra"] = loads(row["extra"], {})
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
        return loads(text, {})

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
            kid["verdict"] = loads(row[SUMMARY_COLUMNS.index("verdict")])
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


    def image(self, sha256: str) -> dict[str, Any] | None:
        with self._cur() as cur:
            return cs.image_data(cur, sha256)

    def source(self, sha256: str) -> str | None:
        with self._cur() as cur:
            cur.execute("SELECT source FROM sources WHERE sha256 = ?", (sha256,))
            r = cur.fetchone()
        return r[0] if r else None

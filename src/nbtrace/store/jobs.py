"""Re-execution jobs and sweeps: the server's table of work, kept in the store.

Why in the store: a job outlives the server process that started it (a restart finds its jobs
and their state), and a team store lets any server see them. Both tables are rows of plain
columns plus a few JSON ones, saved whole (an upsert) and read back decoded.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ..errors import NotFoundError, one_line
from .engine import SQLBase, loads
from .schema import table_columns

JOB_COLUMNS = table_columns("jobs")
_JOB_JSON = ("verdict", "progress", "request")
SWEEP_COLUMNS = table_columns("sweeps")
_SWEEP_JSON = ("request", "jobs")


class JobsMixin(SQLBase):
    """The ``jobs`` and ``sweeps`` tables."""

    def save_job(self, job: dict[str, Any]) -> None:
        self._save("jobs", JOB_COLUMNS, _JOB_JSON, job)

    def get_job(self, job_id: str) -> dict[str, Any]:
        return self._get("jobs", "job", JOB_COLUMNS, _JOB_JSON, job_id)

    def list_jobs(self, states: Sequence[str] | None = None) -> list[dict[str, Any]]:
        sql = f"SELECT {', '.join(JOB_COLUMNS)} FROM jobs"
        args: list[Any] = []
        if states:
            sql += f" WHERE state IN ({','.join('?' * len(states))})"
            args = list(states)
        with self._cur() as cur:
            cur.execute(sql + " ORDER BY created_at DESC", args)
            return [_decoded(JOB_COLUMNS, _JOB_JSON, r) for r in cur.fetchall()]

    def save_sweep(self, sweep: dict[str, Any]) -> None:
        self._save("sweeps", SWEEP_COLUMNS, _SWEEP_JSON, sweep)

    def get_sweep(self, sweep_id: str) -> dict[str, Any]:
        return self._get("sweeps", "sweep", SWEEP_COLUMNS, _SWEEP_JSON, sweep_id)

    def _save(
        self, table: str, columns: tuple[str, ...], json_cols: tuple[str, ...], item: dict[str, Any]
    ) -> None:
        """Insert or replace row ``item`` of ``table`` (JSON columns given as values or text)."""
        from ..jsonutil import dumps

        row = {c: item.get(c) for c in columns}
        for c in json_cols:
            if row[c] is not None and not isinstance(row[c], str):
                row[c] = dumps(row[c])
        cols = list(columns)
        with self._cur(write=True) as cur:
            cur.execute(
                f"INSERT INTO {table} ({', '.join(cols)}) VALUES ({', '.join('?' * len(cols))})"
                f" ON CONFLICT (id) DO UPDATE SET "
                + ", ".join(f"{c} = excluded.{c}" for c in cols if c != "id"),
                [row[c] for c in cols],
            )

    def _get(
        self, table: str, what: str, columns: tuple[str, ...], json_cols: tuple[str, ...],
        item_id: str,
    ) -> dict[str, Any]:
        """Row ``item_id`` of ``table``, decoded (NotFoundError when there is none)."""
        with self._cur() as cur:
            cur.execute(f"SELECT {', '.join(columns)} FROM {table} WHERE id = ?", (item_id,))
            r = cur.fetchone()
        if r is None:
            raise NotFoundError(f"no {what} with id {one_line(item_id, 80)!r}")
        return _decoded(columns, json_cols, r)


def _decoded(
    columns: tuple[str, ...], json_cols: tuple[str, ...], r: Sequence[Any]
) -> dict[str, Any]:
    item = dict(zip(columns, r))
    for c in json_cols:
        item[c] = loads(item[c])
    return item

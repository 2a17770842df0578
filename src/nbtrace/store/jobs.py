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
SWEEP_COLUMNS = table_columns("sweeps")


class JobsMixin(SQLBase):
    """The ``jobs`` and ``sweeps`` tables."""

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
            job[c] = loads(job[c])
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
            sweep[c] = loads(sweep[c])
        return sweep


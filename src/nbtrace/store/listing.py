"""Listing runs: a page of run summaries matching a query, and how many match.

Why apart from the run documents: this is the hot read of a team server (the sidebar polls it)
and the one whose SQL the query language (:mod:`.query`) compiles into; a run's whole document
(:mod:`.documents`) is read once per click.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ..errors import UsageError
from ..jsonutil import param_from_json
from ..util import iso
from . import query as q
from .engine import _Cursor, loads, metric_value
from .ids import IdsMixin

SUMMARY_COLUMNS = (
    "id", "name", "experiment", "status", "started_at", "ended_at", "user_name", "host",
    "parent", "notebook_path", "verdict", "note", "nested_in",
)
#: Characters of a run's note in a listing (the table's Notes column); the run has it whole.
_SUMMARY_NOTE_CHARS = 300
_CHUNK = 500
#: A bounded count (see :meth:`SQLStore._count`) stops this many runs past the page.
COUNT_BOUND = 1000


class Total(int):
    """A count of matching runs; ``exact`` False means "more than this many".

    An ``int`` so that every caller of :meth:`Store.list_runs` keeps working unchanged.
    """

    exact: bool

    def __new__(cls, value: int, exact: bool = True) -> "Total":
        self = super().__new__(cls, value)
        self.exact = exact
        return self


class ListingMixin(IdsMixin):
    """:meth:`~.base.Store.list_runs` and the summaries other reads reuse."""

    def list_runs(self, filter: str | None = None, sort: str | None = None,
                  limit: int | None = 100, offset: int = 0,
                  count: str = "exact") -> tuple[list[dict[str, Any]], int]:
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

            def scalar(text: str, args: list) -> int:
                cur.execute(text, args)
                return int(cur.fetchone()[0])

            where, wparams = q.narrow(filter, self.backend.dialect, where, wparams, scalar)
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
            verdict = loads(r.pop("verdict"))
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

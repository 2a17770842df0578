#!/usr/bin/env python3
"""Write ``docs/query-plans.md``: the query plans of the three commonest listings at 100,000
runs, on SQLite (``EXPLAIN QUERY PLAN``) and PostgreSQL (``EXPLAIN ANALYZE``).

    .venv/bin/python benchmarks/query_plans.py [--runs 100000] [--no-postgres]

The statements are the ones the store really runs for ``list_runs`` (captured from its
cursor), with their parameters, on stores filled like the listing benchmark's (5 params and 3
metrics a run). Timings are one execution each on this shared machine: read them as orders of
magnitude; ``benchmarks/RESULTS.md`` has the medians.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path[:0] = [str(HERE), str(ROOT / "tests")]

#: (title, filter, sort): the sidebar's and the notebooks' commonest listings, and one that
#: few runs match.
LISTINGS = [
    ("a param equal to a value, newest first", "params.model = 'enet'", None),
    ("a metric range and a param, best first (sorted by that metric)",
     "metrics.mse < 3000 and params.model = 'enet'", "-metrics.mse"),
    ("one experiment, sorted by a metric (the ElasticNet notebook's query)",
     "experiment = 'bench'", "metrics.mse"),
    ("a metric value few runs reach (1 in 200), newest first", "metrics.mse > 3990", None),
]


def _capture(store: Any, flt: str | None, sort: str | None) -> tuple[list, float]:
    """The statements ``list_runs`` executes, and its wall time."""
    from nbtrace.store import query as q
    from nbtrace.store import sql

    seen: list[tuple[str, list]] = []
    orig = sql._Cursor.execute

    def spy(self: Any, text: str, args: Any = ()) -> None:
        seen.append((text, list(args)))
        orig(self, text, args)

    sql._Cursor.execute = spy  # type: ignore[method-assign]
    try:
        t = time.perf_counter()
        store.list_runs(flt, sort, limit=100, count="bounded")
        dt = time.perf_counter() - t
    finally:
        sql._Cursor.execute = orig  # type: ignore[method-assign]
    # The page's statements, not the summaries' per-chunk lookups by run id (all by key) nor
    # the crash check of running runs.
    probe = f"LIMIT {q.NARROW_MAX + 1}) n"  # query.narrow's count of a comparison's index
    keep = [(s, a) for s, a in seen if "FROM runs r" in s or "latest_metrics s" in s or probe in s]
    return keep, dt


def _sqlite_section(n: int, tmp: Path) -> str:
    from case_listing import fill_nbtrace

    from nbtrace.store.sqlite import SQLiteStore

    db = str(tmp / "plans.db")
    store = SQLiteStore(db)
    fill_nbtrace(store, 0, n)
    conn = store.backend._connect()
    out = [f"## SQLite {conn.execute('select sqlite_version()').fetchone()[0]}\n"]
    for title, flt, sort in LISTINGS:
        stmts, dt = _capture(store, flt, sort)
        out.append(f"### {title}\n\n`filter={flt}`" + (f" `sort={sort}`" if sort else "")
                   + f" — `list_runs` took {dt * 1e3:.1f} ms\n")
        for text, args in stmts:
            plan = conn.execute("EXPLAIN QUERY PLAN " + text, args).fetchall()
            out.append("```sql\n" + text + "\n-- " + repr(args)[:200] + "\n```\n```")
            out += [f"{'  ' * _depth(plan, r)}{r[3]}" for r in plan]
            out.append("```\n")
    store.close()
    return "\n".join(out)


def _depth(plan: list, row: tuple) -> int:
    parents = {r[0]: r[1] for r in plan}
    d, p = 0, row[1]
    while p in parents:
        d, p = d + 1, parents[p]
    return d


def _postgres_section(n: int) -> str:
    import psycopg
    from case_listing import fill_nbtrace

    import pgcluster
    from nbtrace.store.postgres import PostgresStore

    cluster = pgcluster._start_cluster()
    try:
        url = cluster.url(cluster.create_database("plans"))
        store = PostgresStore(url)
        fill_nbtrace(store, 0, n)
        with psycopg.connect(url, autocommit=True) as c:
            c.execute("ANALYZE")
            version = c.execute("SHOW server_version").fetchone()[0]
            out = [f"## PostgreSQL {version}\n"]
            for title, flt, sort in LISTINGS:
                stmts, dt = _capture(store, flt, sort)
                out.append(f"### {title}\n\n`filter={flt}`" + (f" `sort={sort}`" if sort else "")
                           + f" — `list_runs` took {dt * 1e3:.1f} ms\n")
                for text, args in stmts:
                    pg = text.replace("?", "%s")
                    plan = c.execute("EXPLAIN (ANALYZE, BUFFERS, COSTS OFF) " + pg,
                                     args).fetchall()
                    out.append("```sql\n" + text + "\n-- " + repr(args)[:200] + "\n```\n```")
                    out += [r[0] for r in plan]
                    out.append("```\n")
        store.close()
    finally:
        cluster.stop("immediate")
        shutil.rmtree(cluster.root, ignore_errors=True)
    return "\n".join(out)


HEAD = """# Query plans of the commonest listings at {n:,} runs

Generated by `python benchmarks/query_plans.py` on {when}, load average {load:.1f} (a shared
2-core machine: the times are single executions, orders of magnitude only; medians are in
`benchmarks/RESULTS.md` and, before/after, in `benchmarks/LISTING_AB.md`). Store: {n:,} runs, 5
params and 3 metrics each, filled like the listing benchmark.

How the store answers a page (`src/nbtrace/store/listing.py`, `list_runs`):

- **The page.** Newest first, the runs are read in the order of the `runs_started` index and
  each is tested against the filter (`EXISTS` on the `(run_id, key)` primary keys of `params`,
  `latest_metrics`, `tags`) until 100 match: a filter matching a third of the runs reads ~300.
  Sorted by one metric or param, the runs are read in the order of that key's
  `latest_key_value (key, value)` / `params_key_num (key, num)` index instead, and a range of
  the filter on the same metric (`metrics.mse < 3000` when sorting by `metrics.mse`) bounds the
  index scan; runs without the key come after (NULLs last), read by id.
- **The total.** With a filter it is counted only up to 1,000 runs past the page (the
  `LIMIT` inside the `count(*)`), so the count stops early too; `count=exact` counts all.
- **Metric comparisons** are written `lm.value OP ? OR (lm.value IS NULL AND special OP ?)`
  (the same truth value as `COALESCE(value, special) OP ?`), so that PostgreSQL can read a
  selective metric range from `latest_key_value` instead of testing every run.
- **PostgreSQL only.** Read transactions never prepare their statements: a prepared statement
  gets one generic plan for any values from its eleventh run on, and a listing's best plan
  depends on the values (a generic plan made the REST page 5x slower). Extended statistics on
  `params (key, text)` and `tags (key, value)` (migration `pg_0002_listing_statistics`) tell
  the planner that a key and its value go together, so a bounded count walks the primary keys
  in run order and stops at the bound instead of reading a whole hash-index bitmap with
  parallel workers.
- **Few matches (SQLite).** SQLite tests a filter run by run and has no statistics telling
  it to start from the filter's index instead, so a filter matching few runs read every run
  (hundreds of ms at 100,000 runs). Now each top-level `and` comparison that an index serves
  (a param's text or number, a metric, a tag) first counts its index entries, up to 2,001;
  the fewest, if at most 2,000, narrow the listing with `r.id IN (...)` (`query.narrow`).
  Still slow: a rare filter that is not such a comparison (`or`, `not`, `like`, run fields).
  PostgreSQL's planner makes this choice itself.

"""


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--runs", type=int, default=100_000)
    ap.add_argument("--no-postgres", action="store_true")
    ap.add_argument("--output", default=str(ROOT / "docs" / "query-plans.md"))
    args = ap.parse_args(argv)
    tmp = Path(tempfile.mkdtemp(prefix="nbtrace-plans-"))
    try:
        parts = [HEAD.format(n=args.runs, when=time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
                             load=os.getloadavg()[0])]
        parts.append(_sqlite_section(args.runs, tmp))
        if not args.no_postgres:
            parts.append(_postgres_section(args.runs))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    Path(args.output).write_text("\n".join(parts))
    print(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

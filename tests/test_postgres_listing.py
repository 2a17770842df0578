"""The team store's listing plans give the same runs and totals as SQLite, at the count's bound.

Given the same runs in a SQLite file and in PostgreSQL (analyzed, so that its planner uses the
statistics of migration ``pg_0002_listing_statistics`` and may read metrics through the
``(key, value)`` index), when a page is listed with a filter whose matches sit just under, at
and just over the bounded count's cap (``offset + limit + COUNT_BOUND``), then both stores
return the same page and the same ``total``/``exact``, an infinity stored only in ``special``
included. And a store that predates the migration gets its statistics on the next open.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any

import pytest

from nbtrace.store.postgres import PostgresStore
from nbtrace.store.sql import COUNT_BOUND
from nbtrace.store.sqlite import SQLiteStore
from pgcluster import PgCluster

pytestmark = pytest.mark.postgres

LIMIT = 100
#: Runs 0..N-1 have metric m = i and param p = 'a'; one run more holds m = +inf with value NULL
#: (special only, as an old writer left it); one more has no m at all.
N = COUNT_BOUND + LIMIT + 2


def _ops() -> list[tuple]:
    ops: list[tuple] = []
    for i in range(N + 2):
        rid = f"r{i:05d}"
        ops.append(("run_start", {"id": rid, "name": "n", "status": "finished",
                                  "started_at": 1_700_000_000.0 + i}))
        ops.append(("param", rid, "p", '"a"', None, "a" if i % 3 else "b"))
        if i < N:
            ops.append(("metric", rid, "m", 1, None, 0.0, float(i)))
        elif i == N:
            ops.append(("metric", rid, "m", 1, None, 0.0, math.inf))
    return ops


@pytest.fixture(scope="module")
def stores(pg_cluster: PgCluster, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    name = pg_cluster.create_database("listing")
    pg = PostgresStore(pg_cluster.url(name))
    lite = SQLiteStore(str(tmp_path_factory.mktemp("listing") / "runs.db"))
    inf_run = f"r{N:05d}"
    for s in (pg, lite):
        s.apply(_ops())
        with s.backend.cursor(True) as cur:
            cur.execute(s.backend.sql("UPDATE latest_metrics SET value = NULL WHERE run_id = ?"),
                        [inf_run])
    pg_cluster.admin("ANALYZE", dbname=name)
    yield pg, lite
    pg.close()
    lite.close()
    pg_cluster.drop_database(name)


CAP = LIMIT + COUNT_BOUND
FILTERS = [
    f"metrics.m >= {N - CAP - 1}",  # cap + 1 matching (+ the special-only inf): more than cap
    f"metrics.m >= {N - CAP + 1}",  # cap - 1 finite + inf = cap exactly
    f"metrics.m >= {N - CAP + 2}",  # cap - 1
    "metrics.m > 1e300",  # only the special-only inf
    "metrics.m < -1",  # none
    "metrics.m != 5 and params.p = 'a'",
    "not metrics.m < 1e300",  # the inf and the run without m
    "metrics.m in (3, 7, 1e308)",
    "params.p = 'b' and metrics.m > 900",
]


@pytest.mark.parametrize("flt", FILTERS)
@pytest.mark.parametrize("sort", [None, "-metrics.m", "metrics.m"])
@pytest.mark.parametrize("offset", [0, 1])
def test_same_page_and_total_as_sqlite(stores: Any, flt: str, sort: str | None,
                                       offset: int) -> None:
    pg, lite = stores
    got = pg.list_runs(flt, sort, limit=LIMIT, offset=offset, count="bounded")
    want = lite.list_runs(flt, sort, limit=LIMIT, offset=offset, count="bounded")
    assert [r["id"] for r in got[0]] == [r["id"] for r in want[0]]
    assert (int(got[1]), got[1].exact) == (int(want[1]), want[1].exact)
    exact = lite.list_runs(flt, limit=None)[0]
    cap = offset + CAP
    assert (int(got[1]), got[1].exact) == (min(len(exact), cap), len(exact) <= cap)


def test_bound_edges_are_what_the_filters_say(stores: Any) -> None:
    """The first three filters straddle the cap (a wrong fixture would make the test vacuous)."""
    pg, _ = stores
    totals = [pg.list_runs(f, limit=LIMIT, count="bounded")[1] for f in FILTERS[:4]]
    assert [(int(t), t.exact) for t in totals] == [
        (CAP, False), (CAP, True), (CAP - 1, True), (1, True)]


def test_old_store_gets_the_statistics(pg_cluster: PgCluster) -> None:
    name = pg_cluster.create_database("stats")
    try:
        PostgresStore(pg_cluster.url(name)).close()
        pg_cluster.admin("DROP STATISTICS params_key_text_stats, tags_key_value_stats",
                         dbname=name)
        pg_cluster.admin("DELETE FROM nbtrace_migrations WHERE name = 'pg_0002_listing_statistics'",
                         dbname=name)
        PostgresStore(pg_cluster.url(name)).close()
        rows = pg_cluster.admin(
            "SELECT stxname FROM pg_statistic_ext ORDER BY stxname", dbname=name)
        assert [r[0] for r in rows] == ["params_key_text_stats", "tags_key_value_stats"]
    finally:
        pg_cluster.drop_database(name)

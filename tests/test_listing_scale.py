"""Listing at scale (issue 16): the bounded ``total`` and the index-ordered pages.

A page sorted by one metric or param is read in the order of that key's index (see
``SortDriver`` in ``nbtrace.store.query``); it must give exactly the rows the general sort gives
(a second sort key forces the general path), NULLs, NaN, infinities, text params and paging
included. Runs on SQLite and on a throwaway PostgreSQL cluster.
"""

from __future__ import annotations

import math
import random
from typing import Any

import pytest

from nbtrace.jsonutil import param_number, param_to_json
from nbtrace.store.sql import COUNT_BOUND


def _fill(store: Any, n: int) -> None:
    rng = random.Random(7)
    ops: list[tuple] = []
    for i in range(n):
        rid = f"run{i:05d}"
        ops.append(
            (
                "run_start",
                {
                    "id": rid,
                    "name": f"n{i % 7}",
                    "status": "finished",
                    "started_at": 1_700_000_000.0 + rng.randrange(50),
                },
            )
        )
        r = rng.random()
        if r < 0.1:
            pass  # no metric m
        elif r < 0.15:
            ops.append(("metric", rid, "m", 1, None, 0.0, math.nan))
        elif r < 0.2:
            ops.append(("metric", rid, "m", 1, None, 0.0, rng.choice((math.inf, -math.inf))))
        else:
            ops.append(("metric", rid, "m", 1, None, 0.0, float(rng.randrange(20))))
        p = rng.choice([1, 2.5, 2, "a", "b", True, None, 3])
        if p is not None:
            text = p if isinstance(p, str) else param_to_json(p)
            ops.append(("param", rid, "p", param_to_json(p), param_number(p), text))
        ops.append(("tag", rid, "k", rng.choice("xyz")))
    store.apply(ops)


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def store(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Any:
    """300 runs, filled once per backend for the module (the tests only read)."""
    dropped = None
    if request.param == "sqlite":
        from nbtrace.store.sqlite import SQLiteStore

        s = SQLiteStore(str(tmp_path_factory.mktemp("listing") / "runs.db"))
    else:
        from nbtrace.store.postgres import PostgresStore

        cluster = request.getfixturevalue("pg_cluster")
        dropped = cluster.create_database()
        s = PostgresStore(cluster.url(dropped))
    _fill(s, 300)
    yield s
    s.close()
    if dropped:
        cluster.drop_database(dropped)


FILTERS = [
    None,
    "tags.k = 'x'",
    "metrics.m < 10",
    "metrics.m >= 5 and tags.k != 'z'",
    "params.p > 1",
    "params.p <= 2.5 and metrics.m > 3",
    "metrics.m = 4 or tags.k = 'y'",
]
SORTS = ["metrics.m", "-metrics.m", "params.p", "-params.p", "metrics.m desc"]


@pytest.mark.parametrize("flt", FILTERS)
@pytest.mark.parametrize("sort", SORTS)
def test_index_ordered_page_equals_the_general_sort(store: Any, flt: str | None, sort: str) -> None:
    plain, _ = store.list_runs(flt, sort + ", id", limit=None)  # two keys: the general path
    expect = [r["id"] for r in plain]
    for offset in (0, 7, 90, len(expect) - 3, len(expect) + 5):
        page, _ = store.list_runs(flt, sort, limit=40, offset=max(0, offset))
        assert [r["id"] for r in page] == expect[max(0, offset) : max(0, offset) + 40], offset


def test_bounded_total(store: Any) -> None:
    runs, total = store.list_runs("tags.k != 'nothing'", limit=10, count="bounded")
    assert int(total) == 300 and total.exact  # fewer than the bound: exact
    runs, total = store.list_runs(None, limit=10, count="bounded")
    assert int(total) == 300 and total.exact  # no filter: always exact
    exact_runs, exact = store.list_runs("tags.k = 'x'", limit=10, count="exact")
    assert exact.exact and int(exact) == len(store.list_runs("tags.k = 'x'", limit=None)[0])


def test_bounded_total_says_more_than(tmp_path) -> None:
    from nbtrace.store.sqlite import SQLiteStore

    s = SQLiteStore(str(tmp_path / "runs.db"))
    n = COUNT_BOUND + 300
    s.apply(
        [
            (
                "run_start",
                {"id": f"r{i:05d}", "name": "n", "status": "finished", "started_at": float(i)},
            )
            for i in range(n)
        ]
    )
    s.apply([("tag", f"r{i:05d}", "k", "v") for i in range(n)])
    try:
        runs, total = s.list_runs("tags.k = 'v'", limit=100, offset=0, count="bounded")
        assert len(runs) == 100 and int(total) == COUNT_BOUND + 100 and not total.exact
        runs, total = s.list_runs("tags.k = 'v'", limit=100, offset=200, count="bounded")
        assert int(total) == n and total.exact  # the bound moves with the page
        runs, total = s.list_runs("tags.k = 'v'", limit=100, count="exact")
        assert int(total) == n and total.exact
    finally:
        s.close()

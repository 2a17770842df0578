"""``GET runs`` at scale: ``total`` is bounded for filtered listings (``total_exact`` false
means "more than ``total``") and exact on demand (``count=exact``), as openapi.yaml says."""

from __future__ import annotations

from typing import Any

import pytest

from nbtrace.store import open_store
from nbtrace.store.sql import COUNT_BOUND

from .conftest import check_openapi, fetch_json

N = COUNT_BOUND + 250


@pytest.fixture
def many(server_db: str) -> int:
    store = open_store(server_db)
    try:
        store.apply(
            [
                (
                    "run_start",
                    {"id": f"r{i:05d}", "name": "n", "status": "finished", "started_at": float(i)},
                )
                for i in range(N)
            ]
            + [("metric", f"r{i:05d}", "m", 1, None, 0.0, float(i % 10)) for i in range(N)]
        )
    finally:
        store.close()
    return N


async def test_filtered_total_is_bounded_then_exact_on_demand(jp_fetch: Any, many: int) -> None:
    q = {"filter": "metrics.m >= 0", "sort": "-metrics.m", "limit": "100"}
    code, data, resp = await fetch_json(jp_fetch, "runs", params=q)
    assert code == 200, data
    check_openapi(resp, "GET", "/runs", q)
    assert data["total"] == COUNT_BOUND + 100 and data["total_exact"] is False
    assert [r["metrics"]["m"] for r in data["runs"]][:3] == [9.0, 9.0, 9.0]

    q2 = dict(q, count="exact")
    code, data, resp = await fetch_json(jp_fetch, "runs", params=q2)
    check_openapi(resp, "GET", "/runs", q2)
    assert code == 200 and data["total"] == many and data["total_exact"] is True

    code, data, resp = await fetch_json(jp_fetch, "runs")  # no filter: always exact
    assert data["total"] == many and data["total_exact"] is True

    code, data, resp = await fetch_json(jp_fetch, "runs", params={"count": "some"})
    assert code == 400 and "count" in data["message"]
    check_openapi(resp, "GET", "/runs")

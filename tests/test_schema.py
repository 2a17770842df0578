"""The column lists the store's statements use are the migrated tables' own.

Why: ``RUN_COLUMNS`` (and the jobs' and sweeps' lists) are read from the migrations
(:func:`nbtrace.store.schema.table_columns`) instead of being written out a second time; a
migration that rebuilt a table or added a column in a form the reader misses would make a
run's INSERT, an export document or the import check disagree with the real table.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from nbtrace.store.schema import RUN_COLUMNS, table_columns
from nbtrace.store.sqlite import SQLiteStore


@pytest.mark.parametrize("table", ["runs", "jobs", "sweeps", "kernels", "cells", "params"])
def test_columns_read_from_migrations_are_the_tables(tmp_path: Path, table: str) -> None:
    store = SQLiteStore(str(tmp_path / "s.db"))
    try:
        conn = store.backend._connect()
        real = tuple(r[1] for r in conn.execute(f"PRAGMA table_info({table})"))
    finally:
        store.close()
    assert table_columns(table) == real


def test_run_columns_include_the_added_ones() -> None:
    # nested_in came with 0007 (ALTER TABLE ... ADD COLUMN), after 0001's columns.
    assert RUN_COLUMNS[0] == "id" and RUN_COLUMNS[-1] == "nested_in" and len(RUN_COLUMNS) == 28

r"""The filter/sort language, run against a real database built from the store's migrations.

Given eight hand-written runs (params, latest metrics, tags, package sets), when a filter and a
sort are compiled and run as ``SELECT r.id FROM runs r WHERE <filter> ORDER BY <sort>``, then
the expected run ids come back in the expected order.

The database is the ``db`` fixture, parametrized over ``BACKENDS``: an object with ``dialect``,
``execute(sql, params)`` and ``query(sql, params)`` taking ``?`` placeholders. A PostgreSQL
backend only needs to add an entry there (rewriting ``?`` to ``%s``); every table below then
runs against it too.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import random
import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from nbtrace.errors import QueryError
from nbtrace.store import query as q
from nbtrace.store.schema import MIGRATIONS, statements

T0 = 1704067200.0  # 2024-01-01T00:00:00Z
DAY = 86400.0


class SQLiteDB:
    """A SQLite file holding the store schema; SQL uses ``?`` placeholders."""

    dialect = q.SQLITE

    def __init__(self, path: Path) -> None:
        self.conn = sqlite3.connect(path)
        for name, _ in MIGRATIONS:
            for stmt in statements(name, "sqlite"):
                self.conn.execute(stmt)

    def execute(self, sql: str, params: Any = ()) -> None:
        self.conn.execute(sql, list(params))

    def query(self, sql: str, params: Any = ()) -> list[tuple]:
        return self.conn.execute(sql, list(params)).fetchall()

    def close(self) -> None:
        self.conn.close()


class PostgresDB:
    """A PostgreSQL database on the throwaway cluster, in a non-C (ICU en-US) collation:
    the collation under which text ordering differs from byte order, so the compiler's
    ``COLLATE "C"`` is really exercised."""

    dialect = q.POSTGRES

    def __init__(self, cluster: Any) -> None:
        import psycopg

        self.cluster = cluster
        self.name = f"q_{os.getpid()}"
        cluster.admin(
            f'CREATE DATABASE "{self.name}" TEMPLATE template0'
            " LOCALE_PROVIDER icu ICU_LOCALE 'en-US' LOCALE 'C.UTF-8'"
        )
        self.conn = psycopg.connect(cluster.url(self.name), autocommit=True)
        for name, _ in MIGRATIONS:
            for stmt in statements(name, "postgresql"):
                self.conn.execute(stmt)

    def execute(self, sql: str, params: Any = ()) -> None:
        self.conn.execute(sql.replace("?", "%s"), list(params))

    def query(self, sql: str, params: Any = ()) -> list[tuple]:
        return self.conn.execute(sql.replace("?", "%s"), list(params)).fetchall()

    def close(self) -> None:
        self.conn.close()
        self.cluster.drop_database(self.name)


BACKENDS: dict[str, Callable[[pytest.FixtureRequest, Path], Any]] = {
    "sqlite": lambda request, tmp: SQLiteDB(tmp / "q.db"),
    "postgres": lambda request, tmp: PostgresDB(request.getfixturevalue("pg_cluster")),
}

# id, name, experiment, status, started (days after T0), duration (s), user, host, notebook,
# parent, packages_hash
RUNS = [
    ("r1", "baseline", "sweep", "finished", 0, 100, "ann", "gpu1", "train.ipynb", None, "A"),
    ("r2", "Enet-small", "sweep", "failed", 1, 50, "bob", "gpu2", "train.ipynb", None, "B"),
    ("r3", "enet-big", "Sweep", "running", 2, None, "ann", "gpu1", "eda.ipynb", None, None),
    ("r4", "ridge", "tune", "finished", 31, 3600, "cid", "cpu1", "nb/Train.ipynb", "r1", "C"),
    ("r5", "50% off", None, "crashed", 60, 10, "bob", None, None, None, "D"),
    ("r6", "it's", "tune", "finished", 61, 200, "ann", "gpu1", "train.ipynb", "r4", "A"),
    ("r7", "lasso", "sweep", "finished", 62, 7200, "dan", "gpu2", "train.ipynb", None, "B"),
    ("r8", "'; DROP TABLE runs; --", "sweep", "finished", 63, 1, "eve", "x", None, None, None),
]
LEGACY = object()  # a bool param stored with num NULL, as jsonutil.param_number would write it
PARAMS = [
    ("r1", "alpha", 0.1), ("r1", "l1_ratio", 1), ("r1", "model", "enet"), ("r1", "flag", True),
    ("r1", "layers", [64, 32]),
    ("r2", "alpha", 0.5), ("r2", "l1_ratio", 1.0), ("r2", "model", "ENet"), ("r2", "flag", False),
    ("r3", "alpha", 2), ("r3", "model", "ridge"), ("r3", "flag", LEGACY),
    ("r4", "alpha", "auto"), ("r4", "l1_ratio", 0.5), ("r4", "model", "ridge"),
    ("r5", "alpha", 0.001), ("r5", "model", "lasso"),
    ("r7", "alpha", 0.1), ("r7", "my key", "v 1"), ("r7", "a.b", 3),
    ("r8", "'; DROP TABLE runs; --", 1),
]
# NaN: value NULL; inf: value inf; r6 holds an inf written with value NULL (special only).
METRICS = [
    ("r1", "mse", 10.0), ("r1", "acc", 0.9), ("r2", "mse", math.nan), ("r2", "acc", 0.8),
    ("r3", "mse", math.inf), ("r4", "mse", 5.0), ("r4", "acc", 0.95), ("r5", "mse", -math.inf),
    ("r6", "mse", LEGACY), ("r7", "mse", 20.0),
]
TAGS = [
    ("r1", "model", "enet"), ("r1", "epoch", "1"), ("r1", "note", "it's fine"),
    ("r2", "model", "ENet"), ("r2", "epoch", "1.5"), ("r4", "model", "ridge"),
    ("r4", "epoch", "10"), ("r7", "model", "lasso"),
]
PACKAGES = {
    "A": {"numpy": "1.9.0", "scikit-learn": "1.4.2", "torch": "2.1.0+cu118"},
    "B": {"numpy": "1.10.1", "scikit-learn": "1.4"},
    "C": {"numpy": "2.0.0rc1"},
    "D": {"numpy": "2.0.0"},
}
ALL = [r[0] for r in RUNS]


def _param_row(run: str, key: str, value: Any) -> tuple:
    """(run_id, key, value, num, text) as the schema stores a param."""
    if value is LEGACY:
        return (run, key, "true", None, "true")
    num = float(value) if isinstance(value, (bool, int, float)) else None
    text = value if isinstance(value, str) else json.dumps(value)
    return (run, key, json.dumps(value), num, text)


def _metric_row(run: str, key: str, value: Any) -> tuple:
    if value is LEGACY:
        return (run, key, 1, None, T0, None, "inf")
    special = "nan" if math.isnan(value) else None if math.isfinite(value) else (
        "inf" if value > 0 else "-inf")
    return (run, key, 1, None, T0, None if math.isnan(value) else value, special)


def load(db: Any) -> None:
    for rid, name, exp, status, day, dur, user, host, nb, parent, pkgs in RUNS:
        start = T0 + day * DAY
        db.execute(
            "INSERT INTO runs (id, name, experiment, status, started_at, ended_at, user_name,"
            " host, notebook_path, parent, packages_hash) VALUES (?,?,?,?,?,?,?,?,?,?,?)",
            (rid, name, exp, status, start, None if dur is None else start + dur, user, host,
             nb, parent, pkgs))
    for row in PARAMS:
        db.execute("INSERT INTO params VALUES (?,?,?,?,?)", _param_row(*row))
    for row in METRICS:
        db.execute("INSERT INTO latest_metrics VALUES (?,?,?,?,?,?,?)", _metric_row(*row))
    for row in TAGS:
        db.execute("INSERT INTO tags VALUES (?,?,?)", row)
    for set_hash, pkgs in PACKAGES.items():
        for name, version in pkgs.items():
            db.execute("INSERT INTO package_versions VALUES (?,?,?,?)",
                       (set_hash, name, version, q.version_key(version)))


@pytest.fixture(scope="module", params=sorted(BACKENDS))
def db(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Any:
    """One loaded database per backend, shared by the module: every test only reads."""
    conn = BACKENDS[request.param](request, tmp_path_factory.mktemp(request.param))
    load(conn)
    yield conn
    conn.close()


def run_ids(db: Any, filter: str | None, sort: str | None = "id") -> list[str]:
    where, wparams = q.compile_filter(filter, db.dialect)
    order, oparams = q.compile_sort(sort, db.dialect)
    sql = f"SELECT r.id FROM runs r WHERE {where} ORDER BY {order}"
    assert sql.count("?") == len(wparams) + len(oparams) and "%" not in sql
    return [row[0] for row in db.query(sql, [*wparams, *oparams])]


def others(*ids: str) -> list[str]:
    return [i for i in ALL if i not in ids]


FILTERS = [
    # top-level text fields, every operator
    ("status = 'finished'", ["r1", "r4", "r6", "r7", "r8"]),
    ("status == 'failed'", ["r2"]),
    ("status != 'finished'", ["r2", "r3", "r5"]),
    ("status <> 'finished'", ["r2", "r3", "r5"]),
    ("STATUS = 'failed'", ["r2"]),
    ("name < 'c'", ["r1", "r2", "r5", "r8"]),  # byte order: ' 5 E b
    ("name <= 'baseline'", ["r1", "r2", "r5", "r8"]),
    ("name > 'lasso'", ["r4"]),
    ("name >= 'lasso'", ["r4", "r7"]),
    ("name = \"it's\"", ["r6"]),
    ("name = 'it''s'", ["r6"]),
    (r"name = 'it\'s'", ["r6"]),
    ("name = \"'; DROP TABLE runs; --\"", ["r8"]),
    ("name like 'ENET%'", ["r2", "r3"]),
    ("name not like 'enet%'", others("r2", "r3")),
    (r"name like '50\% off'", ["r5"]),
    (r"name like '%\%%'", ["r5"]),
    ("name like 'b_seline'", ["r1"]),
    ("experiment = 'sweep'", ["r1", "r2", "r7", "r8"]),
    ("experiment like 'SWEEP'", ["r1", "r2", "r3", "r7", "r8"]),
    ("experiment != 'sweep'", ["r3", "r4", "r6"]),  # NULL experiment: no value to differ
    ("notebook like '%train%'", ["r1", "r2", "r4", "r6", "r7"]),
    ("user = 'ann'", ["r1", "r3", "r6"]),
    ("host like 'gpu%'", ["r1", "r2", "r3", "r6", "r7"]),
    ("parent = 'r1'", ["r4"]),
    ("id in ('r1', 'r2', 'nope')", ["r1", "r2"]),
    ("id not in ('r1', 'r2')", others("r1", "r2")),
    # and / or precedence, parentheses, not
    ("status = 'finished' or status = 'failed' and user = 'ann'", ["r1", "r4", "r6", "r7", "r8"]),
    ("(status = 'finished' or status = 'failed') and user = 'ann'", ["r1", "r6"]),
    ("status = 'finished' AND NOT user = 'ann'", ["r4", "r7", "r8"]),
    ("not (status = 'finished' or status = 'failed')", ["r3", "r5"]),
    ("not not status = 'failed'", ["r2"]),
    ("((((status = 'failed'))))", ["r2"]),
    ("status='failed'Or(status='crashed')", ["r2", "r5"]),
    # params: numbers compare numerically, strings as text
    ("params.alpha > 0.1", ["r2", "r3"]),
    ("params.alpha >= 0.1", ["r1", "r2", "r3", "r7"]),
    ("params.alpha < 0.1", ["r5"]),
    ("params.alpha <= 1e-1", ["r1", "r5", "r7"]),
    ("params.alpha = .1", ["r1", "r7"]),
    ("params.alpha != 0.1", ["r2", "r3", "r4", "r5"]),  # 'auto' differs; r6 has no alpha
    ("params.alpha > -1", ["r1", "r2", "r3", "r5", "r7"]),
    ("params.alpha = 'auto'", ["r4"]),
    ("params.alpha = '0.1'", ["r1", "r7"]),
    ("params.alpha in (0.5, 'auto')", ["r2", "r4"]),
    ("params.alpha not in (0.1, 'auto')", ["r2", "r3", "r5"]),
    ("params.l1_ratio = 1", ["r1", "r2"]),  # int 1 and float 1.0
    ("params.l1_ratio = 1.0", ["r1", "r2"]),
    ("params.model = 'enet'", ["r1"]),
    ("params.model like 'enet'", ["r1", "r2"]),
    ("params.model not like 'r%'", ["r1", "r2", "r5"]),
    ("params.flag = true", ["r1", "r3"]),  # r3's bool has no num: still found
    ("params.flag = FALSE", ["r2"]),
    ("params.flag != true", ["r2"]),
    ("params.flag in (true, false)", ["r1", "r2", "r3"]),
    ("params.layers = '[64, 32]'", ["r1"]),
    ("params.`my key` = 'v 1'", ["r7"]),
    ('params."a.b" = 3', ["r7"]),
    ("params.'a.b' >= 2.5", ["r7"]),
    ("params.missing = 1", []),
    ("not params.missing = 1", ALL),
    # metrics: numbers only; NaN never matches; infinities compare as infinities
    ("metrics.mse < 15", ["r1", "r4", "r5"]),
    ("metrics.mse > 15", ["r3", "r6", "r7"]),
    ("metrics.mse > 1e300", ["r3", "r6"]),
    ("metrics.mse >= -1e300", ["r1", "r3", "r4", "r6", "r7"]),
    ("metrics.mse = 10", ["r1"]),
    ("metrics.mse == 10.0", ["r1"]),
    ("metrics.mse != 10", ["r3", "r4", "r5", "r6", "r7"]),
    ("metrics.mse in (5, 20)", ["r4", "r7"]),
    ("metrics.mse not in (5, 20)", ["r1", "r3", "r5", "r6"]),
    ("not metrics.mse > 0", ["r2", "r5", "r8"]),
    ("metrics.acc >= 0.9 and metrics.mse < 10", ["r4"]),
    # tags compare as text; a number literal as its canonical text
    ("tags.model = 'enet'", ["r1"]),
    ("tags.model like 'enet'", ["r1", "r2"]),
    ("tags.epoch = 1", ["r1"]),
    ("tags.epoch = 1.5", ["r2"]),
    ("tags.epoch = 10", ["r4"]),
    ("tags.epoch > '1.5'", ["r4"]),  # text: '10' > '1.5'
    ("tags.note = \"it's fine\"", ["r1"]),
    ("tags.model != 'enet'", ["r2", "r4", "r7"]),
    # env: installed versions, ordered as versions
    ("env.numpy < 1.10", ["r1", "r6"]),
    ("env.numpy >= 1.10", ["r2", "r4", "r5", "r7"]),
    ("env.numpy > 1.9.0", ["r2", "r4", "r5", "r7"]),
    ("env.numpy >= 2", ["r5"]),  # 2.0.0rc1 < 2 == 2.0.0
    ("env.numpy >= '2.0.0rc1'", ["r4", "r5"]),
    ("env.numpy <= 2.0.0rc1", ["r1", "r2", "r4", "r6", "r7"]),
    ("env.numpy = '1.10.1'", ["r2", "r7"]),
    ("env.NumPy = 1.10.1", ["r2", "r7"]),
    ("env.numpy != '1.9.0'", ["r2", "r4", "r5", "r7"]),
    ("env.numpy like '1.%'", ["r1", "r2", "r6", "r7"]),
    ("env.numpy in ('1.9.0', '2.0.0')", ["r1", "r5", "r6"]),
    ("env.scikit_learn > 1.4", ["r1", "r6"]),
    ('env."Scikit.Learn" >= 1.4', ["r1", "r2", "r6", "r7"]),
    ("env.torch >= 2.1.0", ["r1", "r6"]),
    ("env.torch = '2.1.0+cu118'", ["r1", "r6"]),
    # dates and durations
    ("started_at >= '2024-02-01'", ["r4", "r5", "r6", "r7", "r8"]),
    ("started_at < '2024-01-02T00:00:00Z'", ["r1"]),
    ("started_at < '2024-01-02T01:00:00+01:00'", ["r1"]),
    ("started_at <= '2024-01-02 00:00'", ["r1", "r2"]),
    ("started_at > 1704067200", others("r1")),
    ("ended_at < '2024-01-02'", ["r1"]),
    ("ended_at > '2024-01-01'", others("r3")),  # a running run has no end
    ("duration > 3600", ["r7"]),
    ("duration >= 3600", ["r4", "r7"]),
    ("duration < 60", ["r2", "r5", "r8"]),
    # no filter
    (None, ALL),
    ("   ", ALL),
]


@pytest.mark.parametrize(("text", "expected"), FILTERS)
def test_filter(db: Any, text: str | None, expected: list[str]) -> None:
    assert run_ids(db, text) == expected


def _narrowed(db: Any, text: str | None, cap: int, monkeypatch: pytest.MonkeyPatch
              ) -> tuple[str, list]:
    monkeypatch.setattr(q, "NARROW_MAX", cap)
    d = dataclasses.replace(db.dialect, narrow=True)
    where, wparams = q.compile_filter(text, d)
    return q.narrow(text, d, where, wparams, lambda sql, a: int(db.query(sql, a)[0][0]))


@pytest.mark.parametrize(("text", "expected"), FILTERS)
@pytest.mark.parametrize("cap", [0, 1, 2, 1000])
def test_narrowing_keeps_the_results(db: Any, text: str | None, expected: list[str], cap: int,
                                     monkeypatch: pytest.MonkeyPatch) -> None:
    """``narrow`` adds ``r.id IN (runs one comparison's index holds)``: with any cap (0 narrows
    only to an empty index read, 1000 always), on both engines, the same runs match."""
    where, wparams = _narrowed(db, text, cap, monkeypatch)
    assert where.count("?") == len(wparams)
    got = db.query(f"SELECT r.id FROM runs r WHERE {where} ORDER BY r.id", wparams)
    assert [row[0] for row in got] == sorted(expected)


def test_narrowing_picks_the_fewest(db: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    where, wparams = _narrowed(db, "metrics.mse < 15 and metrics.mse > 1e300", 1000,
                               monkeypatch)
    assert where.startswith("r.id IN (SELECT run_id FROM latest_metrics WHERE key = ? AND"
                            " value > ?") and wparams[:2] == ["mse", 1e300]
    where, _ = _narrowed(db, "metrics.mse < 15 or metrics.mse > 1e300", 1000, monkeypatch)
    assert "r.id IN" not in where  # only an `and` of comparisons narrows
    where, _ = _narrowed(db, "metrics.mse < 15", 2, monkeypatch)
    assert "r.id IN" not in where  # five index rows (3 below 15, 2 NULL): more than the cap


SORTS = [
    (None, ["r8", "r7", "r6", "r5", "r4", "r3", "r2", "r1"]),
    ("started_at", ALL),
    ("-started_at", ALL[::-1]),
    ("metrics.mse", ["r5", "r4", "r1", "r7", "r3", "r6", "r2", "r8"]),  # NaN, missing: last
    ("metrics.mse desc", ["r3", "r6", "r7", "r1", "r4", "r5", "r2", "r8"]),
    ("-metrics.mse", ["r3", "r6", "r7", "r1", "r4", "r5", "r2", "r8"]),
    ("params.alpha", ["r5", "r1", "r7", "r2", "r3", "r4", "r6", "r8"]),  # numbers, text, none
    ("params.alpha DESC", ["r3", "r2", "r1", "r7", "r5", "r4", "r6", "r8"]),
    ("tags.model, name", ["r2", "r1", "r7", "r4", "r8", "r5", "r3", "r6"]),
    ("env.numpy", ["r1", "r6", "r2", "r7", "r4", "r5", "r3", "r8"]),
    ("-env.numpy", ["r5", "r4", "r2", "r7", "r1", "r6", "r3", "r8"]),
    ("duration desc", ["r7", "r4", "r6", "r1", "r2", "r5", "r8", "r3"]),
    ("user, -started_at", ["r6", "r3", "r1", "r5", "r2", "r4", "r7", "r8"]),
    ("experiment asc", ["r3", "r1", "r2", "r7", "r8", "r4", "r6", "r5"]),
    ("params.`'; DROP TABLE runs; --` desc", ["r8", *ALL[:7]]),
]


@pytest.mark.parametrize(("sort", "expected"), SORTS)
def test_sort(db: Any, sort: str | None, expected: list[str]) -> None:
    assert run_ids(db, None, sort) == expected


def test_filter_and_sort_together(db: Any) -> None:
    assert run_ids(db, "params.alpha >= 0.1", "-params.alpha") == ["r3", "r2", "r1", "r7"]


BAD_FILTERS = [
    ("metrics.mse <", 14, "expected a value after '<'"),
    ("foo = 1", 1, "unknown field 'foo'"),
    ("(status = 'a'", 14, "expected ')' to close the '(' at position 1"),
    ("status = 'a')", 13, "no matching '('"),
    ("status = 'a' junk", 14, "expected 'and', 'or' or the end"),
    ("params. = 1", 8, "expected a name after 'params.'"),
    ("params.`` = 1", 8, "empty name"),
    ("status", 7, "expected an operator"),
    ("status not = 'a'", 8, "expected an operator"),
    ("status @ 'a'", 8, "unexpected character '@'"),
    ("status = 'abc", 10, "unterminated string"),
    ("metrics.mse = 'low'", 15, "metrics compare with numbers"),
    ("metrics.mse like '1%'", 18, "metrics compare with numbers"),
    ("started_at > 'yesterday'", 14, "ISO-8601"),
    ("started_at = true", 14, "ISO-8601"),
    ("duration > '1h'", 12, "compares with numbers"),
    ("duration like '1%'", 15, "not like"),
    ("name like 5", 11, "like needs a quoted pattern"),
    ("env.numpy > true", 13, "expected a version"),
    ("not", 4, "expected a comparison"),
    ("status = 'a' and", 17, "expected a comparison"),
    ("status = 'a' or or status = 'b'", 17, "expected a field"),
    ("status in (", 12, "expected a value after '('"),
    ("status in ('a' 'b')", 16, "expected ',' or ')'"),
    ("status in 'a'", 11, "expected '(' after 'in'"),
    ("status in ()", 12, "expected a value"),
    ("status = 1e999", 10, "number out of range"),
    ("status = -1.2.3", 10, "bad number"),
    ("status = 'a' \x01", 14, "U+0001"),
    ("name = 'a\x00b'", 10, "U+0000"),
    ("name = 'a\ud800'", 10, "U+D800"),
    ("name = 'a'\n\nand", 16, "expected a comparison"),
    ("(" * 21 + "status = 'a'" + ")" * 21, 22, "nested more than 20 levels"),
    ("not " * 21 + "status = 'a'", 85, "nested more than 20 levels"),
    (" or ".join(["status = 'a'"] * 501), 16 * 500 + 8, "too many comparisons"),
    ("x" * 100_001, 100_001, "too long"),
]


@pytest.mark.parametrize(("text", "position", "fragment"), BAD_FILTERS,
                         ids=[repr(c[0][:30]) for c in BAD_FILTERS])
def test_bad_filter(text: str, position: int, fragment: str) -> None:
    for dialect in (q.SQLITE, q.POSTGRES):
        with pytest.raises(QueryError) as err:
            q.compile_filter(text, dialect)
        message = str(err.value)
        assert message.startswith(f"bad filter at position {position}: "), message
        assert fragment in message
        assert "\n" not in message and len(message) < 400
    with pytest.raises(QueryError):
        q.parse(text)


BAD_SORTS = [
    ("x", 1, "unknown field 'x'"),
    ("name,,", 6, "expected a field"),
    ("name,", 6, "expected a field, got the end"),
    ("-name desc", 7, "not both"),
    ("name desc desc", 11, "expected ',' or the end"),
    ("name;", 5, "unexpected character ';'"),
    ("metrics.", 9, "expected a name"),
    ("'name'", 1, "expected a field"),
    (", ".join(["id"] * 21), 81, "too many sort keys"),
]


@pytest.mark.parametrize(("sort", "position", "fragment"), BAD_SORTS)
def test_bad_sort(sort: str, position: int, fragment: str) -> None:
    with pytest.raises(QueryError) as err:
        q.compile_sort(sort, q.SQLITE)
    assert str(err.value).startswith(f"bad sort at position {position}: "), str(err.value)
    assert fragment in str(err.value)


HOSTILE_OK = [
    ("name = '; DROP TABLE runs; --'", []),
    ("params.\"'; DROP TABLE runs; --\" = 1", ["r8"]),
    ("tags.`x'; DELETE FROM runs; --` = 'a'", []),
    ("env.`numpy' OR 1=1 --` = 'x'", []),
    ("name like '%' or name like '?'", ALL),
    ("name = '%s' or name = '?' or name = '$1' or name = ':name'", []),
    (r"""id in ('\\', '"', '''', "'", "\"")""", []),
    ("name like 'abc\\\\'", []),  # a lone trailing escape (an error in PostgreSQL)
    ("name = '" + "a" * 90_000 + "'", []),
    (" or ".join(["params.alpha = 0.1"] * 250 + ["metrics.mse in (" + "1, " * 249 + "5)"]),
     ["r1", "r4", "r7"]),
    ("(" * 20 + "status = 'failed'" + ")" * 20, ["r2"]),
    ("not " * 20 + "status = 'failed'", ["r2"]),
    # the deepest SQL a filter can make: alternating and/or groups, and not/or, at the cap
    ("status = 'x' or (" * 20 + "params.alpha not in (0.1, 'a', true)" + ")" * 20,
     ["r2", "r3", "r4", "r5"]),
    ("params.a = 1 or (not tags.b = 'x' and (" * 10 + "metrics.mse > 15" + "))" * 10,
     ["r3", "r6", "r7"]),
    ("status = 'x' or not (" * 10 + "metrics.mse < 15" + ")" * 10, ["r1", "r4", "r5"]),
    ("not " * 20 + "params.alpha not in (0.1, 'a', true)", ["r2", "r3", "r4", "r5"]),
    (" or ".join(f"params.alpha = {i}" for i in range(499)) + " or tags.x = 'y'", ["r3"]),
    (" and ".join(["not metrics.mse = 1"] * 500), ALL),
]


@pytest.mark.parametrize(("text", "expected"), HOSTILE_OK, ids=lambda v: repr(v)[:30])
def test_hostile_values_and_names_stay_data(db: Any, text: str, expected: list[str]) -> None:
    assert run_ids(db, text) == expected
    assert db.query("SELECT count(*) FROM runs")[0][0] == len(RUNS)


HOSTILE_BAD = [
    "name = ''; DROP TABLE runs; --'",
    "name = 1; DELETE FROM runs",
    "1=1 --",
    "status = 'a' /* x */",
    "params.a' OR '1'='1 = 1",
    "(" * 1_000_000,
    "not " * 250_000,
    "'" + "a" * 1_000_000,
    "\x00" * 10,
    "".join(chr(c) for c in range(32)),
    "status = 'a' or " * 50_000,
]


@pytest.mark.parametrize("text", HOSTILE_BAD, ids=lambda v: repr(v)[:30])
def test_hostile_input_is_a_clean_query_error(db: Any, text: str) -> None:
    with pytest.raises(QueryError) as err:
        run_ids(db, text)
    assert "\n" not in str(err.value) and "position" in str(err.value)
    assert db.query("SELECT count(*) FROM runs")[0][0] == len(RUNS)


@pytest.mark.parametrize("code", [*range(32), 127, 0x85, 0xA0, 0x2028, 0xFEFF])
def test_control_characters(db: Any, code: int) -> None:
    """Anywhere in a filter, a control character is a QueryError or stays harmless data."""
    ch = chr(code)
    for text in (f"status{ch}= 'x'", f"status = 'x{ch}'", f"params.`a{ch}` = 1", f"{ch}"):
        try:
            run_ids(db, text)
        except QueryError as err:
            assert "\n" not in str(err) and "position" in str(err)
    for sort in (f"name{ch}", f"{ch}-name", f"tags.`{ch}`"):
        try:
            run_ids(db, None, sort)
        except QueryError as err:
            assert "\n" not in str(err) and "position" in str(err)


def test_random_inputs_compile_to_valid_sql_or_query_error(db: Any) -> None:
    """A soup of the language's own pieces: every outcome is valid SQL or a QueryError."""
    pieces = ["status", "name", "duration", "started_at", "params.alpha", "metrics.mse",
              "tags.model", "env.numpy", "params.`a b`", "and", "or", "not", "like", "in",
              "(", ")", ",", "=", "!=", "<", ">=", "<>", "==", "1", "-2.5", "1e3", "1.2.3",
              "'x'", "'2024-01-01'", '"%a_"', "true", "false", "-", "asc", "desc", "'", "`",
              "\\", "?", "%", ";", "\x00", "é", "\n"]
    rng = random.Random(1234)
    outcomes = {"ok": 0, "error": 0}
    for _ in range(1500):
        text = " ".join(rng.choice(pieces) for _ in range(rng.randint(1, 9)))
        for compile_ in (lambda t: run_ids(db, t), lambda t: run_ids(db, None, t)):
            try:
                compile_(text)
                outcomes["ok"] += 1
            except QueryError as err:
                assert "\n" not in str(err) and "position" in str(err)
                outcomes["error"] += 1
    assert outcomes["ok"] > 50  # the soup does reach the database


def test_parse_tree_shows_precedence() -> None:
    tree = q.parse("status = 'a' or not name = 'b' and duration > 1")
    assert isinstance(tree, q.Bool) and tree.op == "or"
    first, second = tree.items
    assert isinstance(first, q.Cmp) and first.field.name == "status" and first.op == "="
    assert second.op == "and" and second.items[0].op == "not"
    dates = q.parse("started_at > '2024-01-01T00:00:00Z'")
    assert dates.values[0].kind == "num" and dates.values[0].value == T0


def test_defaults_and_dialects() -> None:
    assert q.compile_filter(None, q.SQLITE) == ("1=1", [])
    assert q.compile_filter(" \t", q.POSTGRES) == ("1=1", [])
    assert q.compile_sort(None, q.SQLITE) == ("r.started_at DESC, r.id", [])
    assert q.compile_sort("", q.POSTGRES) == ("r.started_at DESC, r.id", [])
    sqlite_sql, sqlite_params = q.compile_filter("name like 'a%' and tags.x < 'b'", q.SQLITE)
    pg_sql, pg_params = q.compile_filter("name like 'a%' and tags.x < 'b'", q.POSTGRES)
    assert sqlite_params == pg_params == ["a%", "x", "b"]
    assert " LIKE ? ESCAPE '\\'" in sqlite_sql and "COLLATE" not in sqlite_sql
    assert " ILIKE ? ESCAPE '\\'" in pg_sql and 't.value COLLATE "C" < ?' in pg_sql
    order, params = q.compile_sort("-metrics.mse, name", q.POSTGRES)
    assert order.endswith('r.name COLLATE "C" ASC NULLS LAST, r.id') and params[-1] == "mse"
    assert q.DIALECTS["postgresql"] is q.POSTGRES and q.DIALECTS["sqlite"] is q.SQLITE


@pytest.mark.parametrize(("name", "canonical"), [
    ("NumPy", "numpy"), ("scikit_learn", "scikit-learn"), ("Zope.Interface", "zope-interface"),
    ("a-_.b", "a-b"), ("ruamel.yaml.clib", "ruamel-yaml-clib"),
])
def test_canonical_package(name: str, canonical: str) -> None:
    assert q.canonical_package(name) == canonical


def test_version_key_orders_versions() -> None:
    ordered = ["0.9", "1.0.dev1", "1.0a1", "1.0b2", "1.0rc1", "1.0", "1.0.post1", "1.0.1",
               "1.9", "1.10", "2.0.0rc1", "2", "2.4", "2.4.6", "10.0", "2024.1"]
    assert sorted(ordered, key=q.version_key) == ordered
    assert sorted(reversed(ordered), key=q.version_key) == ordered
    assert q.version_key("2") == q.version_key("2.0.0") == q.version_key("v2.0")
    assert q.version_key("2.1.0+cu118") == q.version_key("2.1.0")
    assert q.version_key("") < q.version_key("0.1")
    assert q.version_key("1" + "0" * 5000)  # no int() of huge digit runs

"""What every part of :class:`~.sql.SQLStore` stands on: the engine, its cursor, the base class.

Why a module of its own: the parts of the store (writes, ids, listing, run documents, edits,
transfer, jobs; one module each) all run their SQL through :meth:`SQLBase._cur` and decode
values the same way, and none of them may import the façade that composes them.
"""

from __future__ import annotations

import json
import math
import re
import socket
from abc import ABC, abstractmethod
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from itertools import chain
from typing import Any

from . import query as q
from .base import Store


def metric_value(value: float | None, special: str | None) -> float | None:
    """Decode a stored metric: NaN/inf are kept in ``special`` (SQLite stores NaN as NULL)."""
    if special:
        return float(special)
    return value


def encode_metric(value: float) -> tuple[float | None, str | None]:
    """The ``(value, special)`` columns for a metric value (inverse of :func:`metric_value`)."""
    if math.isnan(value):
        return None, "nan"
    if math.isinf(value):
        return value, "inf" if value > 0 else "-inf"
    return value, None


def loads(text: str | None, default: Any = None) -> Any:
    """A JSON column's value (``default`` when it is NULL or empty)."""
    return json.loads(text) if text else default


class Backend(ABC):
    """What an engine supplies: connections, transactions, placeholder style, errors."""

    dialect: q.Dialect

    @abstractmethod
    @contextmanager
    def cursor(self, write: bool, wait: bool = True) -> Iterator[Any]:
        """A DB-API cursor inside a transaction (``write``: an immediate write lock; ``wait``
        False: fail at once rather than wait for another writer's lock, where the engine can)."""

    @abstractmethod
    def close(self) -> None:
        """Close every connection."""

    #: Rows an ``INSERT ... VALUES`` may carry at most per statement when the engine gains
    #: from multi-row inserts (SQLite), else 0: :meth:`_Cursor.executemany` then executes
    #: the statement once per row, as the driver does.
    multirow_rows = 0
    #: Bound variables allowed in one statement (SQLite's compile-time limit).
    max_variables = 999

    def sql(self, text: str) -> str:
        """Rewrite ``?`` placeholders for the engine (identity for SQLite)."""
        return text


class SQLBase(Store):
    """The state and cursor every part of the store shares.

    The parts are mixins composed into :class:`~.sql.SQLStore`; they call one another through
    ``self`` (an edit resolves the run id and reaps, an export reads the run row), so each
    stays a few hundred lines while the store keeps one object and one set of methods.
    """

    def __init__(self, backend: Backend, display_location: str) -> None:
        self.backend = backend
        self.display_location = display_location
        self.host = socket.gethostname()
        self.heartbeat_timeout = _heartbeat_timeout()
        self._last_reap = 0.0

    @contextmanager
    def _cur(self, write: bool = False, wait: bool = True) -> Iterator[Any]:
        with self.backend.cursor(write, wait) as cur:
            yield _Cursor(cur, self.backend)

    def close(self) -> None:
        self.backend.close()


class _Cursor:
    """A cursor that rewrites placeholders for its backend."""

    def __init__(self, cur: Any, backend: Backend) -> None:
        self._cur = cur
        self._b = backend

    def execute(self, sql: str, args: Sequence[Any] = ()) -> None:
        self._cur.execute(self._b.sql(sql), args)

    def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        if not rows:
            return
        if self._b.multirow_rows and len(rows) > 1:
            shape = _multirow_shape(sql)
            if shape is not None:
                self._insert_rows(shape, rows)
                return
        self._cur.executemany(self._b.sql(sql), rows)

    def _insert_rows(self, shape: "_Multirow", rows: Sequence[Sequence[Any]]) -> None:
        """``rows`` in statements of many rows each (sizes: the largest, then powers of two,
        so a handful of statements are prepared and cached whatever the count).

        Why: SQLite's driver runs ``executemany`` one row at a time and gives up the GIL
        around each row's step; the background writer then has to win the GIL back once a row
        from a user's thread that is busy in Python (a training loop), which costs that
        thread a switch per row and can stretch a 10,000-row flush from ~20 ms to seconds.
        One statement per few thousand rows is also faster alone (~1.3 µs a row, not ~2).
        """
        per = max(1, min(self._b.multirow_rows, self._b.max_variables // shape.width))
        i, n = 0, len(rows)
        while i < n:
            k = n - i
            k = per if k >= per else 1 << (k.bit_length() - 1)
            chunk = rows[i : i + k]
            self._cur.execute(shape.sql(k), list(chain.from_iterable(chunk)))
            i += k

    def fetchone(self) -> Any:
        return self._cur.fetchone()

    def fetchall(self) -> list[Any]:
        return self._cur.fetchall()


class _Multirow:
    """An ``INSERT ... VALUES (?, ...) <tail>`` split around its row, with the multi-row
    statements made of it so far (the same string objects each time: the driver's statement
    cache then finds them by a hash computed once)."""

    def __init__(self, head: str, row: str, tail: str) -> None:
        self.head, self.row, self.tail = head, row, tail
        self.width = row.count("?")
        self._sql: dict[int, str] = {}

    def sql(self, k: int) -> str:
        text = self._sql.get(k)
        if text is None:
            text = self._sql[k] = self.head + ",".join([self.row] * k) + self.tail
        return text


_MULTIROW_RE = re.compile(r"^(INSERT\s.*?\sVALUES\s*)(\((?:\s*\?\s*,)*\s*\?\s*\))(.*)$",
                          re.S | re.I)
_multirow: dict[str, "_Multirow | None"] = {}


def _multirow_shape(sql: str) -> "_Multirow | None":
    """The statement's multi-row form, or None when it is not one ``INSERT ... VALUES`` row
    of plain placeholders (an ``UPDATE``, an ``INSERT ... SELECT``)."""
    try:
        return _multirow[sql]
    except KeyError:
        pass
    m = _MULTIROW_RE.match(sql)
    shape = _Multirow(m.group(1), m.group(2), m.group(3)) if m and "?" not in m.group(3) else None
    if len(_multirow) < 512:
        _multirow[sql] = shape
    return shape


def _heartbeat_timeout() -> float:
    from ..config import heartbeat_timeout

    return heartbeat_timeout()

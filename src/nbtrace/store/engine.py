"""What every part of :class:`~.sql.SQLStore` stands on: the engine, its cursor, the base class.

Why a module of its own: the parts of the store (writes, ids, listing, run documents, edits,
transfer, jobs; one module each) all run their SQL through :meth:`SQLBase._cur` and decode
values the same way, and none of them may import the façade that composes them.
"""

from __future__ import annotations

import json
import math
import socket
from abc import ABC, abstractmethod
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
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
        if rows:
            self._cur.executemany(self._b.sql(sql), rows)

    def fetchone(self) -> Any:
        return self._cur.fetchone()

    def fetchall(self) -> list[Any]:
        return self._cur.fetchall()


def _heartbeat_timeout() -> float:
    from ..config import heartbeat_timeout

    return heartbeat_timeout()

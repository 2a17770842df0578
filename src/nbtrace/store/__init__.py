"""The run store: one interface (:mod:`.base`), one set of SQL (:mod:`.sql`), two engines.

Why the factory lives here: the interface must not know its backends (it did, and the
backends import the interface: a cycle), and callers should not pick one. A location picks
the engine; a backend's module (and its driver) is imported only when a store of its kind is
opened.
"""

from __future__ import annotations

from .base import Op, Store

__all__ = ["Op", "Store", "open_store"]


def open_store(location: str | None = None) -> Store:
    """Open the store at ``location`` (see :mod:`nbtrace.config`), migrating it if needed."""
    from ..config import is_postgres_url, resolve_db_location

    loc = resolve_db_location(location)
    if is_postgres_url(loc):
        from .postgres import PostgresStore

        return PostgresStore(loc)
    from .sqlite import SQLiteStore

    return SQLiteStore(loc)

"""The SQLite backend: one file shared by every kernel and the server.

Why these settings: WAL lets the server read while kernels write; ``synchronous=NORMAL`` in WAL
mode is durable against application crashes (a committed row survives a killed kernel) and costs
~20 µs a commit instead of an fsync; a busy timeout plus ``BEGIN IMMEDIATE`` makes concurrent
writers queue instead of failing with "database is locked" mid-transaction. Each thread gets its
own connection (sqlite3 connections are not shareable across threads) and migrations are
applied once, under an exclusive file lock, through sqlite-utils' ``Migrations``.
"""

from __future__ import annotations

import os
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from ..errors import StoreError, one_line
from . import query as q
from .schema import MIGRATIONS, statements
from .sql import Backend, SQLStore

#: How often (seconds) :meth:`SQLiteStore.health_check` really checks a file: once a day.
CHECK_EVERY_S = 86_400.0


def _busy_timeout() -> float:
    """Seconds a writer waits for another's lock (``NBTRACE_BUSY_TIMEOUT``, default 15)."""
    try:
        return max(0.05, float(os.environ.get("NBTRACE_BUSY_TIMEOUT", "15")))
    except ValueError:
        return 15.0



def _translate(exc: sqlite3.Error, where: str, waited: float = 0.0) -> StoreError:
    """A one-line, actionable message for an SQLite failure."""
    msg = str(exc).lower()
    if "locked" in msg or "busy" in msg:
        return StoreError(
            f"the store {where} is locked by another process (waited {waited:g} s);"
            " try again"
        )
    if "not a database" in msg or "malformed" in msg or "corrupt" in msg:
        return StoreError(f"the store {where} is not a valid nbtrace database (file is corrupt)")
    if "readonly" in msg or "read-only" in msg:
        return StoreError(f"the store {where} is read-only")
    if "unable to open" in msg:
        return StoreError(f"cannot open the store {where}")
    if "no such table" in msg or "no such column" in msg:
        return StoreError(f"the store {where} is not an nbtrace database ({one_line(exc, 80)})")
    return StoreError(f"store error in {where}: {one_line(exc, 160)}")


class SQLiteBackend(Backend):
    """Connections, transactions and migrations for one SQLite file."""

    dialect = q.SQLITE

    def __init__(self, path: str) -> None:
        self.path = str(Path(path).expanduser())
        self.busy_timeout = _busy_timeout()
        self._local = threading.local()
        self._all: list[sqlite3.Connection] = []
        self._lock = threading.Lock()
        try:
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StoreError(f"cannot create the folder of the store {self.path}: {exc}") from None
        self._migrate()

    def _connect(self) -> sqlite3.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            return conn
        try:
            conn = sqlite3.connect(
                self.path, timeout=self.busy_timeout, isolation_level=None,
                check_same_thread=False,
            )
            conn.execute(f"PRAGMA busy_timeout = {int(self.busy_timeout * 1000)}")
            mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()
            if mode and str(mode[0]).lower() != "wal":
                conn.execute("PRAGMA journal_mode = WAL")
            conn.execute("PRAGMA synchronous = NORMAL")
        except sqlite3.Error as exc:
            raise self._error(exc) from None
        self._local.conn = conn
        with self._lock:
            self._all.append(conn)
        return conn

    def _error(self, exc: sqlite3.Error) -> StoreError:
        return _translate(exc, self.path, self.busy_timeout)

    def _applied(self) -> set[str]:
        """Names of applied migrations, read without importing sqlite-utils.

        Why: sqlite-utils imports pandas and numpy when they are installed (~300 ms);
        ``%load_ext nbtrace`` must stay well under 100 ms on an up-to-date store.
        """
        conn = self._connect()
        try:
            rows = conn.execute(
                "SELECT name FROM _sqlite_migrations WHERE migration_set = 'nbtrace'"
            ).fetchall()
        except sqlite3.OperationalError as exc:
            if "no such table" in str(exc):
                return set()
            raise self._error(exc) from None
        except sqlite3.Error as exc:
            raise self._error(exc) from None
        return {r[0] for r in rows}

    def _migrate(self) -> None:
        """Apply pending migrations once, whoever else opens the file at the same moment."""
        if {name for name, _ in MIGRATIONS} <= self._applied():
            return
        from sqlite_utils import Database
        from sqlite_utils.migrations import Migrations

        migrations = Migrations("nbtrace")
        for name, _ in MIGRATIONS:

            def step(db: Database, _name: str = name) -> None:
                for stmt in statements(_name, "sqlite"):
                    db.execute(stmt)

            step.__name__ = name
            migrations(name=name)(step)

        conn = self._connect()
        db = Database(conn)
        try:
            if not migrations.pending(db):
                return
            with _file_lock(self.path + ".lock"):
                migrations.apply(db)
        except sqlite3.Error as exc:
            raise self._error(exc) from None

    @contextmanager
    def cursor(self, write: bool) -> Iterator[Any]:
        conn = self._connect()
        try:
            cur = conn.cursor()
            cur.execute("BEGIN IMMEDIATE" if write else "BEGIN")
        except sqlite3.Error as exc:
            raise self._error(exc) from None
        try:
            yield cur
        except sqlite3.Error as exc:
            conn.rollback()
            raise self._error(exc) from None
        except BaseException:
            conn.rollback()
            raise
        try:
            conn.commit()
        except sqlite3.Error as exc:
            conn.rollback()
            raise self._error(exc) from None

    def close(self) -> None:
        with self._lock:
            conns, self._all = self._all, []
        for c in conns:
            try:
                c.close()
            except sqlite3.Error:
                pass
        self._local = threading.local()


@contextmanager
def _file_lock(path: str) -> Iterator[None]:
    """An exclusive advisory lock on ``path`` (POSIX); a no-op where fcntl is missing."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - Windows
        yield
        return
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)


class SQLiteStore(SQLStore):
    """The default store: a local SQLite file."""

    def __init__(self, path: str) -> None:
        backend = SQLiteBackend(path)
        super().__init__(backend, backend.path)
        self.path = backend.path

    def health_check(self, max_age_s: float = CHECK_EVERY_S) -> str | None:
        """Run ``PRAGMA quick_check`` at most once per ``max_age_s`` for this file; returns a
        one-line warning when the file is damaged, else None.

        Why once a day: quick_check reads every page (milliseconds for a small store, about a
        second per GB), too much for every ``%load_ext`` but cheap daily; a corrupt page in
        the middle of the file otherwise goes unnoticed while kernels keep writing around it.
        The time of the last clean check is the mtime of ``<store>.checked``; a failed check
        leaves it alone, so every open warns until the file is repaired.
        """
        import time

        marker = self.path + ".checked"
        try:
            if time.time() - os.path.getmtime(marker) < max_age_s:
                return None
        except OSError:
            pass
        try:
            conn = self.backend._connect()
            rows = conn.execute("PRAGMA quick_check(3)").fetchall()
        except (sqlite3.Error, StoreError) as exc:
            detail = one_line(exc, 160)
        else:
            found = [str(r[0]) for r in rows]
            if found == ["ok"]:
                try:
                    Path(marker).touch()
                except OSError:
                    pass
                return None
            detail = one_line("; ".join(found), 160)
        return (
            f"nbtrace: warning: the store {self.path} is damaged (PRAGMA quick_check: {detail});"
            " runs written now may be lost. Copy what is readable with `nbtrace export -o"
            " FILE`, then import it into a new store"
        )

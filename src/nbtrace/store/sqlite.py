"""The SQLite backend: one file shared by every kernel and the server.

Why these settings: WAL lets the server read while kernels write; ``synchronous=NORMAL`` in WAL
mode is durable against application crashes (a committed row survives a killed kernel) and costs
~20 µs a commit instead of an fsync; a busy timeout plus ``BEGIN IMMEDIATE`` makes concurrent
writers queue instead of failing with "database is locked" mid-transaction. Each thread gets its
own connection (sqlite3 connections are not shareable across threads).

Migrations: every pending step of :data:`.schema.MIGRATIONS`, and its record in
``_sqlite_migrations`` (the table sqlite-utils' ``Migrations`` keeps, same layout, so stores made
by earlier versions read the same), are applied in **one** ``BEGIN IMMEDIATE`` transaction. Why
not through sqlite-utils: one commit per step made the first ``%load_ext nbtrace`` on a new
store take ~0.8 s, and importing sqlite-utils imports pandas and numpy when installed (~300 ms).
Two processes opening a new file at once serialize on the write lock; the second re-reads what
is applied inside its transaction and finds nothing left to do.

A connection that failed because the file was read-only, could not be opened, or the disk was
full is dropped, so the next attempt reconnects: SQLite opens a file it cannot write read-only
and such a connection stays read-only for good, even after the file becomes writable again.
"""

from __future__ import annotations

import os
import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from ..errors import BadDataError, StoreError, one_line
from . import query as q
from .schema import MIGRATIONS, statements
from .sql import Backend, SQLStore

#: How often (seconds) :meth:`SQLiteStore.health_check` really checks a file: once a day.
CHECK_EVERY_S = 86_400.0


def _busy_timeout() -> float:
    """Seconds a writer waits for another's lock (``NBTRACE_BUSY_TIMEOUT``, default 15)."""
    from ..config import busy_timeout

    return busy_timeout()


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
    if "disk is full" in msg or "database or disk is full" in msg:
        return StoreError(f"the store {where} cannot grow: the disk is full")
    if "unable to open" in msg:
        return StoreError(f"cannot open the store {where}")
    if "no such table" in msg or "no such column" in msg:
        return StoreError(f"the store {where} is not an nbtrace database ({one_line(exc, 80)})")
    if isinstance(exc, (sqlite3.IntegrityError, sqlite3.DataError, sqlite3.InterfaceError)) or (
        "too big" in msg or "mismatch" in msg or "binding" in msg
    ):
        return BadDataError(f"the store {where} refused a value: {one_line(exc, 160)}")
    return StoreError(f"store error in {where}: {one_line(exc, 160)}")


#: Failures after which a connection is dropped and the next attempt reconnects (see above).
_RECONNECT = ("readonly", "read-only", "unable to open", "disk is full", "disk i/o")
#: The table sqlite-utils' ``Migrations`` keeps (created the way it creates it).
_MIGRATIONS_TABLE = (
    "CREATE TABLE IF NOT EXISTS [_sqlite_migrations] ([id] INTEGER PRIMARY KEY,"
    " [migration_set] TEXT, [name] TEXT, [applied_at] TEXT)",
    "CREATE UNIQUE INDEX IF NOT EXISTS [idx__sqlite_migrations_migration_set_name]"
    " ON [_sqlite_migrations] ([migration_set], [name])",
)


class SQLiteBackend(Backend):
    """Connections, transactions and migrations for one SQLite file."""

    dialect = q.SQLITE
    #: Why 1,000: a 10,000-row flush becomes ten statements (measured: 13 ms alone against
    #: executemany's 22 ms, and no GIL hand-over per row; see ``_Cursor._insert_rows``).
    multirow_rows = 1000

    def __init__(self, path: str) -> None:
        self.path = str(Path(path).expanduser())
        self.busy_timeout = _busy_timeout()
        self._local = threading.local()
        self._all: list[sqlite3.Connection] = []
        self._lock = threading.Lock()
        self._repair = False
        try:
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StoreError(f"cannot create the folder of the store {self.path}: {exc}") from None
        self._migrate()

    def _connect(self) -> sqlite3.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            return conn
        if self._repair:
            self._repair = False
            self._repair_wal_modes()
        try:
            conn = sqlite3.connect(
                self.path, timeout=self.busy_timeout, isolation_level=None,
                check_same_thread=False,
            )
            conn.execute(f"PRAGMA busy_timeout = {int(self.busy_timeout * 1000)}")
            self._wal(conn)
            conn.execute("PRAGMA synchronous = NORMAL")
            getlimit = getattr(conn, "getlimit", None)  # Python 3.11+
            if getlimit is not None:
                self.max_variables = getlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER)
        except sqlite3.Error as exc:
            raise self._error(exc) from None
        self._local.conn = conn
        with self._lock:
            self._all.append(conn)
        return conn

    def _wal(self, conn: sqlite3.Connection) -> None:
        """Switch a new file to WAL, retrying while other connections switch it at once.

        Why a loop: changing the journal mode needs the file to itself, and SQLite can answer
        "locked" at once rather than through the busy handler when several connections open a
        new file together (eight kernels, or threads, starting on a fresh store: seen once in
        four CI runs). Bounded by the busy timeout, like any other wait on the lock; other
        errors, and a mode left unchanged (a read-only file), behave as before.
        """
        deadline = time.monotonic() + self.busy_timeout
        delay = 0.005
        while True:
            try:
                mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()
                if mode and str(mode[0]).lower() != "wal":
                    conn.execute("PRAGMA journal_mode = WAL")  # as before: one more try
                return
            except sqlite3.OperationalError as exc:
                if ("locked" not in str(exc) and "busy" not in str(exc)) or (
                    time.monotonic() >= deadline
                ):
                    raise
            time.sleep(delay)
            delay = min(delay * 2, 0.1)

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
        """Apply pending migrations in one transaction, whoever else opens the file at once."""
        if {name for name, _ in MIGRATIONS} <= self._applied():
            return
        conn = self._connect()
        try:
            conn.execute("BEGIN IMMEDIATE")
            try:
                for stmt in _MIGRATIONS_TABLE:
                    conn.execute(stmt)
                done = {
                    r[0]
                    for r in conn.execute(
                        "SELECT name FROM _sqlite_migrations WHERE migration_set = 'nbtrace'"
                    )
                }
                now = str(datetime.now(timezone.utc))
                for name, _ in MIGRATIONS:
                    if name in done:
                        continue
                    for stmt in statements(name, "sqlite"):
                        conn.execute(stmt)
                    conn.execute(
                        "INSERT INTO _sqlite_migrations (migration_set, name, applied_at)"
                        " VALUES ('nbtrace', ?, ?)",
                        (name, now),
                    )
                conn.execute("COMMIT")
            except BaseException:
                conn.rollback()
                raise
        except sqlite3.Error as exc:
            raise self._error(exc) from None

    @contextmanager
    def cursor(self, write: bool, wait: bool = True) -> Iterator[Any]:
        """A transaction; ``wait=False``: fail at once, instead of after the busy timeout,
        when another process holds the write lock (the user's thread must never wait)."""
        conn = self._connect()
        try:
            cur = conn.cursor()
            if not wait:
                cur.execute("PRAGMA busy_timeout = 0")
            try:
                cur.execute("BEGIN IMMEDIATE" if write else "BEGIN")
            finally:
                if not wait:
                    cur.execute(f"PRAGMA busy_timeout = {int(self.busy_timeout * 1000)}")
        except sqlite3.Error as exc:
            raise self._failed(conn, exc) from None
        try:
            yield cur
        except sqlite3.Error as exc:
            conn.rollback()
            raise self._failed(conn, exc) from None
        except BaseException:
            conn.rollback()
            raise
        try:
            conn.commit()
        except sqlite3.Error as exc:
            conn.rollback()
            raise self._failed(conn, exc) from None

    def _failed(self, conn: sqlite3.Connection, exc: sqlite3.Error) -> StoreError:
        """Translate ``exc``; drop ``conn`` when only a new connection can recover."""
        err = self._error(exc)
        if any(word in str(exc).lower() for word in _RECONNECT):
            self._repair = True
            if getattr(self._local, "conn", None) is conn:
                self._local.conn = None
            with self._lock:
                if conn in self._all:
                    self._all.remove(conn)
            try:
                conn.close()
            except sqlite3.Error:
                pass
        return err

    def _repair_wal_modes(self) -> None:
        """Give ``-wal``/``-shm`` the write bits the database file has again.

        Why: SQLite creates them with the database file's mode; opened while the file was
        read-only (``chmod 444``), they stay read-only after it is writable again, and every
        new connection would then open the store read-only too.
        """
        try:
            mode = os.stat(self.path).st_mode & 0o666
            for suffix in ("-wal", "-shm"):
                side = self.path + suffix
                if os.path.exists(side) and (mode & ~os.stat(side).st_mode) & 0o222:
                    os.chmod(side, mode)
        except OSError:
            pass  # not ours to change, or gone: the next attempt reports what it finds

    def close(self) -> None:
        with self._lock:
            conns, self._all = self._all, []
        for c in conns:
            try:
                c.close()
            except sqlite3.Error:
                pass
        self._local = threading.local()


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

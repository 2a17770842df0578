"""The PostgreSQL backend: the team store, one server shared by many users on many machines.

Why it is small: every statement lives in :mod:`.sql` and runs unchanged here; this module only
supplies what differs per engine (see :class:`~nbtrace.store.sql.Backend`): connections, one
transaction per ``cursor()`` block, the ``%s`` placeholder style, migrations under a lock, and
error messages that a user can act on and that never show the password.

Connections. One per thread (psycopg connections must not run two transactions at once), made
on first use, autocommit off: each ``cursor()`` block is one transaction, committed at its end
and rolled back on any error. A connection that the server dropped (restart, failover, idle
kill) is replaced transparently once, when the block's first statement finds it dead: nothing
of the block has run yet, so retrying it is safe. A failure later in a block becomes a
:class:`StoreError`; a kernel's writer keeps the batch and retries it, and every op is
idempotent, so nothing is lost or written twice. Connections of threads that ended are closed
when the next thread connects, so a long-lived server does not leak server connections.

Location. A libpq URL: ``postgresql://user[:password]@host[:port]/dbname[?param=value...]``;
libpq parameters (``sslmode``, ``sslrootcert``, ``options``, ``target_session_attrs``...) pass
through. The password comes from the URL, ``PGPASSWORD`` or ``~/.pgpass`` (libpq reads them).
``connect_timeout`` defaults to 5 s (an unreachable server fails fast; the URL or
``PGCONNECT_TIMEOUT`` may override it) and TCP keepalives are on, so that a server that
vanished without closing the socket is noticed.

Schema. Tables are created in the first schema of the role's ``search_path`` (by default a
schema named like the role, else ``public``). A role needs ``CONNECT`` on the database and
``USAGE, CREATE`` on its schema (or to own it); see ``docs/team-store.md``. To use another
schema without changing the role, add ``?options=-csearch_path%3Dmyschema`` to the URL.

Migrations. The same ordered list as SQLite (:data:`.schema.MIGRATIONS`), then the few
PostgreSQL-only index changes of :data:`PG_MIGRATIONS`, recorded in
``nbtrace_migrations(name, applied_at)``. All pending ones are applied in one transaction under
``pg_advisory_xact_lock``, so eight kernels opening a fresh database at once apply each exactly
once; the others wait on the lock, then find nothing left to do. When nothing is pending (one
query tells), no lock is taken and no DDL privilege is needed: team members may hold data
privileges only, once an admin role has opened the store (see ``docs/team-store.md``).

Two engine differences are absorbed here rather than in the SQL: Python ``bool`` is sent as an
integer (the schema has no boolean columns, SQLite stores 0/1), and PostgreSQL text cannot hold
NUL characters or unpaired surrogates, so a value holding them is stored with each such
character replaced by U+FFFD instead of failing the whole batch forever.
"""

from __future__ import annotations

import logging
import os
import random
import re
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from functools import lru_cache
from typing import Any

from ..dsn import redact_dsn
from ..errors import BadDataError, StoreError, one_line
from . import query as q
from .schema import MIGRATIONS, statements
from .sql import Backend, SQLStore

#: Seconds to wait for a connection when the URL does not say (``connect_timeout``).
CONNECT_TIMEOUT_S = 5
#: ``pg_advisory_xact_lock`` key serializing migrations (any constant unique to nbtrace).
MIGRATION_LOCK_KEY = 0x6E62_7472_6163_65  # "nbtrace"
#: libpq parameters nbtrace sets unless the URL does.
_DEFAULT_PARAMS = {
    "connect_timeout": str(CONNECT_TIMEOUT_S),
    "application_name": "nbtrace",
    "keepalives": "1",
    "keepalives_idle": "30",
    "keepalives_interval": "10",
    "keepalives_count": "3",
}
#: PostgreSQL-only steps, applied after :data:`.schema.MIGRATIONS` and recorded alongside.
#: Why: a btree index entry must fit in a third of a page (2,704 bytes), so the shared btree
#: indexes on free text (a param's text, a tag's value, a run's name...) made PostgreSQL refuse a
#: run whose prompt-sized param or long tag SQLite stores without a murmur, and a kernel's writer
#: would retry that batch forever. These columns are only ever looked up by equality (ordering
#: comparisons use ``COLLATE "C"``, which a database-collation btree cannot serve anyway), which
#: a hash index answers without any size limit. If a later shared migration touches these
#: indexes, keep this list in step with it.
PG_MIGRATIONS: list[tuple[str, list[str]]] = [
    (
        "pg_0001_hash_text_indexes",
        [
            "DROP INDEX IF EXISTS params_key_text",
            "CREATE INDEX IF NOT EXISTS params_text_hash ON params USING hash (text)",
            "DROP INDEX IF EXISTS tags_key_value",
            "CREATE INDEX IF NOT EXISTS tags_value_hash ON tags USING hash (value)",
            "DROP INDEX IF EXISTS runs_name",
            "CREATE INDEX IF NOT EXISTS runs_name_hash ON runs USING hash (name)",
            "DROP INDEX IF EXISTS runs_experiment",
            "CREATE INDEX IF NOT EXISTS runs_experiment_hash ON runs USING hash (experiment)",
            "DROP INDEX IF EXISTS runs_user",
            "CREATE INDEX IF NOT EXISTS runs_user_hash ON runs USING hash (user_name)",
            "DROP INDEX IF EXISTS runs_parent",
            "CREATE INDEX IF NOT EXISTS runs_parent_hash ON runs USING hash (parent)",
        ],
    ),
    (
        # Why: a filter ``params.model = 'enet'`` tests ``key`` and ``text`` together, and the
        # planner multiplied their separate frequencies: it expected 5x fewer rows than a
        # third of the runs (every 'enet' is a model), so a bounded count took the whole
        # hash-index bitmap and two parallel workers (35 ms at 100,000 runs) where walking the
        # primary keys in run order stops after the bound (6 ms). Statistics on the pair
        # (its most common combinations, and how much key decides value) fix the estimate.
        # ANALYZE fills them now; autovacuum keeps them current.
        "pg_0002_listing_statistics",
        [
            "CREATE STATISTICS IF NOT EXISTS params_key_text_stats (mcv, dependencies)"
            " ON key, text FROM params",
            "CREATE STATISTICS IF NOT EXISTS tags_key_value_stats (mcv, dependencies)"
            " ON key, value FROM tags",
            "ANALYZE params",
            "ANALYZE tags",
        ],
    ),
]
_INSTALL_HINT = "the team store needs psycopg: pip install 'nbtrace[postgres]'"
_REPLACEMENT = "\ufffd"
_NULL_HANDLER = logging.NullHandler()
_UNENCODABLE = re.compile("[\x00\ud800-\udfff]")


def _import_psycopg() -> Any:
    """psycopg, imported only when a PostgreSQL URL is used (SQLite users need not have it)."""
    try:
        import psycopg
    except ImportError:
        raise StoreError(_INSTALL_HINT) from None
    # psycopg logs a warning when a pipeline dies with its connection; without a handler,
    # Python prints it to stderr, which a kernel shows in the user's cell. Our own error says
    # it better. (An application that configures logging still receives it.)
    logging.getLogger("psycopg").addHandler(_NULL_HANDLER)
    return psycopg


@lru_cache(maxsize=2048)
def _placeholders(text: str) -> str:
    # The SQL text never holds a literal ``?`` or ``%`` (user values are bound parameters).
    return text.replace("?", "%s")


class _Secrets:
    """Everything that must never appear in a message: the password in its spellings."""

    def __init__(self, url: str, password: str | None) -> None:
        from urllib.parse import quote, unquote

        found = {password or "", os.environ.get("PGPASSWORD", "")}
        m = re.match(r"^[a-z]+://([^/?#]*)@", url, re.IGNORECASE)
        if m and ":" in m.group(1):
            raw = m.group(1).split(":", 1)[1]
            found |= {raw, unquote(raw)}
        for p in list(found):
            found.add(quote(p, safe=""))
        self.values = sorted((s for s in found if s), key=len, reverse=True)
        self.url = url

    def scrub(self, text: str) -> str:
        text = text.replace(self.url, redact_dsn(self.url)) if self.url else text
        text = redact_dsn(text)
        for s in self.values:
            text = text.replace(s, "***")
        return text


def _reason(message: str) -> str:
    """The useful part of a libpq connection error, lower-cased at the start."""
    msg = message.split("\n")[0].strip()
    msg = re.sub(r"^connection (failed|is bad):\s*", "", msg)
    msg = re.sub(r"^connection to server (at|on) .*? failed:\s*", "", msg)
    msg = re.sub(r"^(FATAL|ERROR):\s*", "", msg).strip()
    return msg[:1].lower() + msg[1:] if msg[:2] != msg[:2].upper() else msg


def translate(exc: BaseException, where: str, secrets: _Secrets, connecting: bool) -> StoreError:
    """A one-line, actionable :class:`StoreError` for a psycopg failure, without the password."""
    raw = secrets.scrub(str(exc))
    reason = one_line(secrets.scrub(_reason(raw)), 200)
    low = raw.lower()
    sqlstate = getattr(exc, "sqlstate", None) or ""
    if "password authentication failed" in low or sqlstate == "28P01":
        return StoreError(
            f"cannot log in to the team store at {where}: {reason} (check the password in the"
            " URL, PGPASSWORD or ~/.pgpass)"
        )
    if "no password supplied" in low:
        return StoreError(
            f"cannot log in to the team store at {where}: the server wants a password (put it"
            " in ~/.pgpass or PGPASSWORD)"
        )
    if sqlstate.startswith("28") or "authentication" in low or "pg_hba.conf" in low:
        return StoreError(f"cannot log in to the team store at {where}: {reason}")
    if sqlstate == "3D000" or ("database" in low and "does not exist" in low):
        return StoreError(f"the team store at {where} does not exist: {reason}")
    if sqlstate in ("42501", "3F000") or "permission denied" in low:
        return StoreError(
            f"the team store at {where} refused access: {reason} (the role needs CONNECT on the"
            " database and USAGE, CREATE on its schema; see docs/team-store.md)"
        )
    if sqlstate in ("42P01", "42703"):
        return StoreError(f"the team store at {where} is not an nbtrace database ({reason})")
    if sqlstate.startswith(("22", "23")):  # data exception, integrity constraint: the value
        return BadDataError(f"the team store at {where} refused a value: {reason}")
    if sqlstate in ("40001", "40P01", "55P03"):
        return _retryable(StoreError(f"the team store at {where} was busy ({reason}); try again"))
    if connecting and (reason.startswith(("invalid ", "missing ")) or "connection string" in low):
        return StoreError(f"bad team store URL {where}: {reason}")  # libpq's own URL parsing
    if connecting or sqlstate.startswith(("08", "57")) or "connection" in low:
        if "timeout expired" in low or "timed out" in low:
            reason = "timed out"
        elif "connection refused" in low:
            reason = "connection refused"
        elif "resolve host" in low or "translate host name" in low:
            reason = re.sub(r"\[errno -?\d+\]\s*", "", reason, flags=re.IGNORECASE)
        err = StoreError(f"cannot reach the team store at {where}: {reason}")
        return err if connecting else _retryable(err)
    return StoreError(f"team store error at {where}: {reason}")


def _retryable(err: StoreError) -> StoreError:
    """Mark an error after which re-applying the same (idempotent) batch may succeed."""
    err.retryable = True  # type: ignore[attr-defined]
    return err


class PostgresBackend(Backend):
    """Connections, transactions and migrations for one PostgreSQL database."""

    dialect = q.POSTGRES

    def __init__(self, url: str) -> None:
        self.url = url
        self.display_location = redact_dsn(url)
        self._psycopg = _import_psycopg()
        self._kwargs = self._connect_kwargs(url)
        self._local = threading.local()
        self._conns: list[tuple[threading.Thread, Any]] = []
        self._lock = threading.Lock()
        self._migrate()

    # -------------------------------------------------------------- connections
    def _connect_kwargs(self, url: str) -> dict[str, Any]:
        from psycopg.conninfo import conninfo_to_dict

        self._secrets = _Secrets(url, None)
        try:
            given = conninfo_to_dict(url)
        except self._psycopg.Error as exc:
            raise translate(exc, self.display_location, self._secrets, True) from None
        self._secrets = _Secrets(url, str(given.get("password") or ""))
        env = {"connect_timeout": "PGCONNECT_TIMEOUT", "application_name": "PGAPPNAME"}
        return {
            k: v
            for k, v in _DEFAULT_PARAMS.items()
            if k not in given and not os.environ.get(env.get(k, ""), "")
        }

    def _new_connection(self) -> Any:
        psycopg = self._psycopg
        try:
            conn = psycopg.connect(self.url, autocommit=False, **self._kwargs)
        except psycopg.Error as exc:
            raise translate(exc, self.display_location, self._secrets, True) from None
        except OSError as exc:  # e.g. a resolver failure surfacing before libpq
            raise StoreError(
                f"cannot reach the team store at {self.display_location}:"
                f" {one_line(self._secrets.scrub(str(exc)), 160)}"
            ) from None
        conn.adapters.register_dumper(bool, _bool_dumper(psycopg))
        return conn

    def _connect(self) -> Any:
        conn = getattr(self._local, "conn", None)
        if conn is not None and not conn.closed:
            return conn
        conn = self._new_connection()
        self._local.conn = conn
        me = threading.current_thread()
        with self._lock:
            gone = [c for t, c in self._conns if not t.is_alive()]
            self._conns = [(t, c) for t, c in self._conns if t.is_alive() and not c.closed]
            self._conns.append((me, conn))
        for c in gone:
            _quiet_close(c)
        return conn

    def _drop_connection(self, conn: Any) -> None:
        _quiet_close(conn)
        if getattr(self._local, "conn", None) is conn:
            self._local.conn = None

    # -------------------------------------------------------------- transactions
    @contextmanager
    def cursor(self, write: bool, wait: bool = True) -> Iterator[Any]:
        # ``wait`` is not needed here: writers take row locks for milliseconds, never a lock
        # on the whole store, and an unreachable server already fails within connect_timeout.
        conn = self._connect()
        cur = _Cursor(self, conn, prepare=None if write else False)
        try:
            yield cur
        except self._psycopg.Error as exc:
            self._rollback(cur.conn)
            raise translate(exc, self.display_location, self._secrets, False) from None
        except BaseException:
            self._rollback(cur.conn)
            raise
        try:
            cur.conn.commit()
        except self._psycopg.Error as exc:
            self._rollback(cur.conn)
            raise translate(exc, self.display_location, self._secrets, False) from None

    def _rollback(self, conn: Any) -> None:
        try:
            conn.rollback()
        except self._psycopg.Error:
            self._drop_connection(conn)

    def sql(self, text: str) -> str:
        return _placeholders(text)

    # -------------------------------------------------------------- migrations
    def _migrate(self) -> None:
        """Apply pending migrations exactly once, however many processes open the store."""
        steps = [(name, statements(name, "postgresql")) for name, _ in MIGRATIONS]
        steps += PG_MIGRATIONS
        names = [name for name, _ in steps]
        conn = self._new_connection()  # a kernel's main thread may never read: do not keep it
        try:
            cur = conn.cursor()
            cur.execute("SELECT to_regclass('nbtrace_migrations') IS NOT NULL")
            if cur.fetchone()[0]:
                cur.execute("SELECT name FROM nbtrace_migrations")
                if set(names) <= {r[0] for r in cur.fetchall()}:
                    conn.rollback()
                    return
            conn.rollback()
            cur.execute("SELECT pg_advisory_xact_lock(%s)", (MIGRATION_LOCK_KEY,))
            cur.execute(
                "CREATE TABLE IF NOT EXISTS nbtrace_migrations ("
                " name TEXT PRIMARY KEY, applied_at DOUBLE PRECISION NOT NULL)"
            )
            cur.execute("SELECT name FROM nbtrace_migrations")
            done = {r[0] for r in cur.fetchall()}
            for name, stmts in steps:
                if name in done:
                    continue
                for stmt in stmts:
                    cur.execute(stmt)
                cur.execute(
                    "INSERT INTO nbtrace_migrations (name, applied_at) VALUES (%s, %s)",
                    (name, time.time()),
                )
            conn.commit()
        except self._psycopg.Error as exc:
            _quiet_rollback(conn)
            raise translate(exc, self.display_location, self._secrets, False) from None
        finally:
            _quiet_close(conn)

    def close(self) -> None:
        with self._lock:
            conns, self._conns = self._conns, []
        for _, c in conns:
            _quiet_close(c)
        self._local = threading.local()


class _Cursor:
    """A psycopg cursor that reconnects once if the connection died before the block wrote.

    Why only then: if the first statement of a transaction finds the connection gone, nothing
    of the transaction has happened, and the block can go on over a new connection. Later, the
    block's earlier statements are lost with the connection, so the error must reach the caller
    (whose retry is safe: ops are idempotent).

    ``prepare`` False (read transactions): statements are never prepared on the server. Why:
    psycopg prepares a statement on its sixth execution, and PostgreSQL then plans it once for
    any parameter values (a generic plan) after five more; a listing's best plan depends on
    the values (a param value that a third of the runs hold, or one run), and the generic one
    made the same REST page 5x slower from its eleventh request on (the filtered page sorted
    by a metric at 100,000 runs: 499 ms instead of 92, load 5.5). Planning with the values
    costs about a millisecond. Writes keep psycopg's default: their plans do not depend on the
    values.
    """

    def __init__(self, backend: PostgresBackend, conn: Any, prepare: bool | None = None) -> None:
        self.b = backend
        self.conn = conn
        self.cur = conn.cursor()
        self.fresh = True
        self.prepare = prepare

    def _call(self, method: str, sql: str, args: Any) -> None:
        if method == "execute":
            self.cur.execute(sql, args, prepare=self.prepare)
        else:
            self.cur.executemany(sql, args)

    def _run(self, method: str, sql: str, args: Any) -> None:
        psycopg = self.b._psycopg
        try:
            try:
                self._call(method, sql, args)
            except (psycopg.DataError, UnicodeEncodeError) as exc:
                if isinstance(exc, psycopg.DataError) and "NUL" not in str(exc):
                    raise
                # Refused by the client before it reached the server: send it encodable.
                self.fresh = False
                self._call(method, sql, _encodable(args, method == "executemany"))
        except psycopg.OperationalError:
            if not (self.fresh and (self.conn.broken or self.conn.closed)):
                raise
            self.b._drop_connection(self.conn)
            self.conn = self.b._connect()
            self.cur = self.conn.cursor()
            self._call(method, sql, args)
        self.fresh = False

    def execute(self, sql: str, args: Sequence[Any] = ()) -> None:
        self._run("execute", sql, args)

    def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        self._run("executemany", sql, rows)

    def fetchone(self) -> Any:
        return self.cur.fetchone()

    def fetchall(self) -> list[Any]:
        return self.cur.fetchall()


def _clean(value: Any) -> Any:
    if isinstance(value, str) and _UNENCODABLE.search(value):
        return _UNENCODABLE.sub(_REPLACEMENT, value)
    return value


def _encodable(args: Any, many: bool) -> Any:
    """``args`` with NUL and unpaired surrogates in strings replaced (PostgreSQL refuses them)."""
    if many:
        return [[_clean(v) for v in row] for row in args]
    if isinstance(args, dict):
        return {k: _clean(v) for k, v in args.items()}
    return [_clean(v) for v in args]


@lru_cache(maxsize=1)
def _bool_dumper(psycopg: Any) -> type:
    """Send Python bools as int2: SQLite stores them as 0/1, the schema has no boolean column."""
    from psycopg.adapt import Dumper

    oid = psycopg.adapters.types["int2"].oid

    class BoolAsInt(Dumper):
        def dump(self, obj: bool) -> bytes:
            return b"1" if obj else b"0"

    BoolAsInt.oid = oid
    return BoolAsInt


def _quiet_close(conn: Any) -> None:
    try:
        conn.close()
    except Exception:  # noqa: BLE001 - closing a dead connection must not raise
        pass


def _quiet_rollback(conn: Any) -> None:
    try:
        conn.rollback()
    except Exception:  # noqa: BLE001
        pass


class PostgresStore(SQLStore):
    """The team store: a PostgreSQL database shared by many users and machines."""

    #: Attempts of one batch when the server reports a deadlock or drops the connection.
    APPLY_ATTEMPTS = 3

    def __init__(self, url: str) -> None:
        backend = PostgresBackend(url)
        super().__init__(backend, backend.display_location)

    def apply(self, ops: Sequence[Any], wait: bool = True) -> None:
        """Apply a batch; re-apply it after a deadlock or a lost connection.

        Why here: two kernels inserting the same shared rows (sources, package sets) in
        different orders can deadlock, and PostgreSQL then aborts one of them; a server
        restart can cut a transaction in the middle. Ops are idempotent, so running the whole
        batch again is safe, and doing it here spares the kernel's writer a warning.
        """
        for attempt in range(1, self.APPLY_ATTEMPTS + 1):
            try:
                super().apply(ops, wait)
                return
            except StoreError as exc:
                if attempt == self.APPLY_ATTEMPTS or not getattr(exc, "retryable", False):
                    raise
                time.sleep(random.uniform(0.01, 0.05) * attempt)

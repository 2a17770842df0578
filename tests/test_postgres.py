"""What only the PostgreSQL team store has to get right: passwords, reachability, roles.

Given the throwaway cluster of :mod:`pgcluster`, when the store is opened with good and bad
URLs, by a role that owns only its schema, across server restarts and dropped connections,
then errors are one line, fail fast, and never show the password; and the password is never
stored in the database either.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import pytest

from kernels import in_parallel, run_notebook
from nbtrace.errors import StoreError
from nbtrace.store import Store, open_store
from pgcluster import PgCluster

pytestmark = pytest.mark.postgres

#: A password with every character that URLs and libpq treat specially.
SECRET = "S3cr:t/p@ss%w0rd?&='x"
ROLE = "ana"


@pytest.fixture(scope="module")
def ana(pg_cluster: PgCluster) -> Iterator[dict[str, str]]:
    """A role that owns only its schema, in a database it may connect to (and nothing else)."""
    db = pg_cluster.create_database("ana")
    pg_cluster.admin(f"CREATE ROLE {ROLE} LOGIN PASSWORD '{SECRET.replace(chr(39), chr(39) * 2)}'")
    pg_cluster.admin(f'REVOKE ALL ON DATABASE "{db}" FROM PUBLIC')
    pg_cluster.admin(f'GRANT CONNECT ON DATABASE "{db}" TO {ROLE}')
    pg_cluster.admin("REVOKE ALL ON SCHEMA public FROM PUBLIC", dbname=db)
    pg_cluster.admin(f"CREATE SCHEMA {ROLE} AUTHORIZATION {ROLE}", dbname=db)
    pg_cluster.admin(f"CREATE SCHEMA nbtrace AUTHORIZATION {ROLE}", dbname=db)
    url = f"postgresql://{ROLE}:{quote(SECRET, safe='')}@127.0.0.1:{pg_cluster.port}/{db}"
    try:
        yield {"db": db, "url": url}
    finally:
        pg_cluster.drop_database(db)
        pg_cluster.admin(f"DROP ROLE IF EXISTS {ROLE}")


def secret_spellings(secret: str = SECRET) -> list[str]:
    return [secret, quote(secret, safe=""), quote(secret), secret.encode().hex()]


def assert_no_secret(text: str) -> None:
    for s in secret_spellings():
        assert s not in text, f"password ({s!r}) leaked in: {text!r}"


def open_error(url: str) -> tuple[str, float]:
    t0 = time.perf_counter()
    with pytest.raises(StoreError) as exc:
        open_store(url)
    return str(exc.value), time.perf_counter() - t0


# --------------------------------------------------------------------------- passwords
def test_display_location_hides_the_password(ana: dict[str, str]) -> None:
    store = open_store(ana["url"])
    try:
        loc = store.display_location
        assert_no_secret(loc)
        assert loc.startswith(f"postgresql://{ROLE}:***@127.0.0.1:") and loc.endswith(ana["db"])
    finally:
        store.close()
    host, port = "127.0.0.1", ana["url"].rsplit(":", 1)[1].split("/")[0]
    alt = f"postgres://{ROLE}@{host}:{port}/{ana['db']}?password={quote(SECRET, safe='')}"
    store = open_store(alt)
    try:
        assert_no_secret(store.display_location)
        assert "password=***" in store.display_location
    finally:
        store.close()


def test_error_messages_never_show_the_password(
    pg_cluster: PgCluster, ana: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    port, db, enc = pg_cluster.port, ana["db"], quote(SECRET, safe="")
    free = _closed_port()
    cases = {
        "wrong password": (
            f"postgresql://{ROLE}:{enc}x@127.0.0.1:{port}/{db}",
            "cannot log in to the team store at",
        ),
        "unreachable": (
            f"postgresql://{ROLE}:{enc}@127.0.0.1:{free}/{db}",
            "cannot reach the team store at",
        ),
        "no such database": (
            f"postgresql://{ROLE}:{enc}@127.0.0.1:{port}/nope_{db}",
            "does not exist",
        ),
        "no such user": (f"postgresql://nobody:{enc}@127.0.0.1:{port}/{db}", "cannot log in"),
        "bad option": (
            f"postgresql://{ROLE}:{enc}@127.0.0.1:{port}/{db}?sslmode=sometimes",
            "bad team store URL",
        ),
        "bad port": (f"postgresql://{ROLE}:{enc}@127.0.0.1:notaport/{db}", "team store"),
        "unknown host": (
            f"postgresql://{ROLE}:{enc}@no-such-host.invalid/{db}",
            "cannot reach the team store at",
        ),
        "password param": (
            f"postgresql://{ROLE}@127.0.0.1:{port}/nope?password={enc}",
            "does not exist",
        ),
    }
    for what, (url, expected) in cases.items():
        msg, elapsed = open_error(url)
        assert_no_secret(msg)
        assert expected in msg, (what, msg)
        assert "\n" not in msg and len(msg) < 400, (what, msg)
        assert "timed out" not in msg, (what, msg, elapsed)  # refused at once, not waited out
    msg, _ = open_error(f"postgresql://{ROLE}:{enc}@127.0.0.1:{free}/{db}")
    assert msg == (
        f"cannot reach the team store at postgresql://{ROLE}:***@127.0.0.1:{free}/{db}:"
        " connection refused"
    )
    # The password from PGPASSWORD is kept out of messages too.
    monkeypatch.setenv("PGPASSWORD", SECRET + "-wrong")
    msg, _ = open_error(f"postgresql://{ROLE}@127.0.0.1:{port}/{db}")
    assert "cannot log in" in msg and "PGPASSWORD" in msg
    assert SECRET not in msg
    monkeypatch.delenv("PGPASSWORD")
    monkeypatch.setenv("PGPASSFILE", os.devnull)
    msg, _ = open_error(f"postgresql://{ROLE}@127.0.0.1:{port}/{db}")
    assert "wants a password" in msg


def test_password_from_pgpass_and_env(
    ana: dict[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    bare = ana["url"].replace(":" + quote(SECRET, safe=""), "")
    pgpass = tmp_path / "pgpass"
    port = bare.rsplit(":", 1)[1].split("/")[0]
    escaped = SECRET.replace("\\", "\\\\").replace(":", "\\:")
    pgpass.write_text(f"127.0.0.1:{port}:{ana['db']}:{ROLE}:{escaped}\n")
    pgpass.chmod(0o600)
    monkeypatch.setenv("PGPASSFILE", str(pgpass))
    store = open_store(bare)
    store.close()
    monkeypatch.setenv("PGPASSFILE", os.devnull)
    monkeypatch.setenv("PGPASSWORD", SECRET)
    store = open_store(bare)
    try:
        assert store.display_location == bare
        assert store.list_runs()[1] == 0
    finally:
        store.close()


@pytest.mark.slow
def test_password_is_never_stored(
    pg_cluster: PgCluster, ana: dict[str, str], tmp_path: Path
) -> None:
    """A real kernel logs into the team store; no table holds the password in any spelling."""
    env = {
        "PGPASSWORD": SECRET,
        "NBTRACE_ENV_ALLOWLIST": "*",
        "NBTRACE_TEAM_URL": ana["url"],
        "DATABASE_URL": ana["url"],
    }
    run_notebook(
        [
            "%load_ext nbtrace",
            "%track_run secret-check --tag k=v",
            "%log_param alpha=0.5\nimport os\nlocation = 'elsewhere'",
            "%log_metric mse=1.5",
            "%end_run",
        ],
        ana["url"],
        tmp_path,
        env=env,
    )
    store = open_store(ana["url"])
    try:
        runs, total = store.list_runs()
        assert total == 1 and runs[0]["params"] == {"alpha": 0.5}
        run = store.get_run(runs[0]["id"])
        assert run["environment"]["env_vars"], "the allowlist captured nothing"
    finally:
        store.close()
    dump = pg_cluster.run("pg_dump", "--data-only", "--no-owner", "-d", pg_cluster.url(ana["db"]))
    assert "secret-check" in dump.stdout and "alpha" in dump.stdout
    assert_no_secret(dump.stdout)


# --------------------------------------------------------------------------- reachability
def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_unreachable_server_fails_fast_with_one_line() -> None:
    port = _closed_port()
    msg, _ = open_error(f"postgresql://ana:{quote(SECRET, safe='')}@127.0.0.1:{port}/db")
    assert (
        msg == f"cannot reach the team store at postgresql://ana:***@127.0.0.1:{port}/db:"
        " connection refused"
    )


@pytest.mark.slow
def test_silent_server_times_out() -> None:
    """A host that accepts TCP but never answers: the default 5 s timeout, or the URL's."""
    with socket.socket() as srv:
        srv.bind(("127.0.0.1", 0))
        srv.listen(16)
        port = srv.getsockname()[1]
        msg, elapsed = open_error(f"postgresql://u:{quote(SECRET, safe='')}@127.0.0.1:{port}/db")
        assert elapsed >= 4, elapsed  # the default 5 s timeout was waited (a lower bound: a
        # busy machine only makes it longer)
        assert msg.endswith(": timed out") and "cannot reach the team store" in msg
        assert_no_secret(msg)
        # The URL's own timeout wins over the default: with the default raised to 10 minutes
        # (PGCONNECT_TIMEOUT is libpq's), a 1 s connect_timeout is what ends the wait.
        env = dict(os.environ, PGCONNECT_TIMEOUT="600")
        code = (
            "import sys; from nbtrace.store import open_store\n"
            "from nbtrace.errors import StoreError\n"
            "try:\n    open_store(sys.argv[1])\nexcept StoreError as e:\n    print(e)\n"
        )
        out = subprocess.run(
            [sys.executable, "-c", code, f"postgresql://u@127.0.0.1:{port}/db?connect_timeout=1"],
            env=env, capture_output=True, text=True, timeout=300,
        )
        assert out.stdout.strip().endswith(": timed out"), out


def test_missing_driver_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    code = (
        "import sys, nbtrace.store.postgres, nbtrace.store\n"
        "assert 'psycopg' not in sys.modules, 'psycopg imported eagerly'\n"
        "sys.modules['psycopg'] = None\n"
        "try:\n"
        "    nbtrace.store.open_store('postgresql://u:pw@127.0.0.1:1/db')\n"
        "except Exception as e:\n"
        "    print(type(e).__name__, e)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("StoreError") and "nbtrace[postgres]" in out.stdout


# --------------------------------------------------------------------------- roles and schemas
def _schemas_of(pg_cluster: PgCluster, db: str, table: str) -> list[str]:
    rows = pg_cluster.admin(
        f"SELECT schemaname FROM pg_tables WHERE tablename = '{table}' ORDER BY 1", dbname=db
    )
    return [r[0] for r in rows]


def test_role_that_owns_only_its_schema(pg_cluster: PgCluster, ana: dict[str, str]) -> None:
    store = open_store(ana["url"])
    try:
        store.apply(
            [
                (
                    "run_start",
                    {"id": "r0a", "name": "mine", "status": "finished", "started_at": time.time()},
                )
            ]
        )
        assert "r0a" in [r["id"] for r in store.list_runs(limit=None)[0]]
    finally:
        store.close()
    assert _schemas_of(pg_cluster, ana["db"], "runs") == [ROLE]  # "$user" comes first
    # Another schema it owns, chosen in the URL without touching the role.
    url = ana["url"] + "?options=-csearch_path%3Dnbtrace"
    store = open_store(url)
    try:
        assert store.list_runs()[1] == 0
    finally:
        store.close()
    assert _schemas_of(pg_cluster, ana["db"], "runs") == ["ana", "nbtrace"]
    # A schema it may not create in: a clear error naming the grants, no password.
    msg, _ = open_error(ana["url"] + "?options=-csearch_path%3Dpublic")
    assert "refused access" in msg and "USAGE, CREATE" in msg and "\n" not in msg
    assert_no_secret(msg)


# --------------------------------------------------------------------------- connections
def _run_ops(run_id: str) -> list[tuple]:
    return [
        (
            "run_start",
            {"id": run_id, "name": run_id, "status": "finished", "started_at": time.time()},
        )
    ]


def test_reconnects_after_the_server_dropped_the_connection(
    pg_store_url: str, pg_cluster: PgCluster
) -> None:
    store = open_store(pg_store_url)
    try:
        store.apply(_run_ops("before"))
        db = pg_store_url.rsplit("/", 1)[1]
        pg_cluster.admin(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
            f" WHERE datname = '{db}' AND pid <> pg_backend_pid()"
        )
        assert store.list_runs()[1] == 1  # read: reconnected transparently
        pg_cluster.admin(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
            f" WHERE datname = '{db}' AND pid <> pg_backend_pid()"
        )
        store.apply(_run_ops("after"))  # write: same
        assert store.list_runs()[1] == 2
    finally:
        store.close()


@pytest.mark.slow
def test_survives_a_server_restart(pg_store_url: str, pg_cluster: PgCluster) -> None:
    store = open_store(pg_store_url)
    try:
        store.apply(_run_ops("r1"))
        pg_cluster.stop("fast")
        try:
            with pytest.raises(StoreError) as exc:
                store.apply(_run_ops("r2"))
            assert "cannot reach the team store" in str(exc.value)
        finally:
            pg_cluster.start()
        store.apply(_run_ops("r2"))
        assert store.list_runs()[1] == 2
    finally:
        store.close()


def test_threads_get_their_own_connections(pg_store_url: str) -> None:
    """Eight threads writing at once, shared rows inserted in opposite orders (deadlock bait)."""
    store = open_store(pg_store_url)
    sources = [(f"{i:064x}", f"source {i}") for i in range(40)]

    def work(k: int) -> None:
        for n in range(20):
            mine = sources if (k + n) % 2 else list(reversed(sources))
            ops: list[tuple] = [("source", h, s) for h, s in mine]
            ops += _run_ops(f"t{k}n{n}")
            ops += [("metric", f"t{k}n{n}", "m", i, i, time.time(), float(i)) for i in range(50)]
            store.apply(ops)

    try:
        in_parallel(work, 8, 120)
        runs, total = store.list_runs(limit=None)
        assert total == 160 and all(r["metrics"] == {"m": 49.0} for r in runs)
        backend = store.backend  # type: ignore[attr-defined]
        assert len(backend._conns) <= 9  # one per live thread (+ this one)
    finally:
        store.close()
    assert all(c.closed for _, c in backend._conns) or not backend._conns


def test_store_error_for_a_closed_store_is_clean(pg_store_url: str) -> None:
    store: Store = open_store(pg_store_url)
    store.close()
    store.close()  # twice is fine
    assert store.list_runs()[1] == 0  # reconnects on use after close (like SQLite)
    store.close()


def test_team_roles_with_data_privileges_only(pg_cluster: PgCluster) -> None:
    """The setup of docs/team-store.md: an admin role migrates, members only read and write."""
    db = pg_cluster.create_database("team")
    roles = {"nbt_admin": "adm-" + SECRET, "bob": "bob-" + SECRET, "cy": "cy-" + SECRET}
    esc = {r: p.replace("'", "''") for r, p in roles.items()}
    script = [
        f"CREATE ROLE nbt_admin LOGIN PASSWORD '{esc['nbt_admin']}'",
        "CREATE ROLE nbt_team NOLOGIN",
        f"CREATE ROLE bob LOGIN PASSWORD '{esc['bob']}' IN ROLE nbt_team",
        f"CREATE ROLE cy LOGIN PASSWORD '{esc['cy']}' IN ROLE nbt_team",
        f'REVOKE ALL ON DATABASE "{db}" FROM PUBLIC',
        f'GRANT CONNECT ON DATABASE "{db}" TO nbt_admin, nbt_team',
        f'ALTER DATABASE "{db}" SET search_path = nbtrace',
    ]
    in_db = [
        "REVOKE ALL ON SCHEMA public FROM PUBLIC",
        "CREATE SCHEMA nbtrace AUTHORIZATION nbt_admin",
        "GRANT USAGE ON SCHEMA nbtrace TO nbt_team",
        "ALTER DEFAULT PRIVILEGES FOR ROLE nbt_admin IN SCHEMA nbtrace"
        " GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO nbt_team",
    ]
    url = {
        r: f"postgresql://{r}:{quote(p, safe='')}@127.0.0.1:{pg_cluster.port}/{db}"
        for r, p in roles.items()
    }
    try:
        for stmt in script:
            pg_cluster.admin(stmt)
        for stmt in in_db:
            pg_cluster.admin(stmt, dbname=db)
        msg, _ = open_error(url["bob"])  # before the admin created the tables
        assert "refused access" in msg and "permission denied for schema nbtrace" in msg
        assert_no_secret(msg)
        open_store(url["nbt_admin"]).close()  # creates (migrates) the tables
        bob, cy = open_store(url["bob"]), open_store(url["cy"])
        try:
            bob.apply(
                _run_ops("b0b")
                + [("tag", "b0b", "who", "bob"), ("metric", "b0b", "m", 1, 0, time.time(), 1.0)]
            )
            assert cy.get_run("b0b")["tags"] == {"who": "bob"}
            cy.update_run("b0b", tags={"seen": "cy"})
            cy.delete_run("b0b")
            assert bob.list_runs()[1] == 0
        finally:
            bob.close()
            cy.close()
        import psycopg

        with psycopg.connect(url["bob"]) as conn, pytest.raises(psycopg.Error):
            conn.execute("DROP TABLE runs")
    finally:
        pg_cluster.drop_database(db)
        for r in ("bob", "cy", "nbt_team", "nbt_admin"):
            pg_cluster.admin(f"DROP ROLE IF EXISTS {r}")

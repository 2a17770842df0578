"""A throwaway PostgreSQL 15 cluster for the team-store tests.

Why our own fixture and not pytest-postgresql: its process fixture runs ``pg_ctl`` as the
current user, and ``initdb``/``pg_ctl`` refuse to run as root (the CI machine's user). Here
they run as the ``postgres`` user (``runuser -u postgres --``) when we are root, directly
otherwise. The cluster lives in a temp dir, listens on a free loopback port with password
(scram) authentication, and is removed at the end of the session.

Fixtures:

``pg_cluster`` (session)  the running :class:`PgCluster`
``pg_url``     (session)  ``postgresql://nbt:<pw>@127.0.0.1:PORT/nbtrace_test``
``pg_store_url`` (function)  a fresh, empty database per test (dropped afterwards)

Without PostgreSQL binaries the PostgreSQL tests are skipped, unless ``CI`` is set: on CI a
missing PostgreSQL is a failure, not a silent skip.
"""

from __future__ import annotations

import itertools
import os
import secrets
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

__all__ = ["PgCluster", "pg_cluster", "pg_url", "pg_store_url", "find_pg_bin"]

SUPERUSER = "nbt"
TEST_DB = "nbtrace_test"
_PG_BIN_CANDIDATES = ("/usr/lib/postgresql/15/bin",)


def find_pg_bin() -> Path | None:
    """The folder holding ``initdb``/``pg_ctl``: ``NBTRACE_PG_BIN``, Debian's 15, ``pg_config``."""
    candidates = [os.environ.get("NBTRACE_PG_BIN", ""), *_PG_BIN_CANDIDATES]
    pg_config = shutil.which("pg_config")
    if pg_config:
        try:
            out = subprocess.run(
                [pg_config, "--bindir"], capture_output=True, text=True, timeout=10
            ).stdout.strip()
            candidates.append(out)
        except (OSError, subprocess.SubprocessError):
            pass
    initdb = shutil.which("initdb")
    if initdb:
        candidates.append(str(Path(initdb).parent))
    for c in candidates:
        if c and (Path(c) / "initdb").is_file() and (Path(c) / "pg_ctl").is_file():
            return Path(c)
    return None


def _postgres_user() -> Any:
    try:
        import pwd

        return pwd.getpwnam("postgres")
    except (ImportError, KeyError):
        return None


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class PgCluster:
    """One running throwaway cluster; ``run`` executes its binaries as the right user."""

    bindir: Path
    root: Path
    port: int
    password: str
    as_postgres: bool
    _counter: Iterator[int] = field(default_factory=lambda: itertools.count(1))

    @property
    def datadir(self) -> Path:
        return self.root / "data"

    @property
    def logfile(self) -> Path:
        return self.root / "postgres.log"

    def url(self, dbname: str = TEST_DB, user: str = SUPERUSER, password: str | None = None) -> str:
        pw = self.password if password is None else password
        auth = f"{user}:{pw}" if pw else user
        return f"postgresql://{auth}@127.0.0.1:{self.port}/{dbname}"

    def run(self, tool: str, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        cmd = [str(self.bindir / tool), *args]
        if self.as_postgres:
            cmd = ["runuser", "-u", "postgres", "--", *cmd]
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120, cwd=self.root)
        if check and proc.returncode != 0:
            log = self.logfile.read_text(errors="replace")[-2000:] if self.logfile.exists() else ""
            raise RuntimeError(
                f"{tool} failed ({proc.returncode}): {proc.stderr.strip() or proc.stdout.strip()}"
                f"\n--- server log ---\n{log}"
            )
        return proc

    def start(self) -> None:
        opts = (
            f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1"
            # A test cluster: durability against power loss is not needed, speed is.
            " -c fsync=off -c synchronous_commit=off -c full_page_writes=off"
            " -c max_connections=200 -c shared_buffers=32MB"
        )
        self.run(
            "pg_ctl",
            "-D",
            str(self.datadir),
            "-l",
            str(self.logfile),
            "-w",
            "-t",
            "60",
            "-o",
            opts,
            "start",
        )

    def stop(self, mode: str = "fast") -> None:
        self.run(
            "pg_ctl", "-D", str(self.datadir), "-w", "-t", "60", "-m", mode, "stop", check=False
        )

    def admin(self, sql: str, dbname: str = "postgres") -> list[tuple]:
        """Run one statement as the superuser, outside a transaction (CREATE DATABASE ...)."""
        import psycopg

        with psycopg.connect(self.url(dbname), autocommit=True, connect_timeout=10) as conn:
            cur = conn.execute(sql)
            return cur.fetchall() if cur.description else []

    def create_database(self, prefix: str = "t") -> str:
        """A new empty database (copied from ``template0``); returns its name."""
        name = f"{prefix}_{os.getpid()}_{next(self._counter)}"
        self.admin(f'CREATE DATABASE "{name}" TEMPLATE template0 STRATEGY FILE_COPY')
        return name

    def drop_database(self, name: str) -> None:
        self.admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _start_cluster() -> PgCluster:
    bindir = find_pg_bin()
    as_postgres = os.geteuid() == 0
    reason = ""
    if bindir is None:
        reason = "PostgreSQL 15 binaries (initdb, pg_ctl) not found; install postgresql-15"
    elif as_postgres and not (_postgres_user() and shutil.which("runuser")):
        reason = "running as root needs the 'postgres' user and runuser to start PostgreSQL"
    if reason:
        if os.environ.get("CI", "").lower() not in ("", "0", "false", "no"):
            pytest.fail(f"{reason} (CI is set: the team-store tests must run)")
        pytest.skip(reason)
    assert bindir is not None
    root = Path(tempfile.mkdtemp(prefix="nbtrace-pg-"))
    if as_postgres:
        pw = _postgres_user()
        os.chown(root, pw.pw_uid, pw.pw_gid)
    root.chmod(0o700)
    password = "pw-" + secrets.token_hex(12)
    pwfile = root / "pwfile"
    pwfile.write_text(password + "\n")
    if as_postgres:
        os.chown(pwfile, pw.pw_uid, pw.pw_gid)
    cluster = PgCluster(bindir, root, 0, password, as_postgres)
    cluster.run(
        "initdb",
        "-D",
        str(cluster.datadir),
        "-U",
        SUPERUSER,
        "--pwfile",
        str(pwfile),
        "--auth=scram-sha-256",
        "--encoding=UTF8",
        "--locale=C.UTF-8",
        "--no-sync",
        "--no-instructions",
    )
    pwfile.unlink()
    last: Exception | None = None
    for _ in range(3):  # a free port can be taken between the probe and the bind
        cluster.port = _free_port()
        try:
            cluster.start()
            break
        except RuntimeError as exc:
            last = exc
    else:
        shutil.rmtree(root, ignore_errors=True)
        raise RuntimeError(f"cannot start the test PostgreSQL cluster: {last}")
    return cluster


@pytest.fixture(scope="session")
def pg_cluster() -> Iterator[PgCluster]:
    """A running throwaway PostgreSQL cluster (session-wide)."""
    t0 = time.perf_counter()
    cluster = _start_cluster()
    try:
        cluster.admin(f'CREATE DATABASE "{TEST_DB}" TEMPLATE template0')
        cluster.startup_s = time.perf_counter() - t0  # type: ignore[attr-defined]
        yield cluster
    finally:
        cluster.stop("immediate")
        shutil.rmtree(cluster.root, ignore_errors=True)


@pytest.fixture(scope="session")
def pg_url(pg_cluster: PgCluster) -> str:
    """``postgresql://nbt:<pw>@127.0.0.1:PORT/nbtrace_test`` on the throwaway cluster."""
    return pg_cluster.url(TEST_DB)


@pytest.fixture
def pg_store_url(pg_cluster: PgCluster) -> Iterator[str]:
    """A fresh, empty database for one test; dropped (connections forced out) afterwards."""
    name = pg_cluster.create_database()
    try:
        yield pg_cluster.url(name)
    finally:
        pg_cluster.drop_database(name)

"""The store's schema as ordered, named migrations shared by every SQL backend.

Why one list for both engines: a team moving runs between a personal SQLite file and the team
PostgreSQL server must find the same tables. Statements are written once in the common subset
of SQLite and PostgreSQL; the few type names that differ are placeholders filled per dialect
(``{blob}``). Every statement is idempotent (``IF NOT EXISTS``) so that a migration raced by a
second process is harmless; backends still serialize application (a file lock for SQLite, an
advisory lock for PostgreSQL).

Times are stored as seconds since the epoch (double precision): sortable, comparable, and
converted to ISO 8601 UTC only at the edge.
"""

from __future__ import annotations

import re

#: Prefix of a statement that only SQLite runs (PostgreSQL skips it; see :func:`statements`).
SQLITE_ONLY = "-- sqlite only\n"

MIGRATIONS: list[tuple[str, list[str]]] = [
    (
        "0001_initial",
        [
            """CREATE TABLE IF NOT EXISTS kernels (
                id TEXT PRIMARY KEY,
                started_at DOUBLE PRECISION NOT NULL,
                host TEXT, user_name TEXT, pid INTEGER,
                kernel_name TEXT, executable TEXT, notebook_path TEXT,
                seeds TEXT
            )""",
            """CREATE TABLE IF NOT EXISTS runs (
                id TEXT PRIMARY KEY,
                name TEXT NOT NULL,
                experiment TEXT,
                status TEXT NOT NULL,
                started_at DOUBLE PRECISION NOT NULL,
                ended_at DOUBLE PRECISION,
                heartbeat_at DOUBLE PRECISION,
                user_name TEXT, host TEXT, pid INTEGER,
                kernel_id TEXT, kernel_name TEXT,
                start_seq INTEGER, cell_index INTEGER, last_seq INTEGER,
                notebook_path TEXT, notebook_hash TEXT,
                env_hash TEXT, packages_hash TEXT, git_hash TEXT,
                imported TEXT, env_vars TEXT, resources TEXT,
                note TEXT, parent TEXT, verdict TEXT,
                extra TEXT
            )""",
            """CREATE TABLE IF NOT EXISTS sources (
                sha256 TEXT PRIMARY KEY,
                source TEXT NOT NULL
            )""",
            """CREATE TABLE IF NOT EXISTS cells (
                kernel_id TEXT NOT NULL,
                seq INTEGER NOT NULL,
                execution_count INTEGER,
                cell_id TEXT,
                sha256 TEXT NOT NULL,
                error INTEGER NOT NULL DEFAULT 0,
                PRIMARY KEY (kernel_id, seq)
            )""",
            """CREATE TABLE IF NOT EXISTS blobs (
                hash TEXT PRIMARY KEY,
                kind TEXT NOT NULL,
                data TEXT NOT NULL
            )""",
            """CREATE TABLE IF NOT EXISTS package_versions (
                set_hash TEXT NOT NULL,
                name TEXT NOT NULL,
                version TEXT NOT NULL,
                version_key TEXT NOT NULL,
                PRIMARY KEY (set_hash, name)
            )""",
            """CREATE TABLE IF NOT EXISTS params (
                run_id TEXT NOT NULL,
                key TEXT NOT NULL,
                value TEXT NOT NULL,
                num DOUBLE PRECISION,
                text TEXT,
                PRIMARY KEY (run_id, key)
            )""",
            """CREATE TABLE IF NOT EXISTS metrics (
                run_id TEXT NOT NULL,
                key TEXT NOT NULL,
                seq BIGINT NOT NULL,
                step BIGINT,
                ts DOUBLE PRECISION NOT NULL,
                value DOUBLE PRECISION,
                special TEXT,
                PRIMARY KEY (run_id, key, seq)
            )""",
            """CREATE TABLE IF NOT EXISTS latest_metrics (
                run_id TEXT NOT NULL,
                key TEXT NOT NULL,
                seq BIGINT NOT NULL,
                step BIGINT,
                ts DOUBLE PRECISION NOT NULL,
                value DOUBLE PRECISION,
                special TEXT,
                PRIMARY KEY (run_id, key)
            )""",
            """CREATE TABLE IF NOT EXISTS tags (
                run_id TEXT NOT NULL,
                key TEXT NOT NULL,
                value TEXT NOT NULL,
                PRIMARY KEY (run_id, key)
            )""",
            """CREATE TABLE IF NOT EXISTS artifact_blobs (
                sha256 TEXT PRIMARY KEY,
                data {blob} NOT NULL
            )""",
            """CREATE TABLE IF NOT EXISTS artifacts (
                run_id TEXT NOT NULL,
                name TEXT NOT NULL,
                sha256 TEXT NOT NULL,
                size BIGINT NOT NULL,
                PRIMARY KEY (run_id, name)
            )""",
            """CREATE TABLE IF NOT EXISTS inputs (
                run_id TEXT NOT NULL,
                path TEXT NOT NULL,
                sha256 TEXT NOT NULL,
                size BIGINT NOT NULL,
                PRIMARY KEY (run_id, path)
            )""",
            """CREATE TABLE IF NOT EXISTS jobs (
                id TEXT PRIMARY KEY,
                run_id TEXT NOT NULL,
                state TEXT NOT NULL,
                new_run TEXT,
                verdict TEXT,
                progress TEXT,
                error TEXT,
                request TEXT,
                owner TEXT,
                created_at DOUBLE PRECISION NOT NULL,
                updated_at DOUBLE PRECISION NOT NULL
            )""",
        ],
    ),
    (
        "0002_indexes",
        [
            "CREATE INDEX IF NOT EXISTS runs_started ON runs (started_at)",
            "CREATE INDEX IF NOT EXISTS runs_status ON runs (status, started_at)",
            "CREATE INDEX IF NOT EXISTS runs_name ON runs (name)",
            "CREATE INDEX IF NOT EXISTS runs_experiment ON runs (experiment)",
            "CREATE INDEX IF NOT EXISTS runs_parent ON runs (parent)",
            "CREATE INDEX IF NOT EXISTS runs_user ON runs (user_name)",
            "CREATE INDEX IF NOT EXISTS params_key_num ON params (key, num)",
            "CREATE INDEX IF NOT EXISTS params_key_text ON params (key, text)",
            "CREATE INDEX IF NOT EXISTS latest_key_value ON latest_metrics (key, value)",
            "CREATE INDEX IF NOT EXISTS tags_key_value ON tags (key, value)",
            "CREATE INDEX IF NOT EXISTS pkg_name ON package_versions (name, version)",
            "CREATE INDEX IF NOT EXISTS jobs_state ON jobs (state)",
        ],
    ),
    (
        # Runs that came from `nbtrace import`: re-executing one needs explicit trust (its
        # code, user and host are only what a file claims), and one imported `running` can
        # be deleted (no kernel here will ever end it). Not part of the export: importing
        # marks the run again in the next store.
        "0003_harden_imported_runs",
        [
            """CREATE TABLE IF NOT EXISTS imported_runs (
                run_id TEXT PRIMARY KEY,
                imported_at DOUBLE PRECISION NOT NULL,
                user_name TEXT, host TEXT
            )""",
        ],
    ),
    (
        # Artifacts stored in 1 MiB chunks (artifact_blobs.data is then empty): kernel and
        # server stream them chunk by chunk instead of holding a whole 200 MB blob per
        # request. Artifacts stored whole before this keep working as they are.
        "0004_harden_artifact_chunks",
        [
            """CREATE TABLE IF NOT EXISTS artifact_chunks (
                sha256 TEXT NOT NULL,
                idx INTEGER NOT NULL,
                data {blob} NOT NULL,
                PRIMARY KEY (sha256, idx)
            )""",
        ],
    ),
    (
        # What a run depended on and what its cells showed (issue 10): one row per run pointing
        # at content-addressed blobs (local modules, data files read, determinism settings),
        # the imported modules taken at the run's end, and one row per executed cell with its
        # output fingerprint. New tables rather than new ``runs`` columns: the runs row stays
        # as it is written by a loop's batch (no UPDATE per run), and export/import can name
        # the new parts as new keys.
        "0005_verdict",
        [
            """CREATE TABLE IF NOT EXISTS run_capture (
                run_id TEXT PRIMARY KEY,
                modules_hash TEXT,
                inputs_hash TEXT,
                determinism_hash TEXT,
                imported TEXT
            )""",
            """CREATE TABLE IF NOT EXISTS cell_outputs (
                kernel_id TEXT NOT NULL,
                seq INTEGER NOT NULL,
                fingerprint TEXT NOT NULL,
                excerpt TEXT,
                data TEXT NOT NULL,
                PRIMARY KEY (kernel_id, seq)
            )""",
        ],
    ),
    (
        # A sweep: one request re-executing a run once per parameter set, its jobs in `jobs`.
        "0006_gateway_sweeps",
        [
            """CREATE TABLE IF NOT EXISTS sweeps (
                id TEXT PRIMARY KEY,
                run_id TEXT NOT NULL,
                state TEXT NOT NULL,
                request TEXT,
                jobs TEXT,
                owner TEXT,
                created_at DOUBLE PRECISION NOT NULL,
                updated_at DOUBLE PRECISION NOT NULL
            )""",
        ],
    ),
    (
        # Nested runs (``start_run(nested=True)``, MLflow's ``mlflow.parentRunId``) link to
        # the run they are nested in through ``nested_in``, apart from ``parent`` (the run a
        # re-execution replays): a re-executed child run has both. The mlflow_* tables hold
        # what only MLflow's client needs (experiment ids and tags, logged models, dataset
        # inputs, model inputs and outputs) for the ``nbtrace:`` tracking store; runs stay
        # nbtrace runs.
        "0007_mlflow",
        [
            "ALTER TABLE runs ADD COLUMN nested_in TEXT",
            "CREATE INDEX IF NOT EXISTS runs_nested_in ON runs (nested_in)",
            """CREATE TABLE IF NOT EXISTS mlflow_experiments (
                id TEXT PRIMARY KEY,
                name TEXT NOT NULL UNIQUE,
                artifact_location TEXT,
                lifecycle_stage TEXT NOT NULL,
                created_at DOUBLE PRECISION NOT NULL,
                updated_at DOUBLE PRECISION NOT NULL,
                tags TEXT NOT NULL
            )""",
            """CREATE TABLE IF NOT EXISTS mlflow_models (
                id TEXT PRIMARY KEY,
                experiment_id TEXT NOT NULL,
                run_id TEXT,
                lifecycle_stage TEXT NOT NULL,
                data TEXT NOT NULL
            )""",
            "CREATE INDEX IF NOT EXISTS mlflow_models_run ON mlflow_models (run_id)",
            """CREATE TABLE IF NOT EXISTS mlflow_io (
                run_id TEXT NOT NULL,
                key TEXT NOT NULL,
                data TEXT NOT NULL,
                PRIMARY KEY (run_id, key)
            )""",
        ],
    ),
    (
        "0008_store_compact",
        # SQLite only (PostgreSQL has no rowid): the tables keyed by (run_id, key[, seq]) become
        # WITHOUT ROWID, so each row lives once, in its primary-key b-tree, instead of in the
        # table and again in the primary key's index. Why: a metric insert writes one b-tree
        # instead of two (the flush of a 10,000-step loop), and a run of the 330-run notebook
        # takes ~180 bytes less. The copy runs once, inside the migration's transaction.
        [
            SQLITE_ONLY + """CREATE TABLE metrics_c (
                run_id TEXT NOT NULL, key TEXT NOT NULL, seq BIGINT NOT NULL, step BIGINT,
                ts DOUBLE PRECISION NOT NULL, value DOUBLE PRECISION, special TEXT,
                PRIMARY KEY (run_id, key, seq)) WITHOUT ROWID""",
            SQLITE_ONLY + "INSERT INTO metrics_c SELECT run_id, key, seq, step, ts, value, special"
            " FROM metrics",
            SQLITE_ONLY + "DROP TABLE metrics",
            SQLITE_ONLY + "ALTER TABLE metrics_c RENAME TO metrics",
            SQLITE_ONLY + """CREATE TABLE latest_metrics_c (
                run_id TEXT NOT NULL, key TEXT NOT NULL, seq BIGINT NOT NULL, step BIGINT,
                ts DOUBLE PRECISION NOT NULL, value DOUBLE PRECISION, special TEXT,
                PRIMARY KEY (run_id, key)) WITHOUT ROWID""",
            SQLITE_ONLY + "INSERT INTO latest_metrics_c SELECT run_id, key, seq, step, ts, value,"
            " special FROM latest_metrics",
            SQLITE_ONLY + "DROP TABLE latest_metrics",
            SQLITE_ONLY + "ALTER TABLE latest_metrics_c RENAME TO latest_metrics",
            SQLITE_ONLY + "CREATE INDEX IF NOT EXISTS latest_key_value ON latest_metrics"
            " (key, value)",
            SQLITE_ONLY + """CREATE TABLE params_c (
                run_id TEXT NOT NULL, key TEXT NOT NULL, value TEXT NOT NULL,
                num DOUBLE PRECISION, text TEXT, PRIMARY KEY (run_id, key)) WITHOUT ROWID""",
            SQLITE_ONLY + "INSERT INTO params_c SELECT run_id, key, value, num, text FROM params",
            SQLITE_ONLY + "DROP TABLE params",
            SQLITE_ONLY + "ALTER TABLE params_c RENAME TO params",
            SQLITE_ONLY + "CREATE INDEX IF NOT EXISTS params_key_num ON params (key, num)",
            SQLITE_ONLY + "CREATE INDEX IF NOT EXISTS params_key_text ON params (key, text)",
            SQLITE_ONLY + """CREATE TABLE tags_c (
                run_id TEXT NOT NULL, key TEXT NOT NULL, value TEXT NOT NULL,
                PRIMARY KEY (run_id, key)) WITHOUT ROWID""",
            SQLITE_ONLY + "INSERT INTO tags_c SELECT run_id, key, value FROM tags",
            SQLITE_ONLY + "DROP TABLE tags",
            SQLITE_ONLY + "ALTER TABLE tags_c RENAME TO tags",
            SQLITE_ONLY + "CREATE INDEX IF NOT EXISTS tags_key_value ON tags (key, value)",
        ],
    ),
]

DIALECT_TYPES = {
    "sqlite": {"blob": "BLOB"},
    "postgresql": {"blob": "BYTEA"},
}


def statements(name: str, dialect: str) -> list[str]:
    """The SQL statements of migration ``name`` for ``dialect``."""
    for mig_name, stmts in MIGRATIONS:
        if mig_name == name:
            return [
                s.removeprefix(SQLITE_ONLY).format(**DIALECT_TYPES[dialect])
                for s in stmts
                if dialect == "sqlite" or not s.startswith(SQLITE_ONLY)
            ]
    raise KeyError(name)


def table_columns(table: str) -> tuple[str, ...]:
    """The columns of ``table`` once every migration ran, in order: those of its ``CREATE
    TABLE``, then those each ``ALTER TABLE ... ADD COLUMN`` adds.

    Why read from the migrations: they are the one list of a table's columns; the statements
    that name every column (a run's ``INSERT`` and ``SELECT``, the import check) take theirs
    from here rather than from a copy that a new migration could leave behind. For tables that
    no migration rebuilds under another name (as ``0008`` does ``metrics``): ``runs``.
    """
    create = f"CREATE TABLE IF NOT EXISTS {table} ("
    added = re.compile(rf"ALTER TABLE {table} ADD COLUMN (\w+)")
    cols: list[str] = []
    for _name, stmts in MIGRATIONS:
        for stmt in stmts:
            if stmt.startswith(create):
                body = re.sub(r"\([^()]*\)", "", stmt[len(create) : stmt.rindex(")")])
                parts = (part.split() for part in body.split(","))
                cols += [p[0] for p in parts if p and p[0] not in _CONSTRAINTS]
            elif m := added.match(stmt):
                cols.append(m.group(1))
    return tuple(cols)


_CONSTRAINTS = frozenset({"PRIMARY", "UNIQUE", "FOREIGN", "CHECK", "CONSTRAINT"})

#: The columns of ``runs``: what a ``run_start`` row and an export document's run may hold.
RUN_COLUMNS = table_columns("runs")

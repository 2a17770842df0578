"""Secrets in captured values (issue 12, item 5), with a real kernel, git and SQLite file.

Given a notebook in a git work tree whose remote carries ``?private_token=``, and allowlisted
environment variables holding DSNs with ``password=``/``Password=``, a webhook URL with a secret
path and pip index URLs with credentials, when a run is recorded, then none of those secrets is
anywhere in the store file; and ``%load_ext`` warns that a cell holding a credential literal is
stored verbatim.
"""

from __future__ import annotations

import shutil
import sqlite3
import subprocess
from pathlib import Path

import pytest

from kernels import run_notebook
from nbtrace.capture.redact import credential_in_code, redact_value
from nbtrace.store import open_store

SECRETS = {
    "DATABASE_DSN": ("host=db.corp user=ana password=Pg-s3cret-1 dbname=ml", "Pg-s3cret-1"),
    "MSSQL_CONN": ("Server=tcp:sql.corp;User Id=sa;Password=Ms s3cret 2;Database=d", "s3cret 2"),
    "HOOK_URL": ("https://hooks.slack.com/services/T0AAA/B0BBB/Zx9Slack3cretPath77", "Zx9Slack"),
    "PIP_INDEX_URL": ("https://bob:Pip-s3cret-3@pypi.corp/simple", "Pip-s3cret-3"),
    "PIP_EXTRA_INDEX_URL": ("https://pypi.corp/simple?token=Pip-s3cret-4", "Pip-s3cret-4"),
}
GIT_SECRET = "glpat-Git5ecret0000000000"


@pytest.mark.skipif(shutil.which("git") is None, reason="git is not installed")
def test_no_captured_value_keeps_a_secret(tmp_path: Path) -> None:
    work = tmp_path / "repo"
    work.mkdir()
    for args in (
        ["init", "-q", "-b", "main"],
        [
            "remote",
            "add",
            "origin",
            f"https://gitlab.corp/o/r.git?private_token={GIT_SECRET}&ref=main",
        ],
    ):
        subprocess.run(["git", *args], cwd=work, check=True)
    db = str(tmp_path / "runs.db")
    env = {name: value for name, (value, _) in SECRETS.items()}
    env["NBTRACE_ENV_ALLOWLIST"] = ",".join(SECRETS)
    cells = [
        'db_password = "Cell-s3cret-9"',
        "%load_ext nbtrace",
        "%track_run secrets\n%end_run",
    ]
    nb = run_notebook(cells, db, work, env=env)
    warned = "".join(o.get("text", "") for o in nb.cells[1].outputs)
    assert "seem to hold a credential" in warned and "verbatim" in warned, warned

    store = open_store(db)
    run = store.get_run(store.list_runs()[0][0]["id"])
    store.close()
    env_vars = run["environment"]["env_vars"]
    assert set(env_vars) == set(SECRETS)  # allowlisted: kept, but masked
    assert env_vars["DATABASE_DSN"] == "host=db.corp user=ana password=*** dbname=ml"
    assert env_vars["MSSQL_CONN"] == "Server=tcp:sql.corp;User Id=sa;Password=***;Database=d"
    assert env_vars["PIP_INDEX_URL"] == "https://pypi.corp/simple"
    assert run["git"]["remote"] == "https://gitlab.corp/o/r.git?private_token=***&ref=main"

    with sqlite3.connect(db) as c:
        c.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    raw = Path(db).read_bytes()
    for _, secret in SECRETS.values():
        assert secret.encode() not in raw, secret
    assert GIT_SECRET.encode() not in raw
    assert b"Cell-s3cret-9" in raw  # a cell's source is stored verbatim: hence the warning


@pytest.mark.parametrize(
    "value,expected",
    [
        ("postgresql://ana:pw@h:5432/db?sslmode=require", "postgresql://h:5432/db?sslmode=require"),
        (
            "jdbc:sqlserver://h;user=sa;password=p w;db=x",
            "jdbc:sqlserver://h;user=sa;password=***;db=x",
        ),
        (
            "https://discord.com/api/webhooks/1234/AbCdTokenPart",
            "https://discord.com/api/webhooks/***",
        ),
        (
            "https://s3.example/b/o?X-Amz-Signature=abc&X-Amz-Date=1",
            "https://s3.example/b/o?X-Amz-Signature=***&X-Amz-Date=1",
        ),
        ("/usr/local/cuda-12.1/bin:/usr/bin", "/usr/local/cuda-12.1/bin:/usr/bin"),
        ("https://pypi.org/simple/", "https://pypi.org/simple/"),
    ],
)
def test_redact_value(value: str, expected: str) -> None:
    assert redact_value(value) == expected


@pytest.mark.parametrize(
    "source,found",
    [
        ('API_KEY = "abcd1234efgh"', True),
        ("conn = psycopg.connect('postgresql://ana:hunter2@db/ml')", True),
        ('token = "ghp_' + "a" * 36 + '"', True),
        ("key = 'AKIA" + "A" * 16 + "'", True),
        ("password = os.environ['PW']", False),
        ("alpha = 0.5\nmodel.fit(X, y)", False),
    ],
)
def test_credential_in_code(source: str, found: bool) -> None:
    assert (credential_in_code(source) is not None) is found

"""Fixtures for the server extension: a real Jupyter server in process (pytest-jupyter).

Why a star import instead of ``pytest_plugins = ["pytest_jupyter.jupyter_server"]``: pytest
refuses ``pytest_plugins`` in a conftest below the root one when the whole suite runs
(``pytest`` from the repository root), and the fixtures and hooks are only needed here. This
directory is a package (``__init__.py``) so its conftest does not take the module name
``conftest`` from ``tests/conftest.py``. The tests take ``run_notebook`` from here: it is
``tests/kernels.py``'s, the helpers every test folder shares (``tests/`` is on ``sys.path``).
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
import time
from pathlib import Path
from typing import Any

import pytest
from pytest_jupyter.jupyter_server import *  # noqa: F401,F403 - jp_fetch, jp_serverapp, ...
from tornado.httpclient import HTTPClientError

from kernels import ROOT, run_notebook

OPENAPI = ROOT / "openapi.yaml"


# ------------------------------------------------------------------------------- the server
@pytest.fixture
def server_db(tmp_path: Path) -> str:
    """The store the server under test reads (override per module to share one)."""
    return str(tmp_path / "server-runs.db")


@pytest.fixture
def extra_config() -> dict[str, Any]:
    """More ServerApp settings for one test (parametrize ``extra_config`` to set them)."""
    return {}


@pytest.fixture
def nbtrace_config() -> dict[str, Any]:
    """More ``c.NBTrace`` settings for one test (parametrize ``nbtrace_config``)."""
    return {}


@pytest.fixture
def jp_server_config(server_db: str, extra_config: dict[str, Any],
                     nbtrace_config: dict[str, Any]) -> dict[str, Any]:
    return {
        "ServerApp": {
            "jpserver_extensions": {"nbtrace": True, "jupyter_server_terminals": False},
            "allow_unauthenticated_access": False,
            **extra_config,
        },
        "NBTrace": {"db_path": server_db, **nbtrace_config},
    }


@pytest.fixture
def jp_serverapp(jp_server_config: Any, jp_argv: Any, jp_configurable_serverapp: Any,
                 jp_asyncio_loop: Any) -> Any:
    """pytest-jupyter's server, and afterwards: the extension's unload (jobs cancelled, store
    closed) before the test's folder goes (the server's cleanup would run it too, later)."""
    from nbtrace.server import _unload_jupyter_server_extension

    app = jp_configurable_serverapp(config=jp_server_config, argv=jp_argv)
    yield app
    if not jp_asyncio_loop.is_closed():
        jp_asyncio_loop.run_until_complete(_unload_jupyter_server_extension(app))


def api(*parts: str) -> tuple[str, ...]:
    """Path parts of an nbtrace endpoint, for ``jp_fetch``."""
    return ("nbtrace", "api", *parts)


async def fetch_json(jp_fetch: Any, *parts: str, **kw: Any) -> tuple[int, Any, Any]:
    """``(status, parsed strict JSON or None, response)``; HTTP errors are returned, not raised."""
    kw.setdefault("raise_error", False)
    resp = await jp_fetch(*api(*parts), **kw)
    body = resp.body.decode("utf-8") if resp.body else ""
    data = strict_loads(body) if body and "json" in resp.headers.get("Content-Type", "") else None
    return resp.code, data, resp


def strict_loads(text: str) -> Any:
    """``json.loads`` that refuses NaN/Infinity literals, like a browser's ``JSON.parse``."""

    def refuse(const: str) -> Any:
        raise ValueError(f"non-strict JSON constant {const}")

    return json.loads(text, parse_constant=refuse)


def post_json(body: Any) -> dict[str, Any]:
    return {
        "method": "POST",
        "body": json.dumps(body),
        "headers": {"Content-Type": "application/json"},
    }


async def wait_job(jp_fetch: Any, job_id: str, timeout: float = 90.0) -> dict[str, Any]:
    """Poll ``GET jobs/{id}`` until the job is over."""
    deadline = time.monotonic() + timeout
    while True:
        code, job, _ = await fetch_json(jp_fetch, "jobs", job_id)
        assert code == 200, job
        if job["state"] not in ("queued", "running"):
            return job
        if time.monotonic() > deadline:
            raise AssertionError(f"job {job_id} still {job['state']} after {timeout} s: {job}")
        await asyncio.sleep(0.2)


# ------------------------------------------------------------------------------- OpenAPI
_spec: Any = None


def openapi() -> Any:
    global _spec
    if _spec is None:
        from openapi_core import OpenAPI

        _spec = OpenAPI.from_file_path(str(OPENAPI))
    return _spec


def check_openapi(
    resp: Any, method: str, path: str, query: dict[str, str] | None = None,
    body: Any = None,
) -> None:
    """Validate a response against ``openapi.yaml`` (``path`` relative to ``/nbtrace/api``)."""
    from openapi_core.testing import MockRequest, MockResponse

    request = MockRequest(
        "http://localhost", method.lower(), "/nbtrace/api" + path, args=query or {},
        data=json.dumps(body).encode() if body is not None else None,
    )
    ctype = resp.headers.get("Content-Type", "application/json").split(";")[0]
    response = MockResponse(resp.body or b"", status_code=resp.code, content_type=ctype,
                            headers=dict(resp.headers))
    openapi().validate_response(request, response)


# ------------------------------------------------------------------------------- stores
def copy_db(src: str, dst: str) -> str:
    """A consistent copy of an SQLite store (WAL included) for one test to modify."""
    with sqlite3.connect(src) as a, sqlite3.connect(dst) as b:
        a.backup(b)
    return dst


def synthetic_run(store: Any, run_id: str, *, name: str = "synthetic",
                  notebook_path: str | None = None, cwd: str | None = None,
                  params: dict[str, Any] | None = None,
                  metrics: dict[str, float] | None = None,
                  artifacts: dict[str, bytes] | None = None, end: bool = True) -> str:
    """A finished run written straight through ``store.apply`` (no kernel): fast fixtures."""
    import hashlib

    from nbtrace.jsonutil import param_number, param_to_json

    kernel = "k" + run_id
    now = time.time()
    src = "%load_ext nbtrace"
    sha = hashlib.sha256(src.encode()).hexdigest()
    ops: list[tuple] = [
        ("kernel", kernel, now, "host", "tester", 1, "python3", "/usr/bin/python3",
         notebook_path, "{}"),
        ("source", sha, src),
        ("cell", kernel, 1, 1, None, sha, 0),
        ("run_start", {
            "id": run_id, "name": name, "status": "running", "started_at": now,
            "heartbeat_at": now, "user_name": "tester", "host": "elsewhere", "pid": None,
            "kernel_id": kernel, "start_seq": 1, "cell_index": 0,
            "notebook_path": notebook_path, "extra": json.dumps({"cwd": cwd} if cwd else {}),
        }),
    ]
    for k, v in (params or {}).items():
        text = v if isinstance(v, str) else param_to_json(v)
        ops.append(("param", run_id, k, param_to_json(v), param_number(v), text))
    for i, (k, v) in enumerate((metrics or {}).items(), start=1):
        ops.append(("metric", run_id, k, i, None, now, float(v)))
    for n, data in (artifacts or {}).items():
        ops.append(("artifact", run_id, n, hashlib.sha256(data).hexdigest(), len(data), data))
    if end:
        ops.append(("run_end", run_id, "finished", now + 0.5, 1, "{}"))
    store.apply(ops)
    return run_id


__all__ = [
    "run_notebook", "HTTPClientError", "api", "fetch_json", "strict_loads", "post_json", "wait_job",
    "check_openapi", "copy_db", "synthetic_run",
]

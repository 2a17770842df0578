"""The URIs of the MLflow bridge, parsed without importing MLflow.

``nbtrace:`` (the default store: ``NBTRACE_DB`` or the Jupyter data dir),
``nbtrace:///abs/path/runs.db``, ``nbtrace:relative/runs.db`` and
``nbtrace+postgresql://user@host/db`` name nbtrace stores for MLflow's client;
``mlflow+<any MLflow tracking URI>`` (``mlflow+file:///…/mlruns``, ``mlflow+sqlite:///…``,
``mlflow+postgresql://…``, ``mlflow+http(s)://…``) names an MLflow store for
``nbtrace import`` / ``nbtrace export --to``.
"""

from __future__ import annotations

import os
from pathlib import Path
from urllib.parse import unquote, urlparse

from ..config import is_postgres_url, jupyter_data_dir, resolve_db_location
from ..errors import UsageError, one_line

MLFLOW_PREFIX = "mlflow+"


def location_from_uri(uri: str) -> str:
    """The nbtrace store location an ``nbtrace:`` tracking URI names."""
    if uri.startswith(("nbtrace+postgresql:", "nbtrace+postgres:")):
        return uri[len("nbtrace+") :]
    if not uri.startswith("nbtrace:"):
        raise UsageError(f"not an nbtrace tracking URI: {one_line(uri, 80)!r}")
    rest = uri[len("nbtrace:") :]
    if not rest:
        return resolve_db_location(None)
    if rest.startswith("//"):
        parsed = urlparse(uri)
        if parsed.netloc not in ("", "localhost"):
            raise UsageError(
                f"nbtrace: URIs name a local file (nbtrace:///path/runs.db), not host"
                f" {one_line(parsed.netloc, 60)!r}; use nbtrace+postgresql:// for a server"
            )
        return unquote(parsed.path)
    return os.path.abspath(unquote(rest))


def default_artifact_root(location: str) -> str:
    """MLflow's artifact root for a store: ``mlartifacts`` beside a SQLite file, else in the
    Jupyter data dir (a team store's users should set their own shared root)."""
    if is_postgres_url(location):
        folder = jupyter_data_dir() / "nbtrace" / "mlartifacts"
    else:
        folder = Path(os.path.expanduser(location)).resolve().parent / "mlartifacts"
    return folder.as_uri()


def mlflow_tracking_uri(uri: str) -> str:
    """The MLflow tracking URI inside ``mlflow+URI`` (``mlflow+sqlite:///x`` → ``sqlite:///x``)."""
    if not uri.startswith(MLFLOW_PREFIX) or len(uri) == len(MLFLOW_PREFIX):
        raise UsageError(
            f"expected mlflow+URI (mlflow+file:///path/mlruns, mlflow+sqlite:///path/mlflow.db,"
            f" mlflow+postgresql://..., mlflow+http://host:5000), got {one_line(uri, 80)!r}"
        )
    return uri[len(MLFLOW_PREFIX) :]


def is_mlflow_uri(value: str) -> bool:
    """Whether a CLI argument names an MLflow store rather than a file."""
    return value.startswith(MLFLOW_PREFIX)

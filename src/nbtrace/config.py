"""Where the store lives and the few settings every adapter shares.

Location, first that is set: an explicit ``--db`` / ``c.NBTrace.db_path`` value, the
``NBTRACE_DB`` environment variable, ``<jupyter data dir>/nbtrace/runs.db``. A value starting
with ``postgresql://`` or ``postgres://`` selects the team store.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path


def jupyter_data_dir() -> Path:
    """Jupyter's per-user data dir, computed like ``jupyter_core.paths`` without importing it.

    Why not import jupyter_core: ``%load_ext nbtrace`` must stay light; the logic is small.
    """
    env = os.environ.get("JUPYTER_DATA_DIR")
    if env:
        return Path(env)
    home = Path(os.path.expanduser("~"))
    if sys.platform == "darwin":
        return home / "Library" / "Jupyter"
    if os.name == "nt":
        appdata = os.environ.get("APPDATA")
        return Path(appdata) / "jupyter" if appdata else home / ".jupyter" / "data"
    xdg = os.environ.get("XDG_DATA_HOME") or str(home / ".local" / "share")
    return Path(xdg) / "jupyter"


def default_db_location() -> str:
    """The default SQLite file path (not created here)."""
    return str(jupyter_data_dir() / "nbtrace" / "runs.db")


def resolve_db_location(explicit: str | None = None) -> str:
    """The store location to use: explicit value, ``NBTRACE_DB``, then the default."""
    for value in (explicit, os.environ.get("NBTRACE_DB")):
        if value:
            return value
    return default_db_location()


def is_postgres_url(location: str) -> bool:
    """True when ``location`` names a PostgreSQL server rather than a SQLite file."""
    return location.startswith(("postgresql://", "postgres://"))


def heartbeat_timeout() -> float:
    """Seconds without a heartbeat after which a running run reads as crashed (other hosts)."""
    try:
        return max(5.0, float(os.environ.get("NBTRACE_HEARTBEAT_TIMEOUT", "120")))
    except ValueError:
        return 120.0


def heartbeat_interval() -> float:
    """Seconds between heartbeats of an active run (a quarter of the timeout, at most 30)."""
    return min(30.0, heartbeat_timeout() / 4)


def busy_timeout() -> float:
    """Seconds a SQLite writer waits for another's lock (``NBTRACE_BUSY_TIMEOUT``, default 15).

    A kernel's own thread never waits this long (see :mod:`nbtrace.writer`); its background
    writer warns once a lock has been held this long.
    """
    try:
        return max(0.05, float(os.environ.get("NBTRACE_BUSY_TIMEOUT", "15")))
    except ValueError:
        return 15.0

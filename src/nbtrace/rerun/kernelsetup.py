"""The hidden first cell of a hosted replay: what the replay needs, sent through the kernel.

Why a cell and not environment variables: a replay kernel started through a Jupyter server's
kernel manager may run on a gateway (Jupyter Kernel or Enterprise Gateway), which passes only
``KERNEL_``-prefixed or allowlisted variables to the kernel it starts, and may start it on
another machine. The one channel that always reaches the kernel is the kernel protocol itself.
So the engine executes :func:`setup_code` silently (``silent=True``: IPython then fires no
``pre_run_cell`` and keeps no history, so the replay's own cell count is unchanged) before the
recorded cells. It sets the plan's settings in the kernel's process environment (where
nbtrace's kernel side reads them when the replayed ``%load_ext nbtrace`` runs), moves to the
run's folder, and checks that the kernel reaches the same store as the server: an SQLite file
that only the server can see would give a run that never appears, so it is refused instead.

:func:`apply` and :func:`finish` run *inside the kernel*; the rest runs in the server or CLI.
"""

from __future__ import annotations

import json
import os
import socket
from collections.abc import Mapping
from typing import Any

from ..errors import NBTraceError, ReplaySetupError, one_line

#: Variables the setup removes from the kernel's environment unless the plan sets them: a
#: gateway kernel inherits the gateway's environment, which may come from an earlier replay.
CLEARED = (
    "NBTRACE_REPLAY",
    "NBTRACE_SEEDS",
    "NBTRACE_NOTEBOOK",
    "NBTRACE_KERNEL_NAME",
    "JPY_SESSION_NAME",
)

#: The server's own nbtrace settings a replay kernel gets too (what a local kernel inherits).
FORWARDED = (
    "NBTRACE_ENV_ALLOWLIST",
    "NBTRACE_SEED_RNG",
    "NBTRACE_FLUSH_INTERVAL",
    "NBTRACE_HEARTBEAT_TIMEOUT",
    "NBTRACE_BUSY_TIMEOUT",
)


def payload(
    env: Mapping[str, str], cwd: str, parent: str, base: Mapping[str, str] | None = None
) -> dict[str, Any]:
    """What :func:`apply` needs: the plan's variables (plus forwarded settings), the folder,
    and the source run (whose presence proves the kernel sees the server's store)."""
    source = os.environ if base is None else base
    full = {k: source[k] for k in FORWARDED if k in source}
    full.update(env)
    return {"env": full, "cwd": cwd, "parent": parent}


def setup_code(data: Mapping[str, Any]) -> str:
    """The source of the hidden setup cell for ``data`` (a :func:`payload`)."""
    text = json.dumps(json.dumps(dict(data)))
    return (
        "def _nbtrace_setup():\n"
        "    import json\n"
        "    try:\n"
        "        from nbtrace.rerun.kernelsetup import apply\n"
        "    except ImportError as exc:\n"
        "        raise RuntimeError('nbtrace (this version or newer) is not installed'\n"
        "                           ' in this kernel\\'s environment: ' + str(exc)) from None\n"
        f"    apply(json.loads({text}))\n"
        "_nbtrace_setup()\n"
        "del _nbtrace_setup\n"
    )


#: The hidden last cell: end the replayed run and write everything before the kernel is shut
#: down (a gateway may stop a kernel without waiting for its exit handlers).
FINISH_CODE = (
    "def _nbtrace_finish():\n"
    "    try:\n"
    "        from nbtrace.rerun.kernelsetup import finish\n"
    "    except ImportError:\n"
    "        return\n"
    "    finish()\n"
    "_nbtrace_finish()\n"
    "del _nbtrace_finish\n"
)


def apply(data: Mapping[str, Any]) -> None:
    """In the kernel: take the replay's settings, move to its folder, check the store."""
    host = socket.gethostname()
    cwd = str(data.get("cwd") or "")
    if not os.path.isdir(cwd):
        raise ReplaySetupError(
            f"the run's folder {one_line(cwd, 200)} does not exist where the kernel runs"
            f" (host {host})"
        )
    env = {str(k): str(v) for k, v in (data.get("env") or {}).items()}
    for name in CLEARED:
        if name not in env:
            os.environ.pop(name, None)
    os.environ.update(env)
    os.chdir(cwd)
    check_store(env.get("NBTRACE_DB", ""), str(data.get("parent") or ""), host)


def check_store(location: str, parent: str, host: str) -> None:
    """Refuse a store this kernel cannot reach, or one other than the server's."""
    from ..config import is_postgres_url
    from ..errors import NotFoundError
    from ..store import open_store

    if not is_postgres_url(location) and not os.path.isfile(location):
        raise ReplaySetupError(
            f"the kernel (host {host}) cannot reach the SQLite store {one_line(location, 200)}"
            " that the server uses; a kernel on a gateway needs a store both can reach"
            " (a team store: postgresql://...)"
        )
    try:
        store = open_store(location)
    except NBTraceError as exc:
        raise ReplaySetupError(
            f"the kernel (host {host}) cannot open the server's store: {one_line(exc, 300)}"
        ) from None
    try:
        store.resolve_run_id(parent)
    except NotFoundError:
        raise ReplaySetupError(
            f"the store the kernel (host {host}) opens at that location is not the server's"
            f" (run {parent} is not in it)"
        ) from None
    finally:
        store.close()


def finish() -> None:
    """In the kernel: end the active run, wait for its captures and write everything now (the
    replay is over). Raises when something could not be written yet: the kernel must then be
    shut down gracefully, so that its exit handlers retry or spool it; when this returns,
    the kernel holds nothing unwritten and may be stopped at once."""
    from .. import api

    tracker = api._tracker
    if tracker is None:
        return
    if not tracker.drain():
        raise RuntimeError("the replay's run is not all written yet")

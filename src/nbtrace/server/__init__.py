"""The Jupyter server extension: nbtrace's REST API and re-execution jobs.

Enabled by ``jupyter-config/server-config/nbtrace.json`` (installed into
``etc/jupyter/jupyter_server_config.d``); configured with ``c.NBTrace.*``. The store is the one
the kernels write (``c.NBTrace.db_path``, else ``NBTRACE_DB``, else the default file), so the
sidebar sees runs as they are logged.

The server finds this module through ``nbtrace._jupyter_server_extension_points``. Its life:
:func:`_load_jupyter_server_extension` opens the store, starts the job and sweep managers and
registers the routes; :func:`_unload_jupyter_server_extension` cancels the jobs and closes the
store, run by the server's own shutdown (``ServerApp.cleanup_extensions``).
"""

from __future__ import annotations

from typing import Any

from traitlets import Float, Int, Unicode, default, validate
from traitlets.config import Configurable

from ..config import resolve_db_location
from ..errors import NBTraceError

__all__ = ["NBTrace", "_load_jupyter_server_extension", "_unload_jupyter_server_extension"]


class NBTrace(Configurable):
    """nbtrace server settings (``c.NBTrace.<name>`` in ``jupyter_server_config.py``)."""

    db_path = Unicode(
        help="Store location: an SQLite file path or a postgresql:// URL. Default: the"
        " NBTRACE_DB environment variable, else <jupyter data dir>/nbtrace/runs.db.",
    ).tag(config=True)

    tolerance = Float(
        1e-9,
        help="Relative tolerance under which a re-executed metric counts as within_tolerance.",
    ).tag(config=True)

    max_concurrent_jobs = Int(
        1, help="How many re-executions may run at the same time (each starts a kernel)."
    ).tag(config=True)

    cell_timeout = Float(
        0.0, help="Seconds a replayed cell may run before the re-execution fails (0: no limit)."
    ).tag(config=True)

    max_parallel_reruns = Int(
        help="How many kernels sweeps may hold at once, all sweeps together (a sweep's own"
        " 'parallel' is capped by it). Default: the cores free on this machine (cores minus"
        " the load average, at least 1); with a gateway, twice the cores (at least 4), since"
        " the kernels run there.",
    ).tag(config=True)

    @default("max_parallel_reruns")
    def _max_parallel_default(self) -> int:
        gateway = getattr(getattr(self.parent, "gateway_config", None), "gateway_enabled", False)
        from ..rerun.hosts import default_parallel

        return default_parallel(bool(gateway))

    @validate("max_parallel_reruns")
    def _check_parallel(self, proposal: Any) -> int:
        value = int(proposal["value"])
        if value < 1:
            raise ValueError("NBTrace.max_parallel_reruns must be at least 1")
        return value

    @default("db_path")
    def _db_path_default(self) -> str:
        return resolve_db_location(None)

    @validate("tolerance")
    def _check_tolerance(self, proposal: Any) -> float:
        value = float(proposal["value"])
        if not 0 <= value < 1:
            raise ValueError("NBTrace.tolerance must be in [0, 1)")
        return value

    @validate("max_concurrent_jobs")
    def _check_jobs(self, proposal: Any) -> int:
        value = int(proposal["value"])
        if value < 1:
            raise ValueError("NBTrace.max_concurrent_jobs must be at least 1")
        return value


def _load_jupyter_server_extension(serverapp: Any) -> None:
    """Open the store, recover stale jobs, register the REST API and the shutdown hook."""
    from .routes import api_prefix, setup_route_handlers
    from .state import ExtensionState

    config = NBTrace(parent=serverapp)
    web_app = serverapp.web_app
    root_dir = str(serverapp.root_dir) if getattr(serverapp, "root_dir", None) else None
    state = ExtensionState(config=config, root_dir=root_dir)
    _open(state, serverapp)
    web_app.settings["nbtrace"] = state
    setup_route_handlers(web_app)
    _unload_at_shutdown(serverapp)
    serverapp.log.info(
        "nbtrace | REST API at %s, store %s", api_prefix(web_app),
        state.store.display_location if state.store is not None else "(unavailable)",
    )


def _open(state: Any, serverapp: Any) -> None:
    """Open the store and start the job and sweep managers (all logging to the server's log).

    When the store cannot open, the API still answers (503 with the reason) so the sidebar
    can say what is wrong.
    """
    from ..store import open_store
    from .gateway import server_host
    from .jobs import JobManager, mark_stale_jobs
    from .sweeps import SweepManager

    config, log = state.config, serverapp.log
    try:
        store = open_store(config.db_path)
    except NBTraceError as exc:
        state.store_error = str(exc)
        log.error("nbtrace | cannot open the store: %s", exc)
        return
    state.store = store
    state.jobs = JobManager(
        store,
        max_concurrent=config.max_concurrent_jobs,
        tolerance=config.tolerance,
        cell_timeout=config.cell_timeout,
        root_dir=state.root_dir,
        kernel_spec_manager=getattr(serverapp, "kernel_spec_manager", None),
        host_factory=lambda loop: server_host(serverapp, loop),
        log=log,
    )
    state.sweeps = SweepManager(state.jobs, config.max_parallel_reruns)
    try:
        damaged = store.health_check()  # PRAGMA quick_check, at most once a day per file
    except NBTraceError as exc:
        log.warning("nbtrace | cannot check the store's health: %s", exc)
        damaged = None
    if damaged:
        log.warning("%s", damaged)
    try:
        stale = mark_stale_jobs(store)
    except NBTraceError as exc:
        log.warning("nbtrace | cannot check for stale jobs: %s", exc)
    else:
        if stale:
            log.info("nbtrace | %d job(s) of a previous server marked error", stale)


async def _unload_jupyter_server_extension(serverapp: Any) -> None:
    """Cancel the re-executions (their kernels are interrupted and shut down, within a bound)
    and close the store. Idempotent; run by the server's shutdown (see :func:`_unload_at_shutdown`).
    """
    state = serverapp.web_app.settings.get("nbtrace")
    if state is None or state.stopped:
        return
    serverapp.log.info("nbtrace | stopping: cancelling re-executions, closing the store")
    await state.stop()


def _unload_at_shutdown(serverapp: Any) -> None:
    """Run :func:`_unload_jupyter_server_extension` in the server's own shutdown.

    Why this way: jupyter_server 2 calls a stop hook only for ``ExtensionApp`` extensions
    (``ExtensionApp.stop_extension``, from ``ServerApp.cleanup_extensions``), none for a module
    extension. Wrapping this server's ``cleanup_extensions`` runs the unload where the server
    stops its own extensions, before it shuts its kernels down, on the running loop (which the
    replay threads need to stop their kernels), and in pytest-jupyter's cleanup too.
    """
    stop_extensions = serverapp.cleanup_extensions

    async def cleanup_extensions() -> None:
        try:
            await _unload_jupyter_server_extension(serverapp)
        except Exception:  # noqa: BLE001 - the server's other extensions must still stop
            serverapp.log.exception("nbtrace | error while stopping")
        await stop_extensions()

    serverapp.cleanup_extensions = cleanup_extensions

"""A sweep from the command line: one run re-executed per parameter set, N kernels at a time.

The server has its own sweep layer over its job queue (``nbtrace.server.sweeps``); this is the
same idea for ``nbtrace sweep``, with no server: a pool of ``parallel`` threads, each running
:func:`~nbtrace.rerun.rerun_run` (a local kernel, or one on the gateway ``host``). Every run is
a child of the source run and carries the tag ``sweep=<id>``.

The sweep and its jobs are recorded as the server records its own (:mod:`.records`, the same
``save_sweep`` / ``save_job`` store calls), owned by the OS user, so ``GET sweeps/{id}`` and
``GET jobs/{id}`` of a server on the same store show a sweep started here, while it runs too.
"""

from __future__ import annotations

import getpass
import itertools
import logging
import secrets
import threading
import time
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from ..errors import NBTraceError, UsageError, one_line
from ..store.base import Store
from .records import Job, Sweep, sweep_state

SWEEP_TAG = "sweep"
MAX_SETS = 256

log = logging.getLogger(__name__)


def check_trust(store: Store, run_id: str, trust: bool, requester: str | None, how: str) -> None:
    """The trust rule of re-execution (:mod:`nbtrace.rerun.trust`) for a whole sweep: a run
    recorded by someone else, or imported, is swept only with explicit trust (checked once, as
    the sweep re-executes the same code for every set)."""
    from .trust import require_trust

    require_trust(store, run_id, trust, requester, how)


def grid_sets(grid: Mapping[str, list[Any]]) -> list[dict[str, Any]]:
    """The cross product of ``grid``'s values, as parameter sets."""
    names = list(grid)
    total = 1
    for n in names:
        total *= max(1, len(grid[n]))
    if total > MAX_SETS:
        raise UsageError(f"the grid makes {total} parameter sets; the limit is {MAX_SETS}")
    return [dict(zip(names, combo)) for combo in itertools.product(*(grid[n] for n in names))]


def run_sweep(
    store: Store,
    ref: str,
    grid: Mapping[str, list[Any]],
    parallel: int | None = None,
    kernel_name: str | None = None,
    timeout: float | None = None,
    host: Any = None,
    progress: Callable[[int, int], None] | None = None,
    trust: bool = False,
) -> dict[str, Any]:
    """Re-execute ``ref`` once per set of ``grid``; ``{"sweep", "runs", "results", ...}``."""
    from . import plan_replay
    from .hosts import default_parallel
    from .replay import validate_overrides

    sets = grid_sets(grid)
    # Checked up front: a bad name or folder fails once, before any kernel starts.
    plan = plan_replay(store, ref, sets[0], kernel_name, host=host)
    for s in sets[1:]:
        validate_overrides(plan.run, s)
    check_trust(store, plan.run["id"], trust, None, "--trust")
    if parallel is None:
        parallel = default_parallel(host is not None and getattr(host, "remote", False))
    if parallel < 1:
        raise UsageError("--parallel must be at least 1")
    parallel = min(parallel, len(sets))
    sweep = Sweep(id=secrets.token_hex(6), source_run=plan.run["id"], owner=_os_user(),
                  sets=sets, parallel=parallel, grid=dict(grid))
    jobs = [Job(id=secrets.token_hex(8), source_run=sweep.source_run, owner=sweep.owner,
                overrides=s, kernel_name=kernel_name, total=len(plan.notebook.cells),
                sweep=sweep.id, tags={SWEEP_TAG: sweep.id}) for s in sets]
    sweep.jobs = [j.id for j in jobs]
    for job in jobs:
        store.save_job(job.row())
    store.save_sweep(sweep.row("queued"))
    done = [0]
    lock = threading.Lock()

    def one(job: Job) -> dict[str, Any]:
        out = _run_job(store, job, kernel_name, timeout, host)
        with lock:
            done[0] += 1
            if progress is not None:
                progress(done[0], len(sets))
        return out

    t0 = time.perf_counter()
    with ThreadPoolExecutor(max_workers=parallel, thread_name_prefix="nbtrace-sweep") as pool:
        results = list(pool.map(one, jobs))
    _save(store.save_sweep, sweep.row(sweep_state([j.state for j in jobs], False)))
    return {
        "sweep": sweep.id,
        "source_run": sweep.source_run,
        "parallel": parallel,
        "tag": {SWEEP_TAG: sweep.id},
        "runs": [r["run"] for r in results if r["run"]],
        "results": results,
        "seconds": round(time.perf_counter() - t0, 3),
    }


def _run_job(store: Store, job: Job, kernel_name: str | None, timeout: float | None,
             host: Any) -> dict[str, Any]:
    """One set of the sweep, its job row kept up to date like a server's; the result line."""
    from . import rerun_run

    def cell_done(done: int, total: int) -> None:
        job.set(done=done, total=total)
        _save(store.save_job, job.row())

    job.set(state="running")
    _save(store.save_job, job.row())
    try:
        result = rerun_run(store, job.source_run, overrides=job.overrides,
                           kernel_name=kernel_name, timeout=timeout, host=host, tags=job.tags,
                           progress=cell_done, job_id=job.id)
    except NBTraceError as exc:
        job.set(state="error", error=one_line(exc, 500))
        out = {"run": None, "status": "failed", "error": one_line(exc, 300)}
    else:
        job.set(state="done", new_run=result["run"], verdict=result["verdict"])
        out = {"run": result["run"], "status": result["verdict"]["status"],
               "error": result["verdict"].get("error")}
    _save(store.save_job, job.row())
    return {"overrides": job.overrides, **out}


def _save(save: Callable[[dict[str, Any]], None], row: dict[str, Any]) -> None:
    """Record a job's or the sweep's state: best effort, the runs are what the sweep makes."""
    try:
        save(row)
    except NBTraceError as exc:
        log.debug("nbtrace: could not record the state of %s: %s", row.get("id"), exc)


def _os_user() -> str | None:
    """Whose sweep this is: the OS user, the name a local server gives its token user."""
    try:
        return getpass.getuser()
    except Exception:  # noqa: BLE001 - no passwd entry in some containers
        return None

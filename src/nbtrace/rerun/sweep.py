"""A sweep from the command line: one run re-executed per parameter set, N kernels at a time.

The server has its own sweep layer over its job queue (``nbtrace.server.sweeps``); this is the
same idea for ``nbtrace sweep``, with no server: a pool of ``parallel`` threads, each running
:func:`~nbtrace.rerun.rerun_run` (a local kernel, or one on the gateway ``host``). Every run is
a child of the source run and carries the tag ``sweep=<id>``.
"""

from __future__ import annotations

import itertools
import secrets
import threading
import time
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from ..errors import NBTraceError, UsageError, one_line
from ..store.base import Store

SWEEP_TAG = "sweep"
MAX_SETS = 256


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
    from . import plan_replay, rerun_run
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
    sweep_id = secrets.token_hex(6)
    tags = {SWEEP_TAG: sweep_id}
    done = [0]
    lock = threading.Lock()

    def one(overrides: dict[str, Any]) -> dict[str, Any]:
        try:
            result = rerun_run(
                store,
                plan.run["id"],
                overrides=overrides,
                kernel_name=kernel_name,
                timeout=timeout,
                host=host,
                tags=tags,
            )
            out = {
                "overrides": overrides,
                "run": result["run"],
                "status": result["verdict"]["status"],
                "error": result["verdict"].get("error"),
            }
        except NBTraceError as exc:
            out = {
                "overrides": overrides,
                "run": None,
                "status": "failed",
                "error": one_line(exc, 300),
            }
        with lock:
            done[0] += 1
            if progress is not None:
                progress(done[0], len(sets))
        return out

    t0 = time.perf_counter()
    with ThreadPoolExecutor(
        max_workers=min(parallel, len(sets)), thread_name_prefix="nbtrace-sweep"
    ) as pool:
        results = list(pool.map(one, sets))
    return {
        "sweep": sweep_id,
        "source_run": plan.run["id"],
        "parallel": min(parallel, len(sets)),
        "tag": tags,
        "runs": [r["run"] for r in results if r["run"]],
        "results": results,
        "seconds": round(time.perf_counter() - t0, 3),
    }

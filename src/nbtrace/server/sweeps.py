"""Sweeps: one run re-executed once per parameter set, at most ``parallel`` kernels at a time.

A sweep is one object over ordinary re-execution jobs: each job replays the source run with one
parameter set, so its run is a child of the source run (its ``parent``), and carries the tag
``sweep=<id>`` from its start, so the runs table lists a sweep's runs together while it runs
(``tags.sweep = '<id>'``). The jobs are not put on the server's single-rerun queue: the sweep
runs them itself, holding one of its ``parallel`` slots and one of the server's
``max_parallel_reruns`` slots (shared by every sweep) per running job. On a gateway each job's
kernel is one of the gateway's, so ``parallel`` is how many gateway kernels the sweep holds.

Why the state is computed from the jobs rather than stored: the jobs' rows already say
everything (and survive a restart); the ``sweeps`` row keeps the request, the job ids and the
owner, and its state is only a cache refreshed when the sweep ends.
"""

from __future__ import annotations

import asyncio
import itertools
import secrets
from collections.abc import Mapping
from typing import Any

from ..errors import ForbiddenError, NotFoundError, UsageError, one_line
from ..rerun.records import Sweep, sweep_state
from ..rerun.sweep import check_trust
from .jobs import EVERYONE, JobManager, Viewer, _iso, job_view

#: The most parameter sets one sweep may have (each is a kernel start).
MAX_SETS = 256
#: The tag every run of a sweep carries (value: the sweep's id).
SWEEP_TAG = "sweep"


def parameter_sets(grid: Any = None, sets: Any = None) -> list[dict[str, Any]]:
    """The sweep's parameter sets: the cross product of ``grid`` ({name: [values]}), or the
    explicit list ``sets`` ([{name: value}]); one-line errors for anything else."""
    if (grid is None) == (sets is None):
        raise UsageError("a sweep needs either a grid ({name: [values]}) or a list of sets")
    if grid is not None:
        if not isinstance(grid, Mapping) or not grid:
            raise UsageError("grid must be a non-empty object of parameter name: [values]")
        names = list(grid)
        for name in names:
            values = grid[name]
            if not isinstance(values, list) or not values:
                raise UsageError(f"grid values for {one_line(name, 60)!r} must be a non-empty list")
        total = 1
        for name in names:
            total *= len(grid[name])
            if total > MAX_SETS:
                raise UsageError(f"the grid makes more than {MAX_SETS} parameter sets")
        out = [dict(zip(names, combo)) for combo in itertools.product(*(grid[n] for n in names))]
    else:
        if not isinstance(sets, list) or not sets:
            raise UsageError("sets must be a non-empty list of {name: value} objects")
        if len(sets) > MAX_SETS:
            raise UsageError(f"a sweep may have at most {MAX_SETS} parameter sets")
        if not all(isinstance(s, Mapping) and s for s in sets):
            raise UsageError("every parameter set must be a non-empty object of name: value")
        out = [dict(s) for s in sets]
    return out


class SweepManager:
    """Starts sweeps over a :class:`JobManager` and answers for them."""

    def __init__(self, jobs: JobManager, max_parallel: int) -> None:
        self.jobs = jobs
        self.max_parallel = max(1, int(max_parallel))
        self._slots: asyncio.Semaphore | None = None
        self._live: dict[str, Sweep] = {}
        #: The sweeps' driving tasks until they end (their last save included).
        self._tasks: set[asyncio.Task[None]] = set()

    async def submit(
        self,
        ref: str,
        sets: list[dict[str, Any]],
        parallel: int | None,
        kernel_name: str | None,
        owner: str | None,
        grid: dict[str, Any] | None = None,
        trust: bool = False,
    ) -> Sweep:
        """Validate every parameter set against the run (at once), record the sweep and its
        jobs, and start it; ``parallel`` is capped by ``max_parallel_reruns``."""
        from ..rerun import plan_replay
        from ..rerun.replay import validate_overrides

        store, jobs = self.jobs.store, self.jobs
        plan = await asyncio.to_thread(
            plan_replay,
            store,
            ref,
            sets[0],
            kernel_name,
            jobs.root_dir,
            owner,
            kernel_spec_manager=jobs.kernel_spec_manager,
            host=jobs.host,
        )
        clean = [plan.overrides] + [validate_overrides(plan.run, s) for s in sets[1:]]
        await asyncio.to_thread(check_trust, store, plan.run["id"], trust, owner, '"trust": true')
        if parallel is None:
            parallel = self.max_parallel
        sweep = Sweep(
            id=secrets.token_hex(6),
            source_run=plan.run["id"],
            owner=owner,
            sets=clean,
            parallel=max(1, min(int(parallel), self.max_parallel)),
            grid=grid,
        )
        tags = {SWEEP_TAG: sweep.id}
        for overrides in clean:
            job = await jobs.add(
                sweep.source_run,
                overrides,
                kernel_name,
                owner,
                len(plan.notebook.cells),
                sweep=sweep.id,
                tags=tags,
                queue=False,
            )
            sweep.jobs.append(job.id)
        await asyncio.to_thread(store.save_sweep, sweep.row("queued"))
        self._live[sweep.id] = sweep
        sweep.task = asyncio.ensure_future(self._drive(sweep))
        self._tasks.add(sweep.task)
        sweep.task.add_done_callback(self._tasks.discard)
        return sweep

    async def _drive(self, sweep: Sweep) -> None:
        """Run the sweep's jobs, ``parallel`` at a time (and within the server's limit)."""
        if self._slots is None:
            self._slots = asyncio.Semaphore(self.max_parallel)
        own = asyncio.Semaphore(sweep.parallel)
        slots = self._slots

        async def one(job_id: str) -> None:
            async with own, slots:
                job = self.jobs.live(job_id)
                if job is not None and not sweep.cancelled:
                    await self.jobs.run_job(job)

        try:
            await asyncio.gather(*(one(j) for j in sweep.jobs))
        finally:
            self._live.pop(sweep.id, None)
            try:
                view = await self.view(sweep)
                await asyncio.to_thread(self.jobs.store.save_sweep, sweep.row(view["state"]))
            except Exception:  # noqa: BLE001 - the store closed (shutdown): the jobs say it all
                self.jobs.log.debug(
                    "nbtrace: could not save the end of sweep %s", sweep.id, exc_info=True
                )

    def shutdown(self) -> None:
        """Stop starting jobs of every sweep (at shutdown; the running jobs are cancelled by
        the job manager)."""
        for sweep in list(self._live.values()):
            sweep.cancelled = True

    async def wait(self, grace: float) -> None:
        """Wait up to ``grace`` seconds for the sweeps to save their end (after a shutdown)."""
        if self._tasks:
            await asyncio.wait(list(self._tasks), timeout=grace)

    async def view(self, sweep: Sweep | dict[str, Any]) -> dict[str, Any]:
        """The public JSON of a sweep (live or stored)."""
        if isinstance(sweep, Sweep):
            row = sweep.row("running")
        else:
            row = sweep
        views = []
        for job_id in row.get("jobs") or []:
            try:
                views.append(await self.jobs.get(job_id))
            except NotFoundError:
                continue
        request = row.get("request") or {}
        states = [v["state"] for v in views]
        state = sweep_state(states, bool(request.get("cancelled")))
        over = [s for s in states if s not in ("queued", "running")]
        return {
            "id": row["id"],
            "source_run": row["run_id"],
            "state": state,
            "progress": {
                "done": len(over),
                "total": len(views),
                "running": states.count("running"),
                "failed": sum(1 for s in states if s == "error"),
            },
            "parallel": int(request.get("parallel") or 1),
            "grid": request.get("grid"),
            "sets": request.get("sets") or [],
            "jobs": views,
            "runs": [v["run"] for v in views if v.get("run")],
            "tag": {SWEEP_TAG: row["id"]},
            "owner": row.get("owner"),
            "created_at": _iso(row.get("created_at")),
        }

    async def _find(self, sweep_id: str, viewer: Viewer) -> Sweep | dict[str, Any]:
        if not sweep_id or len(sweep_id) > 64 or not sweep_id.isalnum():
            raise NotFoundError(f"no sweep with id {one_line(sweep_id, 80)!r}")
        found: Sweep | dict[str, Any] | None = self._live.get(sweep_id)
        if found is None:
            found = await asyncio.to_thread(self.jobs.store.get_sweep, sweep_id)
        owner = found.owner if isinstance(found, Sweep) else found.get("owner")
        if not viewer.sees(owner):
            raise NotFoundError(f"no sweep with id {one_line(sweep_id, 80)!r}")
        return found

    async def get(self, sweep_id: str, viewer: Viewer = EVERYONE) -> dict[str, Any]:
        return await self.view(await self._find(sweep_id, viewer))

    async def cancel(self, sweep_id: str, viewer: Viewer = EVERYONE) -> dict[str, Any]:
        """Cancel every job of the sweep still queued or running."""
        found = await self._find(sweep_id, viewer)
        owner = found.owner if isinstance(found, Sweep) else found.get("owner")
        if not viewer.cancels(owner):
            raise ForbiddenError(f"sweep {sweep_id} was started by {owner}; you may not cancel it")
        if isinstance(found, Sweep):
            found.cancelled = True
            for job_id in found.jobs:
                if self.jobs.live(job_id) is not None:
                    await self.jobs.cancel(job_id)
        return await self.view(found)


__all__ = ["SweepManager", "Sweep", "parameter_sets", "sweep_state", "SWEEP_TAG", "job_view"]

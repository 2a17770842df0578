"""Re-execution jobs: a queue, a few workers, state kept in the store.

Why in the store rather than in memory: the front end polls ``GET jobs/{id}`` across requests
(and page reloads); a server restart must not leave jobs that say ``running`` forever. Each
state change and each cell's progress is saved with :meth:`Store.save_job`; at start, jobs a
previous server process left ``queued`` or ``running`` are marked ``error`` ("server
restarted"). Jobs owned by another live server process on this host are left alone.

Why a daemon thread per running job rather than the default executor: a replay may run for
hours; the executor's threads are joined at interpreter exit, which would hang the server's
shutdown. At shutdown :meth:`JobManager.stop` cancels every job and gives the running ones a
bounded time to interrupt and shut down their kernels; kernels of a replay that outlives it
exit with their parent (ipykernel's parent poller).
"""

from __future__ import annotations

import asyncio
import logging
import os
import secrets
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ..errors import ForbiddenError, NBTraceError, NotFoundError, RerunCancelledError, one_line
from ..rerun.records import Job
from ..store.base import Store

STATES = ("queued", "running", "done", "error", "cancelled")
ACTIVE = ("queued", "running")
MAX_LISTED = 200

#: Where the job manager logs when it is not given the server's log (``serverapp.log``).
default_log = logging.getLogger("nbtrace.server")


def _iso(ts: float | None) -> str | None:
    from ..util import iso

    return iso(ts)


def job_view(row: dict[str, Any]) -> dict[str, Any]:
    """The public JSON of a job row (``GET jobs/{id}``)."""
    request = row.get("request") or {}
    progress = row.get("progress") or {}
    return {
        "id": row["id"],
        "state": row["state"],
        "progress": {"done": int(progress.get("done") or 0),
                     "total": int(progress.get("total") or 0)},
        "run": row.get("new_run"),
        "verdict": row.get("verdict"),
        "error": row.get("error"),
        "source_run": row.get("run_id"),
        "owner": row.get("owner"),
        "overrides": request.get("overrides") or {},
        "kernel_name": request.get("kernel_name"),
        "sweep": request.get("sweep"),
        "created_at": _iso(row.get("created_at")),
        "updated_at": _iso(row.get("updated_at")),
    }


def _pid_alive(pid: Any) -> bool:
    from ..util import pid_alive

    return isinstance(pid, int) and pid_alive(pid)


def mark_stale_jobs(store: Store) -> int:
    """Mark ``error`` the jobs a dead server process left queued or running; returns how many.

    A job whose recorded server is another live process on this host is someone else's and
    stays; a job from another host, or with no server recorded, is stale only when its host is
    this one or unknown (a team store's other servers clean up their own jobs on restart).
    """
    host, me = socket.gethostname(), os.getpid()
    stale = 0
    for row in store.list_jobs(states=list(ACTIVE)):
        server = (row.get("request") or {}).get("server") or {}
        if server.get("host") not in (None, host):
            continue
        pid = server.get("pid")
        if pid is not None and (pid == me or _pid_alive(pid)):
            continue
        row["state"] = "error"
        row["error"] = "the server restarted before the job finished"
        row["updated_at"] = time.time()
        store.save_job(row)
        stale += 1
    return stale


RerunFn = Callable[..., dict[str, Any]]


@dataclass(frozen=True)
class Viewer:
    """Who asks about jobs: their Jupyter identity, and whether the server's authorizer lets
    them see (``see_all``) and cancel (``cancel_all``) other identities' jobs and sweeps.

    A job with no owner (recorded before jobs had one) belongs to nobody and is everyone's."""

    user: str | None = None
    see_all: bool = True
    cancel_all: bool = True

    def sees(self, owner: str | None) -> bool:
        return self.see_all or owner is None or owner == self.user

    def cancels(self, owner: str | None) -> bool:
        return self.cancel_all or owner is None or owner == self.user


#: The server itself (tests, shutdown): sees and cancels everything.
EVERYONE = Viewer()


def not_found(job_id: str) -> NotFoundError:
    return NotFoundError(f"no job with id {one_line(job_id, 80)!r}")


class JobManager:
    """Queues re-executions and runs at most ``max_concurrent`` at a time."""

    def __init__(
        self,
        store: Store,
        max_concurrent: int = 1,
        tolerance: float | None = None,
        cell_timeout: float | None = None,
        root_dir: str | None = None,
        kernel_spec_manager: Any = None,
        rerun: RerunFn | None = None,
        host_factory: Callable[[asyncio.AbstractEventLoop], Any] | None = None,
        log: logging.Logger | None = None,
    ) -> None:
        self.store = store
        self.log = log or default_log
        self.max_concurrent = max(1, int(max_concurrent))
        self.tolerance = tolerance
        self.cell_timeout = cell_timeout if cell_timeout and cell_timeout > 0 else None
        self.root_dir = root_dir
        self.kernel_spec_manager = kernel_spec_manager
        self._rerun = rerun
        self._host_factory = host_factory
        self._host: Any = None
        self._live: dict[str, Job] = {}
        self._queue: asyncio.Queue[str] | None = None
        self._workers: list[asyncio.Task[None]] = []
        #: Running jobs (id → a future done once the job's final state is saved).
        self._running: dict[str, asyncio.Future[None]] = {}

    # ------------------------------------------------------------------ requests
    @property
    def host(self) -> Any:
        """The server's kernel manager as a :class:`~nbtrace.rerun.hosts.KernelHost` (made on
        first use, inside the server's running loop), or None: kernels started by nbclient."""
        if self._host is None and self._host_factory is not None:
            self._host = self._host_factory(asyncio.get_running_loop())
        return self._host

    @property
    def remote(self) -> bool:
        """Whether replay kernels start on a gateway."""
        return bool(getattr(self.host, "remote", False))

    async def submit(
        self,
        ref: str,
        overrides: dict[str, Any],
        kernel_name: str | None,
        owner: str | None,
        trust: bool = False,
        sweep: str | None = None,
        tags: dict[str, str] | None = None,
        queue: bool = True,
        repeat: int = 1,
        recorded_modules: bool = False,
    ) -> Job:
        """Validate a request (raising NBTraceError at once), then queue it (a sweep's jobs
        are not queued: the sweep runs them, ``parallel`` at a time).

        A run recorded by another user or host, or imported, is queued only with ``trust``
        (else :class:`~nbtrace.rerun.trust.TrustRequiredError`, a 409), checked after the
        request itself is known to be valid.
        """
        from ..rerun import plan_replay
        from ..rerun.trust import require_trust

        host = self.host
        plan = await asyncio.to_thread(
            plan_replay, self.store, ref, overrides, kernel_name, self.root_dir, owner,
            kernel_spec_manager=self.kernel_spec_manager, host=host,
            recorded_modules=recorded_modules,
        )
        await asyncio.to_thread(
            require_trust, self.store, plan.run["id"], trust, owner, '"trust": true'
        )
        plan.cleanup()
        return await self.add(plan.run["id"], plan.overrides, kernel_name, owner,
                              len(plan.notebook.cells) * repeat, sweep, tags, queue,
                              repeat=repeat, recorded_modules=recorded_modules)

    async def add(self, source_run: str, overrides: dict[str, Any], kernel_name: str | None,
                  owner: str | None, total: int, sweep: str | None = None,
                  tags: dict[str, str] | None = None, queue: bool = True,
                  repeat: int = 1, recorded_modules: bool = False) -> Job:
        """Record an already validated job (and queue it unless ``queue`` is false)."""
        job = Job(
            id=secrets.token_hex(8),
            source_run=source_run,
            owner=owner,
            overrides=overrides,
            kernel_name=kernel_name,
            total=total,
            sweep=sweep,
            tags=dict(tags or {}),
            repeat=repeat,
            recorded_modules=recorded_modules,
        )
        self._live[job.id] = job
        await self._save(job)
        if queue:
            self._ensure_workers()
            assert self._queue is not None
            self._queue.put_nowait(job.id)
        return job

    async def run_job(self, job: Job) -> None:
        """Run a job now, in the caller's task (a sweep's slot), unless it was cancelled."""
        if job.state == "queued" and not job.cancel.is_set():
            await self._run(job)
        else:
            self._live.pop(job.id, None)

    def live(self, job_id: str) -> Job | None:
        return self._live.get(job_id)

    async def get(self, job_id: str, viewer: Viewer = EVERYONE) -> dict[str, Any]:
        """A job's public JSON (live state when this server runs it, else the stored row).

        Another identity's job is "not found" unless ``viewer`` may see every job."""
        job = self._live.get(job_id)
        if job is not None:
            view = job_view(job.row())
        else:
            view = job_view(await asyncio.to_thread(self.store.get_job, _check_id(job_id)))
        if not viewer.sees(view["owner"]):
            raise not_found(job_id)
        return view

    async def list_jobs(self, viewer: Viewer = EVERYONE) -> list[dict[str, Any]]:
        """The newest jobs ``viewer`` may see, newest first."""
        rows = await asyncio.to_thread(self.store.list_jobs)
        out = []
        for row in rows:
            if not viewer.sees(row.get("owner")):
                continue
            job = self._live.get(row["id"])
            out.append(job_view(job.row() if job is not None else row))
            if len(out) >= MAX_LISTED:
                break
        return out

    async def cancel(self, job_id: str, viewer: Viewer = EVERYONE) -> dict[str, Any]:
        """Cancel a job: a queued one at once, a running one by interrupting its kernel."""
        view = await self.get(job_id, viewer)
        if not viewer.cancels(view["owner"]):
            raise ForbiddenError(
                f"job {job_id} was started by {view['owner']}; you may not cancel it"
            )
        job = self._live.get(job_id)
        if job is None:
            return view  # finished (or another server's): nothing to cancel here
        job.cancel.set()
        if job.state == "queued":
            self._set(job, state="cancelled", error="cancelled before it started")
            await self._save(job)
        return job_view(job.row())

    # ------------------------------------------------------------------ workers
    def _ensure_workers(self) -> None:
        if self._queue is None:
            self._queue = asyncio.Queue()
        self._workers = [w for w in self._workers if not w.done()]
        while len(self._workers) < self.max_concurrent:
            self._workers.append(asyncio.ensure_future(self._worker()))

    async def _worker(self) -> None:
        assert self._queue is not None
        while True:
            job_id = await self._queue.get()
            job = self._live.get(job_id)
            if job is None or job.state != "queued" or job.cancel.is_set():
                self._live.pop(job_id, None)  # cancelled while queued (or the server stops)
                continue
            await self._run(job)

    async def _run(self, job: Job) -> None:
        """Run one job and save its final state, whatever happens: a worker, or a sweep, must
        survive any job (and :meth:`stop` awaits this at shutdown)."""
        ended = asyncio.get_running_loop().create_future()
        self._running[job.id] = ended
        try:
            await self._replay(job)
        except Exception:  # noqa: BLE001 - told in the server log, the job says "internal error"
            self.log.exception("nbtrace: job %s failed unexpectedly", job.id)
            self._set(job, state="error", error="internal error (see the server log)")
            await self._save(job)
        finally:
            self._live.pop(job.id, None)
            self._running.pop(job.id, None)
            ended.set_result(None)

    async def _replay(self, job: Job) -> None:
        from ..rerun import rerun_run

        self._set(job, state="running")
        await self._save(job)

        def progress(done: int, total: int) -> None:
            self._set(job, done=done, total=total)
            try:
                self.store.save_job(job.row())
            except NBTraceError as exc:  # progress is best effort; the loop saves the end
                self.log.debug("nbtrace | job %s: progress not saved: %s", job.id, exc)

        rerun = self._rerun or rerun_run
        try:
            result = await _in_daemon_thread(
                self.log,
                rerun,
                self.store,
                job.source_run,
                overrides=job.overrides,
                kernel_name=job.kernel_name,
                tolerance=self.tolerance,
                timeout=self.cell_timeout,
                progress=progress,
                root_dir=self.root_dir,
                user=job.owner,
                cancel=job.cancel,
                job_id=job.id,
                kernel_spec_manager=self.kernel_spec_manager,
                repeat=job.repeat,
                recorded_modules=job.recorded_modules,
                name=f"nbtrace-job-{job.id}",
                **self._hosted(job),
            )
        except RerunCancelledError:
            self._set(job, state="cancelled", error="cancelled while running")
        except NBTraceError as exc:
            self._set(job, state="error", error=one_line(exc, 500))
        else:
            self._set(job, state="done", new_run=result.get("run"), verdict=result.get("verdict"))
        await self._save(job)

    # ------------------------------------------------------------------ helpers
    def _hosted(self, job: Job) -> dict[str, Any]:
        """Extra engine arguments: the kernel host and the new run's tags (when there are)."""
        extra: dict[str, Any] = {}
        if self.host is not None:
            extra["host"] = self.host
        if job.tags:
            extra["tags"] = job.tags
        return extra

    @staticmethod
    def _set(job: Job, **fields: Any) -> None:
        job.set(**fields)

    async def _save(self, job: Job) -> None:
        await asyncio.to_thread(self.store.save_job, job.row())

    async def stop(self, grace: float) -> None:
        """Cancel every job of this server (at shutdown) and stop the workers.

        The running jobs get up to ``grace`` seconds to end: a cancelled replay interrupts and
        shuts down its kernel, and its job saves ``cancelled``. Queued jobs never start; they
        stay queued in the store, and the next server marks them stale.
        """
        for job in list(self._live.values()):
            job.cancel.set()
        running = list(self._running.values())
        if running:
            _, late = await asyncio.wait(running, timeout=grace)
            if late:
                self.log.warning(
                    "nbtrace | %d re-execution(s) still running after %.0f s at shutdown",
                    len(late), grace,
                )
        for w in self._workers:
            w.cancel()


def _check_id(job_id: str) -> str:
    if not job_id or len(job_id) > 64 or not job_id.isalnum():
        raise NotFoundError(f"no job with id {one_line(job_id, 80)!r}")
    return job_id


def _in_daemon_thread(
    log: logging.Logger, fn: Callable[..., Any], *args: Any, name: str, **kwargs: Any
) -> Any:
    """Run ``fn`` in a new daemon thread; an awaitable of its result."""
    loop = asyncio.get_running_loop()
    fut: asyncio.Future[Any] = loop.create_future()

    def deliver(ok: bool, value: Any) -> None:
        if fut.done():
            return
        if ok:
            fut.set_result(value)
        else:
            fut.set_exception(value)

    def target() -> None:
        try:
            value, ok = fn(*args, **kwargs), True
        except BaseException as exc:  # noqa: BLE001 - handed to the awaiting coroutine
            value, ok = exc, False
        try:
            loop.call_soon_threadsafe(deliver, ok, value)
        except RuntimeError:  # the loop is closed: the server is gone, nobody awaits it
            log.debug("nbtrace | %s ended after the server's loop closed", name)

    threading.Thread(target=target, name=name, daemon=True).start()
    return fut

"""REST handlers that start and follow re-executions: ``POST runs/{id}/rerun``, ``jobs``,
``POST runs/{id}/sweep`` and ``sweeps/{id}``.

Why apart from :mod:`.handlers`: these start kernels (each checks the ``execute`` permission on
``kernels`` first) and answer for jobs and sweeps by owner (:meth:`~.handlers.NBTraceHandler.
send_owned`); the reading handlers do neither. Same base class, same rules.
"""

from __future__ import annotations

from typing import Any

from jupyter_core.utils import ensure_async
from jupyter_server.auth.decorator import authorized
from tornado import web
from tornado.web import HTTPError

from ..errors import NBTraceError
from .handlers import NBTraceHandler, http_error, jupyter_user_name


class RerunHandler(NBTraceHandler):
    """``POST runs/{id}/rerun {"overrides", "kernel_name", "trust"}`` → ``202 {"job"}``.

    409 unless ``"trust": true`` when the run was recorded by another user or host, or
    imported (see :mod:`nbtrace.rerun.trust`).
    """

    @web.authenticated
    @authorized
    async def post(self, run_id: str) -> None:
        await may_start_kernels(self, "re-executing a run starts a kernel, which you may not do")
        body = self.json_body({"overrides", "kernel_name", "trust", "repeat", "recorded_modules"})
        trust = trust_of(body)
        overrides = body.get("overrides") or {}
        if not isinstance(overrides, dict):
            raise HTTPError(400, "%s", "overrides must be an object of parameter name: value")
        kernel = kernel_name_of(body)
        options = rerun_options(body)
        user = jupyter_user_name(self.current_user)
        job = await self.guard(
            self.jobs.submit(run_id, overrides, kernel, user, trust=trust, **options)
        )
        url = self.request.path.rsplit("/runs/", 1)[0] + f"/jobs/{job.id}"
        self.set_header("Location", url)
        view = await self.jobs.get(job.id)
        self.send({"job": job.id, **view}, status=202)


async def may_start_kernels(handler: NBTraceHandler, refusal: str) -> None:
    """403 ``refusal`` unless the authorizer lets this user start kernels (a replay does)."""
    allowed = await ensure_async(
        handler.authorizer.is_authorized(handler, handler.current_user, "execute", "kernels")
    )
    if not allowed:
        raise HTTPError(403, "%s", refusal)


def trust_of(body: dict[str, Any]) -> bool:
    """The request's ``trust`` (false when absent), checked."""
    trust = body.get("trust", False)
    if not isinstance(trust, bool):
        raise HTTPError(400, "%s", "trust must be true or false")
    return trust


def kernel_name_of(body: dict[str, Any]) -> str | None:
    """The request's ``kernel_name`` (None: the recorded kernel), checked."""
    kernel = body.get("kernel_name")
    if kernel is not None and (not isinstance(kernel, str) or not kernel.strip()):
        raise HTTPError(400, "%s", "kernel_name must be a non-empty string")
    return kernel


def rerun_options(body: dict[str, Any]) -> dict[str, Any]:
    """``repeat`` (1-20) and ``recorded_modules`` (bool) of a rerun request, checked."""
    from ..rerun import MAX_REPEAT

    repeat = body.get("repeat", 1)
    if isinstance(repeat, bool) or not isinstance(repeat, int) or not 1 <= repeat <= MAX_REPEAT:
        raise HTTPError(400, "%s", f"repeat must be an integer from 1 to {MAX_REPEAT}")
    recorded = body.get("recorded_modules", False)
    if not isinstance(recorded, bool):
        raise HTTPError(400, "%s", "recorded_modules must be true or false")
    return {"repeat": repeat, "recorded_modules": recorded}


# ----------------------------------------------------------------------------- jobs
class JobsHandler(NBTraceHandler):
    """``GET jobs`` → ``{"jobs": [...]}`` (newest first)."""

    @web.authenticated
    @authorized
    async def get(self) -> None:
        viewer = await self.viewer()
        self.send({"jobs": await self.guard(self.jobs.list_jobs(viewer))})


class JobHandler(NBTraceHandler):
    """``GET jobs/{id}`` (state, progress, verdict) and ``DELETE jobs/{id}`` (cancel)."""

    @web.authenticated
    @authorized
    async def get(self, job_id: str) -> None:
        await self.send_owned(self.jobs.get, job_id)

    @web.authenticated
    @authorized
    async def delete(self, job_id: str) -> None:
        await self.send_owned(self.jobs.cancel, job_id, cancel=True)


# ----------------------------------------------------------------------------- sweeps
class SweepHandler(NBTraceHandler):
    """``POST runs/{id}/sweep {"grid" | "sets", "parallel", "kernel_name", "trust"}`` →
    ``202 {"sweep", "jobs"}``."""

    @web.authenticated
    @authorized
    async def post(self, run_id: str) -> None:
        from .sweeps import parameter_sets

        await may_start_kernels(self, "a sweep starts kernels, which you may not do")
        body = self.json_body({"grid", "sets", "parallel", "kernel_name", "trust"})
        parallel = body.get("parallel")
        if parallel is not None and (
            isinstance(parallel, bool) or not isinstance(parallel, int) or parallel < 1
        ):
            raise HTTPError(400, "%s", "parallel must be a positive integer")
        trust = trust_of(body)
        kernel = kernel_name_of(body)
        try:
            sets = parameter_sets(body.get("grid"), body.get("sets"))
        except NBTraceError as exc:
            raise http_error(exc) from None
        user = jupyter_user_name(self.current_user)
        sweep = await self.guard(self.sweeps.submit(
            run_id, sets, parallel, kernel, user, grid=body.get("grid"),
            trust=trust,
        ))
        url = self.request.path.rsplit("/runs/", 1)[0] + f"/sweeps/{sweep.id}"
        self.set_header("Location", url)
        view = await self.sweeps.get(sweep.id)
        self.send({"sweep": sweep.id, **view, "jobs": list(sweep.jobs)}, status=202)


class SweepStatusHandler(NBTraceHandler):
    """``GET sweeps/{id}`` (state, progress, jobs, runs) and ``DELETE sweeps/{id}`` (cancel)."""

    @web.authenticated
    @authorized
    async def get(self, sweep_id: str) -> None:
        await self.send_owned(self.sweeps.get, sweep_id)

    @web.authenticated
    @authorized
    async def delete(self, sweep_id: str) -> None:
        await self.send_owned(self.sweeps.cancel, sweep_id, cancel=True)


__all__ = [
    "RerunHandler", "JobsHandler", "JobHandler", "SweepHandler", "SweepStatusHandler",
    "rerun_options",
]

"""REST handlers under ``/nbtrace/api``: thin adapters from HTTP to the store and the jobs.

Why one base class: every handler shares the same rules, written once here. Authentication on
every verb (``@web.authenticated``) and authorization against the ``nbtrace`` resource
(``@authorized``); JSON in (objects only, ``application/json`` only) and strict JSON out (NaN as
``"NaN"``); store calls off the event loop (``asyncio.to_thread``; the SQLite store keeps one
connection per thread); an :class:`~nbtrace.errors.NBTraceError` becomes its ``http_status``
with ``{"message"}``, anything else a logged 500 that tells the client nothing internal.
"""

from __future__ import annotations

import asyncio
import json
import mimetypes
import posixpath
import urllib.parse
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from jupyter_core.utils import ensure_async
from jupyter_server.auth.decorator import authorized
from jupyter_server.base.handlers import APIHandler
from tornado import web
from tornado.web import HTTPError

from ..errors import NBTraceError, one_line
from ..jsonutil import dumps
from .state import ExtensionState

if TYPE_CHECKING:
    from ..store.base import Store
    from .jobs import JobManager, Viewer
    from .sweeps import SweepManager

AUTH_RESOURCE = "nbtrace"
#: The resource an authorizer grants to let a user see (read) or cancel (write) every identity's
#: jobs and sweeps, not only their own.
ALL_JOBS = "nbtrace.all_jobs"
MAX_LIMIT = 1000
DEFAULT_LIMIT = 100

#: Content types an artifact may be shown inline with (they cannot run script).
INLINE_TYPES = {
    "image/png", "image/jpeg", "image/gif", "image/webp", "image/bmp", "image/avif",
    "text/plain", "text/csv", "text/tab-separated-values", "application/json",
}
#: Markers of active content (HTML, SVG, XML, scripts): served as text/plain attachments.
ACTIVE_MARKERS = ("html", "xml", "svg", "javascript", "ecmascript", "xsl")
ARTIFACT_CSP = "sandbox; default-src 'none'"
JSON_TYPE = "application/json; charset=UTF-8"


class NBTraceHandler(APIHandler):
    """Base of every nbtrace handler: shared errors, JSON and store access."""

    auth_resource = AUTH_RESOURCE

    @property
    def state(self) -> ExtensionState:
        return self.settings["nbtrace"]

    @property
    def store(self) -> Store:
        st = self.state
        if st.store is None:
            raise HTTPError(503, "%s", f"the nbtrace store is unavailable: {st.store_error}")
        return st.store

    @property
    def jobs(self) -> JobManager:
        self.store  # noqa: B018 - same 503 when the store did not open
        assert self.state.jobs is not None  # made with the store
        return self.state.jobs

    @property
    def sweeps(self) -> SweepManager:
        self.store  # noqa: B018 - same 503 when the store did not open
        assert self.state.sweeps is not None  # made with the store
        return self.state.sweeps

    async def viewer(self) -> Viewer:
        """Who is asking about jobs, and whether the authorizer lets them see and cancel other
        identities' jobs (action ``read`` / ``write`` on resource ``nbtrace.all_jobs``).

        jupyter_server's default authorizer allows every action without looking, so it does
        not count as granting other users' jobs: only a server configured with an authorizer
        of its own (JupyterHub's, a custom one) can grant that.
        """
        from jupyter_server.auth.authorizer import AllowAllAuthorizer

        from .jobs import Viewer

        user = jupyter_user_name(self.current_user)
        if type(self.authorizer) is AllowAllAuthorizer:
            return Viewer(user=user, see_all=False, cancel_all=False)

        async def may(action: str) -> bool:
            return bool(await ensure_async(
                self.authorizer.is_authorized(self, self.current_user, action, ALL_JOBS)
            ))

        return Viewer(user=user, see_all=await may("read"), cancel_all=await may("write"))

    async def call(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """Run a blocking store/engine call in a thread; translate nbtrace errors."""
        try:
            return await asyncio.to_thread(fn, *args, **kwargs)
        except NBTraceError as exc:
            raise http_error(exc) from None

    async def guard(self, coro: Any) -> Any:
        """Await ``coro`` translating nbtrace errors (for async job calls)."""
        try:
            return await coro
        except NBTraceError as exc:
            raise http_error(exc) from None

    async def send_owned(
        self, action: Callable[[str, Viewer], Awaitable[dict[str, Any]]], object_id: str,
        cancel: bool = False,
    ) -> None:
        """Answer ``GET`` / ``DELETE`` (cancel) of a job or sweep as the asking identity may.

        ``action`` (the manager's ``get`` or ``cancel``) applies the owner rule: another
        identity's object is "not found", and cancelling it is forbidden, unless the
        authorizer grants every identity's (:meth:`viewer`). A cancel still under way is a 202.
        """
        view = await self.guard(action(object_id, await self.viewer()))
        self.send(view, status=202 if cancel and view["state"] in ("queued", "running") else 200)

    def send(self, obj: Any, status: int = 200) -> None:
        """Finish with strict JSON."""
        self.set_status(status)
        self.finish(dumps(obj), set_content_type=JSON_TYPE)

    def json_body(self, allowed: set[str]) -> dict[str, Any]:
        """The request's JSON object, refusing other content types and unknown keys."""
        ctype = self.request.headers.get("Content-Type", "")
        if ctype.split(";", 1)[0].strip().lower() != "application/json":
            raise HTTPError(
                415, "%s", "the request body must be JSON (Content-Type: application/json)"
            )
        raw = self.request.body or b""
        if not raw.strip():
            return {}
        try:
            body = json.loads(raw)
        except (ValueError, RecursionError):  # UnicodeDecodeError is a ValueError
            raise HTTPError(400, "%s", "the request body is not valid JSON") from None
        if not isinstance(body, dict):
            raise HTTPError(400, "%s", "the request body must be a JSON object")
        unknown = sorted(set(body) - allowed)
        if unknown:
            raise HTTPError(
                400, "%s",
                f"unknown field(s) {', '.join(one_line(k, 40) for k in unknown)}"
                f" (allowed: {', '.join(sorted(allowed))})",
            )
        return body

    def int_arg(self, name: str, default: int, lo: int, hi: int) -> int:
        raw = self.get_query_argument(name, None)
        if raw is None or raw == "":
            return default
        try:
            value = int(raw)
        except ValueError:
            value = lo - 1
        if not lo <= value <= hi:
            raise HTTPError(400, "%s", f"{name} must be an integer from {lo} to {hi}")
        return value

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        """``{"message"}`` for every error; never a traceback or an internal detail."""
        exc = (kwargs.get("exc_info") or (None, None, None))[1]
        if isinstance(exc, HTTPError):
            try:
                message = exc.log_message % exc.args if exc.args else exc.log_message
            except (TypeError, ValueError):
                message = exc.log_message
            message = message or exc.reason or _reason(status_code)
        elif status_code >= 500:
            message = "internal error in the nbtrace extension (see the server log)"
        else:
            message = _reason(status_code)
        self.clear_header("Content-Disposition")
        self.finish(dumps({"message": one_line(message, 1000)}), set_content_type=JSON_TYPE)


def _reason(status: int) -> str:
    from http.client import responses

    return responses.get(status, "error")


def http_error(exc: NBTraceError) -> HTTPError:
    """The HTTP error an nbtrace error becomes (its ``http_status``, its one-line message)."""
    return HTTPError(getattr(exc, "http_status", 400) or 400, "%s", one_line(exc, 1000))


# ----------------------------------------------------------------------------- runs
class RunsHandler(NBTraceHandler):
    """``GET runs?filter=&sort=&limit=&offset=&count=`` → ``{"runs", "total", "total_exact"}``.

    ``count=bounded`` (the default) counts a filtered listing only up to 1,000 runs past the
    page (``total_exact`` false then means "more than ``total``"); ``count=exact`` counts all.
    """

    @web.authenticated
    @authorized
    async def get(self) -> None:
        limit = self.int_arg("limit", DEFAULT_LIMIT, 0, MAX_LIMIT)
        offset = self.int_arg("offset", 0, 0, 10**9)
        flt = self.get_query_argument("filter", None) or None
        sort = self.get_query_argument("sort", None) or None
        count = self.get_query_argument("count", "bounded")
        if count not in ("bounded", "exact"):
            raise HTTPError(400, "count must be 'bounded' or 'exact'")
        runs, total = await self.call(self.store.list_runs, filter=flt, sort=sort, limit=limit,
                                      offset=offset, count=count)
        exact = getattr(total, "exact", True)
        self.send({"runs": runs, "total": int(total), "total_exact": exact, "limit": limit,
                   "offset": offset})


class RunHandler(NBTraceHandler):
    """``GET`` / ``PATCH`` / ``DELETE runs/{id}``."""

    @web.authenticated
    @authorized
    async def get(self, run_id: str) -> None:
        series = self.get_query_argument("series", "0").lower() in ("1", "true", "yes")
        self.send(await self.call(self.store.get_run, run_id, series=series))

    @web.authenticated
    @authorized
    async def patch(self, run_id: str) -> None:
        body = self.json_body({"name", "tags", "note"})
        if "tags" in body and body["tags"] is not None:
            tags = body["tags"]
            if not isinstance(tags, dict) or not all(
                v is None or isinstance(v, (str, int, float, bool)) for v in tags.values()
            ):
                raise HTTPError(400, "%s", "tags must be an object of name: string (null removes)")
        run = await self.call(
            self.store.update_run, run_id, name=body.get("name"), tags=body.get("tags"),
            note=body.get("note"),
        )
        self.send(run)

    @web.authenticated
    @authorized
    async def delete(self, run_id: str) -> None:
        await self.call(self.store.delete_run, run_id)
        self.set_status(204)
        self.finish()


class MetricHandler(NBTraceHandler):
    """``GET runs/{id}/metrics/{key}`` → ``[{step, value, timestamp}]``."""

    @web.authenticated
    @authorized
    async def get(self, run_id: str, key: str) -> None:
        self.send(await self.call(self.store.metric_series, run_id, key))


class CompareHandler(NBTraceHandler):
    """``GET compare?ids=a,b,c`` → the comparison object."""

    @web.authenticated
    @authorized
    async def get(self) -> None:
        from ..compare import compare_runs

        ids = [i.strip() for raw in self.get_query_arguments("ids") for i in raw.split(",")]
        ids = [i for i in ids if i]
        if len(ids) < 2:
            raise HTTPError(400, "%s", "compare needs ids=a,b (at least two run ids)")
        self.send(await self.call(compare_runs, self.store, ids))


def bad_artifact_name(name: str) -> bool:
    """Names no artifact can have (:func:`nbtrace.rules.artifact_name_problem`, the rule of
    ``log_artifact`` and import): refused before looking."""
    from ..rules import artifact_name_problem

    return artifact_name_problem(name) is not None


def artifact_headers(name: str) -> dict[str, str]:
    """Content type and disposition such that active content cannot run in Lab's origin."""
    guessed = (mimetypes.guess_type(posixpath.basename(name), strict=False)[0]
               or "application/octet-stream").lower()
    filename = posixpath.basename(name) or "artifact"
    ascii_name = "".join(c if 32 <= ord(c) < 127 and c not in '"\\;' else "_" for c in filename)
    disposition = (
        f"attachment; filename=\"{ascii_name}\"; filename*=UTF-8''"
        f"{urllib.parse.quote(filename, safe='')}"
    )
    headers = {
        "X-Content-Type-Options": "nosniff",
        "Content-Security-Policy": ARTIFACT_CSP,
        "X-Artifact-Content-Type": guessed,
    }
    if any(m in guessed for m in ACTIVE_MARKERS):
        headers["Content-Type"] = "text/plain; charset=utf-8"
        headers["Content-Disposition"] = disposition
    elif guessed in INLINE_TYPES:
        headers["Content-Type"] = guessed
        headers["Content-Disposition"] = "inline"
    else:
        headers["Content-Type"] = guessed
        headers["Content-Disposition"] = disposition
    return headers


class ArtifactHandler(NBTraceHandler):
    """``GET runs/{id}/artifacts/{name}``: bytes from the store, never from the filesystem."""

    @web.authenticated
    @authorized
    async def get(self, run_id: str, name: str) -> None:
        if bad_artifact_name(name):
            raise HTTPError(400, "%s", "invalid artifact name")
        meta, chunks = await self.call(self.store.artifact_stream, run_id, name)
        headers = artifact_headers(name)
        for k, v in headers.items():
            self.set_header(k, v)
        self.set_header("ETag", f'"{meta["sha256"]}"')
        self.set_header("Cache-Control", "private, max-age=0, must-revalidate")
        if self.check_etag_header():  # the client holds these bytes already
            self.set_status(304)
            self.finish(set_content_type=headers["Content-Type"])
            return
        self.set_header("Content-Length", str(meta["size"]))
        # Streamed one stored chunk (1 MiB) at a time, each read off the event loop and
        # flushed before the next: three clients downloading a 200 MB artifact hold three
        # chunks in memory, not three blobs.
        while True:
            chunk = await self.call(next, chunks, None)
            if chunk is None:
                break
            self.write(chunk)
            await self.flush()
        self.finish(set_content_type=headers["Content-Type"])


class DriftHandler(NBTraceHandler):
    """``GET runs/{id}/drift?kernel_name=``: environment differences before a re-execution."""

    @web.authenticated
    @authorized
    async def get(self, run_id: str) -> None:
        from ..rerun.drift import drift

        kernel = self.get_query_argument("kernel_name", None) or None
        ksm = self.jobs.kernel_spec_manager
        self.send(await self.call(drift, self.store, run_id, kernel_name=kernel,
                                  kernel_spec_manager=ksm, host=self.jobs.host,
                                  root_dir=self.jobs.root_dir))


__all__ = [
    "ALL_JOBS", "AUTH_RESOURCE", "ExtensionState", "NBTraceHandler", "RunsHandler", "RunHandler",
    "MetricHandler", "CompareHandler", "ArtifactHandler", "DriftHandler", "artifact_headers",
    "bad_artifact_name", "http_error", "jupyter_user_name",
]


def jupyter_user_name(user: object) -> str:
    """The name a re-execution is recorded under: the Jupyter identity's user name, or the
    server's OS user when that identity is anonymous (token login makes a random 32-hex
    user name, which tells a team nothing)."""
    import getpass
    import re

    name = getattr(user, "username", None) or str(user)
    if re.fullmatch(r"[0-9a-f]{32}", name):
        try:
            return getpass.getuser()
        except Exception:  # noqa: BLE001 - no passwd entry: keep the Jupyter id
            return name
    return name

"""Where a replay kernel runs: through a Jupyter kernel manager (the server's, or a gateway's).

Why through the server's own kernel manager instead of a kernel nbclient starts beside it: the
server's settings then hold for re-executions too. A server started with ``--gateway-url`` has a
``GatewayMappingKernelManager``, so the replay runs on the gateway where the team's kernels run;
a local server's ``MappingKernelManager`` applies its culling, limits and kernel provisioners,
and the replay kernel shows in JupyterLab's list of running kernels.

A :class:`KernelHost` is a kernel manager, its kernelspec manager and the event loop they live
on. Those managers are asyncio objects of that loop (the server's), while the rerun engine is
blocking code in a worker thread: every call goes to the host's loop with
:meth:`KernelHost.call`. Nothing here imports tornado or jupyter_server; the adapters that
build hosts (``nbtrace.server.gateway``) do.

A hosted replay differs from a local one in how the replay's settings reach the kernel: a gateway
passes on almost no environment variables, so they go in a hidden setup cell
(:mod:`.kernelsetup`), executed silently before the recorded cells, and a hidden finish cell writes
the run before the kernel is shut down.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import math
import os
import threading
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from ..errors import HostError, NBTraceError, ReplaySetupError, one_line
from .execute import INTERRUPT_GRACE_S, Outcome, ProgressFn, _maybe_await, run_cells, settle
from .kernelsetup import FINISH_CODE, setup_code

log = logging.getLogger(__name__)

#: Seconds a hosted kernel may take to answer its first request (a gateway may queue it).
READY_TIMEOUT_S = 120.0
#: Seconds the hidden setup and finish cells may take.
SETUP_TIMEOUT_S = 120.0


@dataclass
class KernelHost:
    """A kernel manager (``start_kernel``, ``get_kernel``, ``interrupt_kernel``,
    ``shutdown_kernel``, as jupyter_server's mapping managers have), its kernelspec manager,
    and the loop they run on.

    ``remote`` says that kernels may run on another machine (a gateway): the replay's folder and
    store are then checked from inside the kernel, and nothing is passed by environment.
    ``client_factory`` makes a kernel client for a started kernel's manager (default: its
    ``client()``); ``root_dir`` turns folders into the API paths the manager expects.
    """

    kernel_manager: Any
    kernel_spec_manager: Any
    loop: asyncio.AbstractEventLoop
    remote: bool = False
    root_dir: str | None = None
    client_factory: Callable[[Any], Any] | None = None
    name: str = "server"
    live: set[str] = field(default_factory=set)
    #: Seconds the kernel specs are reused (a sweep plans every job; a gateway answers by HTTP).
    specs_ttl: float = 5.0
    _specs: tuple[float, dict[str, dict[str, Any]]] | None = None

    def call(self, make: Callable[[], Awaitable[Any]], timeout: float | None = None) -> Any:
        """Run coroutine ``make()`` on the host's loop from another thread; its result."""
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is self.loop:
            raise RuntimeError("KernelHost.call from the host's own loop would deadlock")

        async def wrapped() -> Any:
            return await make()

        fut = asyncio.run_coroutine_threadsafe(wrapped(), self.loop)
        try:
            return fut.result(timeout)
        except concurrent.futures.TimeoutError:
            fut.cancel()
            raise

    def api_path(self, cwd: str) -> str | None:
        """``cwd`` as the manager's API path (relative to its root), when below the root."""
        if not self.root_dir:
            return None
        root = os.path.realpath(self.root_dir)
        real = os.path.realpath(cwd)
        try:
            if os.path.commonpath([real, root]) != root:
                return None
        except ValueError:
            return None
        rel = os.path.relpath(real, root)
        return "" if rel == "." else rel.replace(os.sep, "/")

    async def specs(self) -> dict[str, dict[str, Any]]:
        """Kernel specs as ``{name: {"argv", "language", "display_name", ...}}``.

        Why from ``get_all_specs``: it is what the server's ``/api/kernelspecs`` serves, local
        (respecting ``allowed_kernelspecs``) or a gateway's (a coroutine there; awaited here).
        """
        cached = self._specs
        if cached is not None and time.monotonic() - cached[0] < self.specs_ttl:
            return {k: dict(v) for k, v in cached[1].items()}
        try:
            raw = await _maybe_await(self.kernel_spec_manager.get_all_specs())
        except NBTraceError:
            raise
        except Exception as exc:  # noqa: BLE001 - connection refused, 401, timeouts: one line
            raise HostError(
                f"cannot list the kernels of the {self.name}: {type(exc).__name__}:"
                f" {one_line(exc, 200)}"
            ) from None
        out: dict[str, dict[str, Any]] = {}
        for name, model in (raw or {}).items():
            spec = model.get("spec") if isinstance(model, Mapping) else None
            if isinstance(spec, Mapping):
                out[str(name)] = dict(spec)
        self._specs = (time.monotonic(), out)
        return {k: dict(v) for k, v in out.items()}

    def client_for(self, km: Any) -> Any:
        return self.client_factory(km) if self.client_factory is not None else km.client()


def default_parallel(gateway: bool) -> int:
    """Kernels a sweep may run at once by default: the cores free here (cores minus the load
    average, at least 1); on a gateway, whose kernels use other machines, twice the cores."""
    try:
        cores = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        cores = os.cpu_count() or 1
    if gateway:
        return max(4, 2 * cores)
    try:
        load = os.getloadavg()[0]
    except (AttributeError, OSError):
        load = 0.0
    return max(1, cores - int(round(load)))


# ----------------------------------------------------------------------------- execution
def execute_hosted(
    host: KernelHost,
    nb: Any,
    kernel_name: str,
    cwd: str,
    env: dict[str, str],
    setup: Mapping[str, Any],
    timeout: float | None = None,
    progress: ProgressFn | None = None,
    cancel: threading.Event | None = None,
) -> Outcome:
    """Execute ``nb`` in a new kernel of ``host`` (blocking; call from a worker thread).

    ``env`` is the kernel's start environment (a gateway filters it: ``KERNEL_*`` and its
    ``allowed_envs`` only); ``setup`` (a :func:`.kernelsetup.payload`) is sent as the hidden
    first cell.
    """
    return host.call(
        lambda: _execute_hosted(host, nb, kernel_name, cwd, env, setup, timeout, progress, cancel)
    )


async def _execute_hosted(
    host: KernelHost,
    nb: Any,
    kernel_name: str,
    cwd: str,
    env: dict[str, str],
    setup: Mapping[str, Any],
    timeout: float | None,
    progress: ProgressFn | None,
    cancel: threading.Event | None,
) -> Outcome:
    from .kernelclient import CellIdNotebookClient

    started = time.perf_counter()
    out = Outcome(notebook=nb)
    if cancel is not None and cancel.is_set():
        out.cancelled = True
        return out
    mkm = host.kernel_manager
    kwargs: dict[str, Any] = {"kernel_name": kernel_name, "path": host.api_path(cwd), "env": env}
    if host.remote and kwargs["path"] is None:
        kwargs["cwd"] = cwd  # a gateway hands it on as KERNEL_WORKING_DIR
    kernel_id = await mkm.start_kernel(**kwargs)
    host.live.add(kernel_id)
    state: dict[str, Any] = {"busy": False, "cancelled": False}
    client = CellIdNotebookClient(
        nb,
        timeout=math.ceil(timeout) if timeout and timeout > 0 else None,
        kernel_name=kernel_name,
        allow_errors=False,
        record_timing=True,
        resources={"metadata": {"path": cwd}},
    )
    watcher: asyncio.Task[None] | None = None
    kc = None
    try:
        client.km = mkm.get_kernel(kernel_id)
        kc = client.kc = host.client_for(client.km)
        await _maybe_await(kc.start_channels())
        await kc.wait_for_ready(timeout=READY_TIMEOUT_S)
        if cancel is not None:
            watcher = asyncio.ensure_future(_watch(host, kernel_id, cancel, state))
        try:
            await silent(kc, setup_code(setup), ReplaySetupError)
        except ReplaySetupError:
            if not state["cancelled"]:
                raise  # else: interrupted by a cancel; run_cells below stops at once
        await run_cells(client, nb, out, state, cancel, _off_loop(progress), timeout)
        if not state["cancelled"]:
            try:
                await silent(kc, FINISH_CODE, RuntimeError)
            except Exception:  # noqa: BLE001 - the kernel's exit handlers write it anyway
                log.debug("nbtrace: the replay's finish cell failed", exc_info=True)
    finally:
        if watcher is not None:
            watcher.cancel()
        if kc is not None:
            try:
                kc.stop_channels()
            except Exception:  # noqa: BLE001 - closing a dead connection
                log.debug("nbtrace: could not close the replay kernel's channels", exc_info=True)
        await _shutdown(host, kernel_id, now=bool(state["cancelled"]))
    settle(out, state, len(nb.cells))
    out.seconds = time.perf_counter() - started
    return out


async def silent(kc: Any, code: str, error: type[Exception]) -> None:
    """Execute ``code`` silently (no history, no cell count) and wait for its reply; an error
    in it raises ``error`` with the exception's message."""
    msg_id = kc.execute(code, silent=True, store_history=False, allow_stdin=False)
    deadline = time.monotonic() + SETUP_TIMEOUT_S
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            raise error("the replay kernel did not answer its setup in time")
        try:
            msg = await kc.shell_channel.get_msg(timeout=min(left, 5.0))
        except Exception:  # noqa: BLE001 - queue.Empty / TimeoutError: poll again
            if not await _maybe_await(kc.is_alive()):
                raise error("the replay kernel died before it answered") from None
            continue
        if (msg.get("parent_header") or {}).get("msg_id") != msg_id:
            continue
        content = msg.get("content") or {}
        if content.get("status") == "error":
            raise error(one_line(content.get("evalue") or content.get("ename") or "error", 500))
        return


def _off_loop(progress: ProgressFn | None) -> Callable[[int, int], Any] | None:
    """The progress callback run in a thread: it saves to the store, which blocks."""
    if progress is None:
        return None

    def call(done: int, total: int) -> Any:
        return asyncio.to_thread(progress, done, total)

    return call


async def _watch(
    host: KernelHost, kernel_id: str, cancel: threading.Event, state: dict[str, Any]
) -> None:
    """Interrupt the kernel when ``cancel`` is set (through the manager: on a gateway, the
    gateway's interrupt); shut it down when the interrupt is ignored."""
    while not cancel.is_set():
        await asyncio.sleep(0.1)
    state["cancelled"] = True
    try:
        await _maybe_await(host.kernel_manager.interrupt_kernel(kernel_id))
    except Exception:  # noqa: BLE001 - a dead kernel needs no interrupt
        return
    await asyncio.sleep(INTERRUPT_GRACE_S)
    if state.get("busy"):
        await _shutdown(host, kernel_id, now=True)


async def _shutdown(host: KernelHost, kernel_id: str, now: bool) -> None:
    if kernel_id not in host.live:
        return
    host.live.discard(kernel_id)
    try:
        await _maybe_await(host.kernel_manager.shutdown_kernel(kernel_id, now=now))
    except Exception:  # noqa: BLE001 - already gone (culled, killed, gateway restarted)
        log.debug("nbtrace: replay kernel %s was already gone", kernel_id, exc_info=True)

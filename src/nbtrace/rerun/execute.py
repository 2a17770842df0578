"""Run a replay notebook in a fresh kernel with nbclient: progress, timeouts, cancellation.

Why drive cells one by one instead of ``NotebookClient.execute``: the caller wants progress
after each cell, a cancellation checked between cells (and a running cell interrupted), and the
failing cell's position rather than an exception; nbclient's per-cell API gives all three.

The kernel is shut down gracefully at the end (a shutdown request, not a kill) so that the
replay kernel's tracker ends its active run and writes everything before we read the store.
"""

from __future__ import annotations

import asyncio
import logging
import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ..errors import one_line

ProgressFn = Callable[[int, int], None]

log = logging.getLogger(__name__)

#: Seconds a cancelled cell gets to stop after an interrupt before the kernel is killed.
INTERRUPT_GRACE_S = 5.0


@dataclass
class Outcome:
    """What happened when the notebook ran."""

    notebook: Any
    executed: int = 0
    cancelled: bool = False
    #: The 0-based index of the cell that failed, and why (``"ename: evalue"``, one line).
    failed_index: int | None = None
    error: str | None = None
    seconds: float = 0.0


def execute(
    nb: Any,
    kernel_name: str,
    cwd: str,
    env: dict[str, str],
    timeout: float | None = None,
    progress: ProgressFn | None = None,
    cancel: threading.Event | None = None,
    kernel_spec_manager: Any = None,
) -> Outcome:
    """Execute ``nb`` in a new ``kernel_name`` kernel started in ``cwd`` with ``env``.

    Blocking. Safe to call from any thread: it runs its own event loop (in a helper thread when
    the calling thread already runs one, e.g. inside a Jupyter kernel).
    """
    coro_args = (nb, kernel_name, cwd, env, timeout, progress, cancel, kernel_spec_manager)
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(_execute(*coro_args))
    box: dict[str, Any] = {}

    def target() -> None:
        try:
            box["result"] = asyncio.run(_execute(*coro_args))
        except BaseException as exc:  # noqa: BLE001 - re-raised in the caller's thread
            box["error"] = exc

    t = threading.Thread(target=target, name="nbtrace-rerun-loop", daemon=True)
    t.start()
    t.join()
    if "error" in box:
        raise box["error"]
    return box["result"]


async def _watch_cancel(client: Any, cancel: threading.Event, state: dict[str, Any]) -> None:
    """Interrupt the kernel when ``cancel`` is set; kill it when the interrupt is ignored."""
    while not cancel.is_set():
        await asyncio.sleep(0.1)
    state["cancelled"] = True
    km = client.km
    if km is None:
        return
    try:
        await _maybe_await(km.interrupt_kernel())
    except Exception:  # noqa: BLE001 - a dead kernel needs no interrupt
        return
    await asyncio.sleep(INTERRUPT_GRACE_S)
    if client.km is not None and state.get("busy"):
        try:
            await _maybe_await(client.km.shutdown_kernel(now=True))
        except Exception:  # noqa: BLE001 - best effort: the kernel exits with its parent
            log.debug("nbtrace: could not kill the cancelled replay kernel", exc_info=True)


async def _interrupt(client: Any) -> None:
    try:
        await _maybe_await(client.km.interrupt_kernel())
        await asyncio.sleep(0.2)
    except Exception:  # noqa: BLE001 - best effort; shutdown follows anyway
        log.debug("nbtrace: could not interrupt the replay kernel", exc_info=True)


async def _maybe_await(x: Any) -> Any:
    if asyncio.iscoroutine(x) or isinstance(x, asyncio.Future):
        return await x
    return x


async def _execute(
    nb: Any,
    kernel_name: str,
    cwd: str,
    env: dict[str, str],
    timeout: float | None,
    progress: ProgressFn | None,
    cancel: threading.Event | None,
    kernel_spec_manager: Any,
) -> Outcome:
    started = time.perf_counter()
    out = Outcome(notebook=nb)
    total = len(nb.cells)
    from .kernelclient import CellIdNotebookClient

    client = CellIdNotebookClient(
        nb,
        timeout=math.ceil(timeout) if timeout and timeout > 0 else None,
        kernel_name=kernel_name,
        allow_errors=False,
        record_timing=True,
        resources={"metadata": {"path": cwd}},
        shutdown_kernel="graceful",
    )
    if kernel_spec_manager is not None:
        client.km = client.kernel_manager_class(
            kernel_name=kernel_name, kernel_spec_manager=kernel_spec_manager
        )
    if cancel is not None and cancel.is_set():
        out.cancelled = True
        return out
    state: dict[str, Any] = {"busy": False, "cancelled": False}
    watcher: asyncio.Task[None] | None = None
    try:
        async with client.async_setup_kernel(env=env, cwd=cwd):
            if cancel is not None:
                watcher = asyncio.ensure_future(_watch_cancel(client, cancel, state))
            await run_cells(client, nb, out, state, cancel, progress, timeout)
            if watcher is not None:
                watcher.cancel()
    finally:
        if watcher is not None and not watcher.done():
            watcher.cancel()
    settle(out, state, total)
    out.seconds = time.perf_counter() - started
    return out


def settle(out: Outcome, state: dict[str, Any], total: int) -> None:
    """Whether the replay counts as cancelled, once its cells are over."""
    if out.error is None and out.executed == total:
        out.cancelled = False  # a cancel that came after the last cell changes nothing
    elif state["cancelled"]:
        out.cancelled = True


async def run_cells(
    client: Any,
    nb: Any,
    out: Outcome,
    state: dict[str, Any],
    cancel: threading.Event | None,
    progress: ProgressFn | None,
    timeout: float | None,
) -> None:
    """Execute ``nb``'s cells one by one on ``client`` (its kernel started), recording in
    ``out`` how far it got and why it stopped (shared by local and hosted kernels)."""
    from nbclient.exceptions import CellExecutionError, CellTimeoutError, DeadKernelError

    total = len(nb.cells)
    for index, cell in enumerate(nb.cells):
        if state["cancelled"] or (cancel is not None and cancel.is_set()):
            out.cancelled = True
            break
        state["busy"] = True
        try:
            await client.async_execute_cell(
                cell, index, execution_count=client.code_cells_executed + 1
            )
        except CellTimeoutError:
            out.failed_index = index
            out.error = f"TimeoutError: the cell did not finish within {timeout:g} s"
            await _interrupt(client)  # so the graceful shutdown below is quick
            break
        except CellExecutionError as exc:
            out.failed_index = index
            out.error = f"{exc.ename}: {one_line(exc.evalue, 300)}"
            break
        except DeadKernelError:
            out.failed_index = index
            out.error = "DeadKernelError: the kernel died while running the cell"
            break
        finally:
            state["busy"] = False
        out.executed = index + 1
        if progress is not None:
            try:
                await _maybe_await(progress(out.executed, total))
            except Exception:  # noqa: BLE001 - a broken callback must not stop the run
                log.debug("nbtrace: the progress callback failed", exc_info=True)

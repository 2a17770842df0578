"""Re-execute a past run in a fresh kernel and say whether it reproduced.

The engine is plain blocking Python (no tornado): the CLI calls it directly, the server in a
worker thread. Steps: plan the replay (:mod:`.replay`: code snapshot, kernel, folder, env), run
it (:mod:`.execute`: nbclient, progress, cancel), read the new run the replay kernel recorded,
judge it (:mod:`.verdict`), and keep the verdict and the executed notebook with the new run.
:mod:`.drift` answers "what differs in the environment" before anything runs.
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any

from ..errors import NBTraceError, NotFoundError, StoreError, one_line
from ..store.base import Store
from .replay import PathRefusedError, Replay, RerunCancelledError, plan_replay
from .verdict import DEFAULT_TOLERANCE, make_verdict

__all__ = [
    "rerun_run", "plan_replay", "PathRefusedError",
    "RerunCancelledError", "KernelError", "DEFAULT_TOLERANCE", "EXECUTED_NOTEBOOK",
]

#: Name of the artifact holding the executed replay notebook (with outputs).
EXECUTED_NOTEBOOK = "executed.ipynb"


class KernelError(NBTraceError):
    """The replay kernel could not be started or talked to (not an error in the user's code)."""

    http_status = 500


def rerun_run(
    store: Store,
    ref: str,
    overrides: Mapping[str, Any] | None = None,
    kernel_name: str | None = None,
    tolerance: float | None = None,
    timeout: float | None = None,
    progress: Callable[[int, int], None] | None = None,
    root_dir: str | None = None,
    user: str | None = None,
    cancel: threading.Event | None = None,
    job_id: str | None = None,
    kernel_spec_manager: Any = None,
    host: Any = None,
    tags: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """Re-execute run ``ref``; returns ``{"run": new id or None, "verdict", "notebook"}``.

    ``overrides`` replace parameters at their ``%log_param`` points; ``progress(done, total)`` is
    called after each cell; setting ``cancel`` interrupts the replay (then
    :class:`RerunCancelledError` is raised). ``root_dir`` confines the run's folder (the
    server's root); ``user`` and ``job_id`` are recorded with the new run; the server passes its
    ``kernel_spec_manager``. Errors in the user's code are not raised: they give a ``failed``
    verdict naming the cell.
    """
    plan = plan_replay(store, ref, overrides, kernel_name, root_dir, user, job_id,
                       kernel_spec_manager=kernel_spec_manager, host=host, tags=tags)
    outcome = _execute_plan(plan, host, timeout, progress, cancel, kernel_spec_manager)

    new = _read_run(store, plan.new_run_id)
    notebook_json = _notebook_json(outcome.notebook)
    if outcome.cancelled:
        if new is not None:
            _mark_failed(store, new)
            verdict = make_verdict(plan.run, new, _shas(plan), tolerance, plan.overrides,
                                   error="cancelled before the replay finished")
            store.set_verdict(new["id"], verdict)
            _keep_notebook(store, new["id"], notebook_json)
        raise RerunCancelledError("the re-execution was cancelled")

    error = failed_cell = None
    if outcome.failed_index is not None:
        seq = plan.seqs[outcome.failed_index]
        source = plan.notebook.cells[outcome.failed_index].source
        first = next((ln for ln in source.splitlines() if ln.strip()), "")
        error = f"cell seq {seq}: {outcome.error}"
        failed_cell = {
            "seq": seq,
            "position": outcome.failed_index + 1,
            "first_line": one_line(first, 120),
        }
        if new is not None:
            _mark_failed(store, new)
    elif new is not None and new.get("status") == "running":
        _mark_failed(store, new)  # the kernel went away without ending it
    verdict = make_verdict(plan.run, new, _shas(plan), tolerance, plan.overrides,
                           error=error, failed_cell=failed_cell)
    verdict["seconds"] = round(outcome.seconds, 3)
    if new is not None:
        store.set_verdict(new["id"], verdict)
        _keep_notebook(store, new["id"], notebook_json)
    return {
        "run": new["id"] if new is not None else None,
        "verdict": verdict,
        "notebook": json.loads(notebook_json),
    }


def _execute_plan(
    plan: Replay,
    host: Any,
    timeout: float | None,
    progress: Callable[[int, int], None] | None,
    cancel: threading.Event | None,
    kernel_spec_manager: Any,
) -> Any:
    """Run the plan's notebook: through ``host``'s kernel manager (the settings in a hidden
    setup cell), else in a kernel nbclient starts (the settings in its environment)."""
    from .execute import execute

    try:
        if host is not None:
            from .hosts import execute_hosted
            from .setup import payload

            outcome = execute_hosted(
                host, plan.notebook, plan.kernel_name, plan.cwd, plan.base_env(),
                payload(plan.env, plan.cwd, plan.run["id"]), timeout, progress, cancel,
            )
        else:
            outcome = execute(
                plan.notebook, plan.kernel_name, plan.cwd, plan.kernel_env(), timeout,
                progress, cancel, kernel_spec_manager=kernel_spec_manager,
            )
    except NBTraceError:
        raise
    except Exception as exc:  # noqa: BLE001 - kernel start/transport failures, told in one line
        raise KernelError(
            f"the {plan.kernel_name} kernel could not run the replay:"
            f" {type(exc).__name__}: {one_line(exc, 200)}"
        ) from None
    return outcome


def _shas(plan: Replay) -> list[str]:
    return [c.metadata["nbtrace"]["sha256"] for c in plan.notebook.cells]


def _read_run(store: Store, run_id: str) -> dict[str, Any] | None:
    """The new run, or None when the replay never started it (retrying a locked store)."""
    for attempt in range(3):
        try:
            return store.get_run(run_id)
        except NotFoundError:
            return None
        except StoreError:
            if attempt == 2:
                raise
            time.sleep(0.5)
    return None  # pragma: no cover


def _mark_failed(store: Store, run: dict[str, Any]) -> None:
    fields: dict[str, Any] = {"status": "failed"}
    if run.get("ended_at") is None:
        fields["ended_at"] = time.time()
    store.apply([("run_update", run["id"], fields)])
    run["status"] = "failed"


def _notebook_json(nb: Any) -> str:
    import nbformat

    return nbformat.writes(nb)


def _keep_notebook(store: Store, run_id: str, text: str) -> None:
    data = text.encode("utf-8")
    sha = hashlib.sha256(data).hexdigest()
    store.apply([("artifact", run_id, EXECUTED_NOTEBOOK, sha, len(data), data)])

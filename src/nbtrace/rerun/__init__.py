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

from ..errors import (
    KernelError,
    NBTraceError,
    NotFoundError,
    PathRefusedError,
    RerunCancelledError,
    StoreError,
    UsageError,
    one_line,
)
from ..store.base import Store
from .replay import Replay, plan_replay
from .verdict import DEFAULT_TOLERANCE, make_verdict

__all__ = [
    "rerun_run", "plan_replay", "PathRefusedError",
    "RerunCancelledError", "KernelError", "DEFAULT_TOLERANCE", "EXECUTED_NOTEBOOK",
]

#: Name of the artifact holding the executed replay notebook (with outputs).
EXECUTED_NOTEBOOK = "executed.ipynb"


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
    repeat: int = 1,
    recorded_modules: bool = False,
) -> dict[str, Any]:
    """Re-execute run ``ref``; returns ``{"run": new id or None, "verdict", "notebook"}``.

    ``overrides`` replace parameters at their ``%log_param`` points; ``progress(done, total)`` is
    called after each cell; setting ``cancel`` interrupts the replay (then
    :class:`RerunCancelledError` is raised). ``root_dir`` confines the run's folder (the
    server's root); ``user`` and ``job_id`` are recorded with the new run; the server passes its
    ``kernel_spec_manager``. Errors in the user's code are not raised: they give a ``failed``
    verdict naming the cell. ``repeat`` replays N times (N new runs) and adds the run-to-run
    ``noise`` (:mod:`.noise`); ``recorded_modules`` replays with the recorded sources of the
    run's local modules.
    """
    from .noise import add_noise

    if not isinstance(repeat, int) or isinstance(repeat, bool) or not 1 <= repeat <= MAX_REPEAT:
        raise UsageError(f"repeat must be an integer from 1 to {MAX_REPEAT}")
    results = []
    for k in range(repeat):
        def step(done: int, total: int, _k: int = k) -> None:
            if progress is not None:
                progress(_k * total + done, repeat * total)

        results.append(_replay_once(
            store, ref, overrides, kernel_name, tolerance, timeout, step, root_dir, user,
            cancel, job_id, kernel_spec_manager, recorded_modules, host, tags,
        ))
        if results[-1]["run"] is None:
            break
    first = results[0]
    if repeat > 1:
        verdicts = [r["verdict"] for r in results]
        replays = [r["new"] for r in results if r["new"] is not None]
        verdict = dict(first["verdict"])
        order = ("reproduced", "within_tolerance", "diverged", "failed")
        verdict["status"] = max((v["status"] for v in verdicts), key=order.index)
        if verdict["status"] != "failed" and replays:
            original = store.get_run(first["verdict"]["source_run"])
            verdict = add_noise(verdict, original, replays, verdicts)
        if first["run"] is not None:
            store.set_verdict(first["run"], stored_verdict(verdict))
        first = {**first, "verdict": verdict}
    return {"run": first["run"], "verdict": first["verdict"], "notebook": first["notebook"]}


#: Most replays one ``--repeat`` may ask for.
MAX_REPEAT = 20


def _replay_once(
    store: Store, ref: str, overrides: Mapping[str, Any] | None, kernel_name: str | None,
    tolerance: float | None, timeout: float | None,
    progress: Callable[[int, int], None] | None, root_dir: str | None, user: str | None,
    cancel: threading.Event | None, job_id: str | None, kernel_spec_manager: Any,
    recorded_modules: bool, host: Any = None, tags: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """One replay and its verdict (see :func:`rerun_run`); also returns the new run object."""
    plan = plan_replay(store, ref, overrides, kernel_name, root_dir, user, job_id,
                       kernel_spec_manager=kernel_spec_manager, host=host, tags=tags,
                       recorded_modules=recorded_modules)
    try:
        outcome = _execute_plan(plan, host, timeout, progress, cancel, kernel_spec_manager)
    finally:
        plan.cleanup()

    new = _read_run(store, plan.new_run_id)
    notebook_json = _notebook_json(outcome.notebook)
    if outcome.cancelled:
        if new is not None:
            _mark_failed(store, new)
            verdict = _verdict(store, plan, new, tolerance,
                               error="cancelled before the replay finished")
            store.set_verdict(new["id"], stored_verdict(verdict))
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
    verdict = _verdict(store, plan, new, tolerance, error=error, failed_cell=failed_cell)
    verdict["seconds"] = round(outcome.seconds, 3)
    if new is not None:
        if verdict.get("override_without_effect"):
            _drop_false_claims(store, new["id"], plan.overrides, plan.run.get("params") or {})
        store.set_verdict(new["id"], stored_verdict(verdict))
        _keep_notebook(store, new["id"], notebook_json)
    return {
        "run": new["id"] if new is not None else None,
        "verdict": verdict,
        "notebook": json.loads(notebook_json),
        "new": new,
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
            from .kernelsetup import payload

            # A local kernel starts with the whole replay environment, as without a host; a
            # gateway passes on only KERNEL_* and its allowed_envs, so it is offered the
            # settings that must be there at process start (PYTHONHASHSEED, thread counts):
            # the rest reaches the kernel in the hidden setup cell, in both cases.
            start_env = plan.kernel_env() if not host.remote else {
                k: v for k, v in plan.env.items() if not k.startswith("NBTRACE_")
            }
            outcome = execute_hosted(
                host, plan.notebook, plan.kernel_name, plan.cwd, start_env,
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


def stored_verdict(verdict: Mapping[str, Any]) -> dict[str, Any]:
    """The verdict as kept with the new run: without the divergent cell's images.

    Why: every listing reads each re-execution's verdict (for its status); images there would
    make a listing of many re-executions read megabytes. The job's answer (dialog, CLI) keeps
    them; both runs' outputs keep the images' hashes.
    """
    out = dict(verdict)
    fd = out.get("first_divergence")
    if fd:
        out["first_divergence"] = {**fd, "original_images": [], "new_images": []}
    return out


def _verdict(store: Store, plan: Replay, new: dict[str, Any] | None, tolerance: float | None,
             error: str | None = None,
             failed_cell: dict[str, Any] | None = None) -> dict[str, Any]:
    """The verdict of one replay, with both runs read whole (series, outputs, modules)."""
    original = store.get_run(plan.run["id"], series=True)
    return make_verdict(original, new, _shas(plan), tolerance, plan.overrides, error=error,
                        failed_cell=failed_cell, ignored=plan.ignored, image=store.image,
                        source=store.source, artifact=_artifact_reader(store))


def _artifact_reader(store: Store) -> Callable[[str, str], bytes | None]:
    """``(run_id, name) -> bytes``, None when the store cannot give them (then bytes decide)."""

    def read(run_id: str, name: str) -> bytes | None:
        try:
            return store.artifact(run_id, name)[0]
        except NBTraceError:
            return None

    return read


def _drop_false_claims(store: Store, run_id: str, overrides: Mapping[str, Any],
                       params: Mapping[str, Any]) -> None:
    """An override that changed nothing: the new run must not claim its value was used.

    The parameter is removed from the new run and a tag says what was asked for.
    """
    names = sorted(k for k in overrides if k in params and params[k] != overrides[k])
    asked = ", ".join(f"{k}={json.dumps(overrides[k], default=str)}" for k in names)
    store.apply([("param_delete", run_id, k) for k in names]
                + [("tag", run_id, "nbtrace.override_without_effect", asked)])


def _shas(plan: Replay) -> list[str]:
    return [c.metadata["nbtrace"]["sha256"] for c in plan.notebook.cells]


def _read_run(store: Store, run_id: str) -> dict[str, Any] | None:
    """The new run, or None when the replay never started it (retrying a locked store)."""
    for attempt in range(3):
        try:
            return store.get_run(run_id, series=True)
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

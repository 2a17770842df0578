"""The reproducibility verdict: does the re-execution give the original run's results?

Statuses, from best to worst: ``reproduced`` (every metric's latest value is equal, NaN equal to
NaN), ``within_tolerance`` (all within a relative tolerance, default 1e-9: float noise from a
different BLAS or CPU), ``diverged`` (some metric differs more, or exists on one side only),
``failed`` (the replay raised an error the original did not, or never reached the run).

Alongside: what differs between the two environments, whether the replay ran exactly the
recorded code, and the overrides asked for (with overrides, ``diverged`` is the expected answer:
the deltas are the point).

Issue 10 widened what is judged: besides the latest metrics, each metric's whole series, every
replayed cell's outputs, the artifacts and the params actually logged (:mod:`.judge`); a run
without metrics is judged by its outputs. ``causes`` lists what differs between the two runs
that can explain a divergence (:mod:`.causes`), ``first_divergence`` the first cell whose
outputs differ, and ``override_without_effect`` flags overrides that changed nothing.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

DEFAULT_TOLERANCE = 1e-9
STATUSES = ("reproduced", "within_tolerance", "diverged", "failed")
#: With ``--repeat N``: the original lies within the spread of the replays.
WITHIN_NOISE = "within_noise"


def _num(x: Any) -> float | None:
    if isinstance(x, bool) or not isinstance(x, (int, float)):
        return None
    return float(x)


def _equal(a: float, b: float) -> bool:
    return a == b or (math.isnan(a) and math.isnan(b))


def _close(a: float, b: float, tol: float) -> bool:
    if not (math.isfinite(a) and math.isfinite(b)):
        return _equal(a, b)
    return abs(a - b) <= tol * max(abs(a), abs(b))


def compare_metrics(
    original: Mapping[str, Any], new: Mapping[str, Any], tolerance: float = DEFAULT_TOLERANCE
) -> tuple[str, dict[str, dict[str, Any]]]:
    """The metrics part of a verdict: its status and ``{name: {original, new, delta, status}}``.

    Every metric of either run is listed; ``delta`` is ``new - original`` (0 when equal, None when
    a side is missing). A run without metrics, re-executed without metrics, is ``reproduced``.
    """
    out: dict[str, dict[str, Any]] = {}
    worst = 0
    for key in sorted(set(original) | set(new)):
        a, b = _num(original.get(key)), _num(new.get(key))
        if a is None or b is None:
            status, delta = "diverged", None
        elif _equal(a, b):
            status, delta = "reproduced", 0.0
        else:
            delta = b - a
            status = "within_tolerance" if _close(a, b, tolerance) else "diverged"
        worst = max(worst, STATUSES.index(status))
        out[key] = {"original": a, "new": b, "delta": delta, "status": status}
    return STATUSES[worst], out


def make_verdict(
    original: Mapping[str, Any],
    new: Mapping[str, Any] | None,
    replayed_shas: Sequence[str],
    tolerance: float | None = None,
    overrides: Mapping[str, Any] | None = None,
    error: str | None = None,
    failed_cell: Mapping[str, Any] | None = None,
    ignored: Sequence[int] = (),
    image: Callable[[str], Mapping[str, Any] | None] | None = None,
    source: Callable[[str], str | None] | None = None,
    artifact: Callable[[str, str], bytes | None] | None = None,
) -> dict[str, Any]:
    """The verdict object stored with the new run and returned by ``rerun`` / the job API.

    ``new`` is the re-execution run as :meth:`Store.get_run` returns it (None when the replay
    never started it); ``error`` makes the verdict ``failed`` whatever the metrics say.
    ``ignored`` are the 1-based positions of cells whose outputs are not compared (tagged
    ``nbtrace-ignore-output``); ``image(sha)`` and ``source(sha)`` read kept images and module
    sources from the store, for the first divergence and the module diffs;
    ``artifact(run_id, name)`` reads an artifact's bytes, for the artifacts that may differ in
    bytes but not in meaning (:mod:`.normalise`).
    """
    tol = DEFAULT_TOLERANCE if tolerance is None else float(tolerance)
    overrides = dict(overrides or {})
    verdict: dict[str, Any] = {
        "status": "failed", "metrics": {}, "environment_diff": None, "code_matches": None,
        "error": error, "failed_cell": dict(failed_cell) if failed_cell else None,
        "tolerance": tol, "overrides": overrides, "source_run": original.get("id"),
        "first_divergence": None, "causes": [], "outputs": [], "artifacts": {}, "params": {},
        "series": {}, "override_without_effect": False, "noise": None,
        "artifacts_normalised": [],
    }
    if new is not None:
        verdict.update(_judge(original, new, replayed_shas, tol, overrides, ignored, image,
                              source, artifact))
    if error is not None:
        verdict["status"] = "failed"
    elif new is None:
        verdict["error"] = "the replay never started the run"
    return verdict


def _judge(
    original: Mapping[str, Any],
    new: Mapping[str, Any],
    replayed_shas: Sequence[str],
    tol: float,
    overrides: Mapping[str, Any],
    ignored: Sequence[int],
    image: Callable[[str], Mapping[str, Any] | None] | None,
    source: Callable[[str], str | None] | None,
    artifact: Callable[[str, str], bytes | None] | None = None,
) -> dict[str, Any]:
    """Everything a verdict compares, for a replay that started the run."""
    from ..compare import environment_diff
    from . import causes as c
    from . import judge as j

    status, metrics = compare_metrics(original.get("metrics") or {}, new.get("metrics") or {},
                                      tol)
    series = {}
    if "series" in original and "series" in new:
        series = j.compare_series(original.get("series") or {}, new.get("series") or {}, tol)
        for key, st in series.items():
            if key in metrics:
                metrics[key]["series"] = st
    outputs = j.compare_outputs(original, new, ignored, tol)
    artifacts, normalised = j.compare_artifacts(original.get("artifacts") or [],
                                                new.get("artifacts") or [],
                                                _equivalence(original, new, artifact))
    params = j.compare_params(original.get("params") or {}, new.get("params") or {}, overrides)
    last = (new.get("position") or {}).get("last_seq")
    new_cells = [cell for cell in new.get("cells") or [] if last is None or cell["seq"] <= last]
    cells_match = [cell["sha256"] for cell in new_cells] == list(replayed_shas)
    module_causes = c.module_causes(original.get("modules") or [], new.get("modules") or [],
                                    source)
    replayed = [{"seq": None, "sha256": sha} for sha in replayed_shas]
    results_status = j.worst(j.outputs_status(outputs),
                             "diverged" if artifacts else "reproduced",
                             *series.values())
    unchanged = j.worst(status, results_status) != "diverged"
    # Inherited overrides (re-executing a re-execution) equal the run's own params: they ask
    # for no change, so they cannot be "without effect".
    changes = {k: v for k, v in overrides.items()
               if (original.get("params") or {}).get(k) != v}
    status = j.worst(status, results_status, "diverged" if params else "reproduced")
    code_matches = cells_match and not module_causes
    if not code_matches:
        # Equal results from other code (cells or local modules) prove nothing about the
        # recorded code.
        status = "diverged"
    return {
        "status": status,
        "metrics": metrics,
        "series": series,
        "environment_diff": environment_diff(original.get("environment") or {},
                                             new.get("environment") or {}),
        "code_matches": code_matches,
        "outputs": outputs,
        "first_divergence": j.first_divergence(outputs, original, new, image),
        "artifacts": artifacts,
        "artifacts_normalised": normalised,
        "params": params,
        "causes": c.all_causes(original, new, replayed, new_cells, changes, source),
        "override_without_effect": bool(changes) and unchanged,
    }


def _equivalence(original: Mapping[str, Any], new: Mapping[str, Any],
                 artifact: Callable[[str, str], bytes | None] | None,
                 ) -> Callable[[str], bool] | None:
    """``name -> bool``: both runs' versions of an artifact equal once normalised."""
    if artifact is None or not original.get("id") or not new.get("id"):
        return None
    from .normalise import MAX_BYTES, equivalent

    sizes = {(side, a["name"]): a.get("size") or 0
             for side, run in (("o", original), ("n", new)) for a in run.get("artifacts") or []}

    def same(name: str) -> bool:
        if sizes.get(("o", name), 0) > MAX_BYTES or sizes.get(("n", name), 0) > MAX_BYTES:
            return False
        a, b = artifact(original["id"], name), artifact(new["id"], name)
        return a is not None and b is not None and equivalent(name, a, b)

    return same

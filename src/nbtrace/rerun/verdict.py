"""The reproducibility verdict: does the re-execution give the original run's results?

Statuses, from best to worst: ``reproduced`` (every metric's latest value is equal, NaN equal to
NaN), ``within_tolerance`` (all within a relative tolerance, default 1e-9: float noise from a
different BLAS or CPU), ``diverged`` (some metric differs more, or exists on one side only),
``failed`` (the replay raised an error the original did not, or never reached the run).

Alongside: what differs between the two environments, whether the replay ran exactly the
recorded code, and the overrides asked for (with overrides, ``diverged`` is the expected answer:
the deltas are the point).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

DEFAULT_TOLERANCE = 1e-9
STATUSES = ("reproduced", "within_tolerance", "diverged", "failed")


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
) -> dict[str, Any]:
    """The verdict object stored with the new run and returned by ``rerun`` / the job API.

    ``new`` is the re-execution run as :meth:`Store.get_run` returns it (None when the replay
    never started it); ``error`` makes the verdict ``failed`` whatever the metrics say.
    """
    from ..compare import environment_diff

    tol = DEFAULT_TOLERANCE if tolerance is None else float(tolerance)
    if new is not None:
        status, metrics = compare_metrics(original.get("metrics") or {}, new.get("metrics") or {},
                                          tol)
        env_diff: dict[str, Any] | None = environment_diff(
            original.get("environment") or {}, new.get("environment") or {}
        )
        last = (new.get("position") or {}).get("last_seq")
        new_shas = [c["sha256"] for c in new.get("cells") or []
                    if last is None or c["seq"] <= last]
        code_matches: bool | None = list(new_shas) == list(replayed_shas)
    else:
        status, metrics, env_diff, code_matches = "failed", {}, None, None
    if code_matches is False and status in ("reproduced", "within_tolerance"):
        # Equal metrics from other code prove nothing about the recorded code.
        status = "diverged"
    if error is not None:
        status = "failed"
    elif new is None:
        error = "the replay never started the run"
        status = "failed"
    return {
        "status": status,
        "metrics": metrics,
        "environment_diff": env_diff,
        "code_matches": code_matches,
        "error": error,
        "failed_cell": dict(failed_cell) if failed_cell else None,
        "tolerance": tol,
        "overrides": dict(overrides or {}),
        "source_run": original.get("id"),
    }

"""Run-to-run noise from N replays (``--repeat N``): is the original within it?

Why: some code is not deterministic by nature (threads summing in a different order, a GPU
kernel); a single replay that differs says nothing about whether the original is an outlier.
N replays give each metric's spread (min, max, mean, std). The verdict is ``within_noise`` when
every metric that differs from the original lies within the replays' spread (and the outputs
that differ also differ between replays), and stays ``diverged`` when the original is outside.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Mapping, Sequence
from typing import Any

from .verdict import WITHIN_NOISE


def spread(values: Sequence[float]) -> dict[str, float]:
    """``{"min", "max", "mean", "std"}`` of the replays' values (population std)."""
    finite = [v for v in values if v is not None and math.isfinite(v)]
    if not finite:
        return {"min": math.nan, "max": math.nan, "mean": math.nan, "std": math.nan}
    return {"min": min(finite), "max": max(finite), "mean": statistics.fmean(finite),
            "std": statistics.pstdev(finite) if len(finite) > 1 else 0.0}


def noisy_cells(verdicts: Sequence[Mapping[str, Any]], runs: Sequence[Mapping[str, Any]]) -> set:
    """Positions of cells whose outputs differ between the replays themselves."""
    by_pos: dict[int, set[str]] = {}
    for run in runs:
        seqs = [c["seq"] for c in run.get("cells") or []]
        fps = {o["seq"]: o["fingerprint"] for o in run.get("outputs") or []}
        for pos, seq in enumerate(seqs, start=1):
            if seq in fps:
                by_pos.setdefault(pos, set()).add(fps[seq])
    return {pos for pos, fps in by_pos.items() if len(fps) > 1}


def add_noise(verdict: dict[str, Any], original: Mapping[str, Any],
              replays: Sequence[Mapping[str, Any]],
              verdicts: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """The first replay's verdict with ``noise``, ``repeats`` and, where it applies,
    ``within_noise``."""
    metrics = original.get("metrics") or {}
    noise: dict[str, Any] = {}
    covered = True
    for key in sorted(set(metrics) | {k for r in replays for k in r.get("metrics") or {}}):
        vals = [r.get("metrics", {}).get(key) for r in replays]
        s = spread([float(v) for v in vals if isinstance(v, (int, float))])
        o = metrics.get(key)
        inside = isinstance(o, (int, float)) and s["min"] <= o <= s["max"]
        differs = any(v != o for v in vals)
        s.update(original=o, within=bool(inside))
        noise[key] = s
        if differs and not (inside and s["max"] > s["min"]):
            covered = False
    noisy = noisy_cells(verdicts, replays)
    diverged_cells = {o["position"] for v in verdicts for o in v.get("outputs") or []
                      if o["status"] == "diverged"}
    if diverged_cells - noisy:
        covered = False
    if any(v.get("artifacts") or v.get("params") for v in verdicts):
        covered = False
    verdict["noise"] = noise
    verdict["repeats"] = len(replays)
    verdict["runs"] = [r["id"] for r in replays]
    if verdict["status"] in ("diverged", "within_tolerance") and covered:
        if any(verdict_status != "reproduced" for verdict_status in
               (v["status"] for v in verdicts)):
            verdict["status"] = WITHIN_NOISE
    return verdict

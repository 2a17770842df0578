"""Side-by-side comparison of runs: params, metrics, code and environment.

Why in the core: the CLI's ``compare`` verb, the REST ``compare`` endpoint, the sidebar and the
re-execution verdict all need the same differences; they only render them.
"""

from __future__ import annotations

import difflib
import math
import re
from collections.abc import Sequence
from typing import Any

from .errors import UsageError
from .store.base import Store

_MAXIMIZE = re.compile(r"(acc|auc|r2|f1|precision|recall|score|iou|map|bleu|ndcg|rouge)", re.I)


def metric_goal(name: str) -> str:
    """``"max"`` for metrics where higher is better (accuracy, R2, ...), else ``"min"``."""
    return "max" if _MAXIMIZE.search(name) else "min"


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return True
    return (
        a == b
        and type(a) is type(b)
        or (
            isinstance(a, (int, float))
            and isinstance(b, (int, float))
            and not isinstance(a, bool)
            and not isinstance(b, bool)
            and a == b
        )
    )


def _differs(values: Sequence[Any]) -> bool:
    return any(not _same(values[0], v) for v in values[1:])


def compare_runs(store: Store, refs: Sequence[str], max_runs: int = 20) -> dict[str, Any]:
    """The comparison object for 2..``max_runs`` runs (order kept)."""
    if len(refs) < 2:
        raise UsageError("compare needs at least two runs")
    if len(refs) > max_runs:
        raise UsageError(f"compare takes at most {max_runs} runs")
    runs = [store.get_run(r, series=True) for r in refs]
    ids = [r["id"] for r in runs]
    if len(set(ids)) != len(ids):
        raise UsageError("compare needs distinct runs")
    out: dict[str, Any] = {"runs": [_summary(r) for r in runs]}

    pkeys = sorted({k for r in runs for k in r["params"]})
    out["params"] = []
    for k in pkeys:
        vals = [r["params"].get(k) for r in runs]
        out["params"].append({"key": k, "values": dict(zip(ids, vals)), "differs": _differs(vals)})

    mkeys = sorted({k for r in runs for k in r["metrics"]})
    out["metrics"] = []
    for k in mkeys:
        vals = [r["metrics"].get(k) for r in runs]
        goal = metric_goal(k)
        finite = [
            (v, i) for i, v in zip(ids, vals) if isinstance(v, (int, float)) and not math.isnan(v)
        ]
        best = None
        if finite:
            best = (max if goal == "max" else min)(finite)[1]
        out["metrics"].append(
            {
                "key": k,
                "values": dict(zip(ids, vals)),
                "best": best,
                "goal": goal,
                "differs": _differs(vals),
            }
        )
    out["series"] = {k: {r["id"]: r["series"].get(k, []) for r in runs} for k in mkeys}
    out["code"] = {
        "base": ids[0],
        "diffs": {r["id"]: code_diff(runs[0]["cells"], r["cells"]) for r in runs[1:]},
    }
    out["environment"] = environment_diff_many(runs)
    return out


def _summary(run: dict[str, Any]) -> dict[str, Any]:
    keys = (
        "id",
        "name",
        "experiment",
        "status",
        "started_at",
        "ended_at",
        "duration_s",
        "user",
        "host",
        "params",
        "metrics",
        "tags",
        "parent",
        "notebook_path",
    )
    return {k: run.get(k) for k in keys}


def code_diff(a: list[dict[str, Any]], b: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Cell-level diff of two recorded code histories (aligned by source hash)."""
    sm = difflib.SequenceMatcher(
        a=[c["sha256"] for c in a], b=[c["sha256"] for c in b], autojunk=False
    )
    out: list[dict[str, Any]] = []
    for op, i1, i2, j1, j2 in sm.get_opcodes():
        if op == "equal":
            out.extend(
                {"op": "equal", "a": x, "b": y, "diff": ""} for x, y in zip(a[i1:i2], b[j1:j2])
            )
            continue
        left, right = a[i1:i2], b[j1:j2]
        for k in range(max(len(left), len(right))):
            x = left[k] if k < len(left) else None
            y = right[k] if k < len(right) else None
            kind = "changed" if x and y else ("removed" if x else "added")
            diff = "".join(
                difflib.unified_diff(
                    _lines((x or {}).get("source")),
                    _lines((y or {}).get("source")),
                    "a",
                    "b",
                    lineterm="\n",
                )
            )
            out.append({"op": kind, "a": x, "b": y, "diff": diff})
    return out


def _lines(source: str | None) -> list[str]:
    """Source lines, each ending in a newline (a cell's last line usually has none, and
    ``unified_diff`` would glue it to the next line of the diff)."""
    return [
        line if line.endswith("\n") else line + "\n" for line in (source or "").splitlines(True)
    ]


def packages_diff(old: dict[str, str], new: dict[str, str]) -> dict[str, Any]:
    """Packages added, removed and changed between two installed sets."""
    return {
        "added": [{"name": n, "version": new[n]} for n in sorted(set(new) - set(old))],
        "removed": [{"name": n, "version": old[n]} for n in sorted(set(old) - set(new))],
        "changed": [
            {"name": n, "old": old[n], "new": new[n]}
            for n in sorted(set(old) & set(new))
            if old[n] != new[n]
        ],
    }


def environment_diff(old: dict[str, Any], new: dict[str, Any]) -> dict[str, Any]:
    """What differs between two recorded environments (for verdicts and drift checks)."""
    out: dict[str, Any] = {
        "packages": packages_diff(old.get("packages") or {}, new.get("packages") or {})
    }
    for key in ("python", "platform", "machine", "executable"):
        a, b = old.get(key), new.get(key)
        out[key] = None if a == b else {"old": a, "new": b}
    p = out["packages"]
    out["differs"] = bool(p["added"] or p["removed"] or p["changed"]) or any(
        out[k] for k in ("python", "platform", "machine")
    )
    return out


def environment_diff_many(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Python, platform and the packages whose versions differ across several runs."""
    envs = [r.get("environment") or {} for r in runs]
    ids = [r["id"] for r in runs]
    out: dict[str, Any] = {
        "python": {i: e.get("python") for i, e in zip(ids, envs)},
        "platform": {i: e.get("platform") for i, e in zip(ids, envs)},
    }
    names = sorted({n for e in envs for n in (e.get("packages") or {})})
    pk = []
    for n in names:
        vals = [(e.get("packages") or {}).get(n) for e in envs]
        if _differs(vals):
            pk.append({"name": n, "values": dict(zip(ids, vals))})
    out["packages"] = pk
    out["differs"] = (
        bool(pk)
        or _differs(list(out["python"].values()))
        or _differs(list(out["platform"].values()))
    )
    return out

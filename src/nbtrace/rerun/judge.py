"""The parts of a verdict beyond the latest metrics: series, cell outputs, artifacts, params.

Why apart from :mod:`.verdict`: each comparison is a small pure function of two run objects
(as :meth:`Store.get_run` returns them), tested on its own; the verdict only folds their
statuses (``reproduced`` < ``within_tolerance`` < ``diverged``) into one.

Outputs are compared cell by cell in replay order: texts (already normalised by the kernel,
see :mod:`nbtrace.capture.outputs`) must have the same words, their numbers equal or within the
tolerance; images must have the same bytes. A cell tagged ``nbtrace-ignore-output`` (or nbval's
``nbval-ignore-output``) is left out, and so is a cell whose outputs one side did not record
(a run recorded before outputs were, or cells taken from the history).
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any

ORDER = ("reproduced", "within_tolerance", "diverged")
IGNORE_TAGS = ("nbtrace-ignore-output", "nbval-ignore-output")
#: The notebook artifact a re-execution keeps of itself: never part of the comparison.
OWN_ARTIFACTS = ("executed.ipynb",)
_NUM = re.compile(r"[-+]?(?:\d+\.\d*|\.\d+|\d+)(?:[eE][-+]?\d+)?|\bnan\b|\binf\b")


def worst(*statuses: str) -> str:
    """The worst of some statuses (``reproduced`` when none)."""
    return ORDER[max((ORDER.index(s) for s in statuses if s in ORDER), default=0)]


def close(a: float, b: float, tol: float) -> str:
    """Status of two numbers: equal, within the relative tolerance, or not."""
    if a == b or (math.isnan(a) and math.isnan(b)):
        return "reproduced"
    if math.isfinite(a) and math.isfinite(b) and abs(a - b) <= tol * max(abs(a), abs(b)):
        return "within_tolerance"
    return "diverged"


def compare_text(a: str, b: str, tol: float) -> str:
    """Two texts: the same apart from numbers within ``tol``?"""
    if a == b:
        return "reproduced"
    if _NUM.split(a) != _NUM.split(b):
        return "diverged"
    status = "reproduced"
    for x, y in zip(_NUM.findall(a), _NUM.findall(b)):
        if x != y:
            status = worst(status, close(float(x), float(y), tol))
    return status


def compare_items(a: Sequence[Mapping[str, Any]], b: Sequence[Mapping[str, Any]],
                  tol: float) -> str:
    """One cell's output items (same kinds in the same order; texts and images compared)."""
    if [i.get("kind") for i in a] != [i.get("kind") for i in b]:
        return "diverged"
    status = "reproduced"
    for x, y in zip(a, b):
        if "sha256" in x or "sha256" in y:
            status = worst(status, "reproduced" if x.get("sha256") == y.get("sha256")
                           else "diverged")
        else:
            status = worst(status, compare_text(x.get("text") or "", y.get("text") or "", tol))
    return status


def _cells(run: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    last = (run.get("position") or {}).get("last_seq")
    return [c for c in run.get("cells") or [] if last is None or c["seq"] <= last]


def compare_outputs(
    original: Mapping[str, Any], new: Mapping[str, Any], ignored: Sequence[int], tol: float
) -> list[dict[str, Any]]:
    """Per replayed cell: ``{"seq", "position", "status", "original", "new"}`` (excerpts).

    ``ignored`` holds the 1-based positions of cells tagged to be left out. Status ``ignored``
    or ``unknown`` (not recorded on one side) takes no part in the verdict.
    """
    out_a = {o["seq"]: o for o in original.get("outputs") or []}
    out_b = {o["seq"]: o for o in new.get("outputs") or []}
    result = []
    for pos, (ca, cb) in enumerate(zip(_cells(original), _cells(new)), start=1):
        a, b = out_a.get(ca["seq"]), out_b.get(cb["seq"])
        if pos in ignored:
            status = "ignored"
        elif a is None or b is None:
            status = "unknown"
        elif a["fingerprint"] == b["fingerprint"]:
            status = "reproduced"
        else:
            status = compare_items(a.get("items") or [], b.get("items") or [], tol)
        entry: dict[str, Any] = {"seq": ca["seq"], "new_seq": cb["seq"], "position": pos,
                                 "status": status}
        if status in ("diverged", "within_tolerance"):
            entry["original"] = (a or {}).get("excerpt")
            entry["new"] = (b or {}).get("excerpt")
        result.append(entry)
    return result


def outputs_status(outputs: Sequence[Mapping[str, Any]]) -> str:
    return worst(*(o["status"] for o in outputs))


def first_divergence(
    outputs: Sequence[Mapping[str, Any]],
    original: Mapping[str, Any],
    new: Mapping[str, Any],
    image: Callable[[str], Mapping[str, Any] | None] | None = None,
) -> dict[str, Any] | None:
    """The first cell whose outputs diverged: where it went wrong, with both sides shown.

    Raster images kept by the kernel come as ``data:`` URLs (shown in the dialog as images,
    never as the Lab's own content).
    """
    hit = next((o for o in outputs if o["status"] == "diverged"), None)
    if hit is None:
        return None
    cell = next((c for c in _cells(original) if c["seq"] == hit["seq"]), {})
    source = cell.get("source") or ""
    first = next((ln for ln in source.splitlines() if ln.strip()), "")
    return {
        "seq": hit["seq"],
        "position": hit["position"],
        "first_line": first[:120],
        "original": hit.get("original") or "",
        "new": hit.get("new") or "",
        "original_images": _images(original, hit["seq"], image),
        "new_images": _images(new, hit["new_seq"], image),
    }


def _images(run: Mapping[str, Any], seq: int,
            image: Callable[[str], Mapping[str, Any] | None] | None) -> list[str]:
    if image is None:
        return []
    out = next((o for o in run.get("outputs") or [] if o["seq"] == seq), None)
    urls = []
    for item in (out or {}).get("items") or []:
        if item.get("kept") and item.get("blob") and len(urls) < 2:
            img = image(item["blob"])
            if img and img.get("mime") in ("image/png", "image/jpeg", "image/gif"):
                urls.append(f"data:{img['mime']};base64,{img['b64']}")
    return urls


def compare_series(original: Mapping[str, Sequence[Mapping[str, Any]]],
                   new: Mapping[str, Sequence[Mapping[str, Any]]], tol: float) -> dict[str, str]:
    """Per metric, the status of its whole series (length and every value)."""
    out = {}
    for key in sorted(set(original) | set(new)):
        a, b = original.get(key) or [], new.get(key) or []
        if len(a) != len(b):
            out[key] = "diverged"
            continue
        status = "reproduced"
        for x, y in zip(a, b):
            va, vb = x.get("value"), y.get("value")
            if va is None or vb is None:
                status = worst(status, "reproduced" if va == vb else "diverged")
            else:
                status = worst(status, close(float(va), float(vb), tol))
        out[key] = status
    return out


def compare_artifacts(original: Sequence[Mapping[str, Any]],
                      new: Sequence[Mapping[str, Any]],
                      equivalent: Callable[[str], bool] | None = None,
                      ) -> tuple[dict[str, dict[str, Any]], list[str]]:
    """Artifacts whose content differs (or exists on one side): ``{name: {original, new}}``,
    and the names whose bytes differ but ``equivalent(name)`` judged equal in meaning (see
    :mod:`.normalise`: an MLflow model's ``MLmodel`` names its run; zips carry times)."""
    a = {x["name"]: x["sha256"] for x in original if x["name"] not in OWN_ARTIFACTS}
    b = {x["name"]: x["sha256"] for x in new if x["name"] not in OWN_ARTIFACTS}
    differ, normalised = {}, []
    for n in sorted(set(a) | set(b)):
        if a.get(n) == b.get(n):
            continue
        if a.get(n) and b.get(n) and equivalent is not None and equivalent(n):
            normalised.append(n)
        else:
            differ[n] = {"original": a.get(n), "new": b.get(n)}
    return differ, normalised


def compare_params(original: Mapping[str, Any], new: Mapping[str, Any],
                   overrides: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """Params logged differently from what was asked: ``{name: {expected, new}}``."""
    expected = {**original, **{k: v for k, v in overrides.items() if k in original}}
    out = {}
    for k in sorted(set(expected) | set(new)):
        a, b = expected.get(k), new.get(k)
        if a != b and not (isinstance(a, float) and isinstance(b, float)
                           and math.isnan(a) and math.isnan(b)):
            out[k] = {"expected": a, "new": b}
    return out

"""What differs between a run and its replay that can explain a different result.

Each cause is ``{"kind": "input"|"module"|"package"|"env"|"code"|"override", "name",
"original", "new"}`` (a changed module also carries a unified ``diff`` of its sources when both
were stored). The same comparisons serve the drift check before a replay (:mod:`.drift`),
where the "new" side is the file as it is now.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

MAX_DIFF_LINES = 200
MAX_PACKAGES = 30


def _by_path(items: Iterable[Mapping[str, Any]]) -> dict[str, Mapping[str, Any]]:
    return {i["path"]: i for i in items or [] if i.get("path")}


def source_diff(a: str | None, b: str | None, path: str) -> str | None:
    """A unified diff of two module sources (capped), or None when one is unknown."""
    if a is None or b is None:
        return None
    lines = list(difflib.unified_diff(a.splitlines(), b.splitlines(), f"{path} (recorded)",
                                      f"{path} (replay)", lineterm=""))
    if len(lines) > MAX_DIFF_LINES:
        lines = lines[:MAX_DIFF_LINES] + [f"... {len(lines) - MAX_DIFF_LINES} more lines"]
    return "\n".join(lines)


def module_causes(
    original: Sequence[Mapping[str, Any]],
    new: Sequence[Mapping[str, Any]],
    source: Callable[[str], str | None] | None = None,
) -> list[dict[str, Any]]:
    """Local modules whose content differs, appeared or went missing (``source(sha)`` reads a
    stored module source, for the diff)."""
    a, b = _by_path(original), _by_path(new)
    out = []
    for path in sorted(set(a) | set(b)):
        sa, sb = (a.get(path) or {}).get("sha256"), (b.get(path) or {}).get("sha256")
        if sa == sb:
            continue
        cause: dict[str, Any] = {"kind": "module", "name": path, "original": sa, "new": sb}
        if sa and sb and source is not None:
            cause["diff"] = source_diff(source(sa), source(sb), path)
        out.append(cause)
    return out


def input_causes(original: Sequence[Mapping[str, Any]],
                 new: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Data files whose fingerprint differs. Files the replay did not read are named only when
    they were declared (``log_input``) or are gone: reading fewer files is not itself wrong."""
    a, b = _by_path(original), _by_path(new)
    out = []
    for path in sorted(set(a) | set(b)):
        ia, ib = a.get(path), b.get(path)
        if ia is not None and ib is not None:
            if ia.get("sha256") != ib.get("sha256"):
                out.append({"kind": "input", "name": path, "original": ia.get("sha256"),
                            "new": ib.get("sha256"), "size": [ia.get("size"), ib.get("size")]})
        elif ia is not None and ia.get("declared"):
            out.append({"kind": "input", "name": path, "original": ia.get("sha256"),
                        "new": None})
    return out


def env_causes(original: Mapping[str, Any], new: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Determinism settings, Python and platform that differ (``run["determinism"]``)."""
    out = []
    ea, eb = (original.get("determinism") or {}), (new.get("determinism") or {})
    for k in sorted(set(ea.get("env") or {}) | set(eb.get("env") or {})):
        va, vb = (ea.get("env") or {}).get(k), (eb.get("env") or {}).get(k)
        if va != vb and ea and eb:
            out.append({"kind": "env", "name": k, "original": va, "new": vb})
    for key in ("torch",):
        for k in sorted(set(ea.get(key) or {}) | set(eb.get(key) or {})):
            va, vb = (ea.get(key) or {}).get(k), (eb.get(key) or {}).get(k)
            if va != vb:
                out.append({"kind": "env", "name": f"{key}.{k}", "original": va, "new": vb})
    ta = sorted((p.get("internal_api"), p.get("num_threads")) for p in ea.get("threadpools") or [])
    tb = sorted((p.get("internal_api"), p.get("num_threads")) for p in eb.get("threadpools") or [])
    if ta and tb and ta != tb:
        out.append({"kind": "env", "name": "threadpools", "original": ta, "new": tb})
    va, vb = original.get("environment") or {}, new.get("environment") or {}
    for key in ("python", "platform"):
        if va.get(key) != vb.get(key):
            out.append({"kind": "env", "name": key, "original": va.get(key), "new": vb.get(key)})
    return out


def package_causes(original: Mapping[str, Any], new: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Installed versions that changed, imported ones first (those can matter)."""
    from ..capture.environment import canonical_name

    pa = (original.get("environment") or {}).get("packages") or {}
    pb = (new.get("environment") or {}).get("packages") or {}
    imported = {canonical_name(n) for r in (original, new)
                for n in ((r.get("environment") or {}).get("imported") or {})}
    names = sorted((n for n in set(pa) | set(pb) if pa.get(n) != pb.get(n)),
                   key=lambda n: (n not in imported, n))
    return [{"kind": "package", "name": n, "original": pa.get(n), "new": pb.get(n)}
            for n in names[:MAX_PACKAGES]]


def code_causes(replayed: Sequence[Mapping[str, Any]],
                new_cells: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Replayed cells whose recorded hash is not what the recording says."""
    out = []
    for pos, (a, b) in enumerate(zip(replayed, new_cells), start=1):
        if a.get("sha256") != b.get("sha256"):
            out.append({"kind": "code", "name": f"cell {pos} (seq {a.get('seq')})",
                        "original": a.get("sha256"), "new": b.get("sha256")})
    if len(replayed) != len(new_cells):
        out.append({"kind": "code", "name": "cells", "original": len(replayed),
                    "new": len(new_cells)})
    return out


def override_causes(original_params: Mapping[str, Any],
                    overrides: Mapping[str, Any]) -> list[dict[str, Any]]:
    return [{"kind": "override", "name": k, "original": original_params.get(k), "new": v}
            for k, v in sorted(overrides.items())]


def all_causes(
    original: Mapping[str, Any],
    new: Mapping[str, Any],
    replayed: Sequence[Mapping[str, Any]],
    new_cells: Sequence[Mapping[str, Any]],
    overrides: Mapping[str, Any],
    source: Callable[[str], str | None] | None = None,
) -> list[dict[str, Any]]:
    """Every cause, in the order a reader checks them: what they asked, code, data, env."""
    return (
        override_causes(original.get("params") or {}, overrides)
        + code_causes(replayed, new_cells)
        + module_causes(original.get("modules") or [], new.get("modules") or [], source)
        + input_causes(original.get("inputs") or [], new.get("inputs") or [])
        + env_causes(original, new)
        + package_causes(original, new)
    )

"""The verdict as a few human lines (the CLI's compact print; the dialog shows the same).

Why here and not in the CLI: the wording of causes and divergences is part of the verdict's
meaning, and the same lines serve any text front end.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..errors import one_line


def _v(x: Any) -> str:
    if isinstance(x, str) and len(x) == 64 and all(c in "0123456789abcdef" for c in x):
        return x[:12]
    return one_line("—" if x is None else x, 60)


def cause_line(c: Mapping[str, Any]) -> str:
    """``input /data/points.csv: sha 1a2b… → 3c4d…`` and the like."""
    kind, name = c.get("kind"), c.get("name")
    if c.get("new") is None and kind in ("input", "module"):
        return f"{kind} {name}: missing in the replay (was {_v(c.get('original'))})"
    if c.get("original") is None and kind in ("module",):
        return f"{kind} {name}: new in the replay ({_v(c.get('new'))})"
    return f"{kind} {name}: {_v(c.get('original'))} → {_v(c.get('new'))}"


def verdict_lines(v: Mapping[str, Any], limit: int = 12) -> list[str]:
    """Compact lines: metrics, differing outputs and artifacts, causes, first divergence."""
    lines = []
    for k, m in (v.get("metrics") or {}).items():
        extra = f", series {m['series']}" if m.get("series") not in (None, "reproduced") else ""
        lines.append(f"metric {k}: {_v(m.get('original'))} → {_v(m.get('new'))}"
                     f" (delta {_v(m.get('delta'))}{extra})")
    for k, n in (v.get("noise") or {}).items():
        lines.append(f"noise {k}: min {_v(n.get('min'))} max {_v(n.get('max'))} mean"
                     f" {_v(n.get('mean'))} std {_v(n.get('std'))}; original"
                     f" {'within' if n.get('within') else 'outside'}")
    for k, a in (v.get("artifacts") or {}).items():
        lines.append(f"artifact {k}: {_v(a.get('original'))} → {_v(a.get('new'))}")
    if v.get("artifacts_normalised"):
        names = ", ".join(v["artifacts_normalised"][:4])
        more = len(v["artifacts_normalised"]) - 4
        lines.append(f"artifacts equal once run ids and file times are ignored: {names}"
                     + (f" (+{more} more)" if more > 0 else ""))
    for k, p in (v.get("params") or {}).items():
        lines.append(f"param {k}: expected {_v(p.get('expected'))}, logged {_v(p.get('new'))}")
    outs = v.get("outputs") or []
    differ = [o for o in outs if o.get("status") in ("diverged", "within_tolerance")]
    if differ:
        lines.append(f"outputs: {len(differ)} of {len(outs)} cells differ"
                     + (f" ({sum(o['status'] == 'ignored' for o in outs)} ignored)"
                        if any(o["status"] == "ignored" for o in outs) else ""))
    fd = v.get("first_divergence")
    if fd:
        lines.append(f"first divergence: cell {fd['position']} (seq {fd['seq']}):"
                     f" {one_line(fd.get('first_line'), 60)}")
        lines.append(f"  original: {one_line(fd.get('original'), 100)}")
        lines.append(f"  new:      {one_line(fd.get('new'), 100)}")
        if fd.get("original_images") or fd.get("new_images"):
            lines.append("  (its images differ too: see the Re-execute dialog)")
    causes = v.get("causes") or []
    for c in causes[:limit]:
        lines.append("cause " + cause_line(c))
    if len(causes) > limit:
        lines.append(f"... and {len(causes) - limit} more causes")
    if v.get("override_without_effect"):
        lines.append("the overrides changed nothing the run produced (override_without_effect):"
                     " the new run does not claim their values")
    return lines

"""Can an override take effect? Where each parameter is logged, and whether the code uses it.

Why before the replay: an override is applied where the parameter is logged (``%log_param``
assigns it; ``nbtrace.log_param`` returns it). When the code ignores that value (the call's
result is discarded, or the value was used before it was logged: the ElasticNet tutorial's
``nbtrace.log_params({...})`` after the fit), the replay would record ``alpha = 0.5`` next to
the old alpha's results. So such a parameter is refused, naming the cell, and the dialog shows
it as not overridable.

The analysis is syntactic (no code runs): IPython magics are masked out, ``%log_param NAME=...``
counts as an assignment of NAME; a parameter logged where the analysis cannot see (a helper
module, a computed name) is allowed, and the verdict's ``override_without_effect`` catches it
after the fact.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ..errors import UsageError, one_line

_LOG_PARAM = re.compile(r"^(\s*)%log_param\s+(.*)$")
_MAGIC = re.compile(r"^(\s*)(%|!)")


@dataclass
class Site:
    """One place a parameter is logged."""

    position: int  # 1-based, in the replayed cells
    seq: int | None
    line: int
    ok: bool
    reason: str
    first_line: str


_IDENT = re.compile(r"[A-Za-z_]\w*")


def _mask(source: str) -> tuple[str, list[tuple[int, list[str]]], list[tuple[int, set[str]]]]:
    """Python parseable source, the names each ``%log_param`` line assigns, and the names
    other magic lines mention (``%log_metric score=alpha * 10`` reads ``alpha``)."""
    reads: list[tuple[int, set[str]]] = []
    lines = source.splitlines()
    if lines and lines[0].lstrip().startswith("%%"):
        lines = ["pass"] + lines[1:]
    assigns: list[tuple[int, list[str]]] = []
    out = []
    for n, line in enumerate(lines, start=1):
        m = _LOG_PARAM.match(line)
        if m:
            names = [p.split("=", 1)[0].strip()
                     for p in re.split(r"\s+(?=[A-Za-z_]\w*\s*=)|\s+(?=[A-Za-z_]\w*$)",
                                       m.group(2).strip())]
            assigns.append((n, [x for x in names if x.isidentifier()]))
        mm = _MAGIC.match(line)
        if mm and not m:
            reads.append((n, set(_IDENT.findall(line.lstrip()[1:]))))
        out.append(f"{mm.group(1)}pass" if mm else line)
    return "\n".join(out), assigns, reads


def _loads_after(trees: Sequence[ast.AST | None], pos: int, line: int, name: str,
                 magic_reads: Sequence[list[tuple[int, set[str]]]] = ()) -> bool:
    """Whether ``name`` is read after line ``line`` of cell ``pos`` (1-based) or in a later
    cell (in code, or in a magic line's expression)."""
    for p, reads in enumerate(magic_reads, start=1):
        if p >= pos and any(name in names and (p > pos or n > line) for n, names in reads):
            return True
    for p, tree in enumerate(trees, start=1):
        if tree is None or p < pos:
            continue
        for node in ast.walk(tree):
            if isinstance(node, ast.Name) and node.id == name and isinstance(node.ctx, ast.Load):
                if p > pos or node.lineno > line:
                    return True
    return False


def _call_key(call: ast.Call, param: str) -> str | None:
    """``"one"`` for ``log_param(param, ...)``, ``"many"`` for ``log_params({param: ...})``."""
    fn = call.func
    name = fn.attr if isinstance(fn, ast.Attribute) else fn.id if isinstance(fn, ast.Name) else ""
    if name == "log_param" and call.args:
        a = call.args[0]
        if isinstance(a, ast.Constant) and a.value == param:
            return "one"
    if name == "log_params" and call.args and isinstance(call.args[0], ast.Dict):
        keys = [k.value for k in call.args[0].keys if isinstance(k, ast.Constant)]
        if param in keys:
            return "many"
    return None


def _assigned_names(parent: ast.AST | None) -> list[str]:
    if isinstance(parent, (ast.Assign, ast.AnnAssign, ast.NamedExpr)):
        targets = parent.targets if isinstance(parent, ast.Assign) else [parent.target]
        return [t.id for t in targets if isinstance(t, ast.Name)]
    return []


def _sites_in_cell(tree: ast.AST, trees: Sequence[ast.AST | None], pos: int,
                   param: str, magic_reads: Sequence[Any]) -> list[tuple[int, bool, str]]:
    parents: dict[ast.AST, ast.AST] = {}
    for node in ast.walk(tree):
        for child in ast.iter_child_nodes(node):
            parents[child] = node
    found = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        kind = _call_key(node, param)
        if kind is None:
            continue
        parent = parents.get(node)
        fn = "log_param" if kind == "one" else "log_params"
        if isinstance(parent, ast.Expr):
            found.append((node.lineno, False, f"{fn}(...) is called and its result discarded,"
                          " so the code never uses the value it returns"))
            continue
        names = _assigned_names(parent)
        if kind == "one" and names:
            used = any(_loads_after(trees, pos, node.lineno, n, magic_reads) for n in names)
            found.append((node.lineno, used, "" if used else
                          f"the value {fn} returns ({names[0]}) is not used after it is logged"))
        else:
            found.append((node.lineno, True, ""))
    return found


def find_sites(cells: Sequence[Mapping[str, Any]], param: str) -> list[Site]:
    """Every place the replayed ``cells`` (``{"seq", "source"}``) log ``param``."""
    masked = [_mask(c.get("source") or "") for c in cells]
    trees: list[ast.AST | None] = []
    magic_reads = [r for _, _, r in masked]
    for src, _, _ in masked:
        try:
            trees.append(ast.parse(src))
        except (SyntaxError, ValueError):
            trees.append(None)
    sites = []
    for pos, (cell, (_, assigns, _r), tree) in enumerate(zip(cells, masked, trees), start=1):
        source = cell.get("source") or ""
        first = next((ln for ln in source.splitlines() if ln.strip()), "")
        for line, names in assigns:
            if param in names:
                used = _loads_after(trees, pos, line, param, magic_reads)
                sites.append(Site(pos, cell.get("seq"), line, used, "" if used else
                                  f"%log_param assigns {param} but nothing reads it afterwards",
                                  first[:80]))
        if tree is not None:
            for line, ok, reason in _sites_in_cell(tree, trees, pos, param, magic_reads):
                sites.append(Site(pos, cell.get("seq"), line, ok, reason, first[:80]))
    return sites


def overridability(cells: Sequence[Mapping[str, Any]], params: Iterable[str]) -> dict[str, Any]:
    """Per parameter: ``{"overridable", "reason", "cell": {"seq", "position", "first_line"}}``."""
    out: dict[str, Any] = {}
    for name in sorted(params):
        sites = find_sites(cells, name)
        good = [s for s in sites if s.ok]
        if good or not sites:
            out[name] = {"overridable": True,
                         "reason": None if good else "logged where nbtrace cannot check",
                         "cell": _cell(good[0]) if good else None}
        else:
            s = sites[0]
            out[name] = {"overridable": False, "cell": _cell(s),
                         "reason": f"cell {s.position} (seq {s.seq}, `{s.first_line}`) line"
                                   f" {s.line}: {s.reason}"}
    return out


def _cell(s: Site) -> dict[str, Any]:
    return {"seq": s.seq, "position": s.position, "first_line": s.first_line, "line": s.line}


def check_overrides(cells: Sequence[Mapping[str, Any]], overrides: Mapping[str, Any]) -> None:
    """Refuse overrides the code cannot consume (one line naming the cell and the idiom)."""
    if not overrides:
        return
    info = overridability(cells, overrides)
    bad = [(k, v) for k, v in info.items() if not v["overridable"]]
    if bad:
        name, v = bad[0]
        raise UsageError(
            f"parameter {name!r} cannot be overridden: {one_line(v['reason'], 300)}; log it"
            f" before it is used and use the value returned, e.g. {name} ="
            f' nbtrace.log_param("{name}", {name}) (or %log_param {name}=...)'
        )

"""docs/architecture.md stays true: what it names exists, and no import crosses its table."""

from __future__ import annotations

import ast
import re
from pathlib import Path

from kernels import ROOT

DOC = (ROOT / "docs" / "architecture.md").read_text()
SRC = ROOT / "src" / "nbtrace"


def _table() -> dict[str, tuple[list[str], set[str]]]:
    """``part -> (units, parts it may import)`` from the doc's package table."""
    section = DOC.split("## Packages", 1)[1].split("\n## ", 1)[0]
    rows = [line for line in section.splitlines() if line.startswith("| ")][1:]
    table = {}
    for row in rows:
        part, units, allowed = (cell.strip() for cell in row.strip("|").split("|"))
        table[part] = (re.findall(r"`([^`]+)`", units), set(re.findall(r"`([^`]+)`", allowed)))
    return table


def _units() -> list[str]:
    """Every top-level module (``tracker``) and package (``store/``) under src/nbtrace."""
    out = [p.stem for p in SRC.glob("*.py") if p.stem != "__init__"] + ["nbtrace"]
    out += [p.name + "/" for p in SRC.iterdir() if (p / "__init__.py").exists()]
    return out


def _unit_of(module: str) -> str:
    parts = module.split(".")
    if len(parts) == 1:
        return "nbtrace"
    return parts[1] + "/" if (SRC / parts[1]).is_dir() else parts[1]


def _imports(path: Path) -> set[str]:
    """The nbtrace modules ``path`` imports (relative imports resolved)."""
    rel = path.relative_to(SRC.parent).with_suffix("")
    module = ".".join(rel.parts)
    package = module.removesuffix(".__init__") if path.name == "__init__.py" else (
        module.rsplit(".", 1)[0])
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if target == "nbtrace" or target.startswith("nbtrace."):
                if target.count(".") == 0:
                    found.update(f"{target}.{a.name}" for a in node.names)
                else:
                    found.add(target)
        elif isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.startswith("nbtrace"))
    return found


def test_every_module_belongs_to_one_part() -> None:
    owners: dict[str, str] = {}
    for part, (units, _) in _table().items():
        for unit in units:
            assert unit not in owners, f"{unit} is in both {owners.get(unit)} and {part}"
            owners[unit] = part
    assert sorted(owners) == sorted(_units()), "the table must name every module and package"


def test_no_import_crosses_the_table() -> None:
    table = _table()
    part_of = {unit: part for part, (units, _) in table.items() for unit in units}
    for allowed in (a for _, a in table.values()):
        assert allowed <= set(table), allowed - set(table)
    crossings = []
    for path in SRC.rglob("*.py"):
        if "labextension" in path.parts:
            continue
        here = _unit_of(
            ".".join(path.relative_to(SRC.parent).with_suffix("").parts).removesuffix(".__init__")
        )
        for target in _imports(path):
            there = _unit_of(target)
            if there == here or there == "__version__":
                continue
            if part_of[there] not in table[part_of[here]][1]:
                crossings.append(f"{path.relative_to(ROOT)} imports {target}")
    assert not crossings, "\n".join(crossings)


def test_every_path_and_file_named_exists() -> None:
    named = set(re.findall(r"`([\w./{}-]+\.(?:py|ts|tsx|md|yaml))`", DOC))
    named |= set(re.findall(r"\(([\w./-]+\.(?:py|ts|tsx))[,)]", DOC))
    assert len(named) > 30, named
    files = [p for p in ROOT.rglob("*") if p.is_file() and "node_modules" not in p.parts
             and ".venv" not in p.parts and ".work" not in p.parts
             and ".git" not in p.parts]
    rel = {str(p.relative_to(ROOT)) for p in files}
    names = {p.name for p in files}
    missing = [n for n in named if n not in rel and n.rsplit("/", 1)[-1] not in names]
    assert not missing, missing
    for folder in re.findall(r"`((?:src/nbtrace|labextension/src)/[\w/]+/)`", DOC):
        assert (ROOT / folder).is_dir(), folder

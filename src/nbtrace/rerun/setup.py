"""What a replay kernel is given besides the cells: output tags, determinism env, modules.

- **Output tags**: cells tagged ``nbtrace-ignore-output`` (or nbval's ``nbval-ignore-output``) in
  the notebook file are tagged the same in the replay notebook, and their outputs are not
  compared. Tags live in the notebook file, not in the kernel, so they are read here, matched
  by cell id, else by source hash.
- **Determinism env**: the recorded values of ``PYTHONHASHSEED``, thread counts and the like
  are given to the replay kernel, so it runs under the same settings by default.
- **Recorded modules** (``--recorded-modules``): the recorded sources of the run's local
  modules are written to a temporary folder that the replay kernel puts first on
  ``sys.path`` (``NBTRACE_MODULE_PATH``), so a run replays as it ran after its helper files
  were edited; ``NBTRACE_MODULE_MAP`` lets the replay record them under their original paths.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Mapping
from typing import Any

from ..errors import UsageError, one_line
from ..hashing import sha256_text
from ..store.base import Store
from .judge import IGNORE_TAGS


def notebook_tags(path: str | None) -> tuple[dict[str, list[str]], dict[str, list[str]]]:
    """Tags of the saved notebook's code cells, by cell id and by source sha256."""
    by_id: dict[str, list[str]] = {}
    by_sha: dict[str, list[str]] = {}
    if not path or not os.path.isfile(path):
        return by_id, by_sha
    try:
        with open(path, encoding="utf-8") as f:
            nb = json.load(f)
        cells = nb.get("cells") or []
    except (OSError, ValueError, AttributeError):
        return by_id, by_sha
    for cell in cells:
        if not isinstance(cell, dict) or cell.get("cell_type") != "code":
            continue
        tags = (cell.get("metadata") or {}).get("tags") or []
        if not isinstance(tags, list) or not tags:
            continue
        src = cell.get("source") or ""
        src = "".join(src) if isinstance(src, list) else str(src)
        if isinstance(cell.get("id"), str):
            by_id[cell["id"]] = [str(t) for t in tags]
        by_sha[sha256_text(src)] = [str(t) for t in tags]
    return by_id, by_sha


def apply_tags(nb: Any, run: Mapping[str, Any], nb_path: str | None) -> list[int]:
    """Copy ignore-output tags onto the replay cells; their 1-based positions."""
    by_id, by_sha = notebook_tags(nb_path)
    ignored = []
    for pos, cell in enumerate(nb.cells, start=1):
        meta = cell.metadata.get("nbtrace") or {}
        tags = by_id.get(cell.get("id") or "", []) or by_sha.get(meta.get("sha256") or "", [])
        wanted = [t for t in tags if t in IGNORE_TAGS]
        if wanted:
            cell.metadata["tags"] = list(cell.metadata.get("tags") or []) + wanted
            ignored.append(pos)
    return ignored


def determinism_env(run: Mapping[str, Any]) -> dict[str, str]:
    """The recorded determinism env values to give the replay kernel (set ones only)."""
    env = ((run.get("determinism") or {}).get("env")) or {}
    return {k: str(v) for k, v in env.items() if isinstance(v, (str, int)) and v != ""}


def _relative(module: Mapping[str, Any]) -> str | None:
    name, path = module.get("name") or "", module.get("path") or ""
    parts = [p for p in name.split(".") if p]
    if not parts or not all(p.isidentifier() for p in parts) or name.startswith("__"):
        return None
    if os.path.basename(path) == "__init__.py":
        return os.path.join(*parts, "__init__.py")
    return os.path.join(*parts[:-1], parts[-1] + ".py")


def write_recorded_modules(store: Store, run: Mapping[str, Any]) -> tuple[str, dict[str, str]]:
    """A temporary folder holding the run's recorded module sources; and tmp path → original.

    Raises :class:`UsageError` when a module's source was not stored (over the size cap).
    """
    modules = [m for m in run.get("modules") or [] if _relative(m)]
    if not modules:
        raise UsageError(f"run {run['id']} recorded no local modules to replay with")
    folder = tempfile.mkdtemp(prefix="nbtrace-modules-")
    mapping: dict[str, str] = {}
    for m in modules:
        text = store.source(m["sha256"]) if m.get("stored") else None
        if text is None:
            raise UsageError(
                f"the source of {one_line(m['path'], 200)} was not stored with run {run['id']}"
                " (bigger than the 1 MB cap): it cannot be replayed from the recording"
            )
        rel = _relative(m)
        assert rel is not None
        dest = os.path.join(folder, rel)
        os.makedirs(os.path.dirname(dest), exist_ok=True)
        parent = os.path.dirname(rel)
        while parent:  # a package's folders need an __init__ to import as one
            init = os.path.join(folder, parent, "__init__.py")
            if not os.path.exists(init):
                open(init, "a", encoding="utf-8").close()
            parent = os.path.dirname(parent)
        with open(dest, "w", encoding="utf-8") as f:
            f.write(text)
        mapping[dest] = m["path"]
    return folder, mapping

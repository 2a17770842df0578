"""Which notebook the kernel runs, and the hashes of its code cells as saved on disk.

Why the saved file matters: the kernel knows the code that ran, the file knows the code the user
kept. Recording per-cell hashes of the file at run start lets a later look answer "which cells
changed since this run" without storing the notebook itself.

Why ``json`` and not ``nbformat``: the hashes need only the cells' sources, and ``nbformat``
costs tens of milliseconds to import and validates schemas we do not need.
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Mapping
from typing import Any

from nbtrace.capture.hashing import sha256_text


def _absolute_if_found(value: str) -> str:
    """``value`` made absolute when it names an existing file, else ``value`` unchanged.

    ``JPY_SESSION_NAME`` is relative to the *server's* root while the kernel's working directory
    is the notebook's own directory; so ``sub/nb.ipynb`` is also tried as ``./nb.ipynb`` when
    the working directory ends with ``sub``.
    """
    if os.path.isabs(value):
        return value
    if os.path.isfile(value):
        return os.path.abspath(value)
    directory, name = os.path.split(value)
    cwd = os.getcwd()
    if directory and name:
        norm = os.path.normpath(directory)
        if (cwd == norm or cwd.endswith(os.sep + norm)) and os.path.isfile(name):
            return os.path.join(cwd, name)
    return value


def notebook_path(namespace: Mapping[str, Any] | None = None) -> str | None:
    """The path of the notebook this kernel runs, or None when it cannot be told.

    Sources, first that is set: ``NBTRACE_NOTEBOOK`` (set by the rerun engine, which runs a
    copy), ``JPY_SESSION_NAME`` (set by jupyter_server for kernels started from a notebook),
    ``__vsc_ipynb_file__`` in the user namespace (set by VS Code). Returned absolute when the
    file can be found from the working directory.
    """
    for var in ("NBTRACE_NOTEBOOK", "JPY_SESSION_NAME"):
        value = os.environ.get(var, "").strip()
        if value:
            return _absolute_if_found(value)
    if namespace is not None:
        value = namespace.get("__vsc_ipynb_file__")
        if isinstance(value, str) and value:
            return _absolute_if_found(value)
    return None


def _source(cell: Mapping[str, Any], key: str) -> str:
    src = cell.get(key, "")
    if isinstance(src, list):
        return "".join(s for s in src if isinstance(s, str))
    return src if isinstance(src, str) else ""


def _code_cell_hashes(nb: Any) -> list[str]:
    if not isinstance(nb, dict):
        return []
    if isinstance(nb.get("cells"), list):  # nbformat 4
        cells, key = nb["cells"], "source"
    else:  # nbformat 3: cells inside worksheets, code under "input"
        cells = [
            c
            for ws in nb.get("worksheets") or []
            if isinstance(ws, dict)
            for c in ws.get("cells") or []
        ]
        key = "input"
    return [
        sha256_text(_source(c, key))
        for c in cells
        if isinstance(c, dict) and c.get("cell_type") == "code"
    ]


_cache_lock = threading.Lock()
_cache: dict[str, tuple[tuple[int, int], list[str]]] = {}
_CACHE_MAX = 32


def notebook_cell_hashes(path: str | os.PathLike[str]) -> list[str]:
    """sha256 of each code cell's source in the saved notebook at ``path``, in order.

    The source is the cell's list of strings joined, as the kernel receives it, so a hash here
    equals the hash of the same code recorded from the kernel. ``[]`` when the file is missing
    or not a notebook. Cached on (path, mtime, size): at most a stat when nothing was saved.
    """
    key_path = os.fspath(path)
    try:
        st = os.stat(key_path)
    except OSError:
        return []
    stamp = (st.st_mtime_ns, st.st_size)
    with _cache_lock:
        hit = _cache.get(key_path)
        if hit is not None and hit[0] == stamp:
            return list(hit[1])
    try:
        with open(key_path, encoding="utf-8") as f:
            hashes = _code_cell_hashes(json.load(f))
    except (OSError, ValueError, RecursionError):
        hashes = []
    with _cache_lock:
        if len(_cache) >= _CACHE_MAX:
            _cache.pop(next(iter(_cache)))
        _cache[key_path] = (stamp, hashes)
    return list(hashes)


def code_cell_sources(path: str | os.PathLike[str]) -> list[str]:
    """The sources of the code cells of the saved notebook at ``path`` (``[]`` if unreadable).

    Read once at ``%load_ext`` (to warn about credentials in cells that will be recorded), so
    not cached.
    """
    try:
        with open(os.fspath(path), encoding="utf-8") as f:
            nb = json.load(f)
    except (OSError, ValueError, RecursionError):
        return []
    cells = nb.get("cells") if isinstance(nb, dict) else None
    if not isinstance(cells, list):
        return []
    return [
        _source(c, "source")
        for c in cells
        if isinstance(c, dict) and c.get("cell_type") == "code"
    ]

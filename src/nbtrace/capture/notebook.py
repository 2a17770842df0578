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

from nbtrace.hashing import sha256_text


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


#: Largest notebook file :func:`code_cell_sources` reads.
MAX_SCANNED_BYTES = 8 * 2**20


def code_cell_sources(path: str | os.PathLike[str]) -> list[str]:
    """The sources of the code cells of the saved notebook at ``path`` (``[]`` if unreadable).

    Read once at ``%load_ext`` (to warn about credentials in cells that will be recorded), so
    not cached; a file over :data:`MAX_SCANNED_BYTES` (outputs, mostly) is not read, to keep
    ``%load_ext`` fast.
    """
    try:
        if os.path.getsize(os.fspath(path)) > MAX_SCANNED_BYTES:
            return []
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


#: Most ``.ipynb`` files looked at in one folder (a data folder of 10,000 notebooks is not
#: searched: the path is then unknown rather than slow).
MAX_CANDIDATES = 200


def find_notebook(executed: list[str], folder: str | None = None) -> str | None:
    """The notebook in ``folder`` (default: the working directory) whose code cells best
    contain the ``executed`` cell hashes, or None.

    Why: papermill, ``jupyter nbconvert --execute``, nbclient and CI run kernels without
    ``JPY_SESSION_NAME``; the executed code is the only link to the file. A candidate must
    hold more of the executed cells than any other (ties go to the oldest file: an input is
    older than the outputs written from it), and two cells when several notebooks match
    (one shared cell, such as the ``%load_ext`` line, is not evidence). When the winner is
    a papermill output whose metadata names its input (``metadata.papermill.input_path``),
    that input is returned.
    Cheap: each file's hashes are cached on (mtime, size), so a repeat costs a stat per file.
    """
    folder = folder or os.getcwd()
    wanted = set(executed)
    if not wanted:
        return None
    try:
        names = sorted(n for n in os.listdir(folder) if n.endswith(".ipynb"))
    except OSError:
        return None
    if not names or len(names) > MAX_CANDIDATES:
        return None
    best: tuple[int, float, str] | None = None
    matched = 0
    for name in names:
        path = os.path.join(folder, name)
        hashes = set(notebook_cell_hashes(path))
        score = len(wanted & hashes)
        if not score:
            continue
        matched += 1
        try:
            mtime = os.path.getmtime(path)
        except OSError:
            continue
        if best is None or (score, -mtime) > (best[0], -best[1]):
            best = (score, mtime, path)
    if best is None or (best[0] < 2 and matched > 1):
        return None  # one shared cell (the %load_ext line) among several: not evidence enough
    return _papermill_input(best[2]) or best[2]


def _papermill_input(path: str) -> str | None:
    """The input path papermill recorded in the output notebook at ``path``, if it exists."""
    try:
        with open(path, encoding="utf-8") as f:
            meta = json.load(f).get("metadata") or {}
    except (OSError, ValueError, RecursionError, AttributeError):
        return None
    source = (meta.get("papermill") or {}).get("input_path") if isinstance(meta, dict) else None
    if not isinstance(source, str) or not source or "://" in source:
        return None
    full = source if os.path.isabs(source) else os.path.join(os.path.dirname(path), source)
    return os.path.abspath(full) if os.path.isfile(full) else None

"""What a run depended on beyond its cells: local modules, data files read, determinism settings.

Why captured without being asked: a re-execution that diverges because ``data.csv`` or
``helper.py`` changed must be able to say so, and users rarely declare either. Three sources:

- **local modules**: every module in ``sys.modules`` whose file lies outside the Python
  installation and site-packages (the user's ``.py`` files, packages of the project). Path,
  sha256, size, and the source (stored once per hash, up to :data:`MAX_SOURCE` bytes);
- **data read**: a ``sys.addaudithook`` hook sees every ``open`` for reading in the process; the
  hook only remembers the path (a dict insert). Paths of the installation, site-packages,
  ``/proc``, ``/sys``, ``/dev``, the store, nbtrace and Jupyter's own files are dropped later.
  Files are hashed off the user's thread, each once per (size, mtime); files bigger than
  ``NBTRACE_INPUT_HASH_LIMIT`` bytes (default 64 MiB) hash their size, first and last MiB only,
  and say so (``partial``);
- **determinism**: the environment values and framework switches that decide whether the same
  code gives the same numbers (thread counts, ``PYTHONHASHSEED``, cuDNN flags).

Everything here runs on nbtrace's capture worker, never on the user's thread: the tracker only
takes a snapshot of ``sys.modules`` and of the paths read (tens of microseconds) at a run's end.
"""

from __future__ import annotations

import hashlib
import os
import site
import sys
import sysconfig
import threading
from collections.abc import Iterable
from typing import Any

MAX_SOURCE = 1 << 20
_MiB = 1 << 20
#: Most distinct paths remembered per process (a job reading millions of files stays bounded).
MAX_READS = 20_000
DETERMINISM_ENV = (
    "PYTHONHASHSEED", "OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS",
    "NUMEXPR_NUM_THREADS", "VECLIB_MAXIMUM_THREADS", "CUBLAS_WORKSPACE_CONFIG",
    "CUDA_VISIBLE_DEVICES", "TF_DETERMINISTIC_OPS",
)
_CODE_SUFFIXES = (".py", ".pyc", ".pyo", ".so", ".pyd", ".pth", ".dylib", ".dll")
_SYSTEM_PREFIXES = ("/proc/", "/sys/", "/dev/", "/run/", "/usr/", "/etc/", "/var/lib/",
                    "/lib/", "/lib64/", "/bin/", "/sbin/")

# ------------------------------------------------------------------------- data read
_reads: dict[str, None] = {}
#: Threads whose reads are nbtrace's own (the capture worker hashing files, probing BLAS).
_own_threads: set[int] = set()
_hook_installed = False
_hook_lock = threading.Lock()


def _on_audit(event: str, args: tuple[Any, ...]) -> None:
    """The audit hook: remember paths opened for reading. Must stay cheap (every event)."""
    if event != "open":
        if event == "os.chdir":  # os.chdir and os.fchdir
            _cwd[0] = None
        return
    if len(_reads) >= MAX_READS:
        return
    path, mode, flags = args
    if type(path) is str and path.endswith(_CODE_SUFFIXES):
        return  # the importer reading code (~1,500 opens importing scikit-learn): never data
    if mode is None:
        if flags & (os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_APPEND):
            return
    elif "w" in mode or "a" in mode or "+" in mode or "x" in mode:
        return
    if isinstance(path, int) or threading.get_ident() in _own_threads:
        return
    try:
        p = os.fsdecode(path)
        if p[:1] != "/":
            p = os.path.abspath(p)
    except (TypeError, ValueError, OSError):
        return
    if p not in _reads:
        _reads[p] = None


#: The working directory as last read, while the hook watches for ``os.chdir``. Why: each
#: run records it, and ``getcwd`` is a system call (~5 µs a run of a loop, after a fit).
_cwd: list[str | None] = [None]


def cwd() -> str:
    """The working directory (cached once the audit hook is installed: it sees every
    ``os.chdir``; a C extension calling ``chdir(2)`` itself would go unseen)."""
    c = _cwd[0]
    if c is None or not _hook_installed:
        c = os.getcwd()
        if _hook_installed:
            _cwd[0] = c
    return c


def own_thread() -> None:
    """Mark the calling thread as nbtrace's: files it opens are not the run's inputs."""
    _own_threads.add(threading.get_ident())


def watch_reads() -> None:
    """Install the audit hook once per process (audit hooks cannot be removed)."""
    global _hook_installed
    with _hook_lock:
        if not _hook_installed:
            sys.addaudithook(_on_audit)
            _hook_installed = True


def reads_snapshot() -> list[str]:
    """Paths opened for reading so far, in first-open order."""
    return list(_reads)


def was_read(path: str) -> bool:
    """Whether ``path`` (absolute) was opened for reading so far."""
    return path in _reads


def forget_read(path: str) -> None:
    """Drop ``path`` from the reads (nbtrace's own read of an artifact it stores)."""
    _reads.pop(path, None)
    if os.path.realpath(path) != path:
        _reads.pop(os.path.realpath(path), None)


def read_count() -> int:
    """How many distinct paths were opened for reading (cheap change detector)."""
    return len(_reads)


def _excluded_prefixes(extra: Iterable[str]) -> tuple[str, ...]:
    """Folders whose files are never the user's data or code (the installation, caches...)."""
    paths = {sys.prefix, sys.base_prefix, sys.exec_prefix}
    for key in ("stdlib", "platstdlib", "purelib", "platlib"):
        try:
            paths.add(sysconfig.get_paths()[key])
        except KeyError:
            pass
    try:
        paths.update(site.getsitepackages())
        paths.add(site.getusersitepackages())
    except AttributeError:
        pass
    home = os.path.expanduser("~")
    for sub in (".ipython", ".jupyter", ".local", ".cache", ".config", ".matplotlib"):
        paths.add(os.path.join(home, sub))
    paths.add(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # nbtrace
    for env in ("JUPYTER_DATA_DIR", "JUPYTER_RUNTIME_DIR", "IPYTHONDIR", "MPLCONFIGDIR"):
        if os.environ.get(env):
            paths.add(os.environ[env])
    paths.update(p for p in extra if p)
    out = {os.path.realpath(p).rstrip("/") + "/" for p in paths if p}
    out.update(os.path.abspath(p).rstrip("/") + "/" for p in paths if p)
    return tuple(sorted(out)) + _SYSTEM_PREFIXES


class Excluder:
    """Decides which paths are data (or local code) rather than the installation's files."""

    def __init__(self, extra_dirs: Iterable[str] = (), extra_files: Iterable[str] = ()) -> None:
        self.prefixes = _excluded_prefixes(extra_dirs)
        self.files = {os.path.abspath(f) for f in extra_files if f}
        self._cache: dict[str, bool] = {}
        #: (module name, id(module)) → its local file or None: most modules never change.
        self.modules: dict[tuple[str, int], str | None] = {}

    def excluded(self, path: str) -> bool:
        hit = self._cache.get(path)
        if hit is None:
            hit = (
                path in self.files
                or path.startswith(self.prefixes)
                or "/__pycache__/" in path
                or "/site-packages/" in path
                or "/dist-packages/" in path
            )
            self._cache[path] = hit
        return hit


# ------------------------------------------------------------------------- hashing
_hash_cache: dict[tuple[str, int, int], tuple[str, bool]] = {}


def hash_limit() -> int:
    """Files bigger than this hash their size, first and last MiB only."""
    try:
        return max(2 * _MiB, int(os.environ.get("NBTRACE_INPUT_HASH_LIMIT", str(64 * _MiB))))
    except ValueError:
        return 64 * _MiB


def file_fingerprint(path: str, limit: int | None = None) -> dict[str, Any] | None:
    """``{"path", "sha256", "size", "mtime", "partial"}`` of a regular file, else None.

    Cached per (path, size, mtime): a loop re-reading one file hashes it once.
    """
    try:
        st = os.stat(path)
    except OSError:
        return None
    if not os.path.isfile(path):
        return None
    key = (path, st.st_size, st.st_mtime_ns)
    hit = _hash_cache.get(key)
    if hit is None:
        lim = hash_limit() if limit is None else limit
        try:
            hit = _hash(path, st.st_size, lim)
        except OSError:
            return None
        _hash_cache[key] = hit
    sha, partial = hit
    return {"path": path, "sha256": sha, "size": st.st_size, "mtime": st.st_mtime,
            "partial": partial}


def _hash(path: str, size: int, limit: int) -> tuple[str, bool]:
    h = hashlib.sha256()
    with open(path, "rb", buffering=0) as f:
        if size <= limit:
            while True:
                chunk = f.read(_MiB)
                if not chunk:
                    return h.hexdigest(), False
                h.update(chunk)
        h.update(f"nbtrace-partial:{size}:".encode())
        h.update(f.read(_MiB))
        f.seek(max(size - _MiB, _MiB))
        h.update(f.read(_MiB))
    return h.hexdigest(), True


def data_inputs(paths: Iterable[str], excluder: Excluder) -> list[dict[str, Any]]:
    """Fingerprints of the data files among ``paths`` (code and installation files dropped)."""
    out = []
    for p in paths:
        if p.endswith(_CODE_SUFFIXES) or excluder.excluded(p):
            continue
        fp = file_fingerprint(p)
        if fp is not None:
            out.append(fp)
    return sorted(out, key=lambda d: d["path"])


# ------------------------------------------------------------------------- local modules
def local_modules(
    modules: Iterable[tuple[str, Any]], excluder: Excluder
) -> tuple[list[dict[str, Any]], dict[str, str]]:
    """The user's own imported modules and the sources to store (``{sha256: text}``).

    Only ``.py`` files count (a compiled extension of one's own is rare and not readable).
    """
    stdlib = getattr(sys, "stdlib_module_names", frozenset())
    found: dict[str, dict[str, Any]] = {}
    sources: dict[str, str] = {}
    seen = excluder.modules
    for name, module in modules:
        key = (name, id(module))
        path = seen.get(key, "")
        if path == "":
            path = seen[key] = _local_path(name, module, stdlib, excluder)
        if path is None or path in found:
            continue
        entry = _module_entry(name, path, sources)
        if entry is not None:
            found[path] = entry
    return sorted(found.values(), key=lambda d: d["path"]), sources


def _local_path(name: str, module: Any, stdlib: Any, excluder: "Excluder") -> str | None:
    """The file of a module that is the user's own code, else None (cached by the caller)."""
    ns = getattr(module, "__dict__", None)
    if not isinstance(ns, dict) or name.split(".", 1)[0] in stdlib:
        return None
    f = ns.get("__file__")
    if not isinstance(f, str) or not f.endswith(".py") or name.startswith("nbtrace"):
        return None
    path = os.path.abspath(f)
    return None if excluder.excluded(path) else path


_entries: dict[tuple[str, str, int, int], tuple[dict[str, Any], str | None]] = {}


def _module_entry(name: str, path: str, sources: dict[str, str]) -> dict[str, Any] | None:
    """A module's entry, re-read only when its file's size or mtime changed."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    key = (name, path, st.st_size, st.st_mtime_ns)
    hit = _entries.get(key)
    if hit is None:
        entry = _read_module(name, path, sources)
        if entry is None:
            return None
        hit = _entries[key] = (entry, sources.get(entry["sha256"]))
    elif hit[1] is not None:
        sources[hit[0]["sha256"]] = hit[1]
    return dict(hit[0])


def _read_module(name: str, path: str, sources: dict[str, str]) -> dict[str, Any] | None:
    try:
        size = os.path.getsize(path)
        with open(path, "rb") as fh:
            data = fh.read(MAX_SOURCE + 1) if size <= MAX_SOURCE else None
    except OSError:
        return None
    if data is None:
        fp = file_fingerprint(path)
        return {"path": path, "name": name, "sha256": fp["sha256"] if fp else None,
                "size": size, "stored": False}
    sha = hashlib.sha256(data).hexdigest()
    stored = False
    try:
        sources[sha] = data.decode("utf-8")
        stored = True
    except UnicodeDecodeError:
        pass
    return {"path": path, "name": name, "sha256": sha, "size": len(data), "stored": stored}


# ------------------------------------------------------------------------- determinism
_pools: dict[Any, Any] = {}
_NATIVE = ("numpy", "scipy", "sklearn", "torch", "mkl", "threadpoolctl", "xgboost", "lightgbm")


def _threadpools(tpc: Any, modules: dict[str, Any]) -> list[dict[str, Any]] | None:
    """threadpoolctl's report (~20 ms: it inspects every loaded library), asked again only when
    a library that brings its own thread pool was imported since."""
    key = tuple(n for n in _NATIVE if n in modules)
    if key not in _pools:
        try:
            _pools.clear()
            _pools[key] = [
                {k: i.get(k) for k in ("user_api", "internal_api", "num_threads", "version")}
                for i in tpc.threadpool_info()
            ]
        except Exception:  # noqa: BLE001 - a broken BLAS probe must not break the capture
            return None
    return _pools[key]


def determinism(modules: dict[str, Any]) -> dict[str, Any]:
    """Env values and framework switches in force (``modules``: a ``sys.modules`` copy).

    threadpoolctl and torch are asked only when the run already imported them: importing
    either just to ask would change what the run imported.
    """
    out: dict[str, Any] = {"env": {k: os.environ.get(k) for k in DETERMINISM_ENV},
                           "hash_randomization": bool(sys.flags.hash_randomization)}
    tpc = modules.get("threadpoolctl")
    if tpc is not None:
        pools = _threadpools(tpc, modules)
        if pools is not None:
            out["threadpools"] = pools
    torch = modules.get("torch")
    if torch is not None:
        try:
            cudnn = torch.backends.cudnn
            out["torch"] = {
                "cudnn_deterministic": bool(cudnn.deterministic),
                "cudnn_benchmark": bool(cudnn.benchmark),
                "deterministic_algorithms": bool(torch.are_deterministic_algorithms_enabled()),
            }
        except Exception:  # noqa: BLE001 - an odd torch build
            pass
    return out

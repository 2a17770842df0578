"""What a re-execution needs before a kernel starts: the code, the kernel, its folder and env.

Why a plan, computed without starting anything: the server validates a request with it (unknown
run → 404, unknown parameter → 400, a folder outside the server's root → 403) and answers at
once, instead of queueing a job that is bound to fail; the engine then runs the same plan.

The replayed notebook is the run's recorded code snapshot: every cell its kernel executed up to
the run's end (``seq <= last_seq``), in execution order, whatever the notebook file says today.
The replay kernel's tracker counts cells the same way, so the run is found again by its
position: ``target_seq`` (1-based position, in the replayed list, of the cell that started it)
and ``target_index`` (the how-many-th run started by that cell, for loops). Every other run the
replay starts is a no-op "ghost" (see :class:`nbtrace.tracker.ReplayPlan`).
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

from ..errors import ConflictError, PathRefusedError, UsageError, one_line
from ..store.base import Store

#: Environment variables a replay kernel must not inherit from whoever starts it (a server
#: started from a notebook, a CLI started inside a replay): the plan sets its own.
_SCRUBBED = (
    "NBTRACE_REPLAY", "NBTRACE_SEEDS", "NBTRACE_NOTEBOOK", "NBTRACE_KERNEL_NAME", "NBTRACE_DB",
    "JPY_SESSION_NAME", "NBTRACE_MODULE_PATH", "NBTRACE_MODULE_MAP",
)
_CELL_ID = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")
MAX_OVERRIDE_CHARS = 65_536


@dataclass
class Replay:
    """Everything the engine needs to re-execute one run (no kernel started yet)."""

    run: dict[str, Any]
    notebook: Any
    seqs: list[int]
    target_seq: int
    target_index: int
    kernel_name: str
    cwd: str
    env: dict[str, str]
    new_run_id: str
    overrides: dict[str, Any] = field(default_factory=dict)
    #: 1-based positions of cells whose outputs are not compared (ignore-output tags).
    ignored: list[int] = field(default_factory=list)
    #: The temporary folder of recorded module sources (``--recorded-modules``), to remove.
    module_dir: str | None = None

    def cleanup(self) -> None:
        """Remove what the plan created on disk (the recorded modules' folder)."""
        if self.module_dir:
            shutil.rmtree(self.module_dir, ignore_errors=True)
            self.module_dir = None

    def kernel_env(self, base: Mapping[str, str] | None = None) -> dict[str, str]:
        """The replay kernel's full environment: ``base`` (os.environ) scrubbed, plus ours."""
        env = {k: v for k, v in (os.environ if base is None else base).items()
               if k not in _SCRUBBED}
        env.update(self.env)
        return env



# ------------------------------------------------------------------------- overrides
def _valid_value(value: Any) -> bool:
    if value is None or isinstance(value, (bool, int, float, str)):
        return True
    if isinstance(value, list):
        return all(_valid_value(v) for v in value)
    return False


def validate_overrides(run: Mapping[str, Any], overrides: Any) -> dict[str, Any]:
    """Overrides as a dict of the run's own parameter names → JSON scalars or lists."""
    if overrides is None:
        return {}
    if not isinstance(overrides, Mapping):
        raise UsageError("overrides must be an object of parameter name: value")
    params = run.get("params") or {}
    out: dict[str, Any] = {}
    for name, value in overrides.items():
        if not isinstance(name, str) or name not in params:
            have = ", ".join(sorted(params)) or "no parameters"
            raise UsageError(
                f"unknown parameter {one_line(name, 60)!r} (the run has: {one_line(have, 200)})"
            )
        if not _valid_value(value):
            raise UsageError(
                f"override for {name!r} must be a JSON scalar or list,"
                f" not {type(value).__name__}"
            )
        if len(json.dumps(value, default=str)) > MAX_OVERRIDE_CHARS:
            raise UsageError(f"override for {name!r} is too large")
        out[name] = value
    return out


# ------------------------------------------------------------------------- the notebook
def build_notebook(
    run: Mapping[str, Any],
) -> tuple[Any, list[int], int, int]:
    """The replay notebook, the original seq of each cell, ``target_seq`` and ``target_index``.

    Cells that raised originally carry the ``raises-exception`` tag, so nbclient lets them raise
    again; any other error stops the replay. Original cell ids are kept where valid (a cell run
    twice appears twice: the repeat gets a suffixed id, since ids must be unique in a notebook).
    """
    import nbformat

    pos = run.get("position") or {}
    start_seq = pos.get("start_seq")
    if start_seq is None:
        raise UsageError(
            f"run {run['id']} cannot be re-executed: it has no recorded code position"
            " (it was not started from a notebook kernel with nbtrace loaded)"
        )
    last_seq = pos.get("last_seq")
    cells = [c for c in run.get("cells") or [] if last_seq is None or c["seq"] <= last_seq]
    if not cells:
        raise UsageError(f"run {run['id']} cannot be re-executed: no code was recorded for it")
    missing = [c["seq"] for c in cells if c.get("source") is None]
    if missing:
        raise UsageError(
            f"run {run['id']} cannot be re-executed: the source of cell(s)"
            f" {', '.join(map(str, missing[:5]))} is missing from the store"
        )
    _check_sources(run["id"], cells)
    seqs = [c["seq"] for c in cells]
    if start_seq not in seqs:
        raise UsageError(
            f"run {run['id']} cannot be re-executed: its starting cell (seq {start_seq})"
            " was not recorded"
        )
    nb = nbformat.v4.new_notebook()
    used: set[str] = set()
    for c in cells:
        cell = nbformat.v4.new_code_cell(c["source"])
        cid = c.get("cell_id")
        if isinstance(cid, str) and _CELL_ID.match(cid):
            candidate, n = cid, 1
            while candidate in used:
                n += 1
                candidate = f"{cid[:58]}-{n}"
            cell["id"] = candidate
        used.add(cell["id"])
        if c.get("error"):
            cell.metadata["tags"] = ["raises-exception"]
        cell.metadata["nbtrace"] = {"seq": c["seq"], "sha256": c.get("sha256")}
        nb.cells.append(cell)
    nb.metadata["nbtrace"] = {"replay_of": run["id"]}
    return nb, seqs, seqs.index(start_seq) + 1, int(pos.get("cell_index") or 0)


def _check_sources(run_id: str, cells: list[dict[str, Any]]) -> None:
    """Refuse to replay a cell whose stored source does not hash to its recorded sha256.

    Why: the source is looked up by hash; text planted under a hash (an old import, a row
    written straight into a team database) must never run as the recorded cell.
    """
    from ..hashing import sha256_text

    for c in cells:
        if c.get("sha256") and sha256_text(c["source"]) != c["sha256"]:
            raise ConflictError(
                f"run {run_id} cannot be re-executed: the stored source of cell seq {c['seq']}"
                " does not match its recorded sha256 (it was changed after recording)"
            )


# ------------------------------------------------------------------------- the folder
def is_within(path: str, root: str) -> bool:
    """Whether ``path`` resolves (symlinks followed) to ``root`` or below it.

    Compared by path components, so ``/srv/root-other`` is not inside ``/srv/root``.
    """
    rp, rr = os.path.realpath(path), os.path.realpath(root)
    try:
        return os.path.commonpath([rp, rr]) == rr
    except ValueError:  # different drives (Windows)
        return False


def working_dir(run: Mapping[str, Any], root_dir: str | None = None) -> str:
    """The folder to run the replay in: the notebook's, else the recorded working directory.

    With ``root_dir`` (the Jupyter server's root) the folder must resolve inside it: a request
    through the server may only run code where that server's user could.
    """
    nb_path = (run.get("notebook") or {}).get("path")
    candidates: list[str] = []
    if nb_path:
        folder = os.path.dirname(nb_path)
        if os.path.isabs(nb_path):
            candidates.append(folder)
        elif root_dir:
            candidates.append(os.path.join(root_dir, folder))
    cwd = (run.get("extra") or {}).get("cwd")
    if cwd:
        candidates.append(cwd)
    if not candidates:
        raise UsageError(
            f"run {run['id']} cannot be re-executed: neither its notebook path nor its working"
            " directory was recorded"
        )
    chosen = next((c for c in candidates if os.path.isdir(c)), None)
    if chosen is None:
        raise UsageError(
            f"the folder of run {run['id']} no longer exists: {one_line(candidates[0], 200)}"
        )
    if root_dir is not None and not is_within(chosen, root_dir):
        raise PathRefusedError(
            f"run {run['id']} ran in {one_line(chosen, 200)}, outside the server's root folder;"
            " re-execute it from the command line (nbtrace rerun) instead"
        )
    return os.path.realpath(chosen)


# ------------------------------------------------------------------------- the kernel
def spec_executable(argv: list[str]) -> str | None:
    """The interpreter a kernelspec starts, as jupyter_client resolves it."""
    if not argv:
        return None
    exe = argv[0]
    major, minor = sys.version_info[:2]
    if exe in ("python", f"python{major}", f"python{major}.{minor}"):
        return sys.executable
    return shutil.which(exe) or exe


def _same_file(a: str | None, b: str | None) -> bool:
    if not a or not b:
        return False
    try:
        return os.path.samefile(a, b)
    except OSError:
        return os.path.realpath(a) == os.path.realpath(b)


def _kernel_for_executable(specs: Mapping[str, Mapping[str, Any]], exe: str) -> str | None:
    """The Python kernel spec that runs interpreter ``exe`` (an ipykernel, ``python3`` first)."""
    found = []
    for name in sorted(specs):
        spec = specs[name]
        if str(spec.get("language") or "").lower() != "python":
            continue
        argv = [str(a) for a in spec.get("argv") or []]
        if _same_file(spec_executable(argv), exe):
            ipykernel = any("ipykernel" in a for a in argv)
            found.append((not ipykernel, name != "python3", name))
    return min(found)[2] if found else None


def kernel_specs(kernel_spec_manager: Any = None, host: Any = None) -> dict[str, dict[str, Any]]:
    """``{name: spec dict}`` from the host's kernelspec manager (a gateway's is asynchronous:
    awaited on the host's loop), else from ``kernel_spec_manager``, else the local specs."""
    if host is not None:
        return host.call(host.specs)
    from jupyter_client.kernelspec import KernelSpecManager

    ksm = kernel_spec_manager or KernelSpecManager()
    raw = ksm.get_all_specs()
    if asyncio.iscoroutine(raw):
        raw = _run_coroutine(raw)
    out: dict[str, dict[str, Any]] = {}
    for name, model in (raw or {}).items():
        spec = model.get("spec") if isinstance(model, Mapping) else None
        if isinstance(spec, Mapping):
            out[str(name)] = dict(spec)
    return out


def _run_coroutine(coro: Any) -> Any:
    """Await ``coro`` from blocking code, in a thread of its own when a loop already runs."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coro)
    import concurrent.futures

    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, coro).result()


def resolve_kernel(
    run: Mapping[str, Any], kernel_name: str | None = None, kernel_spec_manager: Any = None,
    host: Any = None,
) -> tuple[str, Any]:
    """The kernel spec to use: asked for, else recorded, else the one running the recorded
    interpreter, else ``python3``. Returns ``(name, spec)`` (``spec.argv``, ``.language``,
    ``.display_name``, ``.env``).

    The specs are the Jupyter server's when called from it (its kernel settings such as
    ``allowed_kernelspecs`` hold for re-executions too; with a gateway, the gateway's specs).
    """
    specs = kernel_specs(kernel_spec_manager, host)
    names = sorted(specs)
    if kernel_name is not None:
        if not isinstance(kernel_name, str) or kernel_name not in names:
            raise UsageError(
                f"no kernel named {one_line(kernel_name, 60)!r}"
                f" (available: {', '.join(names) or 'none'})"
            )
        chosen = kernel_name
    else:
        recorded = run.get("kernel_name")
        exe = (run.get("environment") or {}).get("executable")
        chosen = recorded if recorded in names else None
        if chosen is None and exe:
            chosen = _kernel_for_executable(specs, exe)
        if chosen is None:
            chosen = "python3" if "python3" in names else None
        if chosen is None:
            raise UsageError(
                "no kernel to re-execute with: the recorded one is not installed and there is"
                f" no python3 kernel (available: {', '.join(names) or 'none'})"
            )
    spec = specs[chosen]
    return chosen, SimpleNamespace(
        argv=list(spec.get("argv") or []),
        language=str(spec.get("language") or ""),
        display_name=str(spec.get("display_name") or chosen),
        env=dict(spec.get("env") or {}),
    )


# ------------------------------------------------------------------------- the store
def store_location(store: Store) -> str:
    """The location a kernel must open to write into ``store`` (a secret for PostgreSQL).

    Never log or print this: for the team store it is the URL with its password. Use
    ``store.display_location`` for messages.
    """
    for obj in (store, getattr(store, "backend", None)):
        url = getattr(obj, "url", None)
        if isinstance(url, str) and url:
            return url
        path = getattr(obj, "path", None)
        if isinstance(path, str) and path:
            return os.path.abspath(os.path.expanduser(path))
    return store.display_location


# ------------------------------------------------------------------------- the plan
def plan_replay(
    store: Store,
    ref: str,
    overrides: Mapping[str, Any] | None = None,
    kernel_name: str | None = None,
    root_dir: str | None = None,
    user: str | None = None,
    job_id: str | None = None,
    kernel_spec_manager: Any = None,
    host: Any = None,
    tags: Mapping[str, str] | None = None,
    recorded_modules: bool = False,
) -> Replay:
    """Check a re-execution request and compute everything it needs, without running it.

    ``host`` (a :class:`~nbtrace.rerun.hosts.KernelHost`) resolves the kernel against the specs
    of the kernel manager that will start it; ``tags`` are set on the new run (a sweep's id).
    Overrides the code cannot consume are refused (:mod:`.overrides`); ``recorded_modules``
    replays with the recorded sources of the run's local modules (:mod:`.setup`).
    """
    from ..util import new_id
    from .overrides import check_overrides
    from .setup import apply_tags

    run = store.get_run(ref)
    if run.get("status") == "running":
        raise ConflictError(
            f"run {run['id']} is still running; re-execute it once it has ended"
        )
    clean = validate_overrides(run, overrides)
    if run.get("parent"):
        # A re-execution's recorded cells are the original's: its edited parameters came
        # from overrides, which must apply again for it to reproduce; new edits win.
        inherited = (run.get("verdict") or {}).get("overrides") or {}
        clean = {**inherited, **clean}
    cwd = working_dir(run, root_dir)  # first: a refused folder is refused whatever else
    nb, seqs, target_seq, target_index = build_notebook(run)
    check_overrides([{"seq": q, "source": c.source} for q, c in zip(seqs, nb.cells)], clean)
    nb_file = (run.get("notebook") or {}).get("path")
    if nb_file and not os.path.isabs(nb_file) and root_dir:
        nb_file = os.path.join(root_dir, nb_file)
    ignored = apply_tags(nb, run, nb_file)
    name, spec = resolve_kernel(run, kernel_name, kernel_spec_manager, host)
    nb.metadata["kernelspec"] = {
        "name": name,
        "display_name": getattr(spec, "display_name", name),
        "language": getattr(spec, "language", "python"),
    }
    new_run_id = new_id()
    plan = {
        "parent": run["id"],
        "target_seq": target_seq,
        "target_index": target_index,
        "overrides": clean,
        "user": user,
        "job": job_id,
        "run_id": new_run_id,
    }
    if tags:
        plan["tags"] = dict(tags)
    env, module_dir = _replay_env(store, run, plan, name, recorded_modules)
    return Replay(
        run=run,
        notebook=nb,
        seqs=seqs,
        target_seq=target_seq,
        target_index=target_index,
        kernel_name=name,
        cwd=cwd,
        env=env,
        new_run_id=new_run_id,
        overrides=clean,
        ignored=ignored,
        module_dir=module_dir,
    )


def _replay_env(store: Store, run: Mapping[str, Any], plan: Mapping[str, Any], kernel: str,
                recorded_modules: bool) -> tuple[dict[str, str], str | None]:
    """The replay kernel's own environment variables, and the recorded modules' folder."""
    from .setup import determinism_env, write_recorded_modules

    seeds = (run.get("environment") or {}).get("seeds") or {}
    env = {
        **determinism_env(run),
        "NBTRACE_DB": store_location(store),
        "NBTRACE_REPLAY": json.dumps(plan),
        "NBTRACE_SEEDS": json.dumps(seeds),
        "NBTRACE_KERNEL_NAME": kernel,
    }
    nb_path = (run.get("notebook") or {}).get("path")
    if nb_path:
        env["NBTRACE_NOTEBOOK"] = nb_path
    module_dir = None
    if recorded_modules:
        module_dir, mapping = write_recorded_modules(store, run)
        env["NBTRACE_MODULE_PATH"] = module_dir
        env["NBTRACE_MODULE_MAP"] = json.dumps(mapping)
    return env, module_dir

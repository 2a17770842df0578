"""The kernel-side core: runs, cells and capture, with no IPython in sight.

Why a core object: magics and the Python API are two spellings of the same actions, and the
replay engine needs the same behaviour in a fresh kernel. The adapter (``magics.py``) feeds
:meth:`Tracker.cell_started` / :meth:`Tracker.cell_finished` from IPython's events and
translates :class:`~nbtrace.errors.NBTraceError` into ``UsageError``.

Cost model: everything that does not change within a kernel (machine, packages) is captured
once and stored once (content-addressed); what may change between cells (git state, notebook
file, imported modules) is cached per cell; metric calls only append to the writer's queue.
"""

from __future__ import annotations

import getpass
import json
import math
import os
import secrets
import socket
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import NBTraceError, UsageError, one_line
from .jsonutil import param_number, param_to_json, to_plain
from .store.base import Store, open_store
from .util import new_id
from .writer import Writer

MAX_NAME = 250
MAX_VALUE = 65_536


#: Prefix of a run's ``imported`` column that names a blob (``blobs.hash``) instead of holding
#: the JSON itself (see :func:`nbtrace.store.sql.imported_of`).
IMPORTED_REF = "blob:"

#: JSON text of a str, as ``json.dumps(s, ensure_ascii=False)`` writes it (the C encoder).
_json_str = getattr(json.encoder, "c_encode_basestring", None) or json.encoder.encode_basestring

#: Largest |step| accepted: a step is stored as a signed 64-bit integer by both engines; a
#: larger one must fail at the call, not in the writer, where it blocked every later write.
_STEP_MAX = 2**62

#: A run that lasted at least this long is written as soon as it ends (see :meth:`end_run`).
KICK_AFTER_S = 0.1

#: Names already validated, per length limit (so a loop logging the same keys checks them once).
_valid_names: dict[int, set[str]] = {}


def check_name(kind: str, name: Any, limit: int = MAX_NAME) -> str:
    """Validate a run/param/metric/tag name: a short printable string."""
    known = _valid_names.get(limit)
    if known is not None and type(name) is str and name in known:
        return name
    _check_name(kind, name, limit)
    if known is None or len(known) > 10_000:
        known = _valid_names[limit] = set()
    known.add(name)
    return name


def _check_name(kind: str, name: Any, limit: int) -> str:
    if not isinstance(name, str):
        raise UsageError(f"{kind} name must be a string, not {type(name).__name__}")
    if not name or not name.strip():
        raise UsageError(f"{kind} name must not be empty")
    if len(name) > limit:
        raise UsageError(f"{kind} name is {len(name)} characters long; the limit is {limit}")
    if not name.isprintable():
        raise UsageError(f"{kind} name {one_line(name, 60)!r} contains control characters")
    return name


@dataclass
class ReplayPlan:
    """What a re-execution kernel must do (set by the rerun engine via ``NBTRACE_REPLAY``)."""

    parent: str
    target_seq: int
    target_index: int
    overrides: dict[str, Any] = field(default_factory=dict)
    user: str | None = None
    job: str | None = None
    run_id: str | None = None
    #: Tags the re-executed run gets at its start (a sweep's id, so its runs list together).
    tags: dict[str, str] = field(default_factory=dict)

    @classmethod
    def from_env(cls) -> "ReplayPlan | None":
        raw = os.environ.get("NBTRACE_REPLAY")
        if not raw:
            return None
        d = json.loads(raw)
        return cls(
            parent=d["parent"],
            target_seq=int(d["target_seq"]),
            target_index=int(d["target_index"]),
            overrides=d.get("overrides") or {},
            user=d.get("user"),
            job=d.get("job"),
            run_id=d.get("run_id"),
            tags={str(k): str(v) for k, v in (d.get("tags") or {}).items()},
        )


@dataclass(eq=False)  # a run is itself: compared (``in``, ``remove``) by identity
class Run:
    """An open run's in-kernel state.

    ``nested_in`` is the run this one is nested in (MLflow's ``mlflow.parentRunId``), a link
    separate from re-execution lineage (the run row's ``parent``): a re-executed child has
    both. ``implicit`` runs were started by a log call outside any run and end with the cell.
    """

    id: str
    name: str
    ghost: bool = False
    metric_seq: int = 0
    metric_keys: set[str] = field(default_factory=set)
    meter: Any = None
    experiment: str | None = None
    nested_in: str | None = None
    implicit: bool = False
    status: str = "running"
    started_at: float = 0.0
    #: Params logged through nbtrace (``log_param``, ``%log_param``): where an override of a
    #: re-execution takes effect.
    param_keys: set[str] = field(default_factory=set)
    #: The run row's ``extra`` as written at start (adapters may add to it before the end).
    extra: dict[str, Any] = field(default_factory=dict)
    imported: str = ""
    #: The last cell that ran while this run was active raised (see :meth:`Tracker.close`).
    raised: bool = False


class Tracker:
    """One per kernel process: records cells, runs, params, metrics."""

    def __init__(
        self,
        location: str | None = None,
        warn: Callable[[str], None] | None = None,
        kernel_name: str | None = None,
        store: Store | None = None,
        fresh: bool = True,
    ) -> None:
        """``fresh`` is false when nbtrace starts after user code already ran in this process
        (a late ``%load_ext``, or the API called without it): generators already in use are
        then neither seeded nor recorded, since their state is the user's."""
        from .capture import seeds as seeds_mod
        from .config import jupyter_data_dir, resolve_db_location

        self.location = resolve_db_location(location)
        self.warn = warn or _default_warn
        self.store = store or open_store(self.location)
        self.kernel_id = secrets.token_hex(8)
        self.kernel_name = kernel_name or os.environ.get("NBTRACE_KERNEL_NAME")
        self.kernel_started = time.time()
        self.host = socket.gethostname()
        self.user = _user()
        self.replay = ReplayPlan.from_env()
        if self.replay and self.replay.user:
            self.user = self.replay.user
        enabled = os.environ.get("NBTRACE_SEED_RNG", "1") not in ("0", "false", "no")
        self.unseeded = [] if fresh else seeds_mod.generators_in_use()
        self.seeds = seeds_mod.install_seeds(
            seeds_mod.seeds_from_env(), enabled=enabled, skip=self.unseeded
        )
        module_path = os.environ.get("NBTRACE_MODULE_PATH")
        if self.replay is not None and module_path and os.path.isdir(module_path):
            sys.path.insert(0, module_path)  # a replay with the recorded module sources
        self.extension_loaded = False
        self._warned_no_cells = False
        self._init_capture()
        self.seq = 0
        self.cell_index = 0
        self.cell_error = False
        self.active: Run | None = None
        #: Runs the active one is nested in, outermost first (``start_run(nested=True)``).
        self.stack: list[Run] = []
        #: The experiment of runs started without one (``set_experiment``).
        self.experiment: str | None = None
        self._name_counts: dict[str, int] = {}
        self.pending_params: dict[str, Any] = {}
        self._kernel_written = False
        self._emitted: set[str] = set()
        self._cell_cache: dict[str, Any] = {}
        self._kernel_cache: dict[str, Any] = {}
        self._git_pending: list[_GitCapture] = []
        self._executed: list[str] = []  # sha256 of each executed cell, to find the notebook
        # Both engines spool: a SQLite file can be read-only, locked or on a full disk too.
        spool = jupyter_data_dir() / "nbtrace" / "spool"
        self.writer = Writer(
            self.store,
            self.warn,
            interval=float(os.environ.get("NBTRACE_FLUSH_INTERVAL", "1.0")),
            spool_dir=spool,
            location_key=self.store.display_location,
        )
        self._last_heartbeat = 0.0
        self._check_store()
        self.writer.start(tick=self._heartbeat)
        if spool.is_dir() and any(spool.glob("*.jsonl")):
            # Off the user's thread: uploading waits for the store's lock.
            _background(lambda: self._sync_spool(spool))

    def _check_store(self) -> None:
        """Warn once at start when the store's file fails its (daily) integrity check."""
        try:
            warning = self.store.health_check()
        except NBTraceError:
            return
        if warning:
            self.warn(warning)

    # ------------------------------------------------------------------ cells
    def record_history(self, cells: list[tuple[int | None, str]]) -> None:
        """Record cells that ran before nbtrace was loaded (from the kernel's history)."""
        for count, source in cells:
            self._record_cell(source, None, count)

    def warn_credentials(self, sources: list[str]) -> None:
        """Warn (once, at ``%load_ext``) when cell sources seem to hold credential literals.

        ``sources`` are the cells run before loading; the saved notebook's code cells are
        checked too. Why a warning and not masking: a cell's source is stored verbatim (a
        re-execution runs it), so the user must move the secret out of the code.
        """
        from .capture.notebook import code_cell_sources
        from .capture.redact import credential_in_code

        path = self._notebook_path()
        seen = list(sources) + (code_cell_sources(path) if path else [])
        hits = [what for what in map(credential_in_code, seen) if what]
        if hits:
            self.warn(
                f"nbtrace: warning: {len(hits)} cell(s) of this notebook seem to hold a"
                f" credential ({hits[0]}). nbtrace stores the source of every executed cell"
                " verbatim in its store: read secrets from an environment variable or a file"
            )

    def cell_started(self, source: str, cell_id: str | None, execution_count: int | None) -> None:
        """A cell is about to run (IPython's ``pre_run_cell``)."""
        self._seal_outputs()
        self.cell_index = 0
        self.cell_error = False
        self._cell_cache.clear()
        self._record_cell(source, cell_id, execution_count)
        self._out_seq = self.seq
        # Durable soon even if this cell never ends (a kernel killed mid-cell).
        self.writer.kick()

    def _record_cell(self, source: str, cell_id: str | None, count: int | None) -> None:
        from .capture.hashing import sha256_text

        self.seq += 1
        sha = sha256_text(source)
        self._executed.append(sha)
        self._ensure_kernel()
        if sha not in self._emitted:
            self._emitted.add(sha)
            self.writer.submit(("source", sha, source))
        self.writer.submit(("cell", self.kernel_id, self.seq, count, cell_id, sha, 0))
        self._last_cell = (self.seq, count, cell_id, sha)

    def cell_finished(self, error: bool) -> None:
        """A cell finished (``post_run_cell``): mark errors, make everything durable.

        The cell's git capture is not waited for: git costs ~10 ms of subprocesses, which would
        be most of a short cell's overhead. Its thread queues the runs' git state when done and
        wakes the background writer, so it is durable milliseconds later (and at exit,
        :meth:`close` waits for it).
        """
        if error and getattr(self, "_last_cell", None):
            seq, count, cell_id, sha = self._last_cell
            self.writer.submit(("cell", self.kernel_id, seq, count, cell_id, sha, 1))
        run = self.active
        if run is not None and not run.ghost:
            run.raised = error
            # The cell's end is the run's latest sign of life: a run whose kernel is killed
            # later reads as crashed at this time, not at its start (heartbeats are 30 s apart).
            self.writer.submit(("heartbeat", run.id, time.time()))
        # The cell's outputs are complete here (stream writes are seen as they happen, figures
        # are shown before post_run_cell): sealed now, a re-execution of a run that ended in the
        # notebook's last cell can compare them while its kernel is still open.
        self._seal_outputs()
        while self.active is not None and self.active.implicit:
            self.end_run(status="failed" if error else "finished")
        self.flush()

    def flush(self) -> bool:
        """Write everything queued now (deferred to the background thread if the store is
        failing, so the user's code never waits on an unreachable server)."""
        return self.writer.sync()

    # ------------------------------------------------------------------ capture
    def _init_capture(self) -> None:
        """Dependency and output capture (see :mod:`nbtrace.capture.runend`)."""
        from .capture import deps
        from .capture.outputs import OutputRecorder
        from .capture.runend import RunEndCapture

        deps.watch_reads()
        self.outputs = OutputRecorder()
        self.capturing_outputs = False
        self._out_seq: int | None = None
        self.runend = RunEndCapture(
            blob=self._blob,
            submit_op=self.writer_submit,
            source=self._source,
            kick=lambda: self.writer.kick(),
            background=_background,
            excluder=self._excluder,
            packages=lambda: self._kernel_cache.get("packages") or {},
        )

    def writer_submit(self, op: tuple) -> None:
        """Queue one op for the store (from any thread)."""
        self.writer.submit(op)

    def _source(self, sha: str, text: str) -> None:
        if sha not in self._emitted:
            self._emitted.add(sha)
            self.writer.submit(("source", sha, text))

    def _excluder(self) -> Any:
        from .capture import deps

        loc = self.location if not self.location.startswith(("postgres", "nbtrace+")) else ""
        files = [loc, loc + "-wal", loc + "-shm", loc + "-journal", loc + ".lock",
                 self._notebook_path() or ""]
        return deps.Excluder(extra_files=files)

    def output_stream(self, name: str, text: str) -> None:
        """Text the running cell wrote to ``name`` (stdout/stderr), from the adapter's hook."""
        if self._out_seq is not None:
            self.outputs.stream(name, text)

    def output_data(self, bundle: Any) -> None:
        """A display bundle the running cell published, from the adapter's hook."""
        if self._out_seq is not None:
            self.outputs.data(bundle)

    def stop_outputs(self) -> None:
        """The extension is unloaded: seal the running cell's outputs, record no more."""
        self._seal_outputs()
        self.capturing_outputs = False

    def _seal_outputs(self) -> None:
        """Write the finished cell's output record (only when the adapter feeds outputs)."""
        seq, self._out_seq = self._out_seq, None
        if seq is None or not self.capturing_outputs:
            self.outputs.pieces.clear()
            return
        fingerprint, excerpt, data, images = self.outputs.seal()
        for image in images.values():
            self._blob("image", image)  # keyed as every blob: stable_hash(["image", image])
        self.writer.submit(
            ("output", self.kernel_id, seq, fingerprint, excerpt, json.dumps(data))
        )

    def _ensure_kernel(self) -> None:
        if self._kernel_written:
            return
        self._kernel_written = True
        self.writer.submit(
            (
                "kernel",
                self.kernel_id,
                self.kernel_started,
                self.host,
                self.user,
                os.getpid(),
                self.kernel_name,
                sys.executable,
                self._notebook_path(),
                json.dumps(self.seeds),
            )
        )

    def _notebook_path(self) -> str | None:
        """The notebook's path: told by the environment, else found from the executed cells
        among the working directory's notebooks (papermill, nbconvert, nbclient, CI)."""
        from .capture.notebook import find_notebook, notebook_path

        return notebook_path() or find_notebook(self._executed)

    def _blob(self, kind: str, data: Any) -> str:
        from .capture.hashing import stable_hash

        h = stable_hash([kind, data])
        if h not in self._emitted:
            self._emitted.add(h)
            self.writer.submit(("blob", h, kind, json.dumps(data, sort_keys=True, default=str)))
        return h

    def _git_async(self, folder: str) -> "_GitCapture":
        """Git state of ``folder``, computed off the user's thread (a subprocess costs ms)."""
        cap = _GitCapture(self, folder)
        self._git_pending = [c for c in self._git_pending if not c.done] + [cap]
        cap.start()
        return cap

    def _capture_start(self) -> dict[str, Any]:
        """The run row's captured fields (cached per kernel / per cell as described above)."""
        from .capture import environment as env
        from .capture import notebook as nb
        from .capture.hashing import stable_hash

        kc, cc = self._kernel_cache, self._cell_cache
        if "env_hash" not in kc:
            kc["env_hash"] = self._blob("environment", env.system_info())
        # The key stats every sys.path entry (~20 µs): once per cell is enough (an install
        # between two runs of one cell shows up from the next cell on).
        pkey = cc.get("pkey")
        if pkey is None:
            pkey = cc["pkey"] = env.packages_cache_key()
        if kc.get("pkey") != pkey:
            pkgs = env.installed_packages()
            set_hash = stable_hash(sorted(pkgs.items()))
            kc.update(pkey=pkey, packages=pkgs, packages_hash=set_hash)
            if set_hash not in self._emitted:
                self._emitted.add(set_hash)
                self.writer.submit(("packages", set_hash, sorted(pkgs.items())))
        nmods = len(sys.modules)
        if kc.get("nmods") != nmods:
            kc["nmods"] = nmods
            # Stored once per distinct set, like the environment: ~700 bytes a run otherwise
            # (a third of a run of the 330-run notebook). The run row holds a reference.
            mods = env.imported_modules(kc["packages"])
            kc["imported"] = IMPORTED_REF + self._blob("imported", mods)
            kc["imported_json"] = json.dumps(mods, sort_keys=True)  # what run end compares to
        if "nb" not in cc:
            path = self._notebook_path()
            cells = nb.notebook_cell_hashes(path) if path else []
            cc["nb"] = (path, self._blob("notebook", cells) if path else None)
            folder = os.path.dirname(path) if path else os.getcwd()
            cc["git"] = self._git_async(folder)
            cc["env_vars"] = json.dumps(env.env_vars(None), sort_keys=True)
        path, nb_hash = cc["nb"]
        return {
            "notebook_path": path,
            "notebook_hash": nb_hash,
            "env_hash": kc["env_hash"],
            "packages_hash": kc["packages_hash"],
            "imported": kc["imported"],
            "git_hash": None,
            "env_vars": cc["env_vars"],
        }

    # ------------------------------------------------------------------ runs
    def start_run(
        self,
        name: str | None = None,
        experiment: str | None = None,
        tags: dict[str, Any] | None = None,
        nested: bool = False,
        implicit: bool = False,
        started_at: float | None = None,
        nested_in: str | None = None,
    ) -> Run:
        """Start a run: nested in the active one with ``nested``, else after ending every
        open run. ``name`` defaults to the notebook's name and a counter (``train-3``).
        ``nested_in`` links a run to a parent that is not open here (MLflow's client can
        name any run as parent)."""
        name = check_name("run", name, 1000) if name is not None else self._default_name()
        outer = self.active if nested else None
        if experiment is None:
            # A nested run belongs with the run it is nested in (MLflow's runs share the
            # experiment that is set); otherwise the set_experiment default.
            experiment = outer.experiment if outer is not None else self.experiment
        if experiment is not None:
            experiment = check_name("experiment", experiment, 1000)
        tags = {check_name("tag", k): _tag_value(v) for k, v in (tags or {}).items()}
        if outer is not None:
            self.stack.append(outer)
        else:
            while self.active is not None:
                self.end_run()
        index = self.cell_index
        self.cell_index += 1
        ghost = False
        run_id = new_id()
        parent = None
        if self.replay is not None:
            ghost = (self.seq, index) != (self.replay.target_seq, self.replay.target_index)
            if not ghost:
                parent = self.replay.parent
                run_id = self.replay.run_id or run_id
                tags = {**tags, **self.replay.tags}
        if outer is not None:
            nested_in = outer.id if not outer.ghost else None
        now = time.time() if started_at is None else started_at
        run = Run(
            id=run_id,
            name=name,
            ghost=ghost,
            experiment=experiment,
            nested_in=nested_in,
            implicit=implicit,
            started_at=now,
        )
        self.active = run
        if ghost:
            return run
        self._write_start(run, index, parent, tags)
        return run

    def _write_start(self, run: Run, index: int, parent: str | None, tags: dict[str, str]) -> None:
        """Queue the new run's row (with the cell's captured state), tags and pending params."""
        from .capture.resources import ResourceMeter

        self._ensure_kernel()
        row = self._capture_start()
        run.imported = self._kernel_cache.get("imported_json", "")
        if self.seq == 0 and not self._warned_no_cells:
            self._warned_no_cells = True
            self.warn(
                f"nbtrace: run {run.name!r} records no code (this process is not a notebook kernel"
                " with %load_ext nbtrace), so it cannot be re-executed"
            )
        row.update(
            id=run.id,
            name=run.name,
            experiment=run.experiment,
            status="running",
            started_at=run.started_at,
            heartbeat_at=run.started_at,
            user_name=self.user,
            host=self.host,
            pid=os.getpid(),
            kernel_id=self.kernel_id,
            kernel_name=self.kernel_name,
            start_seq=self.seq,
            cell_index=index,
            parent=parent,
        )
        if run.nested_in is not None:
            row["nested_in"] = run.nested_in
        extra: dict[str, Any] = {"cwd": os.getcwd()}
        if self.replay is not None and self.replay.job:
            extra["job"] = self.replay.job
        row["extra"] = json.dumps(extra)
        run.extra = extra
        git = self._cell_cache.get("git")
        if git is not None and git.done:  # known already (later runs of a cell)
            row["git_hash"] = git.hash
            self.writer.submit(("run_start", row))
        else:
            self.writer.submit(("run_start", row))
            if git is not None:
                git.attach(run.id)
        for k, v in tags.items():
            self.writer.submit(("tag", run.id, k, v))
        pending, self.pending_params = self.pending_params, {}
        for k, v in pending.items():
            self._submit_param(run, k, v)
        run.meter = ResourceMeter()
        run.meter.start()

    def _default_name(self) -> str:
        """The notebook's (or script's) name and a per-kernel counter: ``train-1``, ``train-2``."""
        path = self._notebook_path() or (sys.argv[0] if sys.argv and sys.argv[0] else "")
        stem = Path(path).stem if path and not path.startswith("-") else ""
        if not stem or not stem.isprintable() or stem == "ipykernel_launcher":
            stem = "run"
        n = self._name_counts.get(stem, 0) + 1
        self._name_counts[stem] = n
        return f"{stem[:200]}-{n}"

    def set_experiment(self, name: str | None) -> str | None:
        """Runs started from now on without an experiment go to ``name`` (None: no default)."""
        self.experiment = None if name is None else check_name("experiment", name, 1000)
        return self.experiment

    def end_run(
        self, status: str = "finished", run: Run | None = None, ended_at: float | None = None
    ) -> Run | None:
        """End ``run`` (default: the active run; no-op when there is none). Ending a nested
        run makes the run it is nested in active again."""
        status = _end_status(status)
        if run is None or run is self.active:
            run, self.active = self.active, (self.stack.pop() if self.stack else None)
        elif run in self.stack:
            self.stack.remove(run)
        if run is None or run.ghost:
            return run
        run.status = status
        resources = run.meter.stop() if run.meter else {}
        end = time.time() if ended_at is None else ended_at
        self.writer.submit(("run_end", run.id, status, end, self.seq, json.dumps(resources)))
        self.runend.run_ended(run.id, self.seq, run.imported)
        # Written by the background writer, not here: a transaction on the user's thread per
        # run would be most of the cost of runs started in a loop (330 runs in one cell: ~1 ms
        # each, more when a WAL checkpoint has to fsync). A run that lasted a while is written
        # at once (the kick: durable ~50 ms later); short runs, which come in loops, are
        # batched by the periodic flush (within its interval, 1 s) and the cell's end, because
        # a background write per short run slows the loop by contending for the GIL (~0.1 ms a
        # run, measured on the ElasticNet grid).
        if resources.get("wall_s", 0.0) >= KICK_AFTER_S:
            self.writer.kick()
        return run

    def open_runs(self) -> list[Run]:
        """Every open run, outermost first (the active one last)."""
        return self.stack + ([self.active] if self.active is not None else [])

    def _heartbeat(self) -> None:
        run = self.active
        now = time.time()
        if run is not None and not run.ghost and now - self._last_heartbeat >= _hb_interval():
            self._last_heartbeat = now
            self.writer.submit(("heartbeat", run.id, now))

    def _require_run(self) -> Run:
        """The active run, or an implicit one started now (MLflow's shape: logging outside a
        run starts one). It ends with the cell; a one-line notice says so."""
        if self.active is None:
            run = self.start_run(implicit=True)
            if not run.ghost:
                self.warn(
                    f"nbtrace: no active run, started run {run.name!r} ({run.id});"
                    " it ends with this cell"
                )
        return self.active

    # ------------------------------------------------------------------ params, metrics, tags
    def override(self, key: str) -> tuple[bool, Any]:
        """``(True, value)`` when a re-execution overrides parameter ``key``."""
        if self.replay is not None and key in self.replay.overrides:
            return True, self.replay.overrides[key]
        return False, None

    def log_param(self, key: str, value: Any) -> Any:
        """Log a parameter; returns the value to use (the override when re-executing)."""
        check_name("param", key)
        if self.replay is not None:
            has, over = self.override(key)
            if has:
                value = over
        t = type(value)
        if t is float or t is int or t is bool or t is str:
            run = self.active
            if run is not None and not run.ghost and (t is not str or len(value) <= MAX_VALUE):
                # The hot path of log_params in a loop: no numpy check, JSON without json.dumps.
                self._submit_param(run, key, value)
                return value
        value = to_plain(value)
        if isinstance(value, str) and len(value) > MAX_VALUE:
            raise UsageError(
                f"param {key!r} is {len(value)} characters long; the limit is {MAX_VALUE}"
            )
        if self.active is None:
            self.pending_params[key] = value
        elif not self.active.ghost:
            self._submit_param(self.active, key, value)
        return value

    def log_params(self, params: Any) -> dict[str, Any]:
        """:meth:`log_param` for each item; the common case (an active run, names seen
        before, str/int/float/bool values, no re-execution) without a call per item."""
        run = self.active
        known = _valid_names.get(MAX_NAME)
        if run is None or run.ghost or self.replay is not None or known is None:
            return {k: self.log_param(k, v) for k, v in params.items()}
        out: dict[str, Any] = {}
        submit = self._submit_param
        for k, v in params.items():
            t = type(v)
            if type(k) is str and k in known and (
                t is float or t is int or t is bool or (t is str and len(v) <= MAX_VALUE)
            ):
                submit(run, k, v)
                out[k] = v
            else:
                out[k] = self.log_param(k, v)
        return out

    def _submit_param(self, run: Run, key: str, value: Any) -> None:
        run.param_keys.add(key)
        t = type(value)
        # What param_to_json and param_number give, spelled out for the common types (json
        # writes a float or an int with its repr; a str needs only its quoting).
        if t is str:
            if len(value) <= MAX_VALUE:
                self.writer.pending.append(
                    ("param", run.id, key, _json_str(value), None, value)
                )
                return
        elif t is float:
            if value - value == 0.0:
                as_json = float.__repr__(value)
                self.writer.pending.append(("param", run.id, key, as_json, value, as_json))
                return
        elif t is int:
            if -(2**53) <= value <= 2**53:
                as_json = int.__repr__(value)
                self.writer.pending.append(
                    ("param", run.id, key, as_json, float(value), as_json)
                )
                return
        elif t is bool:
            as_json = "true" if value else "false"
            self.writer.pending.append(("param", run.id, key, as_json, None, as_json))
            return
        try:
            as_json = param_to_json(value)
        except ValueError:  # an int of more than 4,300 digits: even its repr refuses
            raise UsageError(f"param {key!r} is too large to record") from None
        text = value if isinstance(value, str) else as_json
        if len(text) > MAX_VALUE:
            raise UsageError(f"param {key!r} is too large to record ({len(text)} characters)")
        self.writer.submit(("param", run.id, key, as_json, param_number(value), text))

    def log_metric(self, key: str, value: Any, step: Any = None) -> None:
        """Log a metric value to the active run (hot path: validation is cached per key; a
        loop pays ~0.3 µs a call, so nothing else belongs here: see :meth:`log_metric_to`)."""
        run = self.active
        if run is None:
            run = self._require_run()
        if key not in run.metric_keys:
            check_name("metric", key)
            run.metric_keys.add(key)
        if type(value) is not float:
            value = _metric_value(key, value)
        if step is not None and (type(step) is not int or not -_STEP_MAX <= step <= _STEP_MAX):
            step = _step(step)
        if run.ghost:
            return
        run.metric_seq += 1
        self.writer.pending.append(
            ("metric", run.id, key, run.metric_seq, step, time.time(), value)
        )

    def log_metric_to(
        self, run: Run | None, key: str, value: Any, step: Any, timestamp: float | None
    ) -> None:
        """Log a metric to ``run`` (default: the active run) at ``timestamp`` (epoch seconds,
        default now): MLflow's shape, where a client names the run and the time."""
        if run is None:
            run = self.active
            if run is None:
                run = self._require_run()
        if key not in run.metric_keys:
            check_name("metric", key)
            run.metric_keys.add(key)
        if type(value) is not float:
            value = _metric_value(key, value)
        if step is not None and type(step) is not int:
            step = _step(step)
        if run.ghost:
            return
        run.metric_seq += 1
        ts = time.time() if timestamp is None else float(timestamp)
        self.writer.pending.append(("metric", run.id, key, run.metric_seq, step, ts, value))

    def set_tag(self, key: str, value: Any, run: Run | None = None) -> None:
        """Set a tag on ``run`` (default: the active run)."""
        run = run or self._require_run()
        check_name("tag", key)
        value = _tag_value(value)
        if not run.ghost:
            self.writer.submit(("tag", run.id, key, value))

    def log_artifact(self, path: str, name: str | None = None) -> dict[str, Any]:
        """Store a file's content with the active run, addressed by its sha256."""
        from .rules import artifact_name_problem

        run = self._require_run()
        p = Path(path)
        if not p.is_file():
            raise UsageError(f"no such file: {one_line(path, 200)}")
        name = name if name is not None else p.name
        problem = artifact_name_problem(name)
        if problem:
            raise UsageError(f"{problem}: {one_line(name, 80)!r}")
        from .capture import deps

        resolved = str(p.resolve())
        known = deps.was_read(resolved)  # an artifact the run wrote is not its input
        try:
            if run.ghost:
                from .capture.hashing import sha256_file

                sha, size = sha256_file(str(p))
                return {"name": name, "sha256": sha, "size": size}
            staged, sha, size = _stage_copy(p)
        finally:
            if not known:
                deps.forget_read(resolved)
        self.writer.submit(("artifact_file", run.id, name, sha, size, staged))
        return {"name": name, "sha256": sha, "size": size}

    def log_artifact_data(self, name: str, data: bytes) -> dict[str, Any]:
        """Store ``data`` as artifact ``name`` of the active run (``log_text``, ``log_dict``,
        ``log_figure``: content made in memory rather than read from a file)."""
        import hashlib

        from .rules import artifact_name_problem

        run = self._require_run()
        problem = artifact_name_problem(name)
        if problem:
            raise UsageError(f"{problem}: {one_line(name, 80)!r}")
        sha = hashlib.sha256(data).hexdigest()
        if not run.ghost:
            self.writer.submit(("artifact", run.id, name, sha, len(data), data))
        return {"name": name, "sha256": sha, "size": len(data)}

    def log_dataset(self, name: str, digest: str) -> dict[str, Any]:
        """Record an in-memory data set (MLflow's ``Dataset``: a name and a digest) as an
        input of the active run; a file is recorded by :meth:`log_input` instead."""
        from .capture.hashing import sha256_text

        run = self._require_run()
        key = f"dataset:{one_line(name, 200)}@{one_line(digest, 100)}"
        # No file to hash: the fingerprint is the sha256 of the key (MLflow's digest in it).
        sha = sha256_text(key)
        if not run.ghost:
            self.writer.submit(("input", run.id, key, sha, 0))
        return {"path": key, "sha256": sha, "size": 0}

    def log_input(self, path: str) -> dict[str, Any]:
        """Record a data file's fingerprint (sha256 and size) with the active run."""
        from .capture.hashing import sha256_file

        run = self._require_run()
        p = Path(path)
        if not p.is_file():
            raise UsageError(f"no such file: {one_line(path, 200)}")
        sha, size = sha256_file(str(p))
        full = str(p.resolve())
        if not run.ghost:
            self.writer.submit(("input", run.id, full, sha, size))
        return {"path": full, "sha256": sha, "size": size}

    # ------------------------------------------------------------------ lifecycle
    def _sync_spool(self, spool: Path) -> None:
        from .store.importdoc import CheckedWrites
        from .writer import sync_spool

        try:
            files, ops = sync_spool(CheckedWrites(self.store), spool, self.store.display_location)
        except NBTraceError as exc:
            if "refused" in str(exc):
                self.warn(f"nbtrace: a spool file in {spool} was not uploaded: {exc}")
            return
        if files:
            self.warn(f"nbtrace: uploaded {ops} writes saved by an earlier session")

    def close(self) -> None:
        """At kernel exit: end the active run and write (or spool) everything.

        Every git capture still under way is waited for (not only the last cell's: a later
        cell without a run clears the cell cache), and one the worker did not finish in time
        is done here, so a run started in the last cells still gets its git state. An active
        run whose last cell raised ends ``failed``: the notebook stopped at that error.
        """
        deadline = time.monotonic() + 10.0
        for cap in self._git_pending:
            cap.join(max(0.0, deadline - time.monotonic()))
            if not cap.done or (cap.hash is None and cap.runs):
                # ipykernel kills the kernel's child processes when asked to shut down: a git
                # command still running then fails, and its capture reads "no git". Again now.
                cap.run_now()
        self._git_pending = []
        if self.active is not None:
            try:
                self.end_run("failed" if self.active.raised else "finished")
            except NBTraceError:
                pass
        self._seal_outputs()
        self.runend.join()
        self.writer.close()


class _GitCapture:
    """One cell's git capture off the user's thread; runs started meanwhile get it by a run
    update.

    Why a shared worker rather than a thread per cell: ``Thread.start`` waits until the new
    thread runs, which costs 0.1-3 ms of the user's cell on a busy machine, every cell.
    """

    def __init__(self, tracker: Tracker, folder: str) -> None:
        import threading

        self.tracker = tracker
        self.folder = folder
        self.hash: str | None = None
        self.done = False
        self.runs: list[str] = []
        self._lock = threading.Lock()
        self._finished = threading.Event()

    def start(self) -> None:
        _background(self._run)

    def run_now(self) -> None:
        """Capture on the calling thread (at kernel exit: the worker did not finish, or its
        git was killed), whatever the worker found."""
        with self._lock:
            self.done = False
        self._run(again=True)

    def _run(self, again: bool = False) -> None:
        from .capture.git import git_state

        with self._lock:
            if self.done:
                return  # captured already (by the worker, or by run_now at exit)
        try:
            state = git_state(self.folder)
            h = self.tracker._blob("git", state) if state else None
        except Exception:  # noqa: BLE001 - capture must never break the user's cell
            h = None
        with self._lock:
            if self.done and not again:
                return
            self.hash, self.done = h, True
            for run_id in self.runs:
                if h:
                    self.tracker.writer.submit(("run_update", run_id, {"git_hash": h}))
        self._finished.set()
        if h and self.runs:
            # Durable now, without waiting for the next cell's end or the periodic flush.
            self.tracker.writer.kick()

    def attach(self, run_id: str) -> None:
        """Give ``run_id`` this cell's git state, now or when it is known."""
        with self._lock:
            if not self.done:
                self.runs.append(run_id)
                return
        if self.hash:
            self.tracker.writer.submit(("run_update", run_id, {"git_hash": self.hash}))

    def join(self, timeout: float = 10.0) -> None:
        self._finished.wait(timeout)


_jobs: Any = None  # queue.SimpleQueue of the capture worker, created on first use


def _background(fn: Callable[[], None]) -> None:
    """Run ``fn`` on the process's capture worker thread (started on first use)."""
    global _jobs
    jobs = _jobs
    if jobs is None:
        import queue
        import threading

        jobs = _jobs = queue.SimpleQueue()
        threading.Thread(target=_work, args=(jobs,), name="nbtrace-capture", daemon=True).start()
    jobs.put(fn)


def _work(jobs: Any) -> None:
    from .capture.deps import own_thread

    own_thread()  # what the capture worker reads (files it hashes) is not the run's input
    while True:
        fn = jobs.get()
        try:
            fn()
        except Exception:  # noqa: BLE001 - the worker must outlive any one capture
            pass


def _forget_worker() -> None:
    global _jobs
    _jobs = None  # a forked child has no worker thread: start its own when needed


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_worker)


def _stage_copy(src: Path) -> tuple[str, str, int]:
    """Copy ``src`` to the staging folder 1 MiB at a time, hashing as it goes; returns
    ``(staged path, sha256, size)``.

    Why a copy: the writer stores it later, off the user's thread, and the user may rewrite
    the file meanwhile (a checkpoint saved every epoch); the copy is what was logged. Why in
    chunks: a 200 MB artifact must not sit in the kernel's memory (it grew the kernel by
    600 MB when read whole); the store reads the copy in chunks too, then deletes it.
    """
    import hashlib
    import tempfile

    from .config import jupyter_data_dir

    folder = jupyter_data_dir() / "nbtrace" / "staging"
    try:
        folder.mkdir(parents=True, exist_ok=True)
        fd, staged = tempfile.mkstemp(prefix="artifact-", dir=folder)
    except OSError as exc:
        raise UsageError(f"cannot stage the artifact in {folder}: {exc.strerror}") from None
    h = hashlib.sha256()
    size = 0
    try:
        with open(src, "rb") as fin, os.fdopen(fd, "wb") as fout:
            while True:
                chunk = fin.read(1 << 20)
                if not chunk:
                    break
                h.update(chunk)
                fout.write(chunk)
                size += len(chunk)
    except OSError as exc:
        try:
            os.unlink(staged)
        except OSError:
            pass
        raise UsageError(f"cannot read {one_line(str(src), 200)}: {exc.strerror}") from None
    return staged, h.hexdigest(), size


def _default_warn(msg: str) -> None:
    print(msg, file=sys.stderr)


def _user() -> str:
    try:
        return getpass.getuser()
    except Exception:  # noqa: BLE001 - no passwd entry in some containers
        return str(os.getuid()) if hasattr(os, "getuid") else "unknown"


def _hb_interval() -> float:
    from .config import heartbeat_interval

    return heartbeat_interval()


def _metric_value(key: str, value: Any) -> float:
    if isinstance(value, bool) or isinstance(value, str):
        raise UsageError(f"metric {key!r} must be a number, not {type(value).__name__}")
    try:
        v = float(to_plain(value))
    except OverflowError:
        raise UsageError(f"metric {key!r} is too large for a float") from None
    except (TypeError, ValueError):
        raise UsageError(
            f"metric {key!r} must be a number, not {one_line(type(value).__name__, 40)}"
        ) from None
    return v


def _step(step: Any) -> int:
    step = to_plain(step)
    if isinstance(step, bool) or not isinstance(step, (int, float)):
        raise UsageError(f"step must be an integer, not {one_line(repr(step), 40)}")
    if isinstance(step, float):
        if not math.isfinite(step) or step != int(step):
            raise UsageError(f"step must be an integer, not {step!r}")
    step = int(step)
    if abs(step) > _STEP_MAX:
        raise UsageError(f"step must be between -2**62 and 2**62, not {one_line(step, 40)}")
    return step


_END_STATUSES = {
    "finished": "finished",
    "failed": "failed",
    # MLflow's spellings (RunStatus), so MLflow-shaped code ends runs unchanged.
    "FINISHED": "finished",
    "FAILED": "failed",
    "KILLED": "failed",
}


def _end_status(status: Any) -> str:
    """The nbtrace status for an end-of-run status word (nbtrace's or MLflow's)."""
    found = _END_STATUSES.get(status) if isinstance(status, str) else None
    if found is None:
        raise UsageError(f"status must be 'finished' or 'failed', not {one_line(status, 40)!r}")
    return found


def _tag_value(value: Any) -> str:
    s = value if isinstance(value, str) else json.dumps(to_plain(value), default=str)
    if len(s) > MAX_VALUE:
        raise UsageError(f"tag value is {len(s)} characters long; the limit is {MAX_VALUE}")
    return s

"""The kernel-side core: runs, cells and capture, with no IPython in sight.

Why a core object: magics and the Python API are two spellings of the same actions, and the
replay engine needs the same behaviour in a fresh kernel. The adapter (``magics.py``) feeds
:meth:`Tracker.cell_started` / :meth:`Tracker.cell_finished` from IPython's events and
translates :class:`~nbtrace.errors.NBTraceError` into ``UsageError``.

Cost model: everything that does not change within a kernel (machine, packages) is captured
once and stored once (content-addressed); what may change between cells (git state, notebook
file, imported modules) is cached per cell (:mod:`nbtrace.capture.cache`); metric calls only
queue an op for the writer (:mod:`nbtrace.logcalls`). Every write is a typed op of
:mod:`nbtrace.store.ops`, queued with :meth:`nbtrace.writer.Writer.submit`.
"""

from __future__ import annotations

import getpass
import json
import logging
import os
import secrets
import socket
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .capture.cache import IMPORTED_REF, CaptureCache
from .capture.resources import ResourceMeter
from .capture.worker import background, cell_running
from .checks import MAX_NAME, MAX_VALUE, check_name, end_status, tag_value
from .errors import NBTraceError, one_line
from .logcalls import LogCalls
from .runstate import ReplayPlan, Run
from .store import open_store, ops
from .store.base import Store
from .util import new_id
from .writer import Writer

# Re-exported: names other modules import from here (they moved to checks, runstate, cache).
__all__ = ["IMPORTED_REF", "MAX_NAME", "MAX_VALUE", "ReplayPlan", "Run", "Tracker", "check_name"]

log = logging.getLogger("nbtrace")

#: A run that lasted at least this long is written as soon as it ends (see :meth:`end_run`).
KICK_AFTER_S = 0.1
#: Ops queued after which a run's end wakes the writer. Why: what is left at the cell's end is
#: written while the user waits; a loop's runs written ~70 at a time in the background (in
#: multi-row statements that do not fight the user's thread for the GIL) leave ~1,000 ops at
#: most, not the whole loop's.
KICK_PENDING = 1000


class Tracker(LogCalls):
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
        # Both engines spool: a SQLite file can be read-only, locked or on a full disk too.
        spool = jupyter_data_dir() / "nbtrace" / "spool"
        self.writer = Writer(
            self.store,
            self.warn,
            interval=float(os.environ.get("NBTRACE_FLUSH_INTERVAL", "1.0")),
            spool_dir=spool,
            location_key=self.store.display_location,
        )
        self._executed: list[str] = []  # sha256 of each executed cell, to find the notebook
        self.capture = CaptureCache(self.writer.submit, self.writer.kick, self._notebook_path)
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
        self._last_heartbeat = 0.0
        self._check_store()
        self.writer.start(tick=self._heartbeat)
        try:
            spooled = spool.is_dir() and any(spool.glob("*.jsonl"))
        except OSError as exc:  # an unreadable data folder: nothing to upload from it
            log.warning("nbtrace: cannot read the spool folder %s (%s)", spool, one_line(exc))
            spooled = False
        if spooled:
            # Off the user's thread: uploading waits for the store's lock.
            background(lambda: self._sync_spool(spool))

    def _check_store(self) -> None:
        """Warn once at start when the store's file fails its (daily) integrity check."""
        try:
            warning = self.store.health_check()
        except NBTraceError as exc:
            log.warning("nbtrace: the store's integrity check could not run (%s)", one_line(exc))
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
        cell_running(True)
        self.cell_index = 0
        self.cell_error = False
        self.capture.new_cell()
        self._record_cell(source, cell_id, execution_count)
        self._out_seq = self.seq
        # Durable soon even if this cell never ends (a kernel killed mid-cell).
        self.writer.kick()

    def _record_cell(self, source: str, cell_id: str | None, count: int | None) -> None:
        from .hashing import sha256_text

        self.seq += 1
        sha = sha256_text(source)
        self._executed.append(sha)
        self._ensure_kernel()
        self.capture.source(sha, source)
        self.writer.submit(ops.cell(self.kernel_id, self.seq, count, cell_id, sha, 0))
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
            self.writer.submit(ops.cell(self.kernel_id, seq, count, cell_id, sha, 1))
        run = self.active
        if run is not None and not run.ghost:
            run.raised = error
            # The cell's end is the run's latest sign of life: a run whose kernel is killed
            # later reads as crashed at this time, not at its start (heartbeats are 30 s apart).
            self.writer.submit(ops.heartbeat(run.id, time.time()))
        # The cell's outputs are complete here (stream writes are seen as they happen, figures
        # are shown before post_run_cell): sealed now, a re-execution of a run that ended in the
        # notebook's last cell can compare them while its kernel is still open.
        self._seal_outputs()
        while self.active is not None and self.active.implicit:
            self.end_run(status="failed" if error else "finished")
        self.flush()
        cell_running(False)  # the capture worker's queued jobs run now, with the kernel idle

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
        self._cwd = deps.cwd
        self.outputs = OutputRecorder()
        self.capturing_outputs = False
        self._out_seq: int | None = None
        self.runend = RunEndCapture(
            blob=self.capture.blob,
            submit_op=self.writer.submit,
            source=self.capture.source,
            kick=self.writer.kick,
            background=background,
            excluder=self._excluder,
            packages=self.capture.packages,
        )

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
            self.capture.blob("image", image)  # keyed as every blob: stable_hash(["image", image])
        self.writer.submit(ops.output(self.kernel_id, seq, fingerprint, excerpt, json.dumps(data)))

    def _ensure_kernel(self) -> None:
        if self._kernel_written:
            return
        self._kernel_written = True
        self.writer.submit(
            ops.kernel(
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
        tags = {check_name("tag", k): tag_value(v) for k, v in (tags or {}).items()}
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
        self._ensure_kernel()
        row = self.capture.start_fields()
        run.imported = self.capture.imported_json()
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
        extra: dict[str, Any] = {"cwd": self._cwd()}
        if self.replay is not None and self.replay.job:
            extra["job"] = self.replay.job
        row["extra"] = json.dumps(extra)
        run.extra = extra
        git = self.capture.cell_git()
        if git is not None and git.done:  # known already (later runs of a cell)
            row["git_hash"] = git.hash
            self.writer.submit(ops.run_start(row))
        else:
            self.writer.submit(ops.run_start(row))
            if git is not None:
                git.attach(run.id)
        for k, v in tags.items():
            self.writer.submit(ops.tag(run.id, k, v))
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
        status = end_status(status)
        if run is None or run is self.active:
            run, self.active = self.active, (self.stack.pop() if self.stack else None)
        elif run in self.stack:
            self.stack.remove(run)
        if run is None or run.ghost:
            return run
        run.status = status
        resources = run.meter.stop() if run.meter else {}
        end = time.time() if ended_at is None else ended_at
        self.writer.submit(ops.run_end(run.id, status, end, self.seq, json.dumps(resources)))
        self.runend.run_ended(run.id, self.seq, run.imported)
        # Written by the background writer, not here: a transaction on the user's thread per
        # run would be most of the cost of runs started in a loop (330 runs in one cell: ~1 ms
        # each, more when a WAL checkpoint has to fsync). A run that lasted a while is written
        # at once (the kick: durable ~50 ms later); short runs, which come in loops, are
        # batched by the periodic flush (within its interval, 1 s), by KICK_PENDING ops and by
        # the cell's end, because a background write per short run slows the loop by
        # contending for the GIL (~0.1 ms a run, measured on the ElasticNet grid).
        if (resources.get("wall_s", 0.0) >= KICK_AFTER_S
                or len(self.writer.pending) >= KICK_PENDING):
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
            self.writer.submit(ops.heartbeat(run.id, now))

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

    # ------------------------------------------------------------------ lifecycle
    def _sync_spool(self, spool: Path) -> None:
        """Upload what earlier sessions spooled for this store (on the capture worker).

        Nothing here may reach the user's ``%load_ext``: a spool file that cannot be read, or
        that a newer nbtrace wrote, is kept on disk and named in one warning line; one whose
        writes the store refuses is kept too (``nbtrace sync`` says why).
        """
        from .store.importdoc import CheckedWrites
        from .writer import sync_spool

        kept = lambda msg: self.warn(f"nbtrace: {msg}")  # noqa: E731
        try:
            files, n = sync_spool(
                CheckedWrites(self.store), spool, self.store.display_location, on_kept=kept
            )
        except NBTraceError as exc:
            if "refused" in str(exc):
                self.warn(f"nbtrace: a spool file in {spool} was not uploaded: {exc}")
            else:  # the store is unreachable: the writer says so; the files wait for next time
                log.info("nbtrace: spool files in %s not uploaded yet (%s)", spool, one_line(exc))
            return
        except Exception as exc:  # noqa: BLE001 - a spool file is anyone's text
            self.warn(
                f"nbtrace: the spool files in {spool} were not uploaded ({one_line(exc, 200)});"
                " they are kept: run `nbtrace sync` to retry"
            )
            log.debug("spool upload failed", exc_info=True)
            return
        if files:
            self.warn(f"nbtrace: uploaded {n} writes saved by an earlier session")

    def drain(self) -> bool:
        """End the active run, wait for every capture under way and write it all: what
        :meth:`close` does, with the store left open. True when nothing is left to write.
        A replay calls this before its kernel is stopped."""
        self._settle()
        return self.writer.flush()

    def close(self) -> None:
        """At kernel exit: end the active run and write (or spool) everything."""
        self._settle()
        self.writer.close()

    def _settle(self) -> None:
        """End the active run and wait for the captures under way (nothing left to queue).

        Every git capture still under way is waited for (:meth:`CaptureCache.finish_git
        <nbtrace.capture.cache.CaptureCache.finish_git>`), and so is the capture of the last
        run's modules and inputs. An active run whose last cell raised ends ``failed``: the
        notebook stopped at that error.
        """
        cell_running(False)
        self.capture.finish_git(10.0)
        if self.active is not None:
            try:
                self.end_run("failed" if self.active.raised else "finished")
            except NBTraceError as exc:
                log.warning("nbtrace: the active run could not be ended at exit (%s)",
                            one_line(exc))
        self._seal_outputs()
        self.runend.join()


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

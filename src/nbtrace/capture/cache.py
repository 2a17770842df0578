"""What a run's start captures, cached per kernel and per cell, and stored once.

Cost model: what does not change within a kernel (the machine) is captured once; what an
install can change (the package set) is re-read when the ``sys.path`` fingerprint changes,
checked once per cell; the imported modules when ``sys.modules`` grew; what may change between
cells (git state, notebook file, environment variables) once per cell. Every captured document
is stored once, content-addressed (a ``blob`` op keyed by its hash; a ``source`` op by its
sha256), so a loop of 330 runs writes each of them once.

Why a lock: the git capture and the run-end capture run on the worker thread and store blobs
while the user's thread does; the set of hashes already queued is shared by both.
"""

from __future__ import annotations

import json
import os
import sys
import threading
from collections.abc import Callable
from typing import Any

from ..store import ops
from ..store.ops import IMPORTED_REF
from .gitcapture import GitCapture


class CaptureCache:
    """The content-addressed documents queued so far, and the kernel's and cell's captures.

    ``submit`` queues an op for the store, ``kick`` asks the writer to write now,
    ``notebook_path`` finds the notebook (it may be known only after some cells ran).
    """

    def __init__(
        self,
        submit: Callable[[tuple[Any, ...]], None],
        kick: Callable[[], None],
        notebook_path: Callable[[], str | None],
    ) -> None:
        self._submit, self._kick, self._notebook_path = submit, kick, notebook_path
        self._emitted: set[str] = set()
        self._lock = threading.Lock()
        self.kernel: dict[str, Any] = {}
        self.cell: dict[str, Any] = {}
        #: Git captures that may still be running (see :meth:`finish_git`).
        self.git_pending: list[GitCapture] = []

    # ------------------------------------------------------------------ stored once
    def _first(self, key: str) -> bool:
        """Whether ``key`` is queued for the first time (and is now marked queued)."""
        with self._lock:
            if key in self._emitted:
                return False
            self._emitted.add(key)
            return True

    def source(self, sha: str, text: str) -> None:
        """Queue a source text (a cell's or a local module's) unless queued already."""
        if sha not in self._emitted and self._first(sha):
            self._submit(ops.source(sha, text))

    def blob(self, kind: str, data: Any) -> str:
        """Queue a JSON document once; returns its hash (``stable_hash([kind, data])``)."""
        from ..hashing import stable_hash

        h = stable_hash([kind, data])
        if h not in self._emitted and self._first(h):
            self._submit(ops.blob(h, kind, json.dumps(data, sort_keys=True, default=str)))
        return h

    # ------------------------------------------------------------------ per cell, per kernel
    def new_cell(self) -> None:
        """A cell starts: what is cached per cell is captured again when next needed."""
        self.cell.clear()

    def packages(self) -> dict[str, str]:
        """The installed packages as last captured (empty before any run started)."""
        return self.kernel.get("packages") or {}

    def imported_json(self) -> str:
        """The imported modules' JSON as last captured (what a run's end compares to)."""
        return self.kernel.get("imported_json", "")

    def cell_git(self) -> GitCapture | None:
        """The running cell's git capture, once a run of this cell started one."""
        return self.cell.get("git")

    def start_fields(self) -> dict[str, Any]:
        """The run row's captured fields (cached per kernel / per cell as described above)."""
        kc, cc = self.kernel, self.cell
        # The later runs of a cell (a loop) find every field as the first run left them,
        # unless a module was imported in between: one length check, no recapture.
        fields = cc.get("fields")
        if fields is not None and kc.get("nmods") == len(sys.modules):
            return dict(fields)
        from . import environment as env
        from . import notebook as nb

        if "env_hash" not in kc:
            kc["env_hash"] = self.blob("environment", env.system_info())
        self._packages(kc, cc)
        nmods = len(sys.modules)
        if kc.get("nmods") != nmods:
            kc["nmods"] = nmods
            # Stored once per distinct set, like the environment: ~700 bytes a run otherwise
            # (a third of a run of the 330-run notebook). The run row holds a reference.
            mods = env.imported_modules(kc["packages"])
            kc["imported"] = IMPORTED_REF + self.blob("imported", mods)
            kc["imported_json"] = json.dumps(mods, sort_keys=True)  # what run end compares to
        if "nb" not in cc:
            path = self._notebook_path()
            cells = nb.notebook_cell_hashes(path) if path else []
            cc["nb"] = (path, self.blob("notebook", cells) if path else None)
            folder = os.path.dirname(path) if path else os.getcwd()
            cc["git"] = self._git_async(folder)
            cc["env_vars"] = json.dumps(env.env_vars(None), sort_keys=True)
        path, nb_hash = cc["nb"]
        fields = cc["fields"] = {
            "notebook_path": path,
            "notebook_hash": nb_hash,
            "env_hash": kc["env_hash"],
            "packages_hash": kc["packages_hash"],
            "imported": kc["imported"],
            "git_hash": None,
            "env_vars": cc["env_vars"],
        }
        return dict(fields)

    def _packages(self, kc: dict[str, Any], cc: dict[str, Any]) -> None:
        """Re-read the package set when the ``sys.path`` fingerprint changed."""
        from ..hashing import stable_hash
        from . import environment as env

        # The key stats every sys.path entry (~20 µs): once per cell is enough (an install
        # between two runs of one cell shows up from the next cell on).
        pkey = cc.get("pkey")
        if pkey is None:
            pkey = cc["pkey"] = env.packages_cache_key()
        if kc.get("pkey") != pkey:
            pkgs = env.installed_packages()
            pairs = sorted(pkgs.items())
            set_hash = stable_hash(pairs)
            kc.update(pkey=pkey, packages=pkgs, packages_hash=set_hash)
            if set_hash not in self._emitted and self._first(set_hash):
                self._submit(ops.packages(set_hash, pairs))

    # ------------------------------------------------------------------ git
    def _git_async(self, folder: str) -> GitCapture:
        """Git state of ``folder``, computed off the user's thread (a subprocess costs ms)."""
        cap = GitCapture(folder, self.blob, self._submit, self._kick)
        self.git_pending = [c for c in self.git_pending if not c.done] + [cap]
        cap.start()
        return cap

    def finish_git(self, timeout: float = 10.0) -> None:
        """At kernel exit: wait for every git capture still under way (not only the last
        cell's: a later cell without a run clears the cell cache), and do again on this thread
        one the worker did not finish in time, so a run started in the last cells still gets
        its git state."""
        import time

        deadline = time.monotonic() + timeout
        for cap in self.git_pending:
            cap.join(max(0.0, deadline - time.monotonic()))
            if not cap.done or (cap.hash is None and cap.runs):
                # ipykernel kills the kernel's child processes when asked to shut down: a git
                # command still running then fails, and its capture reads "no git". Again now.
                cap.run_now()
        self.git_pending = []

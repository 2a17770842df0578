"""The end-of-run capture of dependencies, off the user's thread.

Why shaped like the git capture: a loop of 330 short runs must not pay a scan per run. A run's
end costs one comparison when nothing changed since the previous run (same modules loaded,
same files read, same cell): the run just points at the blobs already computed. Otherwise the
user's thread copies ``sys.modules`` and the list of paths read (tens of microseconds) and the
capture worker does the rest (classify, hash, store) and queues one ``capture`` op per run.
"""

from __future__ import annotations

import json
import sys
import threading
from collections.abc import Callable
from typing import Any

from ..store import ops
from . import deps


def _module_map() -> dict[str, str]:
    """Replay with recorded modules: their temporary paths → the paths they were recorded at."""
    import os

    try:
        mapping = json.loads(os.environ.get("NBTRACE_MODULE_MAP") or "{}")
    except ValueError:
        return {}
    return mapping if isinstance(mapping, dict) else {}


class DepsCapture:
    """One snapshot's capture; runs ended meanwhile are attached and written when it is done."""

    def __init__(self, owner: "RunEndCapture", key: tuple[Any, ...], start_imported: str) -> None:
        self.owner = owner
        self.key = key
        self.start_imported = start_imported
        self.modules = list(sys.modules.items())
        self.reads = deps.reads_snapshot()
        self.result: tuple[Any, ...] | None = None
        self.runs: list[str] = []
        self._lock = threading.Lock()
        self.finished = threading.Event()

    def run(self) -> None:
        try:
            result = self.owner.compute(self)
        except Exception:  # noqa: BLE001 - capture must never break the user's kernel
            result = (None, None, None, None)
        with self._lock:
            self.result = result
            runs, self.runs = self.runs, []
        for run_id in runs:
            self.owner.submit(run_id, result)
        self.finished.set()
        if runs:
            self.owner.kick()

    def attach(self, run_id: str) -> None:
        with self._lock:
            if self.result is None:
                self.runs.append(run_id)
                return
        self.owner.submit(run_id, self.result)


class RunEndCapture:
    """Per tracker: decides when a new snapshot is needed and turns one into blobs."""

    def __init__(
        self,
        blob: Callable[[str, Any], str],
        submit_op: Callable[[tuple], None],
        source: Callable[[str, str], None],
        kick: Callable[[], None],
        background: Callable[[Callable[[], None]], None],
        excluder: Callable[[], deps.Excluder],
        packages: Callable[[], dict[str, str]],
    ) -> None:
        self._blob, self._submit, self._source = blob, submit_op, source
        self.kick, self._background = kick, background
        self._excluder_factory, self._packages = excluder, packages
        self._excluder: deps.Excluder | None = None
        self.current: DepsCapture | None = None

    def run_ended(self, run_id: str, seq: int, start_imported: str) -> None:
        """A run ended: give it the current snapshot's capture (taking one if stale)."""
        key = (len(sys.modules), deps.read_count(), seq, start_imported)
        cap = self.current
        if cap is None or cap.key != key:
            cap = self.current = DepsCapture(self, key, start_imported)
            self._background(cap.run)
        cap.attach(run_id)

    def join(self, timeout: float = 10.0) -> None:
        from .worker import hurry

        cap = self.current
        if cap is not None:
            hurry()
            cap.finished.wait(timeout)

    def submit(self, run_id: str, result: tuple[Any, ...]) -> None:
        self._submit(ops.capture(run_id, *result))

    def compute(self, cap: DepsCapture) -> tuple[Any, ...]:
        """``(modules_hash, inputs_hash, determinism_hash, imported_json)`` of a snapshot."""
        from .environment import imported_modules

        if self._excluder is None:
            self._excluder = self._excluder_factory()
        ex = self._excluder
        modules, sources = deps.local_modules(cap.modules, ex)
        mapping = _module_map()
        for m in modules:
            m["path"] = mapping.get(m["path"], m["path"])
        modules.sort(key=lambda m: m["path"])
        for sha, text in sources.items():
            self._source(sha, text)
        module_paths = {m["path"] for m in modules}
        inputs = [i for i in deps.data_inputs(cap.reads, ex) if i["path"] not in module_paths]
        det = deps.determinism(dict(cap.modules))
        imported = None
        try:
            start = json.loads(cap.start_imported) if cap.start_imported else {}
            now = imported_modules(self._packages())
            if set(now) - set(start):
                imported = json.dumps({**start, **now}, sort_keys=True)
        except (ValueError, TypeError):
            pass
        return (
            self._blob("modules", modules),
            self._blob("inputs", inputs),
            self._blob("determinism", det),
            imported,
        )

"""Buffered writes from a kernel to the store, off the user's hot path.

Why: a ``log_metric`` in a training loop must cost microseconds, not a transaction (MLflow's
~8 ms per call is the problem nbtrace solves). Calls append an op to a deque (thread-safe,
O(1)); :meth:`Writer.flush` applies everything pending in one transaction. Flushes happen at
each cell's end (so a finished cell is durable), at the end of a run that lasted 0.1 s or more
(on the background thread, so no run's end waits for the store), at kernel exit, and every
``interval`` seconds from a daemon thread (so the sidebar sees a long cell progress, and a
killed kernel loses at most the last second).

When the store is unreachable (a team server down, a file locked for too long), ops stay queued
and are retried; the user gets one warning, not one per call. At exit, whatever cannot be
written goes to a spool file that the next session or ``nbtrace sync`` uploads. Ops are
idempotent (see :mod:`nbtrace.store.base`), so a batch applied twice writes once.
"""

from __future__ import annotations

import atexit
import base64
import json
import os
import threading
import time
from collections import deque
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .errors import NBTraceError, one_line
from .store.base import Op, Store

WarnFn = Callable[[str], None]


class Writer:
    """The single path from a kernel's calls to its store."""

    #: How long a cell end waits for a background flush already in progress.
    SYNC_WAIT_S = 2.0
    #: After a :meth:`kick`, how long the background thread gathers further ops before it
    #: writes, so that a burst of kicks (cells starting, runs ending, a git capture landing)
    #: makes one transaction rather than one each; what was kicked is durable ~50 ms later.
    COALESCE_S = 0.05

    def __init__(
        self,
        store: Store,
        warn: WarnFn,
        interval: float = 1.0,
        spool_dir: Path | None = None,
        location_key: str = "",
    ) -> None:
        self.store = store
        self.warn = warn
        self.interval = interval
        self.pending: deque[Op] = deque()
        self._retry: list[Op] = []
        self._flush_lock = threading.Lock()
        self._failing = False
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        self._tick: Callable[[], None] | None = None
        self.spool_dir = spool_dir
        self.location_key = location_key

    # -------------------------------------------------------------- queue and flush
    def submit(self, op: Op) -> None:
        """Queue one op (cheap; safe from any thread)."""
        self.pending.append(op)

    def sync(self) -> bool:
        """Flush from the user's thread unless that could block it.

        Why: cell end makes writes durable, so it waits for a background flush in progress
        (a batch takes milliseconds), but it must not stall a notebook when the team store is
        down (an attempt could wait for a connect timeout): then the background thread takes
        over and retries.
        """
        if self._failing or not self._flush_lock.acquire(timeout=self.SYNC_WAIT_S):
            self.kick()
            return False
        try:
            return self._flush_locked()
        finally:
            self._flush_lock.release()

    def flush(self) -> bool:
        """Apply everything queued; True when nothing is left pending."""
        with self._flush_lock:
            return self._flush_locked()

    def _flush_locked(self) -> bool:
        """The flush itself; the caller holds ``_flush_lock``."""
        batch = self._retry
        self._retry = []
        pop = self.pending.popleft
        try:
            while True:
                batch.append(pop())
        except IndexError:
            pass
        if not batch:
            return True
        try:
            self.store.apply(batch)
        except NBTraceError as exc:
            self._retry = batch
            if not self._failing:
                self._failing = True
                self.warn(
                    f"nbtrace: cannot write to the store ({one_line(exc, 200)}); your code"
                    " keeps running, and what it logs is kept and retried"
                )
            return False
        except Exception as exc:  # noqa: BLE001 - driver errors must not reach user code
            self._retry = batch
            if not self._failing:
                self._failing = True
                self.warn(f"nbtrace: store write failed ({one_line(exc, 200)}); will retry")
            return False
        if self._failing:
            self._failing = False
            self.warn("nbtrace: the store is reachable again; everything logged was written")
        return True

    def has_pending(self) -> bool:
        """Whether ops wait to be written."""
        return bool(self.pending) or bool(self._retry)

    # -------------------------------------------------------------- background thread
    def start(self, tick: Callable[[], None] | None = None) -> None:
        """Start the periodic flusher; ``tick`` runs before each flush (heartbeats)."""
        if self._thread is not None:
            return
        self._tick = tick
        self._thread = threading.Thread(target=self._loop, name="nbtrace-writer", daemon=True)
        self._thread.start()
        atexit.register(self.close)

    def kick(self) -> None:
        """Ask the background thread to flush now (never blocks the caller)."""
        self._wake.set()

    def _loop(self) -> None:
        while not self._stop.is_set():
            if self._wake.wait(self.interval) and self._stop.wait(self.COALESCE_S):
                return
            self._wake.clear()
            if self._stop.is_set():
                return
            try:
                if self._tick is not None:
                    self._tick()
                if self.has_pending():
                    self.flush()
            except Exception:  # noqa: BLE001 - the writer thread must never die
                pass

    def close(self) -> None:
        """Stop the thread, flush, and spool what could not be written."""
        self._stop.set()
        self._wake.set()
        if not self.flush():
            self.spool()

    # -------------------------------------------------------------- spool
    def spool(self) -> Path | None:
        """Save unwritten ops to a spool file; returns its path."""
        with self._flush_lock:
            ops = self._retry + list(self.pending)
            self._retry = []
            self.pending.clear()
        if not ops or self.spool_dir is None:
            return None
        self.spool_dir.mkdir(parents=True, exist_ok=True)
        path = self.spool_dir / f"{int(time.time() * 1000)}-{os.getpid()}.jsonl"
        tmp = path.with_suffix(".tmp")
        with open(tmp, "w", encoding="utf-8") as f:
            f.write(json.dumps({"location": self.location_key}) + "\n")
            for op in ops:
                f.write(json.dumps(_encode(op)) + "\n")
        os.replace(tmp, path)
        self.warn(f"nbtrace: the store was unreachable; {len(ops)} writes saved to {path}")
        return path


def _encode(value: Any) -> Any:
    if isinstance(value, bytes):
        return {"$b64": base64.b64encode(value).decode("ascii")}
    if isinstance(value, (list, tuple)):
        return [_encode(v) for v in value]
    if isinstance(value, dict):
        return {k: _encode(v) for k, v in value.items()}
    return value


def _decode(value: Any) -> Any:
    if isinstance(value, dict):
        if set(value) == {"$b64"}:
            return base64.b64decode(value["$b64"])
        return {k: _decode(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_decode(v) for v in value]
    return value


def _op_from_json(item: list[Any]) -> Op:
    """Ops are tuples; nested lists stay lists except the packages pairs (tuples)."""
    op = tuple(_decode(item))
    if op and op[0] == "packages":
        op = (op[0], op[1], [tuple(p) for p in op[2]])
    return op


def sync_spool(store: Store, spool_dir: Path, location_key: str) -> tuple[int, int]:
    """Upload spooled ops meant for this store; returns (files uploaded, ops applied)."""
    files = sorted(spool_dir.glob("*.jsonl")) if spool_dir.is_dir() else []
    done_files = done_ops = 0
    for path in files:
        try:
            with open(path, encoding="utf-8") as f:
                header = json.loads(f.readline() or "{}")
                if header.get("location") != location_key:
                    continue
                ops = [_op_from_json(json.loads(line)) for line in f if line.strip()]
        except (OSError, ValueError):
            continue
        store.apply(ops)
        path.unlink(missing_ok=True)
        done_files += 1
        done_ops += len(ops)
    return done_files, done_ops

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
idempotent (see :mod:`nbtrace.store.ops`), so a batch applied twice writes once.

Spool file format: JSON lines; the first is a header ``{"location": ..., "version": N}``, each
other an op as a JSON list (bytes as ``{"$b64": ...}``). A file without ``version`` (written
before it existed) is version 0 and reads the same; a file of a version newer than
:data:`SPOOL_VERSION` is refused, kept on disk and named in a one-line message.

Failures on the background thread are never the user's exception: they are warned about once
(``warn``) or logged on the ``nbtrace`` logger, which IPython and Jupyter show.
"""

from __future__ import annotations

import atexit
import base64
import json
import logging
import os
import threading
import time
from collections import deque
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .errors import BadDataError, NBTraceError, UsageError, one_line
from .store.base import Op, Store
from .store.ops import typed

WarnFn = Callable[[str], None]

log = logging.getLogger("nbtrace")

#: The spool file format this module writes; it reads this one and every older one.
SPOOL_VERSION = 1


class Writer:
    """The single path from a kernel's calls to its store.

    Producers queue ops (records of :mod:`nbtrace.store.ops`) with :attr:`submit`; nothing
    outside this class touches the queue.
    """

    #: How long a cell end waits for a background flush in progress. The lock it waits for is
    #: only ever held while a batch is being written (milliseconds), never while another
    #: process's lock on the store is waited for: the background thread polls for that.
    SYNC_WAIT_S = 2.0
    #: After a :meth:`kick`, how long the background thread gathers further ops before it
    #: writes, so that a burst of kicks (cells starting, runs ending, a git capture landing)
    #: makes one transaction rather than one each; what was kicked is durable ~50 ms later.
    COALESCE_S = 0.05
    #: Retry delays after a failed write: from BACKOFF_MIN_S, doubling, up to BACKOFF_MAX_S (a
    #: store locked by another process is polled at most BUSY_BACKOFF_MAX_S apart).
    BACKOFF_MIN_S = 0.05
    BACKOFF_MAX_S = 5.0
    BUSY_BACKOFF_MAX_S = 0.5
    #: Attempts with ever smaller batches at exit before what is left is spooled.
    EXIT_ATTEMPTS = 24

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
        #: Queue one op (cheap; safe from any thread). The queue's own ``append``, so that
        #: ``log_metric``'s hot path pays no Python call for it (a deque's append is atomic).
        self.submit: Callable[[Op], None] = self.pending.append
        self._retry: list[Op] = []
        self._flush_lock = threading.Lock()
        self._failing = False
        self._failing_since = 0.0
        self._failures = 0
        self._next_try = 0.0
        self._busy = False
        self._warned = False
        self._chunk: int | None = None
        self._last_chunk = 0
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        self._tick: Callable[[], None] | None = None
        self.spool_dir = spool_dir
        self.location_key = location_key
        #: Ops the store refused for their content (see :meth:`_isolate`), with the reason.
        self.rejected: list[tuple[Op, str]] = []
        self._can_nowait = _accepts_wait(store)

    # -------------------------------------------------------------- queue and flush
    def sync(self) -> bool:
        """Flush from the user's thread unless that could block it.

        Why: cell end makes writes durable, so it waits for a background flush in progress
        (a batch takes milliseconds), but it must never wait on the store itself: the write is
        attempted without waiting for a lock another process holds, and when the store is
        locked, failing or unreachable the background thread takes over and retries.
        """
        if self._failing or not self._flush_lock.acquire(timeout=self.SYNC_WAIT_S):
            self.kick()
            return False
        try:
            done = self._flush_locked(wait=False)
        finally:
            self._flush_lock.release()
        if not done:
            self.kick()
        return done

    def flush(self) -> bool:
        """Apply everything queued, waiting for the store's lock up to its busy timeout;
        True when nothing is left pending."""
        with self._flush_lock:
            return self._flush_locked(wait=True)

    def _flush_locked(self, wait: bool) -> bool:
        """The flush itself; the caller holds ``_flush_lock``.

        Writes in batches of ``_chunk`` ops (all at once while the store is healthy): after a
        failure the next attempt uses half the failed batch's size, and each success doubles
        it again, so a disk that freed a little space takes the backlog in pieces that fit.
        """
        batch = self._retry
        self._retry = []
        pop = self.pending.popleft
        try:
            while True:
                batch.append(pop())
        except IndexError:  # the queue is drained (not a failure)
            pass
        if not batch:
            return True
        size = self._chunk or len(batch)
        i = 0
        while i < len(batch):
            chunk = batch[i : i + size]
            try:
                try:
                    self._apply(chunk, wait)
                except Exception as exc:  # noqa: BLE001 - driver errors must not reach user code
                    if not _is_bad_data(exc):
                        raise
                    self._isolate(chunk, wait)
            except Exception as exc:  # noqa: BLE001 - kept and retried, see _failed
                self._retry = batch[i:]
                self._failed(exc, len(chunk), wait)
                return False
            i += len(chunk)
            if self._chunk is not None:
                size = self._chunk = min(self._chunk * 2, 1 << 20)
        self._chunk = None
        self._failures = 0
        if self._failing:
            self._failing = False
            if self._warned:
                self.warn("nbtrace: the store is reachable again; everything logged was written")
            self._warned = False
        return True

    def _apply(self, ops: list[Op], wait: bool) -> None:
        """``store.apply``; without waiting for another's lock where the store can do that
        (a store written before ``wait`` existed is called as it was)."""
        if wait or not self._can_nowait:
            self.store.apply(ops)
        else:
            self.store.apply(ops, wait=False)

    def _isolate(self, ops: list[Op], wait: bool) -> None:
        """Write ``ops`` without the op(s) whose values the store refuses (halving the batch
        until the culprit is alone), so one poison op never blocks everything queued after it.

        Values are validated at the call (see :mod:`nbtrace.tracker`); this is the net under
        that: an op from another path (an import, a spool file, a new op kind) that the store
        refuses is dropped with a warning instead of being retried forever.
        """
        if len(ops) == 1:
            op = ops[0]
            try:
                self._apply(ops, wait)
            except Exception as exc:  # noqa: BLE001 - classified below
                if not _is_bad_data(exc):
                    raise
                self.rejected.append((op, one_line(exc, 200)))
                self.warn(
                    f"nbtrace: the store refused one write ({_describe(op)}: "
                    f"{one_line(exc, 160)}); it was dropped, everything else is kept"
                )
            return
        mid = len(ops) // 2
        for half in (ops[:mid], ops[mid:]):
            try:
                self._apply(half, wait)
            except Exception as exc:  # noqa: BLE001 - classified below
                if not _is_bad_data(exc):
                    raise
                self._isolate(half, wait)

    def _failed(self, exc: Exception, size: int, wait: bool) -> None:
        """Schedule the retry (exponential backoff, smaller batch) and warn once."""
        now = time.monotonic()
        if not self._failing:
            self._failing, self._failing_since = True, now
        self._failures += 1
        self._last_chunk = size
        self._chunk = max(1, size // 2) if size > 1 else 1
        self._busy = "locked" in str(exc)
        cap = self.BUSY_BACKOFF_MAX_S if self._busy else self.BACKOFF_MAX_S
        self._next_try = now + min(cap, self.BACKOFF_MIN_S * 2 ** min(self._failures - 1, 20))
        # A lock held by another kernel for a moment is normal: warn only when it was waited
        # for (an explicit flush) or has lasted the busy timeout.
        if self._warned or (
            self._busy and not wait and now - self._failing_since < _busy_timeout()
        ):
            return
        self._warned = True
        if isinstance(exc, NBTraceError):
            self.warn(
                f"nbtrace: cannot write to the store ({one_line(exc, 200)}); your code"
                " keeps running, and what it logs is kept and retried"
            )
        else:
            self.warn(f"nbtrace: store write failed ({one_line(exc, 200)}); will retry")

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
            timeout = self.interval
            if self._failing:
                timeout = min(timeout, max(0.0, self._next_try - time.monotonic()))
            if self._wake.wait(timeout) and self._stop.wait(self.COALESCE_S):
                return
            self._wake.clear()
            if self._stop.is_set():
                return
            try:
                if self._tick is not None:
                    self._tick()
                if self.has_pending() and (
                    not self._failing or time.monotonic() >= self._next_try
                ):
                    with self._flush_lock:
                        self._flush_locked(wait=False)
            except Exception as exc:  # noqa: BLE001 - the writer thread must never die
                log.warning(
                    "nbtrace: the background writer hit an error (%s); it keeps running",
                    one_line(exc), exc_info=log.isEnabledFor(logging.DEBUG),
                )

    def close(self) -> None:
        """Stop the thread, write what can be written, and spool the rest."""
        self._stop.set()
        self._wake.set()
        for _ in range(self.EXIT_ATTEMPTS):
            if self.flush():
                return
            if self._busy or self._last_chunk <= 1:
                break  # the lock was waited for already; or even one op does not fit
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
        try:
            self.spool_dir.mkdir(parents=True, exist_ok=True)
            path = self.spool_dir / f"{int(time.time() * 1000)}-{os.getpid()}.jsonl"
            tmp = path.with_suffix(".tmp")
            with open(tmp, "w", encoding="utf-8") as f:
                header = {"location": self.location_key, "version": SPOOL_VERSION}
                f.write(json.dumps(header) + "\n")
                for op in ops:
                    f.write(json.dumps(_encode(op)) + "\n")
            os.replace(tmp, path)
        except (OSError, TypeError, ValueError) as exc:
            self.warn(f"nbtrace: {len(ops)} writes could not be saved either ({one_line(exc)})")
            return None
        self.warn(
            f"nbtrace: the store could not be written; {len(ops)} writes saved to {path}."
            f" Run `nbtrace sync --db {self.location_key}` to write them once it can be"
            " (the next %load_ext nbtrace on this store does it too)"
        )
        return path


def _accepts_wait(store: Store) -> bool:
    """Whether ``store.apply`` takes the ``wait`` keyword (every store of this package does)."""
    import inspect

    try:
        return "wait" in inspect.signature(store.apply).parameters
    except (TypeError, ValueError):
        return False


def _is_bad_data(exc: BaseException) -> bool:
    """Whether retrying ``exc``'s batch unchanged can never succeed (a value, not the store).

    Only what a value causes: the store's own refusal, or the driver's while binding one (an
    int beyond 64 bits). Not TypeError and the like, which a bug raises for every op alike:
    those batches are kept and retried, never dropped.
    """
    if isinstance(exc, (BadDataError, UsageError)):
        return True
    return not isinstance(exc, NBTraceError) and isinstance(exc, (OverflowError, ValueError))


def _describe(op: Op) -> str:
    """A short, safe description of an op for a warning."""
    kind = one_line(op[0], 20) if op else "?"
    if kind in ("metric", "param", "tag") and len(op) > 2:
        return f"{kind} {one_line(op[2], 60)!r} of run {one_line(op[1], 20)}"
    return kind


def _busy_timeout() -> float:
    from .config import busy_timeout

    return busy_timeout()


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


def _op_from_json(item: Any) -> Op:
    """An op read back from a spool line: its kind's record (see :func:`.ops.typed`), nested
    lists kept as lists except the packages pairs (tuples). ValueError when it is no op."""
    if not isinstance(item, list) or not item or not isinstance(item[0], str):
        raise ValueError("a line is not an op")
    op = tuple(_decode(item))
    if op[0] == "packages" and len(op) == 3 and isinstance(op[2], list):
        op = (op[0], op[1], [tuple(p) for p in op[2]])
    return typed(op)


def _read_spool(path: Path, location_key: str) -> list[Op] | None:
    """The ops of spool file ``path`` when it is meant for ``location_key``, else None.

    Raises OSError or ValueError when it cannot be read, :class:`UsageError` when a newer
    nbtrace wrote it (its format is unknown here).
    """
    with open(path, encoding="utf-8") as f:
        header = json.loads(f.readline() or "{}")
        if not isinstance(header, dict):
            raise ValueError("its first line is not a spool header")
        if header.get("location") != location_key:
            return None
        version = header.get("version", 0)
        if type(version) is not int or version < 0:
            raise ValueError(f"its format version {one_line(version, 20)!r} is not a number")
        if version > SPOOL_VERSION:
            raise UsageError(
                f"spool file {path} was written by a newer nbtrace (format {version}; this one"
                f" reads up to {SPOOL_VERSION}): kept, upgrade nbtrace to upload it"
            )
        return [_op_from_json(json.loads(line)) for line in f if line.strip()]


def _warn_kept(message: str) -> None:
    log.warning("nbtrace: %s", message)


def sync_spool(
    store: Store,
    spool_dir: Path,
    location_key: str,
    on_kept: Callable[[str], None] = _warn_kept,
) -> tuple[int, int]:
    """Upload spooled ops meant for this store; returns (files uploaded, ops applied).

    A file that cannot be read (damaged, not a spool file) or that a newer nbtrace wrote is
    kept on disk and reported through ``on_kept`` (one line each; the ``nbtrace`` logger by
    default); the others are still uploaded. A batch the store refuses raises, as
    :meth:`Store.apply` does, and its file is kept.
    """
    files = sorted(spool_dir.glob("*.jsonl")) if spool_dir.is_dir() else []
    done_files = done_ops = 0
    for path in files:
        try:
            ops = _read_spool(path, location_key)
        except UsageError as exc:
            on_kept(str(exc))
            continue
        except (OSError, ValueError, RecursionError) as exc:
            on_kept(f"spool file {path} cannot be read ({one_line(exc, 120)}): kept, not uploaded")
            continue
        if ops is None:
            continue  # another store's
        store.apply(ops)
        path.unlink(missing_ok=True)
        done_files += 1
        done_ops += len(ops)
    return done_files, done_ops

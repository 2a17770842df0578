"""The process's capture worker: one daemon thread that runs capture jobs off the user's thread.

Why one shared worker rather than a thread per job: ``Thread.start`` waits until the new
thread runs, which costs 0.1-3 ms of the user's cell on a busy machine, every cell. Jobs run
in the order they were queued (a test or :meth:`~nbtrace.tracker.Tracker.close` can wait for
everything queued before by queueing one more). What the worker reads (files it hashes) is not
the run's input (:func:`nbtrace.capture.deps.own_thread`).

Why jobs wait for the cell to end (up to :data:`GRACE_S`): a job holds the GIL for tens of
milliseconds (threadpoolctl's scan of every loaded library, classifying ``sys.modules``, git's
subprocesses), and run while the user's cell loops over short runs it takes that time from the
loop (~90 ms of the 330-run notebook's first loop). Run once the cell ends, the kernel is
idle; a long cell still gets its jobs done after the grace period.
"""

from __future__ import annotations

import logging
import os
import queue
import threading
import time
from collections.abc import Callable

from ..errors import one_line

log = logging.getLogger("nbtrace")

_jobs: "queue.SimpleQueue[tuple[float, Callable[[], None]]] | None" = None  # on first use
_start_lock = threading.Lock()
#: Set while no cell runs (and always in a process without cells: a script).
_idle = threading.Event()
_idle.set()
#: The longest a job waits for the running cell to end.
GRACE_S = 2.0


def cell_running(running: bool) -> None:
    """A cell started (``True``) or ended (``False``): jobs wait while one runs."""
    if running:
        _idle.clear()
    else:
        _idle.set()


def hurry() -> None:
    """Run queued jobs now (someone waits for their result), even though a cell runs."""
    _idle.set()


def background(fn: Callable[[], None]) -> None:
    """Run ``fn`` on the process's capture worker thread (started on first use), once the
    running cell ended or :data:`GRACE_S` after it was queued."""
    global _jobs
    jobs = _jobs
    if jobs is None:
        with _start_lock:
            jobs = _jobs
            if jobs is None:
                jobs = _jobs = queue.SimpleQueue()
                threading.Thread(
                    target=_work, args=(jobs,), name="nbtrace-capture", daemon=True
                ).start()
    jobs.put((time.monotonic(), fn))


def _work(jobs: "queue.SimpleQueue[tuple[float, Callable[[], None]]]") -> None:
    from .deps import own_thread

    own_thread()
    while True:
        queued, fn = jobs.get()
        if not _idle.is_set():
            _idle.wait(max(0.0, queued + GRACE_S - time.monotonic()))
        try:
            fn()
        except Exception as exc:  # noqa: BLE001 - the worker must outlive any one capture
            log.warning(
                "nbtrace: a background capture failed (%s); the run lacks it", one_line(exc),
                exc_info=log.isEnabledFor(logging.DEBUG),
            )


def _forget_worker() -> None:
    global _jobs, _start_lock
    _jobs = None  # a forked child has no worker thread: start its own when needed
    _start_lock = threading.Lock()
    _idle.set()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_worker)

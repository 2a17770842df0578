"""The process's capture worker: one daemon thread that runs capture jobs off the user's thread.

Why one shared worker rather than a thread per job: ``Thread.start`` waits until the new
thread runs, which costs 0.1-3 ms of the user's cell on a busy machine, every cell. Jobs run
in the order they were queued (a test or :meth:`~nbtrace.tracker.Tracker.close` can wait for
everything queued before by queueing one more). What the worker reads (files it hashes) is not
the run's input (:func:`nbtrace.capture.deps.own_thread`).
"""

from __future__ import annotations

import logging
import os
import queue
import threading
from collections.abc import Callable

from ..errors import one_line

log = logging.getLogger("nbtrace")

_jobs: "queue.SimpleQueue[Callable[[], None]] | None" = None  # created on first use
_start_lock = threading.Lock()


def background(fn: Callable[[], None]) -> None:
    """Run ``fn`` on the process's capture worker thread (started on first use)."""
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
    jobs.put(fn)


def _work(jobs: "queue.SimpleQueue[Callable[[], None]]") -> None:
    from .deps import own_thread

    own_thread()
    while True:
        fn = jobs.get()
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


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_worker)

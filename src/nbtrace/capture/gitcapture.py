"""One cell's git capture, off the user's thread; runs started meanwhile get it by an update.

Why asynchronous: :func:`~nbtrace.capture.git.git_state` costs ~10 ms of subprocesses, most of
a short cell's overhead. The capture runs on the shared worker (:mod:`.worker`); a run that
starts before it is done is written without ``git_hash`` and gets a ``run_update`` op when the
state is known. At kernel exit every capture still under way is waited for, and one the worker
did not finish is done on the exiting thread (:meth:`GitCapture.run_now`).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

from ..errors import one_line
from ..store import ops
from .worker import background

log = logging.getLogger("nbtrace")


class GitCapture:
    """The git state of one cell's folder, as a content-addressed blob hash (None: no git).

    ``blob`` stores the state and returns its hash; ``submit`` queues an op; ``kick`` asks the
    writer to write now. Everything the capture and :meth:`attach` share is under one lock:
    the worker thread finishes while the user's thread attaches runs.
    """

    def __init__(
        self,
        folder: str,
        blob: Callable[[str, Any], str],
        submit: Callable[[tuple[Any, ...]], None],
        kick: Callable[[], None],
    ) -> None:
        self.folder = folder
        self._blob, self._submit, self._kick = blob, submit, kick
        self.hash: str | None = None
        self.done = False
        self.runs: list[str] = []
        self._lock = threading.Lock()
        self._finished = threading.Event()

    def start(self) -> None:
        background(self._run)

    def run_now(self) -> None:
        """Capture on the calling thread (at kernel exit: the worker did not finish, or its
        git was killed), whatever the worker found."""
        with self._lock:
            self.done = False
        self._run(again=True)

    def _run(self, again: bool = False) -> None:
        from .git import git_state

        with self._lock:
            if self.done:
                return  # captured already (by the worker, or by run_now at exit)
        try:
            state = git_state(self.folder)
            h = self._blob("git", state) if state else None
        except Exception as exc:  # noqa: BLE001 - capture must never break the user's cell
            log.warning(
                "nbtrace: the git state of %s was not captured (%s)", self.folder, one_line(exc),
                exc_info=log.isEnabledFor(logging.DEBUG),
            )
            h = None
        with self._lock:
            if self.done and not again:
                return
            self.hash, self.done = h, True
            for run_id in self.runs:
                if h:
                    self._submit(ops.run_update(run_id, {"git_hash": h}))
        self._finished.set()
        if h and self.runs:
            # Durable now, without waiting for the next cell's end or the periodic flush.
            self._kick()

    def attach(self, run_id: str) -> None:
        """Give ``run_id`` this cell's git state, now or when it is known."""
        with self._lock:
            if not self.done:
                self.runs.append(run_id)
                return
        if self.hash:
            self._submit(ops.run_update(run_id, {"git_hash": self.hash}))

    def join(self, timeout: float = 10.0) -> None:
        self._finished.wait(timeout)

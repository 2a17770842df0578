"""The rows of the ``jobs`` and ``sweeps`` tables, one shape for every producer.

Why here, below the server: the server's job queue and sweeps (``nbtrace.server``) and the
command line's ``nbtrace sweep`` (:mod:`.sweep`) both record re-executions, and the REST API
(``GET jobs/{id}``, ``GET sweeps/{id}``) reads either from the store. One :class:`Job` and one
:class:`Sweep` keep the two from drifting apart.
"""

from __future__ import annotations

import os
import socket
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import asyncio


@dataclass
class Job:
    """One re-execution request and its live state (a server's queue or a CLI sweep runs it)."""

    id: str
    source_run: str
    owner: str | None
    overrides: dict[str, Any]
    kernel_name: str | None
    repeat: int = 1
    recorded_modules: bool = False
    state: str = "queued"
    done: int = 0
    total: int = 0
    new_run: str | None = None
    verdict: dict[str, Any] | None = None
    error: str | None = None
    created_at: float = field(default_factory=time.time)
    updated_at: float = field(default_factory=time.time)
    #: The sweep this job belongs to, and the tags its new run gets (the sweep's id).
    sweep: str | None = None
    tags: dict[str, str] = field(default_factory=dict)
    cancel: threading.Event = field(default_factory=threading.Event)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def set(self, **fields: Any) -> None:
        """Change fields under the job's lock (the replay thread reports progress)."""
        with self.lock:
            for k, v in fields.items():
                setattr(self, k, v)
            self.updated_at = time.time()

    def row(self) -> dict[str, Any]:
        """The ``jobs`` table row."""
        with self.lock:
            return {
                "id": self.id,
                "run_id": self.source_run,
                "state": self.state,
                "new_run": self.new_run,
                "verdict": self.verdict,
                "progress": {"done": self.done, "total": self.total},
                "error": self.error,
                "request": {
                    "overrides": self.overrides,
                    "kernel_name": self.kernel_name,
                    "repeat": self.repeat,
                    "recorded_modules": self.recorded_modules,
                    # The process running it: a server, or the CLI (for stale-job recovery).
                    "server": {"host": socket.gethostname(), "pid": os.getpid()},
                    "sweep": self.sweep,
                    "tags": self.tags,
                },
                "owner": self.owner,
                "created_at": self.created_at,
                "updated_at": self.updated_at,
            }


@dataclass
class Sweep:
    """A sweep: its request, its jobs' ids and whose it is (a server's task drives it)."""

    id: str
    source_run: str
    owner: str | None
    sets: list[dict[str, Any]]
    parallel: int
    grid: dict[str, Any] | None
    jobs: list[str] = field(default_factory=list)
    cancelled: bool = False
    created_at: float = field(default_factory=time.time)
    task: asyncio.Task[None] | None = None

    def row(self, state: str) -> dict[str, Any]:
        """The ``sweeps`` table row (``state``: :func:`sweep_state` of its jobs)."""
        return {
            "id": self.id,
            "run_id": self.source_run,
            "state": state,
            "request": {
                "grid": self.grid,
                "sets": self.sets,
                "parallel": self.parallel,
                "cancelled": self.cancelled,
            },
            "jobs": self.jobs,
            "owner": self.owner,
            "created_at": self.created_at,
            "updated_at": time.time(),
        }


def sweep_state(states: Sequence[str], cancelled: bool) -> str:
    """One word for a sweep from its jobs' states (as a job's: queued … cancelled)."""
    if any(s in ("queued", "running") for s in states):
        return "running" if any(s != "queued" for s in states) else "queued"
    if cancelled or any(s == "cancelled" for s in states):
        return "cancelled"
    return "error" if any(s == "error" for s in states) else "done"

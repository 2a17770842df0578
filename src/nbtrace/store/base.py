"""The store interface: what kernels, server, CLI and rerun engine may ask of a store.

Why an interface: the same code must run on a personal SQLite file and on a team PostgreSQL
server. All SQL lives below this module (:mod:`.sql`'s ``SQLStore`` assembles the shared
statements from one module per concern; one small backend module per engine); nothing above it
knows which engine it talks to.

Writes from kernels are *ops*: tuples whose first element names the op, applied in batches by
:meth:`Store.apply` inside one transaction. Every op kind, its fields and their order are the
records of :mod:`.ops` (``kernel``, ``source``, ``cell``, ``blob``, ``packages``,
``run_start``, ``run_update``, ``heartbeat``, ``param``, ``metric``, ``tag``, ``artifact``,
``artifact_file``, ``input``, ``run_end``, ``capture``, ``output``, ``param_delete``,
``import_mark``, ``mlflow_io``, ``mlflow_model``); a plain tuple of the same layout is an op
too. Every op is idempotent (client-made keys, ``ON CONFLICT``), so a batch that was retried
after a network failure, or replayed from a spool file, never writes twice.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

#: An op: a record of :mod:`.ops` (or a plain tuple of the same layout), kind first.
Op = tuple

#: Every status a run can have.
STATUSES = ("running", "finished", "failed", "crashed")


class Store(ABC):
    """A run store. Methods raise :class:`nbtrace.errors.NBTraceError` subclasses only."""

    #: The location with any password removed: safe to print.
    display_location: str

    # --- writes from kernels -------------------------------------------------------------
    @abstractmethod
    def apply(self, ops: Sequence[Op], wait: bool = True) -> None:
        """Apply a batch of ops atomically (all or nothing).

        ``wait=False``: raise at once instead of waiting for a lock another process holds
        (a kernel's cell end must never wait on the store; its writer retries later).
        """

    # --- reads ------------------------------------------------------------------------------
    @abstractmethod
    def resolve_run_id(self, ref: str) -> str:
        """The full id of the run whose id is ``ref`` or starts with it (unique prefix)."""

    @abstractmethod
    def list_runs(
        self,
        filter: str | None = None,
        sort: str | None = None,
        limit: int | None = 100,
        offset: int = 0,
    ) -> tuple[list[dict[str, Any]], int]:
        """Run summaries matching the query language ``filter``, and the total count."""

    @abstractmethod
    def get_run(self, ref: str, series: bool = False) -> dict[str, Any]:
        """The whole run object of the design doc (``series`` adds every metric's steps)."""

    @abstractmethod
    def metric_series(self, ref: str, key: str) -> list[dict[str, Any]]:
        """``[{step, value, timestamp}]`` of one metric, in logging order."""

    @abstractmethod
    def artifact(self, ref: str, name: str) -> tuple[bytes, dict[str, Any]]:
        """The bytes and ``{name, sha256, size}`` of one artifact of one run."""

    @abstractmethod
    def children(self, ref: str) -> list[dict[str, Any]]:
        """Summaries (with verdict) of the runs that re-execute run ``ref``."""

    # --- edits ------------------------------------------------------------------------------
    @abstractmethod
    def update_run(
        self,
        ref: str,
        name: str | None = None,
        tags: dict[str, str | None] | None = None,
        note: str | None = None,
    ) -> dict[str, Any]:
        """Rename, set/remove tags (None removes), set the note; returns the run."""

    @abstractmethod
    def set_verdict(self, run_id: str, verdict: dict[str, Any]) -> None:
        """Store the reproducibility verdict of a re-execution run."""

    @abstractmethod
    def delete_run(self, ref: str) -> None:
        """Delete a run and everything recorded only for it."""

    @abstractmethod
    def reap(self) -> int:
        """Mark ``running`` runs whose kernel is gone as ``crashed``; returns how many."""

    # --- moving runs between stores ----------------------------------------------------------
    @abstractmethod
    def export_runs(self, filter: str | None = None) -> Iterable[dict[str, Any]]:
        """Lossless documents of matching runs (everything needed by :meth:`import_run`)."""

    @abstractmethod
    def import_run(self, doc: dict[str, Any]) -> bool:
        """Insert an exported run keeping its id; False when it was already there."""

    def artifact_stream(self, ref: str, name: str) -> tuple[dict[str, Any], Iterator[bytes]]:
        """``{name, sha256, size}`` and the artifact's bytes as an iterator of chunks."""
        data, meta = self.artifact(ref, name)
        return meta, iter([data])

    def health_check(self, max_age_s: float = 86_400.0) -> str | None:
        """A one-line warning when the store's file is damaged (checked at most once per
        ``max_age_s``), else None; engines without a local file have nothing to check."""
        return None

    def is_imported(self, ref: str) -> dict[str, Any] | None:
        """``{"imported_at", "user", "host"}`` when run ``ref`` came from an import, else None."""
        return None

    # --- re-execution jobs (server side) ---------------------------------------------------------
    @abstractmethod
    def save_job(self, job: dict[str, Any]) -> None:
        """Insert or replace a job row (keys: the ``jobs`` columns)."""

    @abstractmethod
    def get_job(self, job_id: str) -> dict[str, Any]:
        """One job row, decoded."""

    @abstractmethod
    def list_jobs(self, states: Sequence[str] | None = None) -> list[dict[str, Any]]:
        """Job rows, newest first, optionally only those in ``states``."""

    # --- what cells displayed and the modules they imported (issue 10) ---------------------------
    def image(self, sha256: str) -> dict[str, Any] | None:
        """``{"mime", "b64"}`` of an image a cell displayed, when it was kept."""
        return None

    def source(self, sha256: str) -> str | None:
        """A stored source text (a cell's or a local module's) by its sha256."""
        return None

    # --- sweeps: several jobs of one request (server side) ---------------------------------------
    @abstractmethod
    def save_sweep(self, sweep: dict[str, Any]) -> None:
        """Insert or replace a sweep row (keys: the ``sweeps`` columns)."""

    @abstractmethod
    def get_sweep(self, sweep_id: str) -> dict[str, Any]:
        """One sweep row, decoded (NotFoundError when there is none)."""

    @abstractmethod
    def close(self) -> None:
        """Release connections (safe to call twice)."""

"""The kernel side's records: an open run's state, and a re-execution's plan.

Why a module of their own: the tracker and its logging calls (:mod:`nbtrace.logcalls`) share
:class:`Run`; :class:`ReplayPlan` is the contract between the server side (``nbtrace.rerun``
writes ``NBTRACE_REPLAY`` when it starts the kernel) and the kernel side (the tracker reads it
at start: which run to record, under which id, with which overrides).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from typing import Any


@dataclass
class ReplayPlan:
    """What a re-execution kernel must do (set by the rerun engine via ``NBTRACE_REPLAY``)."""

    parent: str
    target_seq: int
    target_index: int
    overrides: dict[str, Any] = field(default_factory=dict)
    user: str | None = None
    job: str | None = None
    run_id: str | None = None
    #: Tags the re-executed run gets at its start (a sweep's id, so its runs list together).
    tags: dict[str, str] = field(default_factory=dict)

    @classmethod
    def from_env(cls) -> "ReplayPlan | None":
        raw = os.environ.get("NBTRACE_REPLAY")
        if not raw:
            return None
        d = json.loads(raw)
        return cls(
            parent=d["parent"],
            target_seq=int(d["target_seq"]),
            target_index=int(d["target_index"]),
            overrides=d.get("overrides") or {},
            user=d.get("user"),
            job=d.get("job"),
            run_id=d.get("run_id"),
            tags={str(k): str(v) for k, v in (d.get("tags") or {}).items()},
        )


@dataclass(eq=False)  # a run is itself: compared (``in``, ``remove``) by identity
class Run:
    """An open run's in-kernel state.

    ``nested_in`` is the run this one is nested in (MLflow's ``mlflow.parentRunId``), a link
    separate from re-execution lineage (the run row's ``parent``): a re-executed child has
    both. ``implicit`` runs were started by a log call outside any run and end with the cell.
    """

    id: str
    name: str
    ghost: bool = False
    metric_seq: int = 0
    metric_keys: set[str] = field(default_factory=set)
    meter: Any = None
    experiment: str | None = None
    nested_in: str | None = None
    implicit: bool = False
    status: str = "running"
    started_at: float = 0.0
    #: Params logged through nbtrace (``log_param``, ``%log_param``): where an override of a
    #: re-execution takes effect.
    param_keys: set[str] = field(default_factory=set)
    #: The run row's ``extra`` as written at start (adapters may add to it before the end).
    extra: dict[str, Any] = field(default_factory=dict)
    imported: str = ""
    #: The last cell that ran while this run was active raised (see
    #: :meth:`nbtrace.tracker.Tracker.close`).
    raised: bool = False

"""The tracker's logging calls: params, metrics, tags, artifacts and inputs of a run.

Why apart from :mod:`nbtrace.tracker`: these are the calls a training loop makes, so each is
written for its hot path (validation cached per key, JSON spelled out for the common types,
one typed op queued, nothing written here); the tracker keeps the cells and the runs' life.
Every call validates at once (:mod:`nbtrace.checks`) and queues an op of
:mod:`nbtrace.store.ops`; a ghost run (a replay's run that is not the target) records nothing.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from .checks import (
    KNOWN_NAMES_MAX,
    MAX_NAME,
    MAX_VALUE,
    STEP_MAX,
    check_name,
    json_str,
    known_names,
    metric_value,
    step_value,
    tag_value,
)
from .errors import UsageError, one_line
from .jsonutil import param_number, param_to_json, to_plain
from .runstate import ReplayPlan, Run
from .store import ops
from .writer import Writer

# The two hot paths (``log_metric`` in a training loop, the params of a grid search) queue
# plain tuples in the exact layout of :class:`~nbtrace.store.ops.Metric` and
# :class:`~nbtrace.store.ops.Param` (kind first; ``tests/test_writer.py`` pins the layouts):
# allocating a tuple subclass costs ~0.12 µs a call more even through ``tuple.__new__``
# (``benchmarks/ops_hot_path.py --same-process``: best 0.35 -> 0.46 µs in the loop), and the
# issue's rule is that the hot path stays where it was. Every other producer builds records.


class LogCalls:
    """The logging half of :class:`~nbtrace.tracker.Tracker` (a mixin of it)."""

    active: Run | None
    writer: Writer
    replay: ReplayPlan | None
    pending_params: dict[str, Any]

    def _require_run(self) -> Run:
        raise NotImplementedError  # the tracker's: the active run, or an implicit one

    # ------------------------------------------------------------------ params
    def override(self, key: str) -> tuple[bool, Any]:
        """``(True, value)`` when a re-execution overrides parameter ``key``."""
        if self.replay is not None and key in self.replay.overrides:
            return True, self.replay.overrides[key]
        return False, None

    def log_param(self, key: str, value: Any) -> Any:
        """Log a parameter; returns the value to use (the override when re-executing)."""
        check_name("param", key)
        if self.replay is not None:
            has, over = self.override(key)
            if has:
                value = over
        t = type(value)
        if t is float or t is int or t is bool or t is str:
            run = self.active
            if run is not None and not run.ghost and (t is not str or len(value) <= MAX_VALUE):
                # The hot path of log_params in a loop: no numpy check, JSON without json.dumps.
                self._submit_param(run, key, value)
                return value
        value = to_plain(value)
        if isinstance(value, str) and len(value) > MAX_VALUE:
            raise UsageError(
                f"param {key!r} is {len(value)} characters long; the limit is {MAX_VALUE}"
            )
        if self.active is None:
            self.pending_params[key] = value
        elif not self.active.ghost:
            self._submit_param(self.active, key, value)
        return value

    def log_params(self, params: Any) -> dict[str, Any]:
        """:meth:`log_param` for each item. Every name is checked before any is logged, so a
        bad name logs nothing of the call; then the common case (an active run,
        str/int/float/bool values, no re-execution) goes without a call per item."""
        known = known_names(MAX_NAME)
        for k in params:
            if type(k) is str and known is not None:
                if k in known:
                    continue
                # what check_name admits, inline: a grid search logs new names in every run
                if 0 < len(k) <= MAX_NAME and k.isprintable() and not k.isspace() and (
                    len(known) < KNOWN_NAMES_MAX
                ):
                    known.add(k)
                    continue
            check_name("param", k)
            known = known_names(MAX_NAME)
        run = self.active
        if run is None or run.ghost or self.replay is not None:
            return {k: self.log_param(k, v) for k, v in params.items()}
        out: dict[str, Any] = {}
        submit = self._submit_param
        for k, v in params.items():
            t = type(v)
            if t is float or t is int or t is bool or (t is str and len(v) <= MAX_VALUE):
                submit(run, k, v)
                out[k] = v
            else:
                out[k] = self.log_param(k, v)
        return out

    def _submit_param(self, run: Run, key: str, value: Any) -> None:
        run.param_keys.add(key)
        t = type(value)
        submit = self.writer.submit
        # What param_to_json and param_number give, spelled out for the common types (json
        # writes a float or an int with its repr; a str needs only its quoting).
        if t is str:
            if len(value) <= MAX_VALUE:
                submit(("param", run.id, key, json_str(value), None, value))
                return
        elif t is float:
            if value - value == 0.0:
                as_json = float.__repr__(value)
                submit(("param", run.id, key, as_json, value, as_json))
                return
        elif t is int:
            if -(2**53) <= value <= 2**53:
                as_json = int.__repr__(value)
                submit(("param", run.id, key, as_json, float(value), as_json))
                return
        elif t is bool:
            as_json = "true" if value else "false"
            submit(("param", run.id, key, as_json, None, as_json))
            return
        try:
            as_json = param_to_json(value)
        except ValueError:  # an int of more than 4,300 digits: even its repr refuses
            raise UsageError(f"param {key!r} is too large to record") from None
        text = value if isinstance(value, str) else as_json
        if len(text) > MAX_VALUE:
            raise UsageError(f"param {key!r} is too large to record ({len(text)} characters)")
        submit(ops.param(run.id, key, as_json, param_number(value), text))

    # ------------------------------------------------------------------ metrics, tags
    def log_metric(self, key: str, value: Any, step: Any = None) -> None:
        """Log a metric value to the active run (hot path: validation is cached per key; a
        loop pays ~0.5 µs a call, so nothing else belongs here: see :meth:`log_metric_to`)."""
        run = self.active
        if run is None:
            run = self._require_run()
        if key not in run.metric_keys:
            check_name("metric", key)
            run.metric_keys.add(key)
        if type(value) is not float:
            value = metric_value(key, value)
        if step is not None and (type(step) is not int or not -STEP_MAX <= step <= STEP_MAX):
            step = step_value(step)
        if run.ghost:
            return
        run.metric_seq += 1
        self.writer.submit(("metric", run.id, key, run.metric_seq, step, time.time(), value))

    def log_metric_to(
        self, run: Run | None, key: str, value: Any, step: Any, timestamp: float | None
    ) -> None:
        """Log a metric to ``run`` (default: the active run) at ``timestamp`` (epoch seconds,
        default now): MLflow's shape, where a client names the run and the time."""
        if run is None:
            run = self.active
            if run is None:
                run = self._require_run()
        if key not in run.metric_keys:
            check_name("metric", key)
            run.metric_keys.add(key)
        if type(value) is not float:
            value = metric_value(key, value)
        if step is not None and type(step) is not int:
            step = step_value(step)
        if run.ghost:
            return
        run.metric_seq += 1
        ts = time.time() if timestamp is None else float(timestamp)
        self.writer.submit(("metric", run.id, key, run.metric_seq, step, ts, value))

    def set_tag(self, key: str, value: Any, run: Run | None = None) -> None:
        """Set a tag on ``run`` (default: the active run)."""
        run = run or self._require_run()
        check_name("tag", key)
        value = tag_value(value)
        if not run.ghost:
            self.writer.submit(ops.tag(run.id, key, value))

    # ------------------------------------------------------------------ artifacts, inputs
    def log_artifact(self, path: str, name: str | None = None) -> dict[str, Any]:
        """Store a file's content with the active run, addressed by its sha256."""
        from .capture import deps
        from .rules import artifact_name_problem
        from .staging import stage_copy

        run = self._require_run()
        p = Path(path)
        if not p.is_file():
            raise UsageError(f"no such file: {one_line(path, 200)}")
        name = name if name is not None else p.name
        problem = artifact_name_problem(name)
        if problem:
            raise UsageError(f"{problem}: {one_line(name, 80)!r}")
        resolved = str(p.resolve())
        known = deps.was_read(resolved)  # an artifact the run wrote is not its input
        try:
            if run.ghost:
                from .hashing import sha256_file

                sha, size = sha256_file(str(p))
                return {"name": name, "sha256": sha, "size": size}
            staged, sha, size = stage_copy(p)
        finally:
            if not known:
                deps.forget_read(resolved)
        self.writer.submit(ops.artifact_file(run.id, name, sha, size, staged))
        return {"name": name, "sha256": sha, "size": size}

    def log_artifact_data(self, name: str, data: bytes) -> dict[str, Any]:
        """Store ``data`` as artifact ``name`` of the active run (``log_text``, ``log_dict``,
        ``log_figure``: content made in memory rather than read from a file)."""
        import hashlib

        from .rules import artifact_name_problem

        run = self._require_run()
        problem = artifact_name_problem(name)
        if problem:
            raise UsageError(f"{problem}: {one_line(name, 80)!r}")
        sha = hashlib.sha256(data).hexdigest()
        if not run.ghost:
            self.writer.submit(ops.artifact(run.id, name, sha, len(data), data))
        return {"name": name, "sha256": sha, "size": len(data)}

    def log_dataset(self, name: str, digest: str) -> dict[str, Any]:
        """Record an in-memory data set (MLflow's ``Dataset``: a name and a digest) as an
        input of the active run; a file is recorded by :meth:`log_input` instead."""
        from .hashing import sha256_text

        run = self._require_run()
        key = f"dataset:{one_line(name, 200)}@{one_line(digest, 100)}"
        # No file to hash: the fingerprint is the sha256 of the key (MLflow's digest in it).
        sha = sha256_text(key)
        if not run.ghost:
            self.writer.submit(ops.input(run.id, key, sha, 0))
        return {"path": key, "sha256": sha, "size": 0}

    def log_input(self, path: str) -> dict[str, Any]:
        """Record a data file's fingerprint (sha256 and size) with the active run."""
        from .hashing import sha256_file

        run = self._require_run()
        p = Path(path)
        if not p.is_file():
            raise UsageError(f"no such file: {one_line(path, 200)}")
        sha, size = sha256_file(str(p))
        full = str(p.resolve())
        if not run.ghost:
            self.writer.submit(ops.input(run.id, full, sha, size))
        return {"path": full, "sha256": sha, "size": size}

"""Checking an imported run document before anything of it is written.

Why a gate of its own: ``nbtrace import`` reads a file that anyone may have written. Its
content-addressed parts (sources, blobs, package sets, artifacts) are stored under the hash the
document *claims*, and ``ON CONFLICT DO NOTHING`` keeps the first bytes stored under a hash for
good: a document mapping ``sha256("import numpy as np")`` to other code would change what the
victim's own cell shows, and what ``nbtrace rerun`` executes. So every hash is recomputed here,
and the whole document is checked against its schema (types, ranges, the kernel's character
rules, id and artifact name rules) first, so a bad document is refused with one line naming its
first bad entry and leaves nothing half-imported.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import math
from collections.abc import Mapping
from typing import Any

from ..errors import UsageError, one_line
from ..hashing import sha256_text, stable_hash
from ..rules import (
    MAX_LONG_NAME,
    MAX_VALUE,
    artifact_name_problem,
    id_problem,
    name_problem,
    value_problem,
)
from .base import STATUSES

FORMAT = "nbtrace-run/1"
#: Longest stored text other than a cell source or a blob (paths, hosts, kernel names).
MAX_TEXT = 4096
#: Longest JSON text in a run column (verdict, resources, imported modules, env vars, extra).
MAX_JSON = 16 * 2**20
#: Longest cell source, blob or artifact accepted in a document (the kernel has no such cap,
#: but a document is read into memory whole).
MAX_CONTENT = 512 * 2**20
_INT_RANGE = 2**62
_NONFINITE = ("NaN", "Infinity", "-Infinity")
_JSON_OBJECT_COLUMNS = ("imported", "env_vars", "resources", "extra", "verdict")


class _Bad(Exception):
    """One bad entry: ``where`` (a JSON path such as ``metrics[3][2]``) and why."""

    def __init__(self, where: str, why: str) -> None:
        super().__init__(f"{where}: {why}")


def check_document(doc: Any, run_columns: tuple[str, ...]) -> None:
    """Raise :class:`UsageError` naming the first bad entry of run document ``doc``.

    Checks the schema (every section's shape and types, the kernel's limits and character
    rules, ids, artifact names) and then every content hash: sources, blobs, the package set
    and artifact bytes must hash to the key they are filed under.
    """
    try:
        _check(doc, run_columns)
    except _Bad as exc:
        run = doc.get("run") if isinstance(doc, dict) else None
        rid = run.get("id") if isinstance(run, dict) else None
        named = f"run {one_line(rid, 70)!r}: " if isinstance(rid, str) else ""
        raise UsageError(f"refused import: {named}{one_line(exc, 240)}") from None


def _check(doc: Any, run_columns: tuple[str, ...]) -> None:
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        raise _Bad("format", f"not an nbtrace export (expected format {FORMAT})")
    run = _obj(doc.get("run"), "run")
    _check_run(run, run_columns)
    kid = run.get("kernel_id")
    kernel = doc.get("kernel")
    if kernel is not None:
        _check_kernel(kernel, kid)
    cells = _list(doc.get("cells", []), "cells")
    if cells and kid is None:
        raise _Bad("cells", "cells need the run's kernel_id")
    for i, c in enumerate(cells):
        _check_cell(c, f"cells[{i}]")
    for i, p in enumerate(_list(doc.get("params", []), "params")):
        _check_param(p, f"params[{i}]")
    for i, m in enumerate(_list(doc.get("metrics", []), "metrics")):
        _check_metric(m, f"metrics[{i}]")
    for i, t in enumerate(_list(doc.get("tags", []), "tags")):
        w = f"tags[{i}]"
        key, value = _row(t, 2, w)
        _problem(name_problem("tag", key), f"{w}[0]")
        _problem(value_problem("tag value", value), f"{w}[1]")
    for i, inp in enumerate(_list(doc.get("inputs", []), "inputs")):
        w = f"inputs[{i}]"
        path, sha, size = _row(inp, 3, w)
        _text(path, f"{w}[0]", MAX_TEXT, required=True)
        _hex(sha, f"{w}[1]")
        _int(size, f"{w}[2]", lo=0)
    _check_sources(doc.get("sources", {}))
    _check_blobs(doc.get("blobs", {}))
    _check_packages(doc.get("packages", []), run.get("packages_hash"))
    for i, a in enumerate(_list(doc.get("artifacts", []), "artifacts")):
        _check_artifact(a, f"artifacts[{i}]")


# ------------------------------------------------------------------ sections
_RUN_TEXT = ("user_name", "host", "kernel_name", "notebook_path")
_RUN_HASH = ("notebook_hash", "env_hash", "packages_hash", "git_hash")
_RUN_INT = ("pid", "start_seq", "cell_index", "last_seq")
_RUN_TIME = ("ended_at", "heartbeat_at")


def _check_run(run: dict[str, Any], run_columns: tuple[str, ...]) -> None:
    unknown = sorted(k for k in run if k not in run_columns)
    if unknown:
        raise _Bad(f"run.{one_line(unknown[0], 40)}", "unknown run field")
    for key in ("id", "name", "status", "started_at"):
        if key not in run:
            raise _Bad(f"run.{key}", "missing")
    _problem(id_problem("run id", run["id"]), "run.id")
    _problem(name_problem("run", run["name"], MAX_LONG_NAME), "run.name")
    if run.get("experiment") is not None:
        _problem(name_problem("experiment", run["experiment"], MAX_LONG_NAME), "run.experiment")
    if run["status"] not in STATUSES:
        raise _Bad("run.status", f"must be one of {', '.join(STATUSES)}")
    _time(run["started_at"], "run.started_at")
    for key in _RUN_TIME:
        if run.get(key) is not None:
            _time(run[key], f"run.{key}")
    for key in ("kernel_id", "parent"):
        if run.get(key) is not None:
            _problem(id_problem(key, run[key]), f"run.{key}")
    for key in _RUN_TEXT:
        _text(run.get(key), f"run.{key}", MAX_TEXT)
    for key in _RUN_HASH:
        if run.get(key) is not None:
            _hex(run[key], f"run.{key}")
    for key in _RUN_INT:
        if run.get(key) is not None:
            _int(run[key], f"run.{key}")
    if run.get("note") is not None:
        _problem(value_problem("note", run["note"]), "run.note")
    for key in _JSON_OBJECT_COLUMNS:
        if run.get(key) is not None:
            _json_text(run[key], f"run.{key}", want=dict)
    for key in run:  # columns other engineers add: plain scalars only
        if key not in _KNOWN_RUN and run[key] is not None:
            if isinstance(run[key], str):
                _text(run[key], f"run.{key}", MAX_JSON)
            elif not isinstance(run[key], (int, float)) or isinstance(run[key], bool):
                raise _Bad(f"run.{key}", "must be a string or a number")


_KNOWN_RUN = frozenset(
    ("id", "name", "experiment", "status", "started_at", "note")
    + _RUN_TEXT
    + _RUN_HASH
    + _RUN_INT
    + _RUN_TIME
    + _JSON_OBJECT_COLUMNS
    + ("kernel_id", "parent")
)


def _check_kernel(kernel: Any, kid: Any) -> None:
    row = _row(kernel, 9, "kernel")
    kernel_id, started, host, user, pid, kname, exe, nb_path, seeds = row
    _problem(id_problem("kernel id", kernel_id), "kernel[0]")
    if kernel_id != kid:
        raise _Bad("kernel[0]", "is not the run's kernel_id")
    _time(started, "kernel[1]")
    for i, v in ((2, host), (3, user), (5, kname), (6, exe), (7, nb_path)):
        _text(v, f"kernel[{i}]", MAX_TEXT)
    if pid is not None:
        _int(pid, "kernel[4]")
    if seeds is not None:
        _json_text(seeds, "kernel[8]", want=dict)


def _check_cell(cell: Any, w: str) -> None:
    seq, count, cell_id, sha, err = _row(cell, 5, w)
    _int(seq, f"{w}[0]", lo=0)
    if count is not None:
        _int(count, f"{w}[1]", lo=0)
    _text(cell_id, f"{w}[2]", MAX_LONG_NAME)
    _hex(sha, f"{w}[3]")
    if err not in (0, 1) or (isinstance(err, float)):
        raise _Bad(f"{w}[4]", "must be 0 or 1")


def _check_param(p: Any, w: str) -> None:
    key, value, num, text = _row(p, 4, w)
    _problem(name_problem("param", key), f"{w}[0]")
    _json_text(value, f"{w}[1]", limit=4 * MAX_VALUE)
    if num is not None:
        _number(num, f"{w}[2]")
    _problem(value_problem("param text", text), f"{w}[3]")


def _check_metric(m: Any, w: str) -> None:
    key, seq, step, ts, value = _row(m, 5, w)
    _problem(name_problem("metric", key), f"{w}[0]")
    _int(seq, f"{w}[1]", lo=0)
    if step is not None:
        _int(step, f"{w}[2]")
    _time(ts, f"{w}[3]")
    if not (isinstance(value, str) and value in _NONFINITE):
        _number(value, f"{w}[4]")


def _check_sources(sources: Any) -> None:
    for sha, src in _obj(sources, "sources").items():
        w = f"sources[{one_line(sha, 70)!r}]"
        _hex(sha, w)
        _text(src, w, MAX_CONTENT, required=True)
        if sha256_text(src) != sha:
            raise _Bad(w, "the source does not hash to its sha256")


def _check_blobs(blobs: Any) -> None:
    for h, entry in _obj(blobs, "blobs").items():
        w = f"blobs[{one_line(h, 70)!r}]"
        _hex(h, w)
        kind, data = _row(entry, 2, w)
        _problem(name_problem("blob kind", kind), f"{w}[0]")
        value = _json_text(data, f"{w}[1]", limit=MAX_CONTENT)
        try:
            actual = stable_hash([kind, value])
        except (TypeError, ValueError, RecursionError):
            actual = None
        if actual != h:
            raise _Bad(w, "the blob does not hash to its key")


def _check_packages(packages: Any, set_hash: Any) -> None:
    pairs = []
    for i, p in enumerate(_list(packages, "packages")):
        name, version = _row(p, 2, f"packages[{i}]")
        _text(name, f"packages[{i}][0]", MAX_TEXT, required=True)
        _text(version, f"packages[{i}][1]", MAX_TEXT, required=True)
        pairs.append((name, version))
    if pairs and set_hash is not None and stable_hash(sorted(pairs)) != set_hash:
        raise _Bad("packages", "the package set does not hash to the run's packages_hash")


def _check_artifact(a: Any, w: str) -> None:
    name, sha, size, data = _row(a, 4, w)
    _problem(artifact_name_problem(name), f"{w}[0]")
    _hex(sha, f"{w}[1]")
    _int(size, f"{w}[2]", lo=0)
    if not isinstance(data, str):
        raise _Bad(f"{w}[3]", "must be base64 text")
    try:
        raw = base64.b64decode(data, validate=True)
    except (binascii.Error, ValueError):
        raise _Bad(f"{w}[3]", "is not valid base64") from None
    if len(raw) != size or hashlib.sha256(raw).hexdigest() != sha:
        raise _Bad(w, "the artifact's bytes do not match its sha256 and size")


# ------------------------------------------------------------------ leaf checks
def _problem(problem: str | None, where: str) -> None:
    if problem:
        raise _Bad(where, problem)


def _obj(value: Any, where: str) -> dict[str, Any]:
    if not isinstance(value, Mapping):
        raise _Bad(where, "must be an object")
    return dict(value)


def _list(value: Any, where: str) -> list[Any]:
    if not isinstance(value, list):
        raise _Bad(where, "must be a list")
    return value


def _row(value: Any, n: int, where: str) -> list[Any]:
    if not isinstance(value, list) or len(value) != n:
        raise _Bad(where, f"must be a list of {n} items")
    return value


def _int(value: Any, where: str, lo: int = -_INT_RANGE) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= _INT_RANGE:
        raise _Bad(where, f"must be an integer from {lo} to 2**62")


def _number(value: Any, where: str) -> None:
    ok = not isinstance(value, bool) and isinstance(value, (int, float))
    if ok and isinstance(value, int):
        ok = abs(value) <= 2**1023
    if not ok or not math.isfinite(float(value)):
        raise _Bad(where, "must be a finite number")


def _time(value: Any, where: str) -> None:
    _number(value, where)
    if not 0 <= float(value) < 253402300800:  # before year 10000: ISO 8601 can show it
        raise _Bad(where, "must be seconds since 1970 before the year 10000")


def _hex(value: Any, where: str) -> None:
    if not (
        isinstance(value, str) and len(value) == 64 and all(c in "0123456789abcdef" for c in value)
    ):
        raise _Bad(where, "must be a sha256 (64 lower-case hex digits)")


def _text(value: Any, where: str, limit: int, required: bool = False) -> None:
    if value is None and not required:
        return
    _problem(value_problem("text", value, limit), where)


def _json_text(value: Any, where: str, want: type | None = None, limit: int = MAX_JSON) -> Any:
    _text(value, where, limit, required=True)
    try:
        parsed = json.loads(value, parse_constant=_constant)
    except (ValueError, RecursionError):
        raise _Bad(where, "is not valid JSON text") from None
    if want is not None and not isinstance(parsed, want):
        raise _Bad(where, "must be JSON text of an object")
    return parsed


def _constant(name: str) -> float:
    return float(name.replace("Infinity", "inf"))


# ------------------------------------------------------------------ ops from files
def check_content_ops(ops: list[tuple], what: str = "spooled write") -> None:
    """Raise :class:`UsageError` when a content-addressed op's bytes do not hash to its key.

    For ops read back from a file (``nbtrace sync`` of a spool file): a file is anyone's text,
    and a ``source``/``blob``/``packages``/``artifact``/``artifact_file`` op stores bytes under
    the hash it claims, for good. Ops a kernel makes in memory are not re-checked (they were
    hashed from the bytes themselves, and the hot path must not pay twice).
    """
    for i, op in enumerate(ops):
        kind = op[0] if op else None
        try:
            ok = _op_hash_ok(op)
        except (TypeError, ValueError, IndexError, RecursionError, OSError):
            ok = False
        if not ok:
            raise UsageError(
                f"refused {what} {i + 1} ({one_line(kind, 20)}): its content does not hash to"
                " its key"
            )


def _op_hash_ok(op: tuple) -> bool:
    kind = op[0]
    if kind == "source":
        return sha256_text(op[2]) == op[1]
    if kind == "blob":
        return stable_hash([op[2], json.loads(op[3])]) == op[1]
    if kind == "packages":
        return stable_hash(sorted(tuple(p) for p in op[2])) == op[1]
    if kind == "artifact":
        return hashlib.sha256(op[5]).hexdigest() == op[3] and len(op[5]) == op[4]
    if kind == "artifact_file":
        h, size = hashlib.sha256(), 0
        with open(op[5], "rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                h.update(chunk)
                size += len(chunk)
        return h.hexdigest() == op[3] and size == op[4]
    return True


class CheckedWrites:
    """A store whose :meth:`apply` first runs :func:`check_content_ops` (for ops from files)."""

    def __init__(self, store: Any) -> None:
        self._store = store

    def apply(self, ops: Any) -> None:
        ops = list(ops)
        check_content_ops(ops)
        self._store.apply(ops)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._store, name)

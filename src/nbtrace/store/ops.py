"""The writer/store protocol: one small typed record per op kind.

Why records that are still tuples: a kernel's calls queue ops (:mod:`nbtrace.writer`) and the
store applies them in batches (:meth:`nbtrace.store.base.Store.apply`), grouping by ``op[0]``
and binding ``op[1:]`` positionally as SQL parameters; a tuple is what both sides handle
fastest, and what a spool file (JSON lists) or an older caller hands in. Each record below is
a :class:`~typing.NamedTuple` whose first field is the op kind, so ``op.run_id`` reads as well
as ``op[1]`` and the layout stays exactly the one the store reads. A plain tuple of the same
layout is still a valid op.

Build ops with the lowercase function of the kind (``metric(run_id, key, ...)``): it sets the
kind, so no caller spells it. Why functions and not the classes' constructors: a NamedTuple's
``__new__`` cannot be given a fixed first field, and the functions build the tuple in one C
call (``tuple.__new__``) rather than through the NamedTuple's Python ``__new__``. The two hot
paths (``log_metric``, ``log_param``) queue plain tuples of their records' layouts instead (see
:mod:`nbtrace.logcalls`; measured by ``benchmarks/ops_hot_path.py``).

Every op is idempotent (client-made keys, ``ON CONFLICT``): a batch retried after a network
failure, or replayed from a spool file, never writes twice. This module imports nothing
beyond the standard library's ``typing``: kernels import it on every ``%load_ext``.
"""

from __future__ import annotations

from typing import Any, NamedTuple

#: Prefix of a run's ``imported`` value (in ``run_start`` and ``capture`` ops) that names a blob
#: (``blobs.hash``) holding the JSON of the imported modules, instead of holding the JSON itself.
IMPORTED_REF = "blob:"

_new = tuple.__new__


class Kernel(NamedTuple):
    """The kernel process a run's cells ran in (once per kernel)."""

    kind: str
    id: str
    started_at: float
    host: str
    user: str
    pid: int
    kernel_name: str | None
    executable: str
    notebook_path: str | None
    seeds_json: str


class Source(NamedTuple):
    """A cell's (or local module's) source text, content-addressed."""

    kind: str
    sha256: str
    source: str


class Cell(NamedTuple):
    """One executed cell (an upsert: ``error`` may turn 1 once the cell raised)."""

    kind: str
    kernel_id: str
    seq: int
    execution_count: int | None
    cell_id: str | None
    sha256: str
    error: int


class Blob(NamedTuple):
    """A JSON document shared between runs (environment, git state, notebook, ...)."""

    kind: str
    hash: str
    blob_kind: str
    data_json: str


class Packages(NamedTuple):
    """An installed-package set: ``[(name, version), ...]``, names canonical (PEP 503)."""

    kind: str
    set_hash: str
    pairs: list[tuple[str, str]]


class RunStart(NamedTuple):
    """A new run's row; keys: columns of ``runs`` (id, name, status, started_at, ...)."""

    kind: str
    row: dict[str, Any]


class RunUpdate(NamedTuple):
    """Plain column updates of a run (git_hash, name, note, ...)."""

    kind: str
    run_id: str
    fields: dict[str, Any]


class Heartbeat(NamedTuple):
    """A run's sign of life (revives a run wrongly reaped as crashed)."""

    kind: str
    run_id: str
    ts: float


class Param(NamedTuple):
    """A parameter: its JSON, its number (or None) and its text (a string or its JSON)."""

    kind: str
    run_id: str
    key: str
    value_json: str
    num: float | None
    text: str


class Metric(NamedTuple):
    """One metric value (``log_metric``'s hot path)."""

    kind: str
    run_id: str
    key: str
    seq: int
    step: int | None
    ts: float
    value: float


class Tag(NamedTuple):
    """A run's tag."""

    kind: str
    run_id: str
    key: str
    value: str


class Artifact(NamedTuple):
    """An artifact whose bytes are in memory."""

    kind: str
    run_id: str
    name: str
    sha256: str
    size: int
    data: bytes


class ArtifactFile(NamedTuple):
    """An artifact read from a staged copy in chunks; the copy is deleted once written."""

    kind: str
    run_id: str
    name: str
    sha256: str
    size: int
    staged_path: str


class Input(NamedTuple):
    """A data file's (or data set's) fingerprint, an input of the run."""

    kind: str
    run_id: str
    path: str
    sha256: str
    size: int


class RunEnd(NamedTuple):
    """A run's end: status, time, last cell and resources (JSON)."""

    kind: str
    run_id: str
    status: str
    ended_at: float
    last_seq: int | None
    resources_json: str


class Capture(NamedTuple):
    """A run's dependency capture (an upsert: None keeps what is there, so the pieces may
    arrive separately); see :mod:`.capture_sql`."""

    kind: str
    run_id: str
    modules_hash: str | None
    inputs_hash: str | None
    determinism_hash: str | None
    imported_json: str | None


class Output(NamedTuple):
    """One executed cell's outputs (fingerprint, excerpt, data)."""

    kind: str
    kernel_id: str
    seq: int
    fingerprint: str
    excerpt: str
    data_json: str


class ParamDelete(NamedTuple):
    """A parameter the run must not claim (an override without effect)."""

    kind: str
    run_id: str
    key: str


class ImportMark(NamedTuple):
    """The run came from ``nbtrace import``."""

    kind: str
    run_id: str
    imported_at: float
    user: str
    host: str


class MlflowIo(NamedTuple):
    """An MLflow dataset input or model link of a run."""

    kind: str
    run_id: str
    key: str
    data_json: str


class MlflowModel(NamedTuple):
    """An MLflow logged model."""

    kind: str
    id: str
    experiment_id: str
    run_id: str | None
    lifecycle_stage: str
    data_json: str


#: The record type of each op kind (a spool file's ops are read back as these).
KINDS: dict[str, type[tuple[Any, ...]]] = {
    "kernel": Kernel,
    "source": Source,
    "cell": Cell,
    "blob": Blob,
    "packages": Packages,
    "run_start": RunStart,
    "run_update": RunUpdate,
    "heartbeat": Heartbeat,
    "param": Param,
    "metric": Metric,
    "tag": Tag,
    "artifact": Artifact,
    "artifact_file": ArtifactFile,
    "input": Input,
    "run_end": RunEnd,
    "capture": Capture,
    "output": Output,
    "param_delete": ParamDelete,
    "import_mark": ImportMark,
    "mlflow_io": MlflowIo,
    "mlflow_model": MlflowModel,
}


def typed(op: tuple[Any, ...]) -> tuple[Any, ...]:
    """``op`` as its kind's record when its kind and length fit one, else ``op`` unchanged
    (an op of an unknown kind is left for the store to refuse, by name)."""
    cls = KINDS.get(op[0]) if op else None
    if cls is None or type(op) is cls or len(op) != len(cls._fields):  # type: ignore[attr-defined]
        return op
    return _new(cls, op)


# ------------------------------------------------------------------------ constructors
def kernel(
    id: str,
    started_at: float,
    host: str,
    user: str,
    pid: int,
    kernel_name: str | None,
    executable: str,
    notebook_path: str | None,
    seeds_json: str,
) -> Kernel:
    return _new(Kernel, ("kernel", id, started_at, host, user, pid, kernel_name, executable,
                         notebook_path, seeds_json))


def source(sha256: str, text: str) -> Source:
    return _new(Source, ("source", sha256, text))


def cell(
    kernel_id: str, seq: int, execution_count: int | None, cell_id: str | None, sha256: str,
    error: int,
) -> Cell:
    return _new(Cell, ("cell", kernel_id, seq, execution_count, cell_id, sha256, error))


def blob(hash: str, blob_kind: str, data_json: str) -> Blob:
    return _new(Blob, ("blob", hash, blob_kind, data_json))


def packages(set_hash: str, pairs: list[tuple[str, str]]) -> Packages:
    return _new(Packages, ("packages", set_hash, pairs))


def run_start(row: dict[str, Any]) -> RunStart:
    return _new(RunStart, ("run_start", row))


def run_update(run_id: str, fields: dict[str, Any]) -> RunUpdate:
    return _new(RunUpdate, ("run_update", run_id, fields))


def heartbeat(run_id: str, ts: float) -> Heartbeat:
    return _new(Heartbeat, ("heartbeat", run_id, ts))


def param(run_id: str, key: str, value_json: str, num: float | None, text: str) -> Param:
    return _new(Param, ("param", run_id, key, value_json, num, text))


def metric(run_id: str, key: str, seq: int, step: int | None, ts: float, value: float) -> Metric:
    return _new(Metric, ("metric", run_id, key, seq, step, ts, value))


def tag(run_id: str, key: str, value: str) -> Tag:
    return _new(Tag, ("tag", run_id, key, value))


def artifact(run_id: str, name: str, sha256: str, size: int, data: bytes) -> Artifact:
    return _new(Artifact, ("artifact", run_id, name, sha256, size, data))


def artifact_file(
    run_id: str, name: str, sha256: str, size: int, staged_path: str
) -> ArtifactFile:
    return _new(ArtifactFile, ("artifact_file", run_id, name, sha256, size, staged_path))


def input(run_id: str, path: str, sha256: str, size: int) -> Input:  # noqa: A001 - the op kind
    return _new(Input, ("input", run_id, path, sha256, size))


def run_end(
    run_id: str, status: str, ended_at: float, last_seq: int | None, resources_json: str
) -> RunEnd:
    return _new(RunEnd, ("run_end", run_id, status, ended_at, last_seq, resources_json))


def capture(
    run_id: str,
    modules_hash: str | None,
    inputs_hash: str | None,
    determinism_hash: str | None,
    imported_json: str | None,
) -> Capture:
    return _new(Capture, ("capture", run_id, modules_hash, inputs_hash, determinism_hash,
                          imported_json))


def output(kernel_id: str, seq: int, fingerprint: str, excerpt: str, data_json: str) -> Output:
    return _new(Output, ("output", kernel_id, seq, fingerprint, excerpt, data_json))


def param_delete(run_id: str, key: str) -> ParamDelete:
    return _new(ParamDelete, ("param_delete", run_id, key))


def import_mark(run_id: str, imported_at: float, user: str, host: str) -> ImportMark:
    return _new(ImportMark, ("import_mark", run_id, imported_at, user, host))


def mlflow_io(run_id: str, key: str, data_json: str) -> MlflowIo:
    return _new(MlflowIo, ("mlflow_io", run_id, key, data_json))


def mlflow_model(
    id: str, experiment_id: str, run_id: str | None, lifecycle_stage: str, data_json: str
) -> MlflowModel:
    return _new(MlflowModel, ("mlflow_model", id, experiment_id, run_id, lifecycle_stage,
                              data_json))

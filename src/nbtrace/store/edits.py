"""Edits of recorded runs: rename, tags, note, verdict, delete.

Why apart from the kernels' writes: these come from people (the sidebar, the CLI, the Python
API), after the fact, one run at a time, and must refuse what the kernel would refuse.
"""

from __future__ import annotations

from typing import Any

from ..errors import ConflictError, UsageError, one_line
from .documents import DocumentsMixin
from .write import STATEMENTS

#: Longest tag name update_run accepts (as the kernel side): keys are in primary-key btree
#: indexes, whose entries PostgreSQL caps at 2,704 bytes.
_MAX_KEY_LEN = 250


class EditsMixin(DocumentsMixin):
    """Edits by people; each returns or changes one run."""

    def update_run(self, ref: str, name: str | None = None,
                   tags: dict[str, str | None] | None = None,
                   note: str | None = None) -> dict[str, Any]:
        run_id = self.resolve_run_id(ref)
        _check_edit(name, tags, note)
        with self._cur(write=True) as cur:
            if name is not None:
                cur.execute("UPDATE runs SET name = ? WHERE id = ?", (name, run_id))
            if note is not None:
                cur.execute("UPDATE runs SET note = ? WHERE id = ?", (note, run_id))
            for key, value in (tags or {}).items():
                if value is None:
                    cur.execute("DELETE FROM tags WHERE run_id = ? AND key = ?", (run_id, key))
                else:
                    cur.executemany(STATEMENTS["tag"], [(run_id, key, str(value))])
        return self.get_run(run_id)

    def set_verdict(self, run_id: str, verdict: dict[str, Any]) -> None:
        from ..jsonutil import dumps

        with self._cur(write=True) as cur:
            cur.execute("UPDATE runs SET verdict = ? WHERE id = ?", (dumps(verdict), run_id))

    def delete_run(self, ref: str) -> None:
        run_id = self.resolve_run_id(ref)
        self._maybe_reap()
        with self._cur(write=True) as cur:
            cur.execute("SELECT status FROM runs WHERE id = ?", (run_id,))
            r = cur.fetchone()
            if r and r[0] == "running":
                cur.execute("SELECT 1 FROM imported_runs WHERE run_id = ?", (run_id,))
                if not cur.fetchone():  # an imported run is a copy: no kernel here ends it
                    raise ConflictError(
                        f"run {run_id} is still running; end it before deleting it"
                    )
            for table in (
                "params", "metrics", "latest_metrics", "tags", "artifacts", "inputs",
                "imported_runs", "run_capture", "mlflow_io",
            ):
                cur.execute(f"DELETE FROM {table} WHERE run_id = ?", (run_id,))
            cur.execute("DELETE FROM runs WHERE id = ?", (run_id,))
            cur.execute(
                "DELETE FROM artifact_blobs WHERE NOT EXISTS"
                " (SELECT 1 FROM artifacts a WHERE a.sha256 = artifact_blobs.sha256)"
            )
            cur.execute(
                "DELETE FROM artifact_chunks WHERE NOT EXISTS"
                " (SELECT 1 FROM artifact_blobs b WHERE b.sha256 = artifact_chunks.sha256)"
            )


def _check_edit(name: Any, tags: Any, note: Any) -> None:
    """Refuse an edit the kernel would refuse (:mod:`nbtrace.rules`), before any write.

    Why here, below the REST adapter: every path that edits a run (PATCH, the Python API,
    future ones) must apply the same limits and character rules as the kernel: a lone
    surrogate, a NUL, a newline or U+202E in a name, a 5 MB name or a 120 MB note.
    """
    from ..rules import MAX_LONG_NAME, name_problem, value_problem

    if name is not None:
        problem = name_problem("run", name, MAX_LONG_NAME)
        if problem:
            raise UsageError(problem)
    if tags is not None and not isinstance(tags, dict):
        raise UsageError("tags must be an object of name: value (null removes a tag)")
    for key, value in (tags or {}).items():
        problem = name_problem("tag", key, _MAX_KEY_LEN)
        if problem is None and value is not None:
            problem = value_problem(f"tag {one_line(key, 60)!r} value", str(value))
        if problem:
            raise UsageError(problem)
    if note is not None:
        problem = value_problem("a note", note)
        if problem:
            raise UsageError(problem)

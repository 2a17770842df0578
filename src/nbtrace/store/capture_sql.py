"""The store's side of dependency and output capture (migration ``0003_verdict``).

Why a module of its own: these tables (``run_capture``, ``cell_outputs``) are read and written
by the same few statements for the run object, export and import; keeping them here leaves
the store's parts (:mod:`.write`, :mod:`.documents`, :mod:`.transfer`) one call each. Every
statement runs on SQLite and PostgreSQL alike.

Ops: :class:`~.ops.Capture` (an upsert: None keeps what is there, so the pieces may arrive
separately), :class:`~.ops.Output` (one executed cell's outputs) and :class:`~.ops.ParamDelete`
(a parameter the run must not claim: an override without effect).
"""

from __future__ import annotations

import json
from typing import Any

from . import ops

#: The blob hashes a ``run_capture`` row points at, in column order.
CAPTURE_COLUMNS = ("modules_hash", "inputs_hash", "determinism_hash", "imported")


def op_capture(cur: Any, rows: list[tuple]) -> None:
    """Upsert run_capture rows; a None field leaves the stored value alone."""
    sets = ", ".join(f"{c} = COALESCE(excluded.{c}, run_capture.{c})" for c in CAPTURE_COLUMNS)
    cur.executemany(
        "INSERT INTO run_capture (run_id, modules_hash, inputs_hash, determinism_hash, imported)"
        f" VALUES (?,?,?,?,?) ON CONFLICT (run_id) DO UPDATE SET {sets}",
        sorted(rows, key=lambda r: r[0]),
    )


def op_output(cur: Any, rows: list[tuple]) -> None:
    """One row per executed cell. A cell is sealed once; a row already there is kept (an
    import never rewrites outputs this store recorded for its own kernels)."""
    cur.executemany(
        "INSERT INTO cell_outputs (kernel_id, seq, fingerprint, excerpt, data)"
        " VALUES (?,?,?,?,?) ON CONFLICT (kernel_id, seq) DO NOTHING",
        rows,
    )


def op_param_delete(cur: Any, rows: list[tuple]) -> None:
    """Remove parameters a run must not claim."""
    cur.executemany("DELETE FROM params WHERE run_id = ? AND key = ?", rows)


def _blob(cur: Any, h: str | None) -> Any:
    if not h:
        return None
    cur.execute("SELECT data FROM blobs WHERE hash = ?", (h,))
    r = cur.fetchone()
    return json.loads(r[0]) if r else None


def capture_row(cur: Any, run_id: str) -> dict[str, Any] | None:
    """The run's ``run_capture`` row as a dict, or None (runs recorded before 0003)."""
    cur.execute(
        f"SELECT {', '.join(CAPTURE_COLUMNS)} FROM run_capture WHERE run_id = ?", (run_id,)
    )
    r = cur.fetchone()
    return dict(zip(CAPTURE_COLUMNS, r)) if r else None


def output_rows(cur: Any, row: dict[str, Any]) -> list[tuple]:
    """``(seq, fingerprint, excerpt, data_json)`` of the run's cells (up to its last cell)."""
    if not row.get("kernel_id"):
        return []
    sql = "SELECT seq, fingerprint, excerpt, data FROM cell_outputs WHERE kernel_id = ?"
    args: list[Any] = [row["kernel_id"]]
    if row.get("last_seq") is not None:
        sql += " AND seq <= ?"
        args.append(row["last_seq"])
    cur.execute(sql + " ORDER BY seq", args)
    return [tuple(r) for r in cur.fetchall()]


def add_to_run(cur: Any, row: dict[str, Any], run: dict[str, Any]) -> None:
    """Fill the run object's ``modules``, ``inputs`` (automatic ones added), ``outputs``,
    ``determinism`` and the end-of-run ``environment.imported``."""
    cap = capture_row(cur, row["id"]) or {}
    run["modules"] = [
        {k: m.get(k) for k in ("path", "name", "sha256", "size", "stored")}
        for m in _blob(cur, cap.get("modules_hash")) or []
    ]
    auto = {i["path"]: i for i in _blob(cur, cap.get("inputs_hash")) or []}
    merged = []
    for item in run.get("inputs") or []:
        seen = auto.pop(item["path"], None)
        merged.append({**item, "mtime": (seen or {}).get("mtime"), "declared": True,
                       "partial": bool((seen or {}).get("partial"))})
    merged += [{**i, "declared": False} for i in auto.values()]
    run["inputs"] = sorted(merged, key=lambda i: i["path"])
    run["determinism"] = _blob(cur, cap.get("determinism_hash")) or {}
    if cap.get("imported"):
        run.setdefault("environment", {})["imported"] = json.loads(cap["imported"])
    run["outputs"] = [
        {"seq": seq, "fingerprint": fp, "excerpt": ex, **_output_detail(data)}
        for seq, fp, ex, data in output_rows(cur, row)
    ]


def _output_detail(data: str) -> dict[str, Any]:
    """The comparable parts of one cell's stored outputs (``items``, ``ignored``)."""
    try:
        d = json.loads(data)
    except ValueError:
        return {"items": []}
    return {"items": d.get("items") or [], "truncated": bool(d.get("truncated"))}


def image_data(cur: Any, sha: str) -> dict[str, Any] | None:
    """``{"mime", "b64"}`` of an image a cell displayed (kept when small enough)."""
    d = _blob(cur, sha)
    return d if isinstance(d, dict) and "b64" in d else None


# --------------------------------------------------------------------------- export / import
def module_source_shas(cur: Any, modules_hash: str | None) -> list[str]:
    """The sha256 of every module source stored for a modules blob."""
    return [m["sha256"] for m in _blob(cur, modules_hash) or [] if m.get("stored")]


def export_part(cur: Any, row: dict[str, Any], doc: dict[str, Any]) -> None:
    """Add ``capture``, ``outputs``, their blobs and module sources to an export document."""
    cap = capture_row(cur, row["id"])
    doc["capture"] = [cap[c] for c in CAPTURE_COLUMNS] if cap else None
    doc["outputs"] = [list(r) for r in output_rows(cur, row)]
    hashes: list[str] = []
    if cap:
        hashes += [cap[c] for c in CAPTURE_COLUMNS[:3] if cap[c]]
    for _seq, _fp, _ex, data in doc["outputs"]:
        hashes += image_shas(data)
    for h in hashes:
        cur.execute("SELECT kind, data FROM blobs WHERE hash = ?", (h,))
        b = cur.fetchone()
        if b:
            doc.setdefault("blobs", {})[h] = list(b)
    for sha in module_source_shas(cur, (cap or {}).get("modules_hash")):
        cur.execute("SELECT source FROM sources WHERE sha256 = ?", (sha,))
        s = cur.fetchone()
        if s:
            doc.setdefault("sources", {})[sha] = s[0]


def image_shas(data: str) -> list[str]:
    """Hashes of the images kept for one cell's outputs."""
    try:
        items = json.loads(data).get("items") or []
    except (ValueError, AttributeError):
        return []
    return [i["blob"] for i in items if isinstance(i, dict) and isinstance(i.get("blob"), str)]


def import_ops(doc: dict[str, Any], run_id: str, kernel_id: str | None) -> list[tuple]:
    """The ops that restore an export's ``capture`` and ``outputs`` parts, checked first.

    Why checked here: the document is untrusted (a file); the blobs these rows point at are
    hash-checked with the rest of the document, the rows themselves are checked for shape.
    """
    from ..errors import UsageError

    def bad(what: str) -> UsageError:
        return UsageError(f"refused import: run {run_id!r}: {what}")

    batch: list[tuple] = []
    cap = doc.get("capture")
    if cap is not None:
        if not isinstance(cap, list) or len(cap) != len(CAPTURE_COLUMNS) or not all(
            v is None or (isinstance(v, str) and len(v) <= _MAX_DATA) for v in cap
        ) or not all(v is None or _is_hash(v) for v in cap[:3]):
            raise bad("capture must be three blob hashes (or null) and the imported modules")
        if cap[3] is not None and not isinstance(_json(cap[3]), dict):
            raise bad("capture's imported modules must be a JSON object")
        batch.append(ops.capture(run_id, *cap))
    outputs = doc.get("outputs") or []
    if not isinstance(outputs, list) or (outputs and not kernel_id):
        raise bad("outputs must be a list of cell rows of the run's kernel")
    for i, row in enumerate(outputs):
        ok = isinstance(row, list) and len(row) == 4
        seq, fp, ex, data = row if ok else (None, None, None, None)
        if not (ok and isinstance(seq, int) and not isinstance(seq, bool) and seq >= 0
                and _is_hash(fp) and (ex is None or (isinstance(ex, str) and len(ex) <= 4000))
                and isinstance(data, str) and len(data) <= _MAX_DATA
                and isinstance(_json(data), dict)):
            raise bad(f"outputs[{i}] is not (seq, fingerprint, excerpt, data)")
        batch.append(ops.output(kernel_id, seq, fp, ex, data))
    return batch


_MAX_DATA = 1 << 20


def _is_hash(v: Any) -> bool:
    return isinstance(v, str) and len(v) == 64 and all(c in "0123456789abcdef" for c in v)


def _json(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        return None

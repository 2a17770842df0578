"""The kernel's writer against a real SQLite file that another process holds locked."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

from nbtrace import writer
from nbtrace.store import ops
from nbtrace.store.sqlite import SQLiteStore
from nbtrace.writer import Writer, sync_spool

HOLD_LOCK = """
import sqlite3, sys
c = sqlite3.connect(sys.argv[1], isolation_level=None)
c.execute("BEGIN EXCLUSIVE")
print("locked", flush=True)
sys.stdin.read()  # held until the test closes our stdin: an event, not a duration
c.execute("ROLLBACK")
"""


def _lock(db: str) -> subprocess.Popen[str]:
    """Another process holding ``db``'s write lock until :func:`_release` (whatever the load)."""
    p = subprocess.Popen([sys.executable, "-c", HOLD_LOCK, db],
                         stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert p.stdout is not None and p.stdout.readline().strip() == "locked"
    return p


def _release(holder: subprocess.Popen[str]) -> None:
    assert holder.stdin is not None
    holder.stdin.close()
    holder.wait(60)


class CountingStore(SQLiteStore):
    """The real SQLite store, counting how often the writer tries to write."""

    attempts = 0

    def apply(self, ops):  # type: ignore[no-untyped-def]
        self.attempts += 1
        return super().apply(ops)


def _ops(run_id: str, n: int, start: int = 0) -> list[tuple]:
    return [ops.metric(run_id, "m", i + 1, i, time.time(), float(i)) for i in range(start, n)]


def test_locked_store_warns_once_retries_and_loses_nothing(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("NBTRACE_BUSY_TIMEOUT", "0.2")
    db = str(tmp_path / "runs.db")
    store = CountingStore(db)
    warnings: list[str] = []
    w = Writer(store, warnings.append, interval=0.1)
    w.submit(ops.run_start({"id": "r1", "name": "n", "status": "running",
                            "started_at": time.time()}))
    assert w.sync()
    holder = _lock(db)
    try:
        for op in _ops("r1", 50):
            w.submit(op)
        assert w.flush() is False  # the lock holder wins (busy timeout); ops are kept
        assert holder.poll() is None  # gave up while the lock was still held
        for op in _ops("r1", 100, 50):
            w.submit(op)
        tried = store.attempts
        assert w.sync() is False  # failing: the user's thread does not wait again...
        assert store.attempts == tried  # ...it does not even try the store
        assert len(warnings) == 1 and "keeps running" in warnings[0]
    finally:
        _release(holder)
    w.start()
    deadline = time.time() + 60
    while w.has_pending() and time.time() < deadline:
        time.sleep(0.05)
    w.close()
    conn = sqlite3.connect(db)
    n, distinct = conn.execute("SELECT count(*), count(DISTINCT seq) FROM metrics").fetchone()
    conn.close()
    assert n == distinct == 100
    assert any("reachable again" in m for m in warnings)


def test_unwritable_ops_are_spooled_then_synced(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("NBTRACE_BUSY_TIMEOUT", "0.2")
    db = str(tmp_path / "runs.db")
    store = SQLiteStore(db)
    spool = tmp_path / "spool"
    warnings: list[str] = []
    w = Writer(store, warnings.append, spool_dir=spool, location_key=store.display_location)
    w.submit(ops.run_start({"id": "r2", "name": "n", "status": "running",
                            "started_at": time.time()}))
    for op in _ops("r2", 20):
        w.submit(op)
    w.submit(ops.artifact("r2", "a.bin", "ab" * 32, 3, b"\x00\x01\x02"))
    holder = _lock(db)
    try:
        w.close()
    finally:
        _release(holder)
    files = list(spool.glob("*.jsonl"))
    assert len(files) == 1 and any("saved to" in m for m in warnings)
    other = SQLiteStore(str(tmp_path / "other.db"))
    assert sync_spool(other, spool, "somewhere-else") == (0, 0)  # not for that store
    assert sync_spool(store, spool, store.display_location) == (1, 22)
    assert not list(spool.glob("*.jsonl"))
    run = store.get_run("r2", series=True)
    assert [p["value"] for p in run["series"]["m"]] == [float(i) for i in range(20)]
    assert store.artifact("r2", "a.bin")[0] == b"\x00\x01\x02"
    # uploading the same ops again writes nothing twice
    store.apply([op for op in _ops("r2", 20)])
    assert len(store.get_run("r2", series=True)["series"]["m"]) == 20


ENDED_THEN_HANG = """
import sys, time
import nbtrace
with nbtrace.start_run("durable-at-end") as run:
    nbtrace.log_metric("m", 1.5, step=0)
    time.sleep(0.2)  # a run that lasts (a loop's short runs are batched instead)
print(run.id, flush=True)
time.sleep(60)
"""


def test_ended_run_is_durable_without_waiting_for_exit(tmp_path: Path) -> None:
    """A run ended in a plain Python process is written soon after, long before the periodic
    flush (set to an hour here) or the exit; killing the process then loses nothing."""
    import os

    db = str(tmp_path / "runs.db")
    env = dict(os.environ, NBTRACE_DB=db, NBTRACE_FLUSH_INTERVAL="3600")
    # Outside a git work tree: the git capture's own wake-up must not be what writes the run.
    p = subprocess.Popen([sys.executable, "-c", ENDED_THEN_HANG], stdout=subprocess.PIPE,
                         text=True, env=env, cwd=tmp_path)
    try:
        assert p.stdout is not None
        run_id = p.stdout.readline().strip()
        assert run_id, "the child printed no run id"
        deadline = time.monotonic() + 120  # generous: the periodic flush is an hour away
        run = None
        while time.monotonic() < deadline:
            try:
                run = SQLiteStore(db).get_run(run_id)
            except Exception:  # noqa: BLE001 - not written yet
                run = None
            if run and run["status"] == "finished" and run["metrics"]:
                break
            time.sleep(0.05)
    finally:
        p.kill()
        p.wait()
    assert run is not None and run["status"] == "finished", run
    assert run["metrics"]["m"] == 1.5


# ------------------------------------------------------------------ op records, spool format
def test_op_records_are_the_tuples_the_store_reads(tmp_path: Path) -> None:
    """Each record is a tuple, its kind first, in the layout the store binds positionally;
    ``typed`` gives a plain tuple of that layout its record, and leaves anything else alone."""
    for kind, cls in ops.KINDS.items():
        assert cls._fields[0] == "kind" and getattr(ops, kind).__name__ == kind
    m = ops.metric("r1", "loss", 3, 30, 12.5, 0.25)
    assert isinstance(m, tuple) and m == ("metric", "r1", "loss", 3, 30, 12.5, 0.25)
    assert (m.kind, m.run_id, m.key, m.seq, m.step, m.ts, m.value) == tuple(m)
    assert type(ops.typed(tuple(m))) is ops.Metric and ops.typed(tuple(m)) == m
    assert ops.typed(("metric", "r1")) == ("metric", "r1")  # wrong length: the store says so
    assert type(ops.typed(("future_op", 1))) is tuple
    assert ops.heartbeat("r1", 5.0) == ("heartbeat", "r1", 5.0)  # the kind base.py missed
    store = SQLiteStore(str(tmp_path / "runs.db"))
    store.apply([  # records and plain tuples of the same layout, in one batch
        ops.run_start({"id": "r1", "name": "n", "status": "running", "started_at": 1.0}),
        m,
        ("tag", "r1", "k", "v"),
        ops.heartbeat("r1", 20.0),
    ])
    run = store.get_run("r1")
    assert run["metrics"]["loss"] == 0.25 and run["tags"]["k"] == "v"


def test_hot_path_tuples_have_the_records_layouts(tmp_path: Path) -> None:
    """``log_metric`` and ``log_param`` queue plain tuples (a record costs ~0.12 µs a call
    more): each must read as its record, field by field."""
    from nbtrace.tracker import Tracker

    tr = Tracker(str(tmp_path / "runs.db"), warn=lambda _msg: None)
    try:
        run = tr.start_run(name="hot")
        tr.writer.flush()
        tr.log_metric("loss", 0.5, step=7)
        for value in ("adam", 0.1, 3, True):
            tr.log_param(f"p_{type(value).__name__}", value)
        queued = [ops.typed(op) for op in tr.writer.pending]
        metric = next(op for op in queued if op[0] == "metric")
        assert type(metric) is ops.Metric
        assert (metric.run_id, metric.key, metric.step, metric.value) == (run.id, "loss", 7, 0.5)
        params = {op.key: op for op in queued if op[0] == "param"}
        assert all(type(op) is ops.Param for op in params.values())
        assert (params["p_str"].value_json, params["p_str"].text) == ('"adam"', "adam")
        assert (params["p_float"].num, params["p_int"].num, params["p_bool"].num) == (0.1, 3, None)
        assert params["p_bool"].value_json == "true" == params["p_bool"].text
    finally:
        tr.close()


def _spool_file(path: Path, header: object, lines: list[object]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(json.dumps(x) for x in [header, *lines]) + "\n")
    return path


def test_spool_header_has_a_version_and_old_spools_read_as_before(tmp_path: Path) -> None:
    store = SQLiteStore(str(tmp_path / "runs.db"))
    loc = store.display_location
    spool = tmp_path / "spool"
    warnings: list[str] = []
    w = Writer(store, warnings.append, spool_dir=spool, location_key=loc)
    w.submit(ops.run_start({"id": "r4", "name": "n", "status": "running", "started_at": 1.0}))
    w.submit(ops.metric("r4", "m", 1, 0, 2.0, 0.5))
    path = w.spool()
    assert path is not None
    assert json.loads(path.read_text().splitlines()[0]) == {
        "location": loc, "version": writer.SPOOL_VERSION}
    read = writer._read_spool(path, loc)
    assert read is not None and type(read[1]) is ops.Metric and read[1].value == 0.5
    old = _spool_file(spool / "0-1.jsonl", {"location": loc},  # before versions existed
                      [["tag", "r4", "k", "v"], ["packages", "h", [["numpy", "2.0"]]]])
    read = writer._read_spool(old, loc)
    assert read is not None and type(read[0]) is ops.Tag and read[1].pairs == [("numpy", "2.0")]
    old.write_text("\n".join(old.read_text().splitlines()[:2]) + "\n")  # the tag only
    assert sync_spool(store, spool, loc) == (2, 3)
    assert store.get_run("r4")["tags"] == {"k": "v"} and not list(spool.glob("*.jsonl"))


def test_newer_or_damaged_spool_files_are_kept_and_named(tmp_path: Path) -> None:
    store = SQLiteStore(str(tmp_path / "runs.db"))
    loc = store.display_location
    spool = tmp_path / "spool"
    newer = _spool_file(spool / "1-1.jsonl", {"location": loc, "version": 99}, [["x", 1]])
    damaged = spool / "2-1.jsonl"
    damaged.write_bytes(b'{"location": \x00\xff garbage\n')
    not_ops = _spool_file(spool / "3-1.jsonl", {"location": loc}, [{"a": 1}])
    not_header = _spool_file(spool / "4-1.jsonl", [1, 2], [["tag", "r", "k", "v"]])
    good = _spool_file(spool / "5-1.jsonl", {"location": loc, "version": 1}, [
        ["run_start", {"id": "r5", "name": "n", "status": "running", "started_at": 1.0}]])
    kept: list[str] = []
    assert sync_spool(store, spool, loc, on_kept=kept.append) == (1, 1)
    assert len(kept) == 4 and all("\n" not in m and "kept" in m for m in kept)
    assert "newer nbtrace (format 99" in kept[0] and str(newer) in kept[0]
    assert all(p.exists() for p in (newer, damaged, not_ops, not_header))
    assert not good.exists() and store.get_run("r5")["name"] == "n"


def test_tracker_start_survives_bad_spool_files(tmp_path: Path, monkeypatch) -> None:
    """What ``%load_ext`` does (a Tracker on a store with spool files): a damaged, a foreign
    and a newer spool file, and one whose write the store refuses, each cost one warning
    line; the load itself, and the session's own writes, are unharmed."""
    import threading

    from nbtrace.capture.worker import background
    from nbtrace.tracker import Tracker

    monkeypatch.setenv("JUPYTER_DATA_DIR", str(tmp_path / "data"))
    db = str(tmp_path / "runs.db")
    loc = SQLiteStore(db).display_location
    spool = tmp_path / "data" / "nbtrace" / "spool"
    _spool_file(spool / "1-1.jsonl", {"location": loc, "version": 2}, [["tag", "r", "k", "v"]])
    (spool / "2-1.jsonl").write_text("\x00 not json\n")
    _spool_file(spool / "3-1.jsonl", "a header that is a string", [])
    _spool_file(spool / "4-1.jsonl", {"location": loc}, [["source", "0" * 64, "planted"]])
    warnings: list[str] = []
    t = Tracker(db, warn=warnings.append, fresh=False)
    try:
        synced = threading.Event()
        background(synced.set)  # the worker runs jobs in order: the upload is done after it
        assert synced.wait(60)
        run = t.start_run("after")
        t.log_metric("m", 1.0)
        t.end_run()
        assert t.flush()
    finally:
        t.close()
    spool_warnings = [m for m in warnings if "spool" in m]
    assert len(spool_warnings) == 4, warnings
    assert all(m.startswith("nbtrace: ") and "\n" not in m for m in spool_warnings)
    assert any("newer nbtrace" in m for m in spool_warnings)
    assert any("refused spooled write 1 (source)" in m for m in spool_warnings)
    assert len(list(spool.glob("*.jsonl"))) == 4  # all kept
    assert SQLiteStore(db).get_run(run.id)["metrics"] == {"m": 1.0}

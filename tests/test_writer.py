"""The kernel's writer against a real SQLite file that another process holds locked."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import time
from pathlib import Path

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
    return [("metric", run_id, "m", i + 1, i, time.time(), float(i)) for i in range(start, n)]


def test_locked_store_warns_once_retries_and_loses_nothing(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("NBTRACE_BUSY_TIMEOUT", "0.2")
    db = str(tmp_path / "runs.db")
    store = CountingStore(db)
    warnings: list[str] = []
    w = Writer(store, warnings.append, interval=0.1)
    w.submit(("run_start", {"id": "r1", "name": "n", "status": "running",
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
    w.submit(("run_start", {"id": "r2", "name": "n", "status": "running",
                            "started_at": time.time()}))
    for op in _ops("r2", 20):
        w.submit(op)
    w.submit(("artifact", "r2", "a.bin", "ab" * 32, 3, b"\x00\x01\x02"))
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
